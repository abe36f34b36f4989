/**
 * The edge adapter: connects one device to a Tsunagi region over the device channel and
 * enforces the teleoperation safety model at the device (watchdog, lease, e-stop latch,
 * command checks). `npm run adapter` runs it as a process (main.ts).
 *
 * @example
 *   const adapter = new AdapterRuntime({ deviceId: "ex-1", driver, credential: { secret }, nodes, adapterVersion: "1.0.0" });
 *   adapter.start();
 *   await adapter.stop();
 */
export { AdapterRuntime, CommandStatus, backoffDelayMs } from "./AdapterRuntime.ts";
export type {
  AdapterConnection, AdapterCounters, AdapterCredential, AdapterError, AdapterEvents, AdapterRuntimeOptions, AdapterSafety, AdapterState, AdapterStatus,
  AdapterStop,
} from "./types.ts";
export { GatewayConnection } from "./GatewayConnection.ts";
export type { GatewayConnectionHost, GatewayConnectionOptions, LinkCounters, LinkLoss } from "./GatewayConnection.ts";
export { SafetyController } from "./SafetyController.ts";
export type { SafetyClock, SafetyCounters, SafetyHost, SafetyOutcome } from "./safetyContract.ts";
export { TelemetryBuffer } from "./TelemetryBuffer.ts";
export type { TelemetryLink } from "./TelemetryBuffer.ts";
export { resolveAdapterOptions } from "./options.ts";
export type { ResolvedAdapterOptions } from "./options.ts";
export { CommandGuard } from "./CommandGuard.ts";
export type { CommandGuardOptions, GuardVerdict, HeartbeatLike, LeaseAnnouncement, SetpointEntry } from "./CommandGuard.ts";
export { ClockSync } from "../../common/ClockSync.ts";
export type { ClockSample, ClockSyncOptions } from "../../common/ClockSync.ts";
export { Watchdog } from "./Watchdog.ts";
export { DEFAULT_WATCHDOG_WINDOW_MS, sampleTelemetry, toProtoProfile } from "./mapping.ts";
export type { SafetySnapshot } from "./mapping.ts";
export { CameraFeed, FfmpegMissing } from "./CameraFeed.ts";
export type { CameraFeedOptions } from "./CameraFeed.ts";
export { ArgsError, parseAdapterArgs, usage } from "./args.ts";
export type { AdapterArgs } from "./args.ts";
