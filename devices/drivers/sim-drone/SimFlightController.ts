/**
 * The simulated drone's flight controller: a HAL component of kind "vehicle" that owns
 * the flight state machine, the kinematics, the geofence, the battery and the
 * link-loss failsafe. SimDrone assembles it with its axis actuators and battery sensor.
 *
 * Flight states (explicit, one at a time):
 *
 *   Disarmed --arm--> Armed --takeOff--> TakingOff --(target reached)--> Flying
 *   Flying/TakingOff --land--> Landing --(touchdown)--> Disarmed
 *   TakingOff/Landing/Failsafe --hold--> Flying (hover)
 *   TakingOff/Flying --linkLost--> Failsafe (hover) --(linkLossHoldMs)--> Landing
 *   airborne --battery critical / component fault--> Landing;  Armed --> Disarmed
 *
 * Velocity setpoints are accepted only in Flying with the link up. So after a link
 * loss, restoring the link is not enough: the operator must send a fresh command
 * (hold or land while airborne, arm once it has landed) before setpoints count again.
 *
 * Frames: the site frame is x, y horizontal and z up (m), heading counter-clockwise
 * from +x (rad). Setpoints are in the body frame: vx forward, vy left, vz up (m/s),
 * yawRate counter-clockwise (rad/s). The vehicle tracks its setpoint at once (no
 * acceleration model). The geofence is a cylinder around the fixed home position.
 */
import { HalError } from "../../hal/errors.ts";
import { HalComponent } from "../../hal/HalComponent.ts";
import { ComponentState, type ComponentOptions } from "../../hal/types.ts";
import { clamp, wrapAngle } from "../geometry.ts";

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

const airborneStates: readonly FlightState[] = [FlightState.TakingOff, FlightState.Flying, FlightState.Landing, FlightState.Failsafe];

export const droneAxes = ["vx", "vy", "vz", "yaw-rate"] as const;
export type DroneAxisName = (typeof droneAxes)[number];

/** Body-frame velocity: vx forward, vy left, vz up (m/s); yawRate counter-clockwise (rad/s). */
export interface VelocitySetpoint {
  vx: number;
  vy: number;
  vz: number;
  yawRate: number;
}

export interface Position3 {
  x: number;
  y: number;
  z: number;
}

/** The flight controller's events, merged into the HAL's event map so every observer can narrow on them. */
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

/** Why a flight command was refused. */
export type FlightRefusal = "link-down" | "wrong-state" | "battery-critical";

/** A command the flight controller understood and refused. */
export class FlightCommandError extends HalError {
  readonly reason: FlightRefusal;
  readonly flightState: FlightState;

  constructor(componentId: string, reason: FlightRefusal, flightState: FlightState, message: string) {
    super("COMMAND_REFUSED", `${componentId}: ${message}`, { componentId });
    this.name = "FlightCommandError";
    this.reason = reason;
    this.flightState = flightState;
  }
}

export interface BatteryConfig {
  /** Charge at start, %. Default 100. */
  initialPct: number;
  /** "battery-low" below this, %. Default 30. */
  lowPct: number;
  /** Lands by itself below this, and refuses arm, take-off and hold, %. Default 15. */
  criticalPct: number;
  /** Drain while armed on the ground, %/s. Default 0.02. */
  idleDrainPctPerS: number;
  /** Drain while airborne, %/s, before motion. Default 0.1 (about 15 minutes of hover). */
  hoverDrainPctPerS: number;
  /** Extra drain per metre travelled in any direction, %. Default 0.01. */
  drainPctPerMetre: number;
}

export interface FlightControllerConfig {
  /** m/s, the magnitude of (vx, vy). Default 5. */
  maxHorizontalSpeed: number;
  /** m/s. Default 2. */
  maxVerticalSpeed: number;
  /** rad/s. Default 1.5. */
  maxYawRate: number;
  /** m/s. Default 1. */
  takeoffSpeed: number;
  /** m/s. Default 0.5. */
  landingSpeed: number;
  /** Flying descends no lower than this, so only land() puts the vehicle down, m. Default 1. */
  minFlightAltitudeM: number;
  /** Cylinder around home: radius and ceiling, m. Defaults 100 and 50. */
  geofence: { maxRadiusM: number; maxAltitudeM: number };
  battery: BatteryConfig;
  /** How long to hover after a link loss before landing, ms. Default 3000. */
  linkLossHoldMs: number;
  /** Start and geofence centre, m. Fixed, so the fence does not creep from landing to landing. Default (0, 0). */
  home: { x: number; y: number };
}

