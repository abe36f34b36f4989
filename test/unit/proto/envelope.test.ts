/**
 * The wire contract helpers: round trips, the coded errors decodeEnvelope promises, and
 * a fuzz-style check that no input makes it throw anything but a ProtocolError.
 */
import { describe, it, expect } from "vitest";
import {
  decodeEnvelope, encodeEnvelope, errorEnvelope, ErrorCode, ProtocolError, isRetryable, errorCodeName,
  DEFAULT_MAX_ENVELOPE_BYTES, TRUSTED, tsunagi, decodeStopEnvelope, type Envelope,
} from "../../../proto/index.ts";
import { prng } from "../../fixtures/random.ts";

/** Throws unless fn throws a ProtocolError, which it returns. */
function protocolErrorOf(fn: () => unknown): ProtocolError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ProtocolError);
    return error as ProtocolError;
  }
  throw new Error("expected a ProtocolError, nothing was thrown");
}


describe("generated code", () => {
  it("exposes ErrorCode as a runtime enum with the contract's values", () => {
    expect(ErrorCode.MALFORMED_PROTOBUF).toBe(4401);
    expect(ErrorCode.REGION_UNAVAILABLE).toBe(4505);
    expect(ErrorCode.MATCHMAKE_EXPIRED).toBe(524);
    expect(ErrorCode[4412]).toBe("TOKEN_EXPIRED");
    expect(errorCodeName(ErrorCode.TOKEN_EXPIRED)).toBe("TOKEN_EXPIRED");
    expect(errorCodeName(4999)).toBe("4999");
  });

  it("decodes 64-bit fields to plain numbers, as its typings say", () => {
    const envelope = decodeEnvelope(encodeEnvelope({ correlationId: 2 ** 40 + 3, ping: { clientTimeMs: 1 } }));
    expect(envelope.correlationId).toBe(2 ** 40 + 3);
    // the default for an absent field comes from the prototype: also a number
    expect(decodeEnvelope(encodeEnvelope({ ping: {} })).correlationId).toBe(0);
  });

  it("refuses a correlation id no double holds exactly (WRONG_TYPE), so no reply fails to echo it", () => {
    // field 1 varint 2^63 + 1, then an empty ping: what a peer with 64-bit ids might send
    const bytes = Uint8Array.from([0x08, 0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0x5a, 0x00]);
    expect(() => decodeEnvelope(bytes)).toThrowError(expect.objectContaining({ code: ErrorCode.WRONG_TYPE }));
    const largestExact = Uint8Array.from([...encodeEnvelope({ correlationId: Number.MAX_SAFE_INTEGER, ping: {} })]);
    expect(decodeEnvelope(largestExact).correlationId).toBe(Number.MAX_SAFE_INTEGER);
  });
});

