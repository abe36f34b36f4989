/**
 * Tsunagi client SDK: join the nearest region, talk protobuf envelopes with
 * request/reply, get coded errors and reconnection as events, and drive devices of a
 * teleoperation room (OperatorControls, gamepad mapping), walk an expo hall (ExpoSession).
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
export { RegionProbe, measureHttpPing, type Region, type RegionRtt, type RegionProbeOptions, type MeasureFn } from "../common/RegionProbe.ts";
export {
  RoomSession,
  type RoomSessionOptions, type RoomSessionEvents, type ReconnectionSettings, type LeaveEvent, type ReconnectingEvent, type DeviceSnapshot,
  type HandoffEvent, type SeatReservation,
} from "./RoomSession.ts";
export { TsunagiError, fromServerError, fromCloseCode } from "./errors.ts";
export { SafeEmitter, type ListenerErrorSink } from "../common/SafeEmitter.ts";
export { ClockSync, type ClockSample, type ClockSyncOptions } from "../common/ClockSync.ts";
export { CameraView, type CameraRoomLink } from "./CameraView.ts";
export { VoiceSession, type VoiceRoomLink, type VoiceSessionOptions, type VoiceSessionEvents } from "./VoiceSession.ts";
export { expoVoiceLink, roomVoiceLink } from "./voice/links.ts";
export { ExpoSession, HostTools, type ExpoSessionEvents, type ExpoJoinOptions, type Neighbour, type NeighbourChanges, type ChatTarget } from "./ExpoSession.ts";
export {
  OperatorControls, DEFAULT_WATCHDOG_WINDOW_MS, DEFAULT_LEASE_TTL_MS, DEFAULT_DEADLINE_MS,
  type OperatorControlsOptions, type OperatorControlsEvents, type LatencyStats, type AckInfo, type DemotedEvent, type AxisValues,
  type AxisProfileLike, type DeviceProfile, type LeaseState, type CommandAck, type Telemetry, type EStop, type Reset, type ActionResult,
} from "./OperatorControls.ts";
export { axisBounds, clampAxisValue } from "../proto/deviceProfile.ts";
export { DEVICE_ID_PATTERN } from "../proto/ids.ts";
export { ServerClock, monotonicNow, type ServerClockOptions } from "./ServerClock.ts";
export {
  gamepadToAxes, gamepadWantsEStop, defaultGamepadMapping, applyDeadzone, excavatorIsoMapping, droneMode2Mapping,
  StandardGamepad, DEFAULT_DEADZONE, DEFAULT_ESTOP_BUTTON,
  type GamepadLike, type GamepadMapping, type GamepadSource,
} from "./gamepad.ts";
export {
  ErrorCode, isRetryable, errorCodeName, ProtocolError, decodeEnvelope, encodeEnvelope, ENVELOPE_MESSAGE_TYPE, tsunagi,
  type Envelope, type IEnvelope, type EnvelopeBody,
} from "../proto/index.ts";
