/**
 * The mapping from whatever the Colyseus SDK throws or reports to the one error class,
 * TsunagiError (common/TsunagiError.ts), so an application handles a single type with
 * the codes the server uses (proto/index.ts ErrorCode) and a `retryable` flag.
 *
 * @example
 *   room.onError((code, message) => emit("error", fromServerError({ code, message })));
 */
import { ErrorCode, errorCodeName, isKnownErrorCode, ProtocolError } from "../proto/index.ts";
import { TsunagiError } from "../common/TsunagiError.ts";

export { TsunagiError };

/** Codes the server puts first in a message ("[4404 UNKNOWN_ROOM] no room …"), because
 *  the Colyseus SDK keeps only the HTTP status and the message of a matchmake reply. */
const codePrefix = /^\[(\d{3,4})(?: [A-Z0-9_]+)?\]\s*/;

/** Tsunagi's own range (envelope.proto): a code from it is kept even when this build
 *  does not know it yet, since only a (newer) Tsunagi server sends it. */
const isTsunagiRange = (code: number) => code >= 4400 && code <= 4599;

/** WebSocket close codes: RFC 6455 ones and Colyseus' CloseCode (@colyseus/shared-types). */
const closeCodes: ReadonlyMap<number, { code: ErrorCode; message: string } | null> = new Map([
  [1000, null], // NORMAL_CLOSURE
  [4000, null], // CONSENTED: the client left
  [1001, { code: ErrorCode.REGION_UNAVAILABLE, message: "connection lost (going away)" }],
  [1005, { code: ErrorCode.REGION_UNAVAILABLE, message: "connection lost (no status)" }],
  [1006, { code: ErrorCode.REGION_UNAVAILABLE, message: "connection lost (abnormal closure)" }],
  [4010, { code: ErrorCode.REGION_UNAVAILABLE, message: "connection lost (may try reconnect)" }],
  // the SDK gave up reconnecting to the node; matchmaking again may find the room elsewhere
  [4003, { code: ErrorCode.REGION_UNAVAILABLE, message: "reconnection failed" }],
  [4001, { code: ErrorCode.NODE_DRAINING, message: "the server shut down" }],
  [1012, { code: ErrorCode.NODE_DRAINING, message: "the server is restarting" }],
  [1013, { code: ErrorCode.OVERLOADED, message: "the server asked to try again later" }],
  [1009, { code: ErrorCode.FRAME_TOO_LARGE, message: "a frame was too large" }],
  [1008, { code: ErrorCode.FORBIDDEN, message: "closed for a policy violation" }],
  [1011, { code: ErrorCode.INTERNAL, message: "the server hit an internal error" }],
  // Colyseus closes with WITH_ERROR after room code threw; the precise code, if any,
  // arrived just before through onError
  [4002, { code: ErrorCode.APPLICATION_ERROR, message: "closed by the room after an error" }],
]);

/** HTTP statuses of matchmaking replies that carry no code of their own. */
const httpStatuses: ReadonlyMap<number, ErrorCode> = new Map([
  [400, ErrorCode.WRONG_TYPE],
  [401, ErrorCode.AUTH_FAILED],
  [403, ErrorCode.FORBIDDEN],
  [404, ErrorCode.UNKNOWN_ROOM],
  [409, ErrorCode.ROOM_CONFLICT],
  [410, ErrorCode.MATCHMAKE_EXPIRED],
  [413, ErrorCode.FRAME_TOO_LARGE],
  [429, ErrorCode.RATE_LIMITED],
  [500, ErrorCode.INTERNAL],
  [502, ErrorCode.REGION_UNAVAILABLE],
  [503, ErrorCode.NODE_DRAINING], // stock Colyseus answers 503 while shutting down
  [504, ErrorCode.REGION_UNAVAILABLE],
]);

/** Node (undici) and browser messages for a request that never reached the server. */
const networkFailure = /fetch failed|failed to fetch|networkerror|network request failed|load failed|econnrefused|enotfound|etimedout|econnreset|ehostunreach|socket hang up/i;

/**
 * What a WebSocket close code means for the application: undefined for a normal or
 * consented close, otherwise the TsunagiError describing why the session ended.
 */
