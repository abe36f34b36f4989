/**
 * The one import point for the wire contract: generated protobuf classes plus the
 * helpers every side uses to encode, decode and report errors.
 *
 * @example
 *   const bytes = encodeEnvelope({ correlationId: 7, ping: { clientTimeMs: 12.5 } });
 *   const envelope = decodeEnvelope(bytes); // throws ProtocolError, never anything else
 */
import { tsunagi } from "./gen/tsunagi.js";

export { tsunagi };
export type Envelope = tsunagi.v1.Envelope;
export type IEnvelope = tsunagi.v1.IEnvelope;

/** Error codes shared by server and SDKs (see envelope.proto for each meaning). */
export const ErrorCode = tsunagi.v1.ErrorCode;
export type ErrorCode = tsunagi.v1.ErrorCode;

/** Codes where the same request may succeed later: back off and retry (maybe elsewhere). */
const retryable = new Set<number>([
  ErrorCode.RATE_LIMITED, ErrorCode.NODE_DRAINING, ErrorCode.OVERLOADED, ErrorCode.REGION_UNAVAILABLE,
  ErrorCode.MATCHMAKE_UNHANDLED,
]);
export function isRetryable(code: number): boolean {
  return retryable.has(code);
}

/** The typed, coded error for anything wrong on the wire. */
export class ProtocolError extends Error {
  readonly retryable: boolean;
  constructor(readonly code: number, message: string, readonly correlationId?: number, options?: ErrorOptions) {
    super(message, options);
    this.name = "ProtocolError";
    this.retryable = isRetryable(code);
  }
}

export const DEFAULT_MAX_ENVELOPE_BYTES = 64 * 1024;

/**
 * Decodes an Envelope. Any failure (truncated, garbage, wrong wire types, no body,
 * too large) is a ProtocolError with MALFORMED_PROTOBUF, WRONG_TYPE or FRAME_TOO_LARGE.
 */
export function decodeEnvelope(bytes: Uint8Array, maxBytes = DEFAULT_MAX_ENVELOPE_BYTES): Envelope {
  if (!(bytes instanceof Uint8Array)) {
    throw new ProtocolError(ErrorCode.WRONG_TYPE, "envelope must be binary");
  }
  if (bytes.byteLength > maxBytes) {
    throw new ProtocolError(ErrorCode.FRAME_TOO_LARGE, `envelope of ${bytes.byteLength} bytes exceeds the ${maxBytes}-byte limit`);
  }
  let envelope: Envelope;
  try {
    envelope = tsunagi.v1.Envelope.decode(bytes);
  } catch (error) {
    throw new ProtocolError(ErrorCode.MALFORMED_PROTOBUF, `not a valid Envelope: ${(error as Error).message}`, undefined, { cause: error });
  }
  const problem = tsunagi.v1.Envelope.verify(envelope);
  if (problem) throw new ProtocolError(ErrorCode.MALFORMED_PROTOBUF, `invalid Envelope: ${problem}`, Number(envelope.correlationId) || undefined);
  if (!envelope.body) {
    throw new ProtocolError(ErrorCode.WRONG_TYPE, "envelope has no body", Number(envelope.correlationId) || undefined);
  }
  return envelope;
}

export function encodeEnvelope(envelope: IEnvelope): Uint8Array {
  return tsunagi.v1.Envelope.encode(envelope).finish();
}

export function errorEnvelope(code: number, message: string, correlationId: IEnvelope["correlationId"] = 0): Uint8Array {
  return encodeEnvelope({ correlationId, error: { code, message, retryable: isRetryable(code) } });
}
