/**
 * Tsunagi client SDK: join the nearest region, talk protobuf envelopes with
 * request/reply, get coded errors and reconnection as events.
 *
 * @example
 *   import { TsunagiClient, TsunagiError } from "./client-sdk/index.ts";
 *   const client = new TsunagiClient({ regions, token });
 *   const session = await client.joinOrCreate("session", { roomId: "hall-1" });
 */

// Loading this entry also loads, on Node 20 only, the `ws` polyfill for the global
// WebSocket (client-sdk/node.ts): TsunagiClient.ts starts that import when the global
// is missing and every join waits for it. Not a top-level await here, so CommonJS
// consumers (require of this module through tsx or a bundler) can load the SDK too.

export { TsunagiClient, type TsunagiClientOptions } from "./TsunagiClient.ts";
export { RegionProbe, measureHttpPing, type Region, type RegionRtt, type RegionProbeOptions, type MeasureFn } from "./RegionProbe.ts";
export {
  RoomSession, SafeEmitter,
  type RoomSessionOptions, type RoomSessionEvents, type ReconnectionSettings, type LeaveEvent, type ReconnectingEvent,
} from "./RoomSession.ts";
export { TsunagiError, fromServerError, fromCloseCode } from "./errors.ts";
export {
  ErrorCode, isRetryable, errorCodeName, ProtocolError, decodeEnvelope, encodeEnvelope, ENVELOPE_MESSAGE_TYPE,
  type Envelope, type IEnvelope, type EnvelopeBody,
} from "../proto/index.ts";
