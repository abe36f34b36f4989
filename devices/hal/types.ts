/**
 * Plain types shared by every HAL component: lifecycle states, kinds, properties and
 * timed values. Kept free of classes so drivers and the adapter can import them without
 * pulling in behaviour.
 */

/**
 * A component's lifecycle, as in OpenEL's HALinit / HALreInit / HALfinalize:
 *
 *   Uninitialized --init()--> Ready --(driver fault)--> Fault --reinit()--> Ready
 *   any state --finalize()--> Finalized (terminal)
 *
 * Strings rather than numbers so telemetry and logs read without a lookup table.
 */
export const ComponentState = {
  Uninitialized: "uninitialized",
  Ready: "ready",
  Fault: "fault",
  Finalized: "finalized",
} as const;
export type ComponentState = (typeof ComponentState)[keyof typeof ComponentState];

/** What a component is. A vehicle is a whole machine with its own controller (a drone's flight controller). */
export type ComponentKind = "actuator" | "sensor" | "vehicle";

/**
 * Control modes of an actuator, OpenEL's HAL_REQUEST_{POSITION,VELOCITY,TORQUE}_CONTROL.
 * Units follow the component's `properties.unit`: position in unit, velocity in unit/s,
 * torque in N·m (or N for linear actuators).
 */
export type ActuatorMode = "position" | "velocity" | "torque";
export const actuatorModes: readonly ActuatorMode[] = ["position", "velocity", "torque"];

/** Bounds of a component's quantity. Absent fields mean "unbounded". */
export interface ComponentLimits {
  /** Lowest position (actuators) or reading (sensors), in `unit`. */
  min?: number;
  /** Highest position (actuators) or reading (sensors), in `unit`. */
  max?: number;
  /** Highest magnitude of velocity, in `unit`/s. */
  maxRate?: number;
}

/** Static description of a component (OpenEL's Property), JSON-plain. */
export interface ComponentProperties {
  /** Human-readable name, e.g. "Boom cylinder". */
  name: string;
  vendor: string;
  model: string;
  description?: string;
  /** Unit of the component's primary quantity: "rad", "m", "m/s", "%". */
  unit: string;
  limits: ComponentLimits;
}

/** A reading and when it was taken, in ms from the component's clock. */
export interface TimedValue {
  value: number;
  timestamp: number;
}

/** Milliseconds. Injected so tests and simulations control time; defaults to Date.now. */
export type Clock = () => number;

/** Options every component accepts. */
export interface ComponentOptions {
  /** Source of timestamps for readings and events. Default: Date.now. */
  clock?: Clock;
}
