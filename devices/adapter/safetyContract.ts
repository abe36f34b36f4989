/**
 * What SafetyController needs from the runtime that hosts it (SafetyHost: the device,
 * its driver and profile, the clock, the log and the event sink) and what it hands back
 * (SafetyOutcome: the replies to send; SafetyCounters). Kept apart so that the
 * controller's file holds its rules alone.
 *
 * @example
 *   const host: SafetyHost = { deviceId: "ex-1", driver, profile, clock, logger, events, reportNow: () => telemetry.sampleNow() };
 */
import type { Logger } from "pino";
import type { SafeEmitter } from "../../common/SafeEmitter.ts";
import type { tsunagi, IEnvelope } from "../../proto/index.ts";
import type { Driver } from "../drivers/types.ts";
import type { AdapterCounters, AdapterListeners, AdapterSafety } from "./types.ts";

/** The clock the rules run on: client time for the watchdog, server time for deadlines and acks. */
export interface SafetyClock {
  /** Monotonic client clock, ms. */
  clientNow(): number;
  /** The estimate of the node's clock, Unix epoch ms. */
  serverNow(): number;
  /** Half the best round trip, ms; Infinity before the first sample. */
  readonly uncertaintyMs: number;
}

/** What the controller needs from the runtime. */
export interface SafetyHost {
  readonly deviceId: string;
  /** The device's driver: its Hal takes setpoints and stops; a drone's failsafe hooks. */
  readonly driver: Driver;
  /** The profile the adapter published: commands and actions are checked against it. */
  readonly profile: tsunagi.v1.IDeviceProfile;
  readonly clock: SafetyClock;
  readonly logger: Logger;
  /** Where the "estop" and "watchdog" events go. */
  readonly events: Pick<SafeEmitter<AdapterListeners>, "emit">;
  /** The safety state changed: telemetry should carry it now, not at the next tick. */
  reportNow(): void;
}

/** What handling one message asks of the runtime, in this order. */
export interface SafetyOutcome {
  /** Frames for the gateway (an ack, an action result), in order. */
  replies: IEnvelope[];
  /** Take a telemetry sample once the replies are sent: the device's mode may have changed. */
  reportAfter: boolean;
}

/** The safety side's share of AdapterCounters; `unexpected` counts its ignored messages (another device's, a Reset with nothing latched). */
export type SafetyCounters = Pick<AdapterCounters, "acks" | "actions" | "watchdogTrips" | "linkLossStops" | "estops" | "resetsRefused" | "unexpected">;

/** What ends a lease for good at the adapter (the stop latch), as `AdapterSafety.stopLatch` reports it. */
export type StopLatchCause = NonNullable<AdapterSafety["stopLatch"]>;
