/**
 * The simulated drone's fence: a cylinder around the fixed home position (radius and
 * ceiling), and, while flying, the minimum flight altitude, so only a landing puts the
 * vehicle down. A step that would cross a boundary ends on it; motion along a boundary
 * survives, motion through it does not. Each boundary is announced when clamping starts,
 * not at every step it lasts.
 *
 * @example
 *   const fence = new Geofence(config, emit);
 *   fence.clamp(start, next, { flying: true, descending: commanded.vz < 0 });   // next is moved inside
 */
import type { FlightControllerConfig } from "./FlightConfig.ts";
import type { FlightEventEmitter, Position3 } from "./FlightState.ts";

type Boundary = "radius" | "altitude" | "floor";

export class Geofence {
  /** Radius, ceiling, home and the minimum flight altitude. */
  private readonly config: Pick<FlightControllerConfig, "geofence" | "home" | "minFlightAltitudeM">;
  /** Announces new clamps. */
  private readonly emit: FlightEventEmitter;
  /** Boundaries that clamped the last step. */
  private active = new Set<Boundary>();

  constructor(config: Pick<FlightControllerConfig, "geofence" | "home" | "minFlightAltitudeM">, emit: FlightEventEmitter) {
    this.config = config;
    this.emit = emit;
  }

  /**
   * Moves `next` (the end of a step from `start`) inside the fence. The floor holds only
   * a flying vehicle that descends: take-off and landing cross it on purpose.
   */
  clamp(start: Position3, next: Position3, motion: { flying: boolean; descending: boolean }): void {
    const { geofence, home, minFlightAltitudeM } = this.config;
    const clamps = new Set<Boundary>();
    const dx = next.x - home.x;
    const dy = next.y - home.y;
    const radius = Math.hypot(dx, dy);
    if (radius > geofence.maxRadiusM) {
      // project onto the fence: motion along it survives, motion through it does not
      next.x = home.x + (dx * geofence.maxRadiusM) / radius;
      next.y = home.y + (dy * geofence.maxRadiusM) / radius;
      clamps.add("radius");
    }
    if (next.z > geofence.maxAltitudeM) {
      next.z = geofence.maxAltitudeM;
      clamps.add("altitude");
    }
    const requestedZ = next.z;
    const floor = Math.min(start.z, minFlightAltitudeM);
    if (motion.flying && motion.descending && next.z < floor) {
      next.z = floor;
      clamps.add("floor");
    }
    for (const boundary of clamps) {
      if (this.active.has(boundary)) continue;
      if (boundary === "floor") {
        this.emit("limit-reached", { axis: "vz", limit: "min", requested: requestedZ, applied: next.z });
      } else {
        this.emit("geofence", { boundary, limitM: boundary === "radius" ? geofence.maxRadiusM : geofence.maxAltitudeM, position: { ...next } });
      }
    }
    this.active = clamps;
  }
}