export function fromCloseCode(code: number, reason?: string): TsunagiError | undefined {
  const detail = reason ? `: ${reason}` : "";
  if (isKnownErrorCode(code) || isTsunagiRange(code)) return new TsunagiError(code, `closed with ${errorCodeName(code)}${detail}`);
  const known = closeCodes.get(code);
  if (known === null) return undefined;
  if (known) return new TsunagiError(known.code, `${known.message} (close code ${code})${detail}`);
  return new TsunagiError(ErrorCode.INTERNAL, `closed with unexpected code ${code}${detail}`);
}

/**
 * Maps whatever the Colyseus SDK throws or reports to a TsunagiError:
 * - MatchMakeError / ServerError from matchmaking: `code` is the HTTP status (or a
 *   Colyseus code, or a WebSocket close code if the room socket failed before the
 *   join), the message may start with "[4404 UNKNOWN_ROOM]", a ServerError's `data`
 *   may hold the server's JSON `{ code, error }`;
 * - network failures, whose `code` is a string such as "ECONNREFUSED" or absent;
 * - room errors `{ code, message }` from `room.onError(code, message)`;
 * - ProtocolError from decoding.
 * Anything it cannot classify becomes INTERNAL (not retryable), with the original as cause.
 */
export function fromServerError(error: unknown): TsunagiError {
  if (error instanceof TsunagiError) return error;
  if (error instanceof ProtocolError) return new TsunagiError(error.code, error.message, { retryable: error.retryable, cause: error });

  const fields = (typeof error === "object" && error !== null ? error : {}) as {
    code?: unknown; message?: unknown; name?: unknown; data?: unknown; cause?: unknown;
  };
  const rawMessage = typeof fields.message === "string" ? fields.message : typeof error === "string" ? error : "";
  const options = { cause: error };

  // 1. The code the server wrote in front of the message wins: it is the precise one.
  const prefixed = codePrefix.exec(rawMessage);
  if (prefixed) {
    return new TsunagiError(Number(prefixed[1]), rawMessage.slice(prefixed[0].length) || errorCodeName(Number(prefixed[1])), options);
  }
  const message = rawMessage;

  // 2. The JSON body of a matchmake reply, when the error kept it (ServerError.data).
  const dataCode = (fields.data as { code?: unknown } | undefined)?.code;
  if (typeof dataCode === "number" && (isKnownErrorCode(dataCode) || isTsunagiRange(dataCode))) {
    return new TsunagiError(dataCode, message || errorCodeName(dataCode), options);
  }

  const code = fields.code;
  if (typeof code === "number") {
    // 3. A code of the shared table: room errors, Colyseus matchmaking codes.
    if (isKnownErrorCode(code) || isTsunagiRange(code)) return new TsunagiError(code, message || errorCodeName(code), options);
    // 4. A WebSocket close code: the room socket closed before or during the join.
    if (code >= 1000 && code <= 4999) {
      const closed = fromCloseCode(code, message);
      return closed
        ? new TsunagiError(closed.code, closed.message, options)
        : new TsunagiError(ErrorCode.REGION_UNAVAILABLE, `the connection closed before the join completed (close code ${code})`, options);
    }
    // 5. An HTTP status without a code of ours (a proxy, or a stock Colyseus server).
    const mapped = httpStatuses.get(code) ?? (code >= 500 && code <= 599 ? ErrorCode.INTERNAL : undefined);
    if (mapped !== undefined) return new TsunagiError(mapped, message || `HTTP ${code}`, options);
  }

  // 6. The request never reached a server: region down, DNS, refused, reset.
  const causeCode = (fields.cause as { code?: unknown } | undefined)?.code;
  if ((typeof code === "string" && code !== "") || typeof causeCode === "string" || networkFailure.test(message)) {
    const errno = typeof code === "string" ? code : typeof causeCode === "string" ? causeCode : undefined;
    return new TsunagiError(ErrorCode.REGION_UNAVAILABLE, `cannot reach the server${errno ? ` (${errno})` : ""}${message ? `: ${message}` : ""}`, options);
  }

  // 7. The Colyseus SDK reports a WebSocket that failed to open during a join as a
  //    MatchMakeError without code or message (its onError gets the socket's error event).
  if (fields.name === "MatchMakeError" && code == null && !message) {
    return new TsunagiError(ErrorCode.REGION_UNAVAILABLE, "cannot connect to the node holding the seat", options);
  }

  return new TsunagiError(ErrorCode.INTERNAL, message || `unexpected error: ${String(error)}`, options);
}
