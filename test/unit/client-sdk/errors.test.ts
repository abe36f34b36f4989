/**
 * Mapping what the Colyseus SDK throws or reports to TsunagiError with the shared codes.
 * The inputs are built with the SDK's own error classes, shaped as its source builds
 * them (HTTP.ts, Client.createMatchMakeRequest, Room.onError).
 */
import { describe, it, expect } from "vitest";
import { MatchMakeError, ServerError } from "@colyseus/sdk";
import { TsunagiError, fromServerError, fromCloseCode } from "../../../client-sdk/errors.ts";
import { ErrorCode, ProtocolError } from "../../../proto/index.ts";

describe("fromServerError", () => {
  it("reads the code the Tsunagi server puts in front of a matchmake message", () => {
    // ClusterMatchmaker answers 404 { code: 4404, error: "[4404 UNKNOWN_ROOM] …" }; the SDK keeps status + message
    const error = fromServerError(new MatchMakeError("[4404 UNKNOWN_ROOM] no room type \"nope\" on this cluster", 404));
    expect(error).toBeInstanceOf(TsunagiError);
    expect(error.code).toBe(ErrorCode.UNKNOWN_ROOM);
    expect(error.codeName).toBe("UNKNOWN_ROOM");
    expect(error.message).toBe("no room type \"nope\" on this cluster");
    expect(error.retryable).toBe(false);
    expect(error.cause).toBeInstanceOf(MatchMakeError);

    const draining = fromServerError(new MatchMakeError("[4503 NODE_DRAINING] this node is draining", 503));
    expect(draining.code).toBe(ErrorCode.NODE_DRAINING);
    expect(draining.retryable).toBe(true);

    const expired = fromServerError(new MatchMakeError("[4412 TOKEN_EXPIRED] token expired", 401));
    expect(expired.code).toBe(ErrorCode.TOKEN_EXPIRED);
  });

  it("keeps an unknown code of Tsunagi's range from a newer server", () => {
    const error = fromServerError(new MatchMakeError("[4520 SOMETHING_NEW] later", 500));
    expect(error.code).toBe(4520);
    expect(error.codeName).toBe("4520");
    expect(error.retryable).toBe(false);
  });

  it("uses the JSON body's code a ServerError kept", () => {
    const error = fromServerError(new ServerError(409, "room exists", { status: 409, data: { code: 4406, error: "room exists" } }));
    expect(error.code).toBe(ErrorCode.ROOM_CONFLICT);
    expect(error.message).toBe("room exists");
  });

  it("takes Colyseus matchmaking codes from a stock server (code used as HTTP status)", () => {
    expect(fromServerError(new MatchMakeError("room \"x\" not found", 522)).code).toBe(ErrorCode.MATCHMAKE_INVALID_ROOM_ID);
    expect(fromServerError(new MatchMakeError("seat reservation expired.", 524))).toMatchObject({ code: ErrorCode.MATCHMAKE_EXPIRED, retryable: true });
    expect(fromServerError(new MatchMakeError("onAuth failed", 525)).code).toBe(ErrorCode.AUTH_FAILED);
  });

  it("maps plain HTTP statuses when no code came with them", () => {
    expect(fromServerError(new MatchMakeError("Unauthorized", 401)).code).toBe(ErrorCode.AUTH_FAILED);
    expect(fromServerError(new MatchMakeError("Forbidden", 403)).code).toBe(ErrorCode.FORBIDDEN);
    expect(fromServerError(new MatchMakeError("Too Many Requests", 429))).toMatchObject({ code: ErrorCode.RATE_LIMITED, retryable: true });
    expect(fromServerError(new MatchMakeError("Bad Gateway", 502))).toMatchObject({ code: ErrorCode.REGION_UNAVAILABLE, retryable: true });
    expect(fromServerError(new MatchMakeError("Service Unavailable", 503))).toMatchObject({ code: ErrorCode.NODE_DRAINING, retryable: true });
    expect(fromServerError(new MatchMakeError("Internal Server Error", 500))).toMatchObject({ code: ErrorCode.INTERNAL, retryable: false });
    expect(fromServerError(new MatchMakeError("Loop Detected", 508)).code).toBe(ErrorCode.INTERNAL);
  });

  it("maps network failures (string errno, fetch messages) to REGION_UNAVAILABLE", () => {
    // HTTP.ts: new ServerError(err.cause?.code || err.code, err.message), then MatchMakeError(message, code)
    const refused = fromServerError(new MatchMakeError("fetch failed", "ECONNREFUSED" as unknown as number));
    expect(refused).toMatchObject({ code: ErrorCode.REGION_UNAVAILABLE, retryable: true });
    expect(refused.message).toMatch(/ECONNREFUSED/);
    expect(fromServerError(new MatchMakeError("Failed to fetch", undefined as unknown as number)).code).toBe(ErrorCode.REGION_UNAVAILABLE);
    expect(fromServerError(new TypeError("fetch failed", { cause: { code: "ENOTFOUND" } })).code).toBe(ErrorCode.REGION_UNAVAILABLE);
  });

  it("maps a room socket that failed during the join", () => {
    // consumeSeatReservation: room.onError(e.code, e.reason) of a socket error event has neither
    expect(fromServerError(new MatchMakeError(undefined as unknown as string, undefined as unknown as number)).code).toBe(ErrorCode.REGION_UNAVAILABLE);
    // a close before the join completed
    expect(fromServerError(new MatchMakeError("", 1006)).code).toBe(ErrorCode.REGION_UNAVAILABLE);
    expect(fromServerError(new MatchMakeError("", 4002)).code).toBe(ErrorCode.APPLICATION_ERROR);
    // the room sent an ERROR frame with our code before closing
    expect(fromServerError(new MatchMakeError("scoped to other rooms", 4413)).code).toBe(ErrorCode.FORBIDDEN);
  });

  it("maps room errors reported through onError(code, message)", () => {
    expect(fromServerError({ code: ErrorCode.RATE_LIMITED, message: "slow down" })).toMatchObject({ code: ErrorCode.RATE_LIMITED, message: "slow down", retryable: true });
    expect(fromServerError({ code: ErrorCode.INVALID_PAYLOAD }).message).toBe("INVALID_PAYLOAD");
  });

  it("carries ProtocolError's code and passes TsunagiError through", () => {
    const protocol = new ProtocolError(ErrorCode.MALFORMED_PROTOBUF, "bad bytes");
    expect(fromServerError(protocol)).toMatchObject({ code: ErrorCode.MALFORMED_PROTOBUF, message: "bad bytes", cause: protocol });
    const own = new TsunagiError(ErrorCode.OVERLOADED, "full");
    expect(fromServerError(own)).toBe(own);
  });

  it("maps anything else to INTERNAL, not retryable, keeping the original", () => {
    const original = new Error("something odd");
    expect(fromServerError(original)).toMatchObject({ code: ErrorCode.INTERNAL, retryable: false, message: "something odd", cause: original });
    expect(fromServerError("a string").code).toBe(ErrorCode.INTERNAL);
    expect(fromServerError(undefined).code).toBe(ErrorCode.INTERNAL);
    expect(fromServerError(null).code).toBe(ErrorCode.INTERNAL);
  });
});

