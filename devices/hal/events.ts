/**
 * Typed events and the observer interface (OpenEL's HALObserver with notify_event and
 * notify_error).
 *
 * There is one event map for the whole HAL, like OpenEL's single event-id space. A
 * driver with events of its own adds them by declaration merging, so any observer,
 * including one on the Hal, can narrow on them by `type`:
 *
 *   declare module "../../hal/events.ts" {
 *     interface HalEventMap { "geofence": { boundary: "radius" | "altitude"; limitM: number } }
 *   }
 *
 * (A type parameter per component was tried: a Hal then cannot hold components with
 * different maps without casts, since observers make the map invariant.)
 */
import type { HalError } from "./errors.ts";
import type { ComponentState } from "./types.ts";

/** Events by type. The base ones any component may emit; drivers merge in theirs. Payloads are JSON-plain so they can be forwarded as telemetry. */
export interface HalEventMap {
  "state-changed": { from: ComponentState; to: ComponentState; reason: string };
  /**
   * A command or a motion hit a bound and was clamped. Emitted when the clamping
   * starts, not on every step it persists, so a held joystick does not flood observers.
   */
  "limit-reached": { axis: string; limit: "min" | "max" | "rate"; requested: number; applied: number };
  /** The component entered Fault; the matching HalError goes to `onError`. */
  "fault": { reason: string };
}

/** One event of a map: `{ type, componentId, timestamp, ...payload }`, discriminated by `type`. */
export type HalEvent<M extends object = HalEventMap> = {
  [K in keyof M & string]: { type: K; componentId: string; timestamp: number } & M[K];
}[keyof M & string];

/**
 * Receives a component's events and errors. Both callbacks are optional; a callback that
 * throws is reported to the other observers and otherwise ignored.
 *
 * @example
 *   boom.addObserver({
 *     onEvent: (event) => { if (event.type === "limit-reached") log.info(event, "boom at limit"); },
 *     onError: (error) => log.warn({ code: error.code }, error.message),
 *   });
 */
export interface HalObserver<E = HalEvent> {
  onEvent?(event: E): void;
  onError?(error: HalError): void;
}