describe("encodeEnvelope / decodeEnvelope", () => {
  it("round-trips each body and narrows on `body`", () => {
    const ping = decodeEnvelope(encodeEnvelope({ correlationId: 7, ping: { clientTimeMs: 12.5 } }));
    expect(ping.body).toBe("ping");
    if (ping.body === "ping") expect(ping.ping.clientTimeMs).toBe(12.5);
    expect(ping.correlationId).toBe(7);

    const pong = decodeEnvelope(encodeEnvelope({ correlationId: 8, pong: { clientTimeMs: 1, serverTimeMs: 2 } }));
    expect(pong.pong).toMatchObject({ clientTimeMs: 1, serverTimeMs: 2 });

    const error = decodeEnvelope(errorEnvelope(ErrorCode.RATE_LIMITED, "slow down", 9));
    expect(error.body).toBe("error");
    expect(error.error).toMatchObject({ code: ErrorCode.RATE_LIMITED, message: "slow down", retryable: true });
    expect(error.correlationId).toBe(9);
  });

  it("errorEnvelope defaults to correlation id 0 and accepts null", () => {
    expect(decodeEnvelope(errorEnvelope(ErrorCode.MALFORMED_PROTOBUF, "bad")).correlationId).toBe(0);
    expect(decodeEnvelope(errorEnvelope(ErrorCode.MALFORMED_PROTOBUF, "bad", null)).correlationId).toBe(0);
    expect(decodeEnvelope(errorEnvelope(ErrorCode.INTERNAL, "bug")).error?.retryable).toBe(false);
  });

  it("accepts an ArrayBuffer as well as a Uint8Array or Buffer", () => {
    const bytes = encodeEnvelope({ ping: { clientTimeMs: 3 } });
    // encode may return a view into a pooled Buffer, so copy into an ArrayBuffer of its own
    const arrayBuffer = new Uint8Array(bytes).buffer;
    expect(decodeEnvelope(arrayBuffer as unknown as Uint8Array).body).toBe("ping");
    expect(decodeEnvelope(Buffer.from(bytes)).body).toBe("ping");
  });

  it("refuses to encode envelopes that would not survive the trip", () => {
    expect(protocolErrorOf(() => encodeEnvelope({ correlationId: 1 })).code).toBe(ErrorCode.WRONG_TYPE);
    expect(protocolErrorOf(() => encodeEnvelope({ ping: {}, pong: {} })).code).toBe(ErrorCode.WRONG_TYPE);
    expect(protocolErrorOf(() => encodeEnvelope({ correlationId: -1, ping: {} })).code).toBe(ErrorCode.WRONG_TYPE);
    expect(protocolErrorOf(() => encodeEnvelope({ correlationId: 1.5, ping: {} })).code).toBe(ErrorCode.WRONG_TYPE);
    expect(protocolErrorOf(() => encodeEnvelope({ ping: { clientTimeMs: "soon" as unknown as number } })).code).toBe(ErrorCode.WRONG_TYPE);
  });
});

