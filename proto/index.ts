/**
 * The one import point for the wire contract: the generated protobuf classes
 * (proto/gen/, built by `npm run proto` from proto/**\/*.proto) plus the helpers every
 * side uses to encode, decode and report errors. Server, rooms, SDK and tests import
 * from here, never from proto/gen/ directly.
 *
 * @example
 *   const bytes = encodeEnvelope({ correlationId: 7, ping: { clientTimeMs: 12.5 } });
 *   const envelope = decodeEnvelope(bytes); // throws ProtocolError, never anything else
 *   if (envelope.body === "ping") console.log(envelope.ping.clientTimeMs);
 */
import protobuf from "protobufjs/minimal.js";
import { tsunagi } from "./gen/tsunagi.js";
import { fieldWireTypes, oneofMembers } from "./gen/tsunagi.fields.js";

export { tsunagi };

/**
 * The Colyseus message type an Envelope travels under inside a room:
 * `room.sendBytes(ENVELOPE_MESSAGE_TYPE, bytes)` / `client.sendBytes(…)` (envelope.proto, "Framing").
 */
export const ENVELOPE_MESSAGE_TYPE = "pb";

/** A decoded Envelope; `body` narrows which member is set. */
export type Envelope = tsunagi.v1.Envelope & tsunagi.v1.Envelope.$Shape;
/** An Envelope to encode: a plain object is enough. */
export type IEnvelope = tsunagi.v1.Envelope.$Properties;
/** The names of the `body` oneof: "error" | "ping" | "pong" | … */
export type EnvelopeBody = NonNullable<tsunagi.v1.Envelope["body"]>;

/** Error codes shared by server and SDKs (see envelope.proto for what each means). */
export const ErrorCode = tsunagi.v1.ErrorCode;
export type ErrorCode = tsunagi.v1.ErrorCode;

const errorCodeNames = new Map<number, string>(
  Object.entries(ErrorCode).filter(([, value]) => typeof value === "number").map(([name, value]) => [value as number, name]),
);

/** `"TOKEN_EXPIRED"` for 4412; the number as text for a code this build does not know. */
export function errorCodeName(code: number): string {
  return errorCodeNames.get(code) ?? String(code);
}

/** A CommandAck (or ActionResult) status as logs, metrics and the audit name it ("APPLIED"); the number for one this build does not know. */
export function ackStatusName(status: number): string {
  return tsunagi.v1.CommandAck.Status[status] ?? String(status);
}

/** Who decided an ack or a result, as metrics and the audit name it. */
export function ackOriginName(origin: number): "adapter" | "room" {
  return origin === tsunagi.v1.CommandAck.Origin.ADAPTER ? "adapter" : "room";
}

/** True for a value of the ErrorCode enum known to this build. */
export function isKnownErrorCode(code: unknown): code is ErrorCode {
  return typeof code === "number" && errorCodeNames.has(code);
}

/**
 * Codes where the same request may succeed later, so a client backs off and retries
 * (possibly through another node or region):
 * - RATE_LIMITED: after backing off.
 * - NODE_DRAINING, OVERLOADED, REGION_UNAVAILABLE: through another node or region.
 * - ROOM_MOVED, HANDOFF_IN_PROGRESS, NOT_ROOM_OWNER: the room is elsewhere, or about to
 *   be; matchmaking again finds it.
 * - VOICE_UNAVAILABLE: once the node's SFU is back (or through another node).
 * - MATCHMAKE_EXPIRED: the seat or reconnection token timed out; matchmaking again
 *   gets a fresh one. "Retry" means a new matchmake, not reusing the old reservation.
 *
 * Deliberately not retryable:
 * - INTERNAL and MATCHMAKE_UNHANDLED mean the server hit a bug (envelope.proto: "the
 *   server logged it"). A bug usually repeats, and automatic retries would multiply
 *   the load of a failing path. Transient infrastructure trouble has its own codes
 *   above, and the server should use them. Clients also map errors they cannot
 *   classify to INTERNAL, which must not turn every unknown failure into a retry loop.
 * - Everything about input or identity (malformed, forbidden, token…): the same
 *   request fails the same way; fix it or get a new token first.
 */