export const defaultFlightControllerConfig: Readonly<FlightControllerConfig> = Object.freeze({
  maxHorizontalSpeed: 5,
  maxVerticalSpeed: 2,
  maxYawRate: 1.5,
  takeoffSpeed: 1,
  landingSpeed: 0.5,
  minFlightAltitudeM: 1,
  geofence: { maxRadiusM: 100, maxAltitudeM: 50 },
  battery: { initialPct: 100, lowPct: 30, criticalPct: 15, idleDrainPctPerS: 0.02, hoverDrainPctPerS: 0.1, drainPctPerMetre: 0.01 },
  linkLossHoldMs: 3000,
  home: { x: 0, y: 0 },
});

export interface FlightControllerOptions extends ComponentOptions {
  config?: Partial<Omit<FlightControllerConfig, "battery" | "geofence">> & {
    battery?: Partial<BatteryConfig>;
    geofence?: Partial<FlightControllerConfig["geofence"]>;
  };
}

/** Ordered so that a higher level is worse. */
const batteryLevels = ["ok", "low", "critical", "empty"] as const;
type BatteryLevel = (typeof batteryLevels)[number];

export interface FlightSnapshot {
  state: FlightState;
  /** Why the vehicle entered its current state ("landed", "link lost", "battery critical", …). */
  stateReason: string;
  /** Site frame, m; heading rad. */
  pose: Position3 & { heading: number };
  /** Site frame, achieved in the last step: vx, vy, vz in m/s, yawRate in rad/s. */
  velocity: VelocitySetpoint;
  /** The operator's current body-frame setpoint after clamping. */
  setpoint: VelocitySetpoint;
  batteryPct: number;
  linkUp: boolean;
  home: { x: number; y: number };
  /** Active conditions: "link-lost", "battery-low", "battery-critical", "battery-empty", "component-fault". */
  faults: string[];
}

const ARRIVAL_TOLERANCE_M = 1e-6;

const zeroSetpoint = (): VelocitySetpoint => ({ vx: 0, vy: 0, vz: 0, yawRate: 0 });
const setpointKey = { vx: "vx", vy: "vy", vz: "vz", "yaw-rate": "yawRate" } as const satisfies Record<DroneAxisName, keyof VelocitySetpoint>;

export class SimFlightController extends HalComponent {
  readonly kind = "vehicle" as const;
  /** Limits, fence, battery model and failsafe timing. */
  readonly config: Readonly<FlightControllerConfig>;
  /** The flight state machine's state; only setFlightState() changes it. */
  private flight: FlightState = FlightState.Disarmed;
  /** Why the vehicle entered `flight`. */
  private flightReason = "initial";
  /** Site-frame position, m. */
  private readonly position: Position3;
  /** rad, counter-clockwise from +x. */
  private heading = 0;
  /** The operator's body-frame setpoint, clamped; zeroed on every state change. */
  private setpoint: VelocitySetpoint = zeroSetpoint();
  /** Site-frame velocity achieved in the last step. */
  private velocity: VelocitySetpoint = zeroSetpoint();
  /** The same in the body frame the step was flown in (the heading at its start). */
  private bodyFrameVelocity: VelocitySetpoint = zeroSetpoint();
  /** Altitude TakingOff climbs to, m. */
  private takeoffTargetM = 0;
  /** Hover time left in Failsafe before landing, ms. */
  private failsafeHoldRemainingMs = 0;
  /** State of charge, %. */
  private batteryPct: number;
  /** Worst battery level announced so far; events fire once per level. */
  private batteryLevel: BatteryLevel = "ok";
  /** Whether the operator link is up, as told by linkLost()/linkRestored(). */
  private linkUp = true;
  /** Setpoint axes clamped by the last command; rate events fire when clamping starts. */
  private clampedAxes = new Set<DroneAxisName>();
  /** The setpoint as asked, before the speed limits (`setpoint` is what is flown). */
  private requested: VelocitySetpoint = zeroSetpoint();
  /** Fence boundaries that clamped the last step; geofence events fire when clamping starts. */
  private activeFenceClamps = new Set<"radius" | "altitude" | "floor">();