describe("decodeEnvelope errors", () => {
  it("MALFORMED_PROTOBUF for truncated bytes, keeping the original error as cause", () => {
    const bytes = encodeEnvelope({ correlationId: 300, ping: { clientTimeMs: 1234.5 } });
    const error = protocolErrorOf(() => decodeEnvelope(bytes.subarray(0, bytes.length - 3)));
    expect(error.code).toBe(ErrorCode.MALFORMED_PROTOBUF);
    expect(error.retryable).toBe(false);
    expect(error.cause).toBeInstanceOf(Error);
    expect(error.name).toBe("ProtocolError");
  });

  it("MALFORMED_PROTOBUF for garbage and for invalid wire types", () => {
    expect(protocolErrorOf(() => decodeEnvelope(new Uint8Array([0xff, 0x00, 0x13, 0x37]))).code).toBe(ErrorCode.MALFORMED_PROTOBUF);
    // field 1 as length-delimited with an absurd length (the bytes the integration test sends)
    expect(protocolErrorOf(() => decodeEnvelope(new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0x01, 0x02]))).code).toBe(ErrorCode.MALFORMED_PROTOBUF);
    // wire type 7 does not exist
    expect(protocolErrorOf(() => decodeEnvelope(new Uint8Array([0x0f, 0x00]))).code).toBe(ErrorCode.MALFORMED_PROTOBUF);
  });

  it("MALFORMED_PROTOBUF for a known field sent with the wrong wire type", () => {
    // field 11 (ping, a message) sent as a varint
    const topLevel = protocolErrorOf(() => decodeEnvelope(new Uint8Array([0x58, 0x01])));
    expect(topLevel.code).toBe(ErrorCode.MALFORMED_PROTOBUF);
    expect(topLevel.message).toMatch(/field 11 .*wire type 0/);
    // inside the body: Ping.client_time_ms (double, wire type 1) sent as a varint
    const nested = protocolErrorOf(() => decodeEnvelope(new Uint8Array([0x08, 0x05, 0x5a, 0x02, 0x08, 0x01])));
    expect(nested.code).toBe(ErrorCode.MALFORMED_PROTOBUF);
    expect(nested.message).toMatch(/Ping field 1/);
    expect(nested.correlationId).toBe(5);
  });

  it("UNKNOWN_MESSAGE for a body from a newer contract; unknown extra fields are fine", () => {
    // field 20, length-delimited, empty: a body this version does not know
    const newer = protocolErrorOf(() => decodeEnvelope(new Uint8Array([0x08, 0x02, 0xa2, 0x01, 0x00])));
    expect(newer.code).toBe(ErrorCode.UNKNOWN_MESSAGE);
    expect(newer.correlationId).toBe(2);
    // a known body plus an unknown varint field 20 decodes (forward compatible)
    const extra = decodeEnvelope(new Uint8Array([0x5a, 0x00, 0xa0, 0x01, 0x05]));
    expect(extra.body).toBe("ping");
  });

  it("encodes after a prefix in one buffer, and keeps encoding correctly after an encode that failed", () => {
    const prefix = Uint8Array.from([9, 8, 7]);
    const framed = encodeEnvelope({ correlationId: 3, ping: { clientTimeMs: 1.5 } }, { prefix });
    expect([...framed.subarray(0, 3)]).toEqual([9, 8, 7]);
    expect(decodeEnvelope(framed.subarray(3)).ping?.clientTimeMs).toBe(1.5);
    // a value protobufjs cannot write (a trusted caller's bug) fails with WRONG_TYPE …
    expect(protocolErrorOf(() => encodeEnvelope({ controlCommand: { deviceId: "ex-1", axes: [null as unknown as tsunagi.v1.IAxisValue] } }, TRUSTED)).code).toBe(ErrorCode.WRONG_TYPE);
    // … and the shared writer starts afresh: the next encode is whole
    const next = encodeEnvelope({ correlationId: 4, pong: { clientTimeMs: 2, serverTimeMs: 3 } });
    expect(decodeEnvelope(next)).toMatchObject({ correlationId: 4, pong: { clientTimeMs: 2, serverTimeMs: 3 } });
    expect(next).toEqual(tsunagi.v1.Envelope.encode({ correlationId: 4, pong: { clientTimeMs: 2, serverTimeMs: 3 } }).finish());
  });

  it("drops the unknown fields of an accepted envelope, so encoding it again forwards none of them", () => {
    // a ControlCommand carrying an unknown field 99 (varint 7), and an unknown field 20 beside the body
    const command = tsunagi.v1.ControlCommand.encode({ deviceId: "ex-1", leaseId: "L1", seq: 3 }).finish();
    const unknownInCommand = Uint8Array.from([...command, 0x98, 0x06, 0x07]);
    const bytes = Uint8Array.from([0x08, 0x01, 0xca, 0x01, unknownInCommand.length, ...unknownInCommand, 0xa0, 0x01, 0x05]);
    const envelope = decodeEnvelope(Buffer.from(bytes));
    expect(envelope.controlCommand).toMatchObject({ deviceId: "ex-1", seq: 3 });
    expect("$unknowns" in envelope).toBe(false);
    expect("$unknowns" in envelope.controlCommand!).toBe(false);
    const again = encodeEnvelope(envelope, TRUSTED);
    expect(again).toEqual(tsunagi.v1.Envelope.encode({ correlationId: 1, controlCommand: { deviceId: "ex-1", leaseId: "L1", seq: 3 } }).finish());
  });

  it("accepts an ErrorCode this build does not know (proto3 enums are open)", () => {
    const bytes = tsunagi.v1.Envelope.encode({ error: { code: 4999 as ErrorCode, message: "new" } }).finish();
    expect(decodeEnvelope(bytes).error?.code).toBe(4999);
  });

  it("WRONG_TYPE for an envelope without a body, with its correlation id", () => {
    const empty = protocolErrorOf(() => decodeEnvelope(new Uint8Array(0)));
    expect(empty.code).toBe(ErrorCode.WRONG_TYPE);
    const idOnly = protocolErrorOf(() => decodeEnvelope(new Uint8Array([0x08, 0x2a])));
    expect(idOnly.code).toBe(ErrorCode.WRONG_TYPE);
    expect(idOnly.correlationId).toBe(42);
  });

  it("WRONG_TYPE for input that is not binary", () => {
    for (const value of ["ping", 42, null, undefined, { ping: {} }, [1, 2]]) {
      expect(protocolErrorOf(() => decodeEnvelope(value as unknown as Uint8Array)).code).toBe(ErrorCode.WRONG_TYPE);
    }
  });

  it("FRAME_TOO_LARGE above maxBytes (default 64 KiB) before parsing anything", () => {
    expect(DEFAULT_MAX_ENVELOPE_BYTES).toBe(65536);
    expect(protocolErrorOf(() => decodeEnvelope(new Uint8Array(DEFAULT_MAX_ENVELOPE_BYTES + 1))).code).toBe(ErrorCode.FRAME_TOO_LARGE);
    const small = encodeEnvelope({ ping: { clientTimeMs: 1 } });
    expect(protocolErrorOf(() => decodeEnvelope(small, small.length - 1)).code).toBe(ErrorCode.FRAME_TOO_LARGE);
    expect(decodeEnvelope(small, small.length).body).toBe("ping");
  });
});

