/**
 * The simulated drone's motion: the operator's velocity setpoint within the speed limits,
 * and the pose it flies to, step by step, inside the fence.
 *
 * Frames: the site frame is x, y horizontal and z up (m), heading counter-clockwise from
 * +x (rad). Setpoints are in the body frame: vx forward, vy left, vz up (m/s), yawRate
 * counter-clockwise (rad/s). The vehicle tracks what it is asked at once (no acceleration
 * model). What it is asked depends on the flight state, so each step names its
 * manoeuvre: climb to a target, descend to the ground, fly the setpoint, or hold still.
 *
 * @example
 *   const dynamics = new FlightDynamics(config, emit);
 *   dynamics.setVelocity({ vx: 9, vy: 0, vz: 0, yawRate: 0 });   // flown at 5 m/s: "limit-reached" once
 *   const metres = dynamics.step(0.01, { kind: "fly" });
 */
import { clamp, wrapAngle } from "../geometry.ts";
import type { FlightControllerConfig } from "./FlightConfig.ts";
import type { FlightEventEmitter, Position3 } from "./FlightState.ts";
import { Geofence } from "./Geofence.ts";

import { droneAxes, type DroneAxisName } from "../droneAxes.ts";

export { droneAxes, type DroneAxisName };

/** Body-frame velocity: vx forward, vy left, vz up (m/s); yawRate counter-clockwise (rad/s). */
export interface VelocitySetpoint {
  vx: number;
  vy: number;
  vz: number;
  yawRate: number;
}

/** What the flight state asks of one step. */
export type Manoeuvre =
  /** Climb straight up to `targetM` at take-off speed, without overshooting. */
  | { kind: "climb"; targetM: number }
  /** Descend straight down to the ground at landing speed. */
  | { kind: "descend" }
  /** Fly the operator's setpoint, no lower than the minimum flight altitude. */
  | { kind: "fly" }
  /** Stay where it is: on the ground, or hovering. */
  | { kind: "hold" };

export const zeroSetpoint = (): VelocitySetpoint => ({ vx: 0, vy: 0, vz: 0, yawRate: 0 });
const setpointKey = { vx: "vx", vy: "vy", vz: "vz", "yaw-rate": "yawRate" } as const satisfies Record<DroneAxisName, keyof VelocitySetpoint>;

export class FlightDynamics {
  /** Speed limits, take-off and landing speeds. */
  private readonly config: Readonly<FlightControllerConfig>;
  /** Announces clamped setpoints. */
  private readonly emit: FlightEventEmitter;
  /** Keeps each step inside the fence. */
  private readonly fence: Geofence;
  /** Site-frame position, m. */
  private readonly position: Position3;
  /** rad, counter-clockwise from +x. */
  private heading = 0;
  /** The operator's body-frame setpoint after the speed limits: what is flown. */
  private setpoint: VelocitySetpoint = zeroSetpoint();
  /** The setpoint as asked, before the speed limits. */
  private requested: VelocitySetpoint = zeroSetpoint();
  /** Setpoint axes the limits clamped last; "limit-reached" fires when clamping starts. */
  private clampedAxes = new Set<DroneAxisName>();
  /** Site-frame velocity achieved in the last step. */
  private velocity: VelocitySetpoint = zeroSetpoint();
  /** The same in the body frame the step was flown in (the heading at its start). */
  private bodyFrameVelocity: VelocitySetpoint = zeroSetpoint();

  constructor(config: Readonly<FlightControllerConfig>, emit: FlightEventEmitter) {
    this.config = config;
    this.emit = emit;
    this.fence = new Geofence(config, emit);
    this.position = { x: config.home.x, y: config.home.y, z: 0 };
  }

  /** Site-frame position and heading. */
  get pose(): Position3 & { heading: number } {
    return { ...this.position, heading: this.heading };
  }

  /** Height above the ground, m. */
  get altitude(): number {
    return this.position.z;
  }

  /** Puts the vehicle at `altitudeM` exactly: an arrival, where summed steps leave rounding error. */
  arriveAt(altitudeM: number): void {
    this.position.z = altitudeM;
  }

  /** The setpoint being flown (after the limits). */
  get flownSetpoint(): VelocitySetpoint {
    return { ...this.setpoint };
  }

  /** Site-frame velocity achieved in the last step. */
  get siteVelocity(): VelocitySetpoint {
    return { ...this.velocity };
  }

  /** The achieved velocity on one axis, in the body frame. */
  bodyVelocity(axis: DroneAxisName): number {
    return this.bodyFrameVelocity[setpointKey[axis]];
  }

