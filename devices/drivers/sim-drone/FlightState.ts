/**
 * The simulated drone's flight states, the events its flight controller (and the
 * controller's pieces) emit, and the types they share.
 *
 * The events are merged into the HAL's event map, so every observer can narrow on them.
 */
import type { HalEventMap } from "../../hal/events.ts";

export const FlightState = {
  Disarmed: "disarmed",
  Armed: "armed",
  TakingOff: "taking-off",
  Flying: "flying",
  Landing: "landing",
  /** Link lost in the air: hovering in place until the hold time runs out, then landing. */
  Failsafe: "failsafe",
} as const;
export type FlightState = (typeof FlightState)[keyof typeof FlightState];

/** The states in the air. */
export const airborneStates: readonly FlightState[] = [FlightState.TakingOff, FlightState.Flying, FlightState.Landing, FlightState.Failsafe];

export interface Position3 {
  x: number;
  y: number;
  z: number;
}

declare module "../../hal/events.ts" {
  interface HalEventMap {
    "flight-state-changed": { from: FlightState; to: FlightState; reason: string };
    /** Motion was clamped at the fence: radius from home, or the ceiling. Fires when clamping starts. */
    "geofence": { boundary: "radius" | "altitude"; limitM: number; position: Position3 };
    "battery-low": { batteryPct: number };
    /** The vehicle is landing (or disarming, on the ground) by itself. */
    "battery-critical": { batteryPct: number };
    "link-lost": { flightState: FlightState };
    "link-restored": { flightState: FlightState };
  }
}

/** Emits one HAL event as the flight controller, which owns the observers; its pieces get this. */
export type FlightEventEmitter = <K extends keyof HalEventMap>(type: K, payload: HalEventMap[K]) => void;