describe("decodeEnvelope fuzz", () => {
  const allowed = new Set<number>([ErrorCode.MALFORMED_PROTOBUF, ErrorCode.WRONG_TYPE, ErrorCode.UNKNOWN_MESSAGE, ErrorCode.FRAME_TOO_LARGE]);

  /** Decoding either yields an envelope with a body or a ProtocolError with a decode code. */
  function check(bytes: Uint8Array, label: string) {
    let result: Envelope | undefined;
    try {
      result = decodeEnvelope(bytes, 4096);
    } catch (error) {
      if (!(error instanceof ProtocolError) || !allowed.has(error.code)) {
        throw new Error(`${label}: [${Buffer.from(bytes).toString("hex")}] threw ${String(error)}`);
      }
      return;
    }
    expect(result.body, label).toBeTruthy();
  }

  it("never throws anything but a ProtocolError on random bytes", () => {
    const random = prng(0x75_6e_61_67);
    for (let i = 0; i < 5000; i++) {
      const bytes = new Uint8Array(Math.floor(random() * 64));
      for (let j = 0; j < bytes.length; j++) bytes[j] = Math.floor(random() * 256);
      check(bytes, `random #${i}`);
    }
  });

  it("never throws anything but a ProtocolError on truncated or bit-flipped envelopes", () => {
    const samples = [
      encodeEnvelope({ correlationId: 123456789, ping: { clientTimeMs: 98765.4321 } }),
      encodeEnvelope({ correlationId: 2 ** 50, pong: { clientTimeMs: 1, serverTimeMs: Date.now() } }),
      errorEnvelope(ErrorCode.NODE_DRAINING, "draining: reconnect elsewhere ✓", 77),
    ];
    const random = prng(42);
    for (const sample of samples) {
      for (let length = 0; length <= sample.length; length++) check(sample.subarray(0, length), `truncated to ${length}`);
      for (let i = 0; i < 2000; i++) {
        const mutated = sample.slice();
        const flips = 1 + Math.floor(random() * 3);
        for (let f = 0; f < flips; f++) mutated[Math.floor(random() * mutated.length)] ^= 1 << Math.floor(random() * 8);
        check(mutated, `bit flips #${i}`);
      }
    }
  });

  it("survives deeply nested groups without a stack overflow", () => {
    // 10 000 start-group tags for field 1: protobufjs' recursion limit must stop it
    const bytes = new Uint8Array(10_000).fill(0x0b);
    check(bytes, "nested groups");
  });
});