  constructor(id: string, options: FlightControllerOptions = {}) {
    const base = defaultFlightControllerConfig;
    const overrides = options.config ?? {};
    const config: FlightControllerConfig = {
      ...base,
      ...overrides,
      geofence: { ...base.geofence, ...overrides.geofence },
      battery: { ...base.battery, ...overrides.battery },
      home: { ...base.home, ...overrides.home },
    };
    checkConfig(id, config);
    super(id, {
      name: "Flight controller",
      vendor: "Tsunagi",
      model: "sim-flight-controller",
      description: "simulated multirotor: arm, take-off, velocity setpoints, land, geofence, failsafe",
      unit: "m",
      limits: { min: 0, max: config.geofence.maxAltitudeM, maxRate: config.maxHorizontalSpeed },
    }, options);
    this.config = Object.freeze({
      ...config,
      geofence: Object.freeze(config.geofence),
      battery: Object.freeze(config.battery),
      home: Object.freeze(config.home),
    });
    this.position = { x: config.home.x, y: config.home.y, z: 0 };
    this.batteryPct = config.battery.initialPct;
    this.batteryLevel = this.levelOf(this.batteryPct);
  }

  get flightState(): FlightState {
    return this.flight;
  }

  get airborne(): boolean {
    return airborneStates.includes(this.flight);
  }

  get battery(): number {
    return this.batteryPct;
  }

  /** Disarmed -> Armed. Needs the link up and the battery above critical. */
  arm(): void {
    this.requireState("arm", [ComponentState.Ready]);
    this.requireLink("arm");
    this.requireFlight("arm", [FlightState.Disarmed]);
    this.requireBattery("arm");
    this.setFlightState(FlightState.Armed, "armed");
  }

  /** Armed -> Disarmed; a no-op when already disarmed. Refused in the air: land first. */
  disarm(): void {
    this.requireState("disarm", [ComponentState.Ready, ComponentState.Fault]);
    if (this.flight === FlightState.Disarmed) return;
    this.requireFlight("disarm", [FlightState.Armed]);
    this.setFlightState(FlightState.Disarmed, "disarmed");
  }

  /**
   * Armed -> TakingOff, climbing to `altitudeM` (clamped to [minFlightAltitudeM, the
   * geofence ceiling]; clamping at the ceiling emits "geofence"). Flying once there.
   */
  takeOff(altitudeM: number): void {
    this.requireState("takeOff", [ComponentState.Ready]);
    requireFinite(this.id, "altitudeM", altitudeM);
    this.requireLink("takeOff");
    this.requireFlight("takeOff", [FlightState.Armed]);
    this.requireBattery("takeOff");
    const { minFlightAltitudeM, geofence } = this.config;
    if (altitudeM > geofence.maxAltitudeM) {
      this.emit("geofence", { boundary: "altitude", limitM: geofence.maxAltitudeM, position: { ...this.position, z: altitudeM } });
    }
    this.takeoffTargetM = clamp(altitudeM, minFlightAltitudeM, geofence.maxAltitudeM);
    this.setFlightState(FlightState.TakingOff, `take-off to ${this.takeoffTargetM} m`);
  }

  /**
   * Lands where it is. Allowed with the link down and in Fault, because it is the safe
   * direction; a no-op on the ground or when already landing.
   */
  land(): void {
    this.requireState("land", [ComponentState.Ready, ComponentState.Fault]);
    if (this.flight === FlightState.TakingOff || this.flight === FlightState.Flying || this.flight === FlightState.Failsafe) {
      this.setFlightState(FlightState.Landing, "land command");
    }
  }

  /**
   * Hover in place: the fresh command that hands control back to the operator after a
   * failsafe, and a way to abort a take-off or a landing. Needs the link up and the
   * battery above critical.
   */
  hold(): void {
    this.requireState("hold", [ComponentState.Ready]);
    this.requireLink("hold");
    this.requireFlight("hold", airborneStates);
    this.requireBattery("hold");
    if (this.flight === FlightState.Flying) {
      this.clearSetpoint();
      return;
    }
    this.setFlightState(FlightState.Flying, "hold command");
  }

  /** Sets the whole body-frame setpoint; omitted fields are 0. Only in Flying with the link up. */
  setVelocity(setpoint: Partial<VelocitySetpoint>): void {
    const requested = { ...zeroSetpoint(), ...setpoint };
    for (const key of ["vx", "vy", "vz", "yawRate"] as const) requireFinite(this.id, key, requested[key]);
    this.requireSetpointAllowed("setVelocity");
    this.applySetpoint(requested);
  }