describe("fromCloseCode", () => {
  it("is undefined for a normal or consented close", () => {
    expect(fromCloseCode(1000)).toBeUndefined();
    expect(fromCloseCode(4000)).toBeUndefined();
  });

  it("maps lost connections and failed reconnection to REGION_UNAVAILABLE (retryable)", () => {
    for (const code of [1001, 1005, 1006, 4003, 4010]) {
      expect(fromCloseCode(code), String(code)).toMatchObject({ code: ErrorCode.REGION_UNAVAILABLE, retryable: true });
    }
  });

  it("maps shutdown, size and error closes", () => {
    expect(fromCloseCode(4001)?.code).toBe(ErrorCode.NODE_DRAINING);
    expect(fromCloseCode(1009)?.code).toBe(ErrorCode.FRAME_TOO_LARGE);
    expect(fromCloseCode(4002, "room threw")).toMatchObject({ code: ErrorCode.APPLICATION_ERROR, message: expect.stringContaining("room threw") });
  });

  it("keeps Tsunagi codes used as close codes, and maps unknown ones to INTERNAL", () => {
    expect(fromCloseCode(4503, "draining")).toMatchObject({ code: ErrorCode.NODE_DRAINING, retryable: true });
    expect(fromCloseCode(4413)?.code).toBe(ErrorCode.FORBIDDEN);
    expect(fromCloseCode(4999)?.code).toBe(ErrorCode.INTERNAL);
  });
});