describe("isRetryable", () => {
  it("is true for load, draining, region loss and expired reservations", () => {
    for (const code of [ErrorCode.RATE_LIMITED, ErrorCode.NODE_DRAINING, ErrorCode.OVERLOADED, ErrorCode.REGION_UNAVAILABLE, ErrorCode.MATCHMAKE_EXPIRED]) {
      expect(isRetryable(code), ErrorCode[code]).toBe(true);
    }
  });

  it("is false for bugs, bad input and identity problems", () => {
    for (const code of [ErrorCode.INTERNAL, ErrorCode.MATCHMAKE_UNHANDLED, ErrorCode.MALFORMED_PROTOBUF, ErrorCode.FORBIDDEN,
      ErrorCode.TOKEN_EXPIRED, ErrorCode.UNKNOWN_ROOM, ErrorCode.ERROR_CODE_UNSPECIFIED, 4999]) {
      expect(isRetryable(code), String(code)).toBe(false);
    }
  });

  it("is carried by ProtocolError", () => {
    expect(new ProtocolError(ErrorCode.OVERLOADED, "full").retryable).toBe(true);
    expect(new ProtocolError(ErrorCode.WRONG_TYPE, "bad", { correlationId: 3 }).correlationId).toBe(3);
    expect(new ProtocolError(ErrorCode.WRONG_TYPE, "bad", { correlationId: 0 }).correlationId).toBeUndefined();
  });
});

describe("decodeStopEnvelope", () => {
  it("answers the decoded EStop or Reset, and nothing for every other body, with or without a correlation id and an input number", () => {
    for (const correlationId of [0, 7, 2 ** 40]) {
      for (const inputSeq of [0, 1, 2 ** 31]) {
        expect(decodeStopEnvelope(encodeEnvelope({ correlationId, inputSeq, estop: { deviceId: "ex-1", reason: "stop" } }))).toMatchObject({ body: "estop", estop: { deviceId: "ex-1" } });
        expect(decodeStopEnvelope(encodeEnvelope({ correlationId, inputSeq, reset: { deviceId: "ex-1" } }))).toMatchObject({ body: "reset" });
        expect(decodeStopEnvelope(encodeEnvelope({ correlationId, inputSeq, controlCommand: { deviceId: "ex-1", seq: 1 } }))).toBeUndefined();
        expect(decodeStopEnvelope(encodeEnvelope({ correlationId, inputSeq, heartbeat: { deviceId: "ex-1" } }))).toBeUndefined();
      }
    }
  });

  it("is not fooled by an EStop's first tags in front of another body: the frame decodes as that body", () => {
    const emptyEStop = encodeEnvelope({ estop: {} }); // the 3-byte prefix: tag, tag, length 0
    expect(emptyEStop).toHaveLength(3);
    for (const other of [{ ping: { clientTimeMs: 1 } }, { controlCommand: { deviceId: "ex-1", seq: 9 } }, { chatSend: { text: "spam" } }]) {
      const disguised = Uint8Array.from([...emptyEStop, ...encodeEnvelope(other)]);
      expect(decodeStopEnvelope(disguised)).toBeUndefined();
    }
    const withId = encodeEnvelope({ correlationId: 5, estop: {} });
    expect(decodeStopEnvelope(Uint8Array.from([...withId, ...encodeEnvelope({ ping: {} })]))).toBeUndefined();
  });

  it("answers nothing for empty, cut, garbage or oversized bytes", () => {
    expect(decodeStopEnvelope(new Uint8Array())).toBeUndefined();
    expect(decodeStopEnvelope(Uint8Array.from([0x08, 0xff]))).toBeUndefined();
    expect(decodeStopEnvelope(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))).toBeUndefined();
    expect(decodeStopEnvelope(Uint8Array.from([0xe2, 0x01, 0x05, 0x0a]))).toBeUndefined(); // an EStop cut short
    expect(decodeStopEnvelope(encodeEnvelope({ estop: { reason: "x".repeat(200) } }), 64)).toBeUndefined();
  });
});