  /** Sets one axis of the setpoint, keeping the others (what a HAL axis actuator calls). Outside Flying only 0 is accepted, as no input. */
  setAxis(axis: DroneAxisName, value: number): void {
    requireFinite(this.id, axis, value);
    // Zero is "no stick input": harmless outside Flying, and it must not abort a take-off,
    // a landing or a failsafe the way zeroAxis() (the watchdog's stop) deliberately does.
    if (value === 0 && this.flight !== FlightState.Flying && this.state === ComponentState.Ready) return;
    this.requireSetpointAllowed("setAxis");
    // From what was asked of the other axes, not what they were limited to: the horizontal
    // limit scales (vx, vy) together, so a command's axes must not limit each other in turn.
    this.applySetpoint({ ...this.requested, [setpointKey[axis]]: value });
  }

  /**
   * Stops motion on one axis; never refuses. In Flying the axis' setpoint becomes 0, so
   * zeroing all four axes means hover in place. Zeroing vz during take-off stops the
   * climb and hovers. Landing and Failsafe are left alone: they are already the safe
   * manoeuvre, and a watchdog must not turn a landing into an indefinite hover.
   */
  zeroAxis(axis: DroneAxisName): void {
    if (this.flight === FlightState.Flying) {
      this.setpoint = { ...this.setpoint, [setpointKey[axis]]: 0 };
      this.requested = { ...this.requested, [setpointKey[axis]]: 0 };
      this.clampedAxes.delete(axis);
    } else if (this.flight === FlightState.TakingOff && axis === "vz") {
      this.setFlightState(FlightState.Flying, "motion zeroed during take-off");
    }
  }

  /**
   * The operator link is gone. In the air: hover for linkLossHoldMs (Failsafe), then
   * land. Armed on the ground: disarm. A landing carries on. Every operator command but
   * land and disarm is refused until linkRestored().
   */
  linkLost(): void {
    if (!this.linkUp) return;
    this.linkUp = false;
    this.emit("link-lost", { flightState: this.flight });
    if (this.flight === FlightState.TakingOff || this.flight === FlightState.Flying) {
      this.failsafeHoldRemainingMs = this.config.linkLossHoldMs;
      this.setFlightState(FlightState.Failsafe, "link lost: holding position");
    } else if (this.flight === FlightState.Armed) {
      this.setFlightState(FlightState.Disarmed, "link lost on the ground");
    }
  }

  /** The link is back. The flight state does not change: a fresh command is still needed. */
  linkRestored(): void {
    if (this.linkUp) return;
    this.linkUp = true;
    this.emit("link-restored", { flightState: this.flight });
  }

  /** Makes the controller fail as broken hardware would, for tests and demos. */
  injectFault(reason: string): void {
    this.enterFault(reason);
  }

  /** Advances the vehicle by `dtMs`. Runs in Ready and in Fault (so a faulted vehicle completes its landing). */
  step(dtMs: number): void {
    if (this.state !== ComponentState.Ready && this.state !== ComponentState.Fault) return;
    const dtS = dtMs / 1000;
    const wasAirborne = this.airborne;
    const start = { ...this.position };
    const commanded = this.commandedVelocity(dtS);
    const next = {
      x: start.x + commanded.vx * dtS,
      y: start.y + commanded.vy * dtS,
      z: start.z + commanded.vz * dtS,
    };
    this.applyFence(start, next, commanded.vz);
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

    this.advanceFlightState(dtMs);
    this.drainBattery(dtS, wasAirborne, Math.hypot(next.x - start.x, next.y - start.y, next.z - start.z));
  }

  snapshot(): FlightSnapshot {
    const faults: string[] = [];
    if (!this.linkUp) faults.push("link-lost");
    if (this.batteryLevel !== "ok") faults.push(`battery-${this.batteryLevel}`);
    if (this.state === ComponentState.Fault) faults.push("component-fault");
    return {
      state: this.flight,
      stateReason: this.flightReason,
      pose: { ...this.position, heading: this.heading },
      velocity: { ...this.velocity },
      setpoint: { ...this.setpoint },
      batteryPct: this.batteryPct,
      linkUp: this.linkUp,
      home: { ...this.config.home },
      faults,
    };
  }

  /** The achieved velocity on one axis, in the body frame (what a HAL axis actuator reads). */
  bodyVelocity(axis: DroneAxisName): number {
    return this.bodyFrameVelocity[setpointKey[axis]];
  }

  protected override onInit(): void {
    this.clearSetpoint();
  }

  /** Keeps the flight state: a controller reset in the air must not forget that it is flying. */
  protected override onReinit(): void {
    this.clearSetpoint();
  }

