/**
 * What every driver offers the adapter, and the device profile it publishes. The
 * profile is JSON-plain (numbers, strings, arrays, plain objects; absent rather than
 * undefined or Infinity) because it will travel as a protobuf message.
 */
import type { FinalizeReport, Hal } from "../hal/Hal.ts";

export type DriverName = "sim-excavator" | "sim-drone" | "mavlink" | "mqtt-sensors";

/**
 * One controllable axis. Commands on every axis of the simulated devices are
 * velocities (`mode: "velocity"`); `min`/`max` bound the position that velocity
 * integrates into and are absent where that position is unbounded (a continuous swing,
 * a track, a drone's horizontal axes, whose bound is the geofence).
 */
export interface AxisProfile {
  /** HAL component id a command on this axis addresses. */
  name: string;
  /** What a command sets. */
  mode: "velocity";
  /** Unit of the position: "rad" or "m". */
  unit: string;
  min?: number;
  max?: number;
  /** Unit of the command: "rad/s" or "m/s". */
  rateUnit: string;
  /** Commands are clamped to [-maxRate, maxRate]. */
  maxRate: number;
}

export interface DeviceProfile {
  driver: DriverName;
  deviceClass: "excavator" | "drone" | "sensors";
  vendor: string;
  model: string;
  axes: AxisProfile[];
  /** Without a valid command or heartbeat for this long, the adapter zeroes motion and latches the stop. */
  watchdogMs: number;
  /** Operator↔device RTT above this demotes the operator and stops the device. */
  latencyBudgetMs: number;
  /** Rate of the device's control and simulation loop. */
  stepHz: number;
  /** Device-specific figures (track gauge, geofence…), a flat name→number map so it maps onto protobuf map<string, double>. */
  parameters: Record<string, number>;
}

/**
 * A discrete manoeuvre a device offers besides its axes (a drone's take-off), published
 * as an ActionProfile and requested with a DeviceAction.
 */
export interface ActionSpec {
  /** [a-z0-9-]{1,32}. */
  name: string;
  description: string;
  /** Present when the action takes a value, in `unit`, within [min, max]. */
  value?: { unit: string; min: number; max: number };
}

/** Where a driver of a real device writes its lines: the adapter's pino logger (or any info/warn). */
export interface DriverLogger {
  info(message: string): void;
  warn(message: string): void;
}

/** The surface the adapter uses, whatever the device. */
export interface Driver {
  readonly driverName: DriverName;
  /** The device's components; `hal.zeroMotion()` is the watchdog's stop. */
  readonly hal: Hal;
  /** Whether the real-time loop is running. */
  readonly running: boolean;
  /** Initialises every component (Hal.initAll). */
  init(): void;
  /**
   * Stops the loop and finalises every component. Component failures are reported, not
   * thrown; a device that cannot be shut down as it is (a drone in the air) refuses by throwing.
   */
  finalize(): FinalizeReport;
  /** Advances the device by `dtMs` of simulated time. */
  step(dtMs: number): void;
  /** Runs step() on a real timer at `profile().stepHz`. */
  start(): void;
  stop(): void;
  profile(): DeviceProfile;
  /** A JSON-plain snapshot of the device's state. */
  telemetry(): object;

  // --- optional capabilities --------------------------------------------------------
  /**
   * Opens the link to a real device (a MAVLink vehicle's UDP socket, an MQTT broker),
   * before init(). Throws, saying why, when it cannot (a port in use).
   */
  open?(): Promise<void>;
  /**
   * Whether the device answers at all. A real vehicle that stopped sending heartbeats
   * does not: while this is false the adapter keeps the device offline, so its room ends
   * the lease and tells everyone. Absent: always available.
   */
  available?(): boolean;
  /**
   * Hears changes worth sending at once rather than at the next telemetry tick (an area
   * alert raised, a broker lost); returns the function that stops it.
   */
  onChange?(listener: () => void): () => void;
  /** The driver's own counters (messages, malformed payloads, retries), JSON-plain, for the adapter's status endpoint. */
  counters?(): object;
  /** The discrete manoeuvres the device offers; absent for a device driven by its axes alone. */
  actions?(): ActionSpec[];
  /** Performs one of actions(); throws, saying why, when the device refuses it in its current state. */
  perform?(action: string, value: number): void;
  /**
   * What an e-stop does beyond zeroing motion, for a device where "stand still" is not
   * the end of it (a drone lands). Never throws.
   */
  emergencyStop?(): void;
  /** Nobody is driving any more (link lost, lease gone, watchdog) / a fresh lease is back: a drone's failsafe. */
  linkLost?(): void;
  linkRestored?(): void;
  /**
   * Whether the device's own stop (a physical e-stop button, a safety relay) is engaged.
   * The adapter latches an e-stop when it engages; while it is engaged no reset clears
   * that latch, and once released a technician resets at the machine before a
   * supervisor's reset may. Absent: the device has no stop of its own.
   */
  stopEngaged?(): boolean;
  /** The device's operating mode for telemetry (a drone's flight state); "" where it has none. */
  mode?(): string;
}