const retryableCodes: ReadonlySet<number> = new Set<number>([
  ErrorCode.RATE_LIMITED,
  ErrorCode.NODE_DRAINING,
  ErrorCode.OVERLOADED,
  ErrorCode.REGION_UNAVAILABLE,
  ErrorCode.MATCHMAKE_EXPIRED,
  ErrorCode.ROOM_FULL,
  ErrorCode.ROOM_MOVED,
  ErrorCode.HANDOFF_IN_PROGRESS,
  ErrorCode.NOT_ROOM_OWNER,
  ErrorCode.VOICE_UNAVAILABLE,
]);

/** Whether a request that failed with `code` may succeed if retried later (see above). */
export function isRetryable(code: number): boolean {
  return retryableCodes.has(code);
}

/**
 * The one typed, coded error for problems on the wire: bytes that do not decode, a
 * message of the wrong shape, a frame that is too large.
 */
export class ProtocolError extends Error {
  /** An ErrorCode value (a number, so codes from a newer peer survive). */
  readonly code: number;
  /** Whether the same request may succeed later: see isRetryable(). */
  readonly retryable: boolean;
  /** The request this error answers, when it could be read; 0 or undefined means none. */
  readonly correlationId?: number;

  constructor(code: number, message: string, options: { correlationId?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ProtocolError";
    this.code = code;
    this.retryable = isRetryable(code);
    if (options.correlationId) this.correlationId = options.correlationId;
  }
}

/** Default largest Envelope decodeEnvelope accepts; nodes pass their configured limit. */
export const DEFAULT_MAX_ENVELOPE_BYTES = 64 * 1024;

/** DeviceProfile.watchdog_window_ms when a profile leaves it 0 (device.proto), ms. */
export const DEFAULT_WATCHDOG_WINDOW_MS = 200;

/**
 * What one Telemetry carries at most of a device's extras, and the longest text in them:
 * the adapter sends no more, and a room takes no more from a device that does (a sample
 * of a busy site stays well inside a frame; a misbehaving adapter cannot flood a room's
 * participants with notices).
 */
export const TELEMETRY_LIMITS = { statusTexts: 8, readings: 256, beacons: 512, alerts: 64, textChars: 64 } as const;

/** WebSocket close codes of the device channel (device.proto), for the gateway and adapters alike. */
export const DeviceCloseCode = {
  /** Credential refused, hello timeout, or a coded refusal: see the Error sent before. */
  POLICY: 1008,
  /** The node is draining: connect elsewhere. */
  DRAINING: 4001,
  /** A GatewayRedirect came first: connect to the gateway it names. */
  REDIRECTED: 4003,
  /** A newer connection of the same device took over: another adapter runs as this device (back off, alert a technician). */
  REPLACED: 4409,
  /** Refused: another adapter is connected as this device and still answers (Error DEVICE_CONFLICT first). */
  CONFLICT: 4410,
  /** Refused: too many connections that have not completed their hello, from this address or in all (Error RATE_LIMITED first). */
  TOO_MANY_PENDING: 4429,
} as const;

/**
 * Decodes an Envelope and checks it is usable. It never throws anything but a
 * ProtocolError, whatever the input:
 * - FRAME_TOO_LARGE: more than `maxBytes` (checked before any parsing).
 * - MALFORMED_PROTOBUF: not protobuf (truncated, garbage, invalid wire types, bad
 *   lengths), or a known field sent with the wrong wire type. The original error is
 *   the `cause`.
 * - UNKNOWN_MESSAGE: valid protobuf whose body is a oneof member this contract version
 *   does not know (a newer peer). The bytes are fine; this node cannot handle them.
 * - WRONG_TYPE: not binary at all, or an envelope without a body.
 *
 * Unknown fields outside the body and unknown enum values are accepted (proto3 is
 * forward compatible: a newer server may send an ErrorCode this build lacks).
 */
export function decodeEnvelope(bytes: Uint8Array, maxBytes: number = DEFAULT_MAX_ENVELOPE_BYTES): Envelope {
  if (!(bytes instanceof Uint8Array)) {
    if (!(bytes as unknown instanceof ArrayBuffer)) {
      throw new ProtocolError(ErrorCode.WRONG_TYPE, `an envelope must be binary, got ${describe(bytes)}`);
    }
    bytes = new Uint8Array(bytes as unknown as ArrayBuffer);
  }
  if (bytes.byteLength > maxBytes) {
    throw new ProtocolError(ErrorCode.FRAME_TOO_LARGE, `envelope of ${bytes.byteLength} bytes exceeds the ${maxBytes}-byte limit`);
  }
  let envelope: Envelope;
  let skippedFields: boolean;
  try {
    const reader = isNodeBuffer(bytes) ? new NotingBufferReader(bytes) : new NotingArrayReader(bytes);
    envelope = tsunagi.v1.Envelope.decode(reader);
    skippedFields = reader.skipped;
  } catch (error) {
    throw new ProtocolError(ErrorCode.MALFORMED_PROTOBUF, `not a valid Envelope: ${(error as Error)?.message ?? String(error)}`, { cause: error });
  }
  if (!(Number(envelope.correlationId) <= Number.MAX_SAFE_INTEGER)) {
    // JavaScript peers hold correlation ids as numbers: one above 2^53 - 1 could not be echoed exactly.
    throw new ProtocolError(ErrorCode.WRONG_TYPE, `correlation_id above 2^53 - 1 (${String(envelope.correlationId).slice(0, 24)}): use ids a double holds exactly`);
  }
  if (envelope.body && !skippedFields) return envelope;

  const correlationId = typeof envelope.correlationId === "number" ? envelope.correlationId : 0;
  try {
    const mistyped = skippedFields ? findMistypedField(envelope, "tsunagi.v1.Envelope", 0) : undefined;
    if (mistyped) throw new ProtocolError(ErrorCode.MALFORMED_PROTOBUF, mistyped, { correlationId });
    if (!envelope.body) {
      // Without a known body, an unknown field is the body of a newer contract version.
      const unknownBody = unknownFieldNumbers(envelope)[0];
      if (unknownBody !== undefined) {
        throw new ProtocolError(ErrorCode.UNKNOWN_MESSAGE, `envelope body is field ${unknownBody}, which this contract version does not know`, { correlationId });
      }
      throw new ProtocolError(ErrorCode.WRONG_TYPE, "envelope has no body", { correlationId });
    }
  } catch (error) {
    if (error instanceof ProtocolError) throw error;
    throw new ProtocolError(ErrorCode.MALFORMED_PROTOBUF, `cannot inspect Envelope: ${(error as Error)?.message ?? String(error)}`, { correlationId, cause: error });
  }
  // Accepted: the unknown fields were kept only to check the known ones. Kept on the
  // message they would be encoded again when it is forwarded (a command to its device),
  // passing on bytes nobody checked, and they are views into the frame, which a transport
  // may reuse once its callback returns.
  dropUnknowns(envelope, 0);
  return envelope;
}

/**
 * Encodes an Envelope. Throws ProtocolError(WRONG_TYPE) for a value that would not
 * encode faithfully (two bodies, no body, wrong field types, a negative or
 * non-integer correlation id): a bug in the caller, caught before it reaches a peer.
 * `trusted` skips the field-type walk and the body check (not the correlation id check),
 * for hot paths whose envelopes hold decoded messages or values the types already
 * guarantee, one body written out in the call.
 * `prefix` is written before the envelope, in the same buffer (a transport's frame header).
 */
export function encodeEnvelope(envelope: IEnvelope, options?: { trusted?: boolean; prefix?: Uint8Array }): Uint8Array {
  // verify() walks the whole message: worth it for anything assembled from outside input,
  // a waste on a hot path re-encoding what was just decoded or built from typed values.
  const problem = options?.trusted ? null : tsunagi.v1.Envelope.verify(envelope);
  if (problem) throw new ProtocolError(ErrorCode.WRONG_TYPE, `cannot encode Envelope: ${problem}`);
  if (!options?.trusted && !hasBody(envelope)) throw new ProtocolError(ErrorCode.WRONG_TYPE, "cannot encode an Envelope without a body");
  const correlationId = envelope.correlationId ?? 0;
  if (typeof correlationId !== "number" || correlationId < 0 || !Number.isSafeInteger(correlationId)) {
    throw new ProtocolError(ErrorCode.WRONG_TYPE, `correlationId must be a non-negative safe integer, got ${correlationId}`);
  }
  // One writer for every encode of the process (encoding is synchronous): its buffer grows
  // to the largest envelope once, and each encode costs one allocation, the result.
  const writer = sharedWriter;
  writer.reset();
  try {
    tsunagi.v1.Envelope.encode(envelope, writer);
  } catch (error) {
    sharedWriter = protobuf.Writer.create(); // left half-written: start afresh
    throw new ProtocolError(ErrorCode.WRONG_TYPE, `cannot encode Envelope: ${(error as Error)?.message ?? String(error)}`, { cause: error });
  }
  const prefix = options?.prefix;
  if (!prefix) return writer.finish();
  const bytes = protobuf.util.Buffer ? (protobuf.util.Buffer as unknown as { allocUnsafe(size: number): Uint8Array }).allocUnsafe(prefix.length + writer.pos) : new Uint8Array(prefix.length + writer.pos);
  bytes.set(prefix, 0);
  return (writer as protobuf.Writer & { finishInto<T extends Uint8Array>(buf: T, offset: number): T }).finishInto(bytes, prefix.length);
}

/** The writer every encodeEnvelope() shares. */
let sharedWriter = protobuf.Writer.create();

/** Whether a body member of the envelope is set. */
function hasBody(envelope: IEnvelope): boolean {
  for (const name of envelopeBodyMembers) if ((envelope as Record<string, unknown>)[name] != null) return true;
  return false;
}

/** encodeEnvelope's option for hot paths (see there). */
export const TRUSTED: { readonly trusted: true } = Object.freeze({ trusted: true });

/**
 * The Envelope in `bytes` if it carries an EStop or a Reset, else undefined; never throws.
 * For a flood limit that lets stops through (stopping is always allowed to those who may
 * drive): a frame is believed only once decoded, since its first tag alone proves nothing
 * (an empty EStop followed by any other body decodes as that other body). Frames whose
 * first body tag is not a stop's are told apart without decoding, so a flood of other
 * frames costs a few byte reads each.
 */
export function decodeStopEnvelope(bytes: Uint8Array, maxBytes: number = DEFAULT_MAX_ENVELOPE_BYTES): Envelope | undefined {
  let tag = readVarint(bytes, 0);
  // correlation_id, then input_seq (an SDK numbers every input), may come before the body.
  for (const field of [CORRELATION_ID_TAG, INPUT_SEQ_TAG]) {
    if (!tag || tag.value !== field) continue;
    const value = readVarint(bytes, tag.next, 10);
    if (!value) return undefined;
    tag = readVarint(bytes, value.next);
  }
  if (tag === undefined || !stopBodyTags.has(tag.value)) return undefined;
  try {
    const envelope = decodeEnvelope(bytes, maxBytes);
    return envelope.body === "estop" || envelope.body === "reset" ? envelope : undefined;
  } catch {
    return undefined;
  }
}

/** The bytes of an Error envelope, e.g. the reply to a request that failed. */
export function errorEnvelope(code: number, message: string, correlationId?: number | null): Uint8Array {
  return encodeEnvelope({ correlationId: correlationId ?? 0, error: { code, message, retryable: isRetryable(code) } });
}

// --- internals ---------------------------------------------------------------------

/**
 * protobufjs 8 drops unknown fields by default; this reader keeps them (for this read
 * only) so a known field with the wrong wire type can be told from a field of a newer
 * contract, and notes whether it skipped any, which spares well-formed traffic the check.
 * A class, not a patched instance: every decode then shares one object shape.
 */
type SkippingReader = protobuf.Reader & { skipType(wireType: number, ...rest: unknown[]): protobuf.Reader };
type ReaderClass = new (buffer: Uint8Array) => SkippingReader;

function noting(Base: ReaderClass) {
  return class NotingReader extends Base {
    /** Whether a field was skipped (unknown, or known with the wrong wire type). */
    skipped = false;

    constructor(bytes: Uint8Array) {
      super(bytes);
      this.discardUnknown = false;
    }

    override skipType(wireType: number, ...rest: unknown[]): protobuf.Reader {
      this.skipped = true;
      return super.skipType(wireType, ...rest);
    }
  };
}

/** Whether `bytes` is a Node Buffer; false in a browser, which has none. */
const isNodeBuffer = (bytes: Uint8Array): boolean => (protobuf.util.Buffer as unknown as { isBuffer?(value: unknown): boolean } | null)?.isBuffer?.(bytes) === true;

/** One for Node Buffers (strings through Buffer's own UTF-8 decoder), one for any Uint8Array, as Reader.create picks. */
const NotingBufferReader = noting(protobuf.BufferReader as unknown as ReaderClass);
const NotingArrayReader = noting(protobuf.Reader as unknown as ReaderClass);

/** Envelope's known fields and its body members, from the generated tables, so a new body
 *  member in envelope.proto needs no change here. */
const envelopeFields = fieldWireTypes["tsunagi.v1.Envelope"];
const envelopeBodyMembers = oneofMembers["tsunagi.v1.Envelope"].body;

/**
 * A description of the first known field that arrived with a wire type it cannot have,
 * found through the $unknowns protobufjs keeps for skipped fields, or undefined.
 */
function findMistypedField(message: unknown, typeName: string | undefined, depth: number): string | undefined {
  if (depth > 32 || message === null || typeof message !== "object") return undefined;
  const known = typeName ? fieldWireTypes[typeName] : undefined;
  const unknowns = (message as { $unknowns?: Uint8Array[] }).$unknowns;
  if (known && unknowns) {
    for (const raw of unknowns) {
      const tag = readTag(raw);
      const expected = tag && known[tag.field];
      if (tag && expected && !expected.includes(tag.wireType)) {
        return `${typeName} field ${tag.field} arrived with wire type ${tag.wireType}, expected ${expected.join(" or ")}`;
      }
    }
  }
  for (const value of Object.values(message)) {
    if (value === null || typeof value !== "object" || ArrayBuffer.isView(value)) continue;
    const children = Array.isArray(value) ? value : [value];
    for (const child of children) {
      const childType = messageTypeName(child);
      const found = findMistypedField(child, childType, depth + 1);
      if (found) return found;
    }
  }
  return undefined;
}

/** Removes the $unknowns protobufjs kept, from a decoded message and everything in it. */
function dropUnknowns(message: unknown, depth: number): void {
  if (depth > 32 || message === null || typeof message !== "object" || ArrayBuffer.isView(message)) return;
  delete (message as { $unknowns?: unknown }).$unknowns;
  for (const value of Object.values(message)) {
    if (value === null || typeof value !== "object" || ArrayBuffer.isView(value)) continue;
    if (Array.isArray(value)) for (const child of value) dropUnknowns(child, depth + 1);
    else dropUnknowns(value, depth + 1);
  }
}

/** Field numbers in a decoded message's $unknowns. */
function unknownFieldNumbers(message: { $unknowns?: Uint8Array[] }): number[] {
  return (message.$unknowns ?? []).flatMap((raw) => {
    const tag = readTag(raw);
    return tag && !(tag.field in envelopeFields) ? [tag.field] : [];
  });
}

/** "tsunagi.v1.Ping" for an instance of a generated class, from its static getTypeUrl. */
function messageTypeName(value: unknown): string | undefined {
  const getTypeUrl = (value as { constructor?: { getTypeUrl?: (prefix: string) => string } })?.constructor?.getTypeUrl;
  if (typeof getTypeUrl !== "function") return undefined;
  return getTypeUrl("").replace(/^\//, "");
}

/** The varint tag at the start of a raw field: field number and wire type. */
/**
 * A varint at `at` of at most `maxBytes` bytes (5 for a tag, 10 for a 64-bit value, whose
 * value is then exact only below 2^53), and the offset after it; undefined if cut short.
 */
function readVarint(bytes: Uint8Array, at: number, maxBytes = 5): { value: number; next: number } | undefined {
  let value = 0;
  for (let i = 0; i < maxBytes && at + i < bytes.length; i++) {
    value += (bytes[at + i]! & 0x7f) * 2 ** (7 * i);
    if ((bytes[at + i]! & 0x80) === 0) return { value, next: at + i + 1 };
  }
  return undefined;
}

/** Envelope.correlation_id's tag (field 1, varint), and the EStop and Reset bodies' tags, from the generated encoder. */
const CORRELATION_ID_TAG = readVarint(tsunagi.v1.Envelope.encode({ correlationId: 1 }).finish(), 0)!.value;
/** Envelope.input_seq's tag: an SDK numbers every input it sends. */
const INPUT_SEQ_TAG = readVarint(tsunagi.v1.Envelope.encode({ inputSeq: 1 }).finish(), 0)!.value;
const stopBodyTags = new Set([
  readVarint(tsunagi.v1.Envelope.encode({ estop: {} }).finish(), 0)!.value,
  readVarint(tsunagi.v1.Envelope.encode({ reset: {} }).finish(), 0)!.value,
]);

function readTag(raw: Uint8Array): { field: number; wireType: number } | undefined {
  const tag = readVarint(raw, 0);
  return tag && { field: Math.floor(tag.value / 8), wireType: tag.value % 8 };
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value !== "object") return typeof value;
  return (value as object).constructor?.name ?? "object";
}