  /** The whole setpoint, within the limits: the horizontal one scales (vx, vy) together, keeping the direction. */
  setVelocity(requested: VelocitySetpoint): void {
    const { maxHorizontalSpeed, maxVerticalSpeed, maxYawRate } = this.config;
    const applied = {
      vx: requested.vx,
      vy: requested.vy,
      vz: clamp(requested.vz, -maxVerticalSpeed, maxVerticalSpeed),
      yawRate: clamp(requested.yawRate, -maxYawRate, maxYawRate),
    };
    // the horizontal limit is on speed over ground, so scale (vx, vy) together and keep the direction
    const horizontal = Math.hypot(applied.vx, applied.vy);
    if (horizontal > maxHorizontalSpeed) {
      applied.vx *= maxHorizontalSpeed / horizontal;
      applied.vy *= maxHorizontalSpeed / horizontal;
    }
    const clamped = new Set<DroneAxisName>();
    for (const axis of droneAxes) {
      const key = setpointKey[axis];
      if (applied[key] === requested[key]) continue;
      clamped.add(axis);
      if (!this.clampedAxes.has(axis)) {
        this.emit("limit-reached", { axis, limit: "rate", requested: requested[key], applied: applied[key] });
      }
    }
    this.clampedAxes = clamped;
    this.requested = requested;
    this.setpoint = applied;
  }

  /**
   * One axis of the setpoint, the others as they were asked: the horizontal limit scales
   * (vx, vy) together, so a command's axes must not limit each other in turn.
   */
  setAxis(axis: DroneAxisName, value: number): void {
    this.setVelocity({ ...this.requested, [setpointKey[axis]]: value });
  }

  /** Stops one axis of the setpoint. */
  zeroAxis(axis: DroneAxisName): void {
    this.setpoint = { ...this.setpoint, [setpointKey[axis]]: 0 };
    this.requested = { ...this.requested, [setpointKey[axis]]: 0 };
    this.clampedAxes.delete(axis);
  }

  /** No setpoint: hover (when flying), and nothing asked. `forgetClamps` lets the next clamp be announced again. */
  clearSetpoint(options: { forgetClamps?: boolean } = {}): void {
    this.setpoint = zeroSetpoint();
    this.requested = zeroSetpoint();
    if (options.forgetClamps) this.clampedAxes.clear();
  }

  /** Flies `manoeuvre` for `dtS` seconds, inside the fence; answers the metres travelled. */
  step(dtS: number, manoeuvre: Manoeuvre): number {
    const start = { ...this.position };
    const commanded = this.commandedVelocity(dtS, manoeuvre);
    const next = {
      x: start.x + commanded.vx * dtS,
      y: start.y + commanded.vy * dtS,
      z: start.z + commanded.vz * dtS,
    };
    this.fence.clamp(start, next, { flying: manoeuvre.kind === "fly", descending: commanded.vz < 0 });
    this.position.x = next.x;
    this.position.y = next.y;
    this.position.z = next.z;
    this.velocity = { vx: (next.x - start.x) / dtS, vy: (next.y - start.y) / dtS, vz: (next.z - start.z) / dtS, yawRate: commanded.yawRate };
    const cos = Math.cos(this.heading);
    const sin = Math.sin(this.heading);
    this.bodyFrameVelocity = {
      vx: this.velocity.vx * cos + this.velocity.vy * sin,
      vy: -this.velocity.vx * sin + this.velocity.vy * cos,
      vz: this.velocity.vz,
      yawRate: this.velocity.yawRate,
    };
    this.heading = wrapAngle(this.heading + commanded.yawRate * dtS);
    return Math.hypot(next.x - start.x, next.y - start.y, next.z - start.z);
  }

  /** Site-frame velocity the manoeuvre asks for, before the fence. */
  private commandedVelocity(dtS: number, manoeuvre: Manoeuvre): VelocitySetpoint {
    switch (manoeuvre.kind) {
      case "climb":
        // no overshoot: the last step climbs exactly to the target
        return { vx: 0, vy: 0, vz: Math.min(this.config.takeoffSpeed, (manoeuvre.targetM - this.position.z) / dtS), yawRate: 0 };
      case "descend":
        return { vx: 0, vy: 0, vz: -Math.min(this.config.landingSpeed, this.position.z / dtS), yawRate: 0 };
      case "fly": {
        const cos = Math.cos(this.heading);
        const sin = Math.sin(this.heading);
        const { vx, vy, vz, yawRate } = this.setpoint;
        return { vx: vx * cos - vy * sin, vy: vx * sin + vy * cos, vz, yawRate };
      }
      case "hold":
        return zeroSetpoint();
    }
  }
}