  protected override onFinalize(): void {
    if (this.airborne) {
      throw new FlightCommandError(this.id, "wrong-state", this.flight, "finalised while airborne; land first");
    }
    this.setFlightState(FlightState.Disarmed, "finalised");
  }

  protected override onFault(reason: string): void {
    if (this.flight === FlightState.TakingOff || this.flight === FlightState.Flying || this.flight === FlightState.Failsafe) {
      this.setFlightState(FlightState.Landing, `fault: ${reason}`);
    } else if (this.flight === FlightState.Armed) {
      this.setFlightState(FlightState.Disarmed, `fault: ${reason}`);
    }
  }

  /** Site-frame velocity the current state asks for, before the fence. */
  private commandedVelocity(dtS: number): VelocitySetpoint {
    switch (this.flight) {
      case FlightState.TakingOff:
        // no overshoot: the last step climbs exactly to the target
        return { vx: 0, vy: 0, vz: Math.min(this.config.takeoffSpeed, (this.takeoffTargetM - this.position.z) / dtS), yawRate: 0 };
      case FlightState.Landing:
        return { vx: 0, vy: 0, vz: -Math.min(this.config.landingSpeed, this.position.z / dtS), yawRate: 0 };
      case FlightState.Flying: {
        const cos = Math.cos(this.heading);
        const sin = Math.sin(this.heading);
        const { vx, vy, vz, yawRate } = this.setpoint;
        return { vx: vx * cos - vy * sin, vy: vx * sin + vy * cos, vz, yawRate };
      }
      default:
        // Disarmed and Armed sit on the ground; Failsafe hovers
        return zeroSetpoint();
    }
  }

  /** Clamps `next` into the fence (radius, ceiling, and in Flying the minimum altitude); events on new clamps. */
  private applyFence(start: Position3, next: Position3, commandedVz: number): void {
    const { geofence, home, minFlightAltitudeM } = this.config;
    const clamps = new Set<"radius" | "altitude" | "floor">();
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
    if (this.flight === FlightState.Flying && commandedVz < 0 && next.z < floor) {
      next.z = floor;
      clamps.add("floor");
    }
    for (const boundary of clamps) {
      if (this.activeFenceClamps.has(boundary)) continue;
      if (boundary === "floor") {
        this.emit("limit-reached", { axis: "vz", limit: "min", requested: requestedZ, applied: next.z });
      } else {
        this.emit("geofence", { boundary, limitM: boundary === "radius" ? geofence.maxRadiusM : geofence.maxAltitudeM, position: { ...next } });
      }
    }
    this.activeFenceClamps = clamps;
  }

  /** Transitions that time or position cause: take-off complete, touchdown, failsafe hold over. */
  private advanceFlightState(dtMs: number): void {
    // within a micrometre counts as arrived: summing 10 ms steps leaves rounding error
    if (this.flight === FlightState.TakingOff && this.position.z >= this.takeoffTargetM - ARRIVAL_TOLERANCE_M) {
      this.position.z = this.takeoffTargetM;
      this.setFlightState(FlightState.Flying, "take-off complete");
    } else if (this.flight === FlightState.Landing && this.position.z <= ARRIVAL_TOLERANCE_M) {
      this.position.z = 0;
      this.setFlightState(FlightState.Disarmed, "landed");
    } else if (this.flight === FlightState.Failsafe) {
      this.failsafeHoldRemainingMs -= dtMs;
      if (this.failsafeHoldRemainingMs <= 0) this.setFlightState(FlightState.Landing, "link lost: hold time over");
    }
  }

  /**
   * Drains by the state the step started in (a touchdown step still flew), then acts on
   * a new battery level: critical lands an airborne vehicle and disarms an armed one.
   * An empty battery keeps descending at landing speed: the simulation does not model
   * a fall, and a vehicle that reaches empty has already been landing since critical.
   */
  private drainBattery(dtS: number, wasAirborne: boolean, distanceM: number): void {
    const { battery } = this.config;
    let drain = 0;
    if (wasAirborne) drain = battery.hoverDrainPctPerS * dtS + battery.drainPctPerMetre * distanceM;
    else if (this.flight === FlightState.Armed) drain = battery.idleDrainPctPerS * dtS;
    if (drain === 0) return;
    this.batteryPct = Math.max(0, this.batteryPct - drain);

    const level = this.levelOf(this.batteryPct);
    const previous = batteryLevels.indexOf(this.batteryLevel);
    const current = batteryLevels.indexOf(level);
    if (current <= previous) return;
    this.batteryLevel = level;
    if (previous < 1 && current >= 1) this.emit("battery-low", { batteryPct: this.batteryPct });
    if (previous < 2 && current >= 2) {
      this.emit("battery-critical", { batteryPct: this.batteryPct });
      if (this.flight === FlightState.TakingOff || this.flight === FlightState.Flying || this.flight === FlightState.Failsafe) {
        this.setFlightState(FlightState.Landing, "battery critical");
      } else if (this.flight === FlightState.Armed) {
        this.setFlightState(FlightState.Disarmed, "battery critical");
      }
    }
  }

  private levelOf(pct: number): BatteryLevel {
    const { lowPct, criticalPct } = this.config.battery;
    return pct <= 0 ? "empty" : pct <= criticalPct ? "critical" : pct <= lowPct ? "low" : "ok";
  }

  private applySetpoint(requested: VelocitySetpoint): void {
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

  /** No setpoint: hover (in Flying), and nothing asked. */
  private clearSetpoint(): void {
    this.setpoint = zeroSetpoint();
    this.requested = zeroSetpoint();
  }

  private setFlightState(to: FlightState, reason: string): void {
    const from = this.flight;
    this.flight = to;
    this.flightReason = reason;
    // a new state starts from rest: no setpoint outlives the state it was given in
    this.clearSetpoint();
    this.clampedAxes.clear();
    if (from !== to) this.emit("flight-state-changed", { from, to, reason });
  }

  private requireSetpointAllowed(operation: string): void {
    this.requireState(operation, [ComponentState.Ready]);
    this.requireLink(operation);
    if (this.flight === FlightState.Failsafe) {
      throw new FlightCommandError(this.id, "wrong-state", this.flight, `${operation} refused in failsafe: send hold or land first`);
    }
    this.requireFlight(operation, [FlightState.Flying]);
  }

  private requireLink(operation: string): void {
    if (!this.linkUp) throw new FlightCommandError(this.id, "link-down", this.flight, `${operation} refused: operator link is down`);
  }

  private requireFlight(operation: string, allowed: readonly FlightState[]): void {
    if (!allowed.includes(this.flight)) {
      throw new FlightCommandError(this.id, "wrong-state", this.flight, `${operation} needs flight state ${allowed.join(" or ")}, but the vehicle is ${this.flight}`);
    }
  }

  private requireBattery(operation: string): void {
    if (batteryLevels.indexOf(this.batteryLevel) >= 2) {
      throw new FlightCommandError(this.id, "battery-critical", this.flight, `${operation} refused: battery at ${this.batteryPct.toFixed(1)} %`);
    }
  }
}

function requireFinite(componentId: string, name: string, value: unknown): void {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new HalError("INVALID_VALUE", `${componentId}: ${name} must be a finite number, got ${String(value)}`, { componentId });
  }
}

function checkConfig(id: string, config: FlightControllerConfig): void {
  const positive: [string, number][] = [
    ["maxHorizontalSpeed", config.maxHorizontalSpeed], ["maxVerticalSpeed", config.maxVerticalSpeed], ["maxYawRate", config.maxYawRate],
    ["takeoffSpeed", config.takeoffSpeed], ["landingSpeed", config.landingSpeed], ["minFlightAltitudeM", config.minFlightAltitudeM],
    ["geofence.maxRadiusM", config.geofence.maxRadiusM], ["geofence.maxAltitudeM", config.geofence.maxAltitudeM],
  ];
  for (const [name, value] of positive) {
    if (!(value > 0) || !Number.isFinite(value)) throw new TypeError(`${id}: ${name} must be a finite number > 0, got ${value}`);
  }
  const { battery } = config;
  if (!(battery.criticalPct < battery.lowPct && battery.lowPct <= 100 && battery.criticalPct >= 0)) {
    throw new TypeError(`${id}: battery thresholds need 0 <= criticalPct < lowPct <= 100`);
  }
  if (!(battery.initialPct > 0 && battery.initialPct <= 100)) throw new TypeError(`${id}: battery.initialPct must be in (0, 100]`);
  if (config.minFlightAltitudeM >= config.geofence.maxAltitudeM) throw new TypeError(`${id}: minFlightAltitudeM must be below the geofence ceiling`);
  if (!(config.linkLossHoldMs >= 0)) throw new TypeError(`${id}: linkLossHoldMs must be >= 0`);
}
