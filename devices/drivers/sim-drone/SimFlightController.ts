/**
 * The simulated drone's flight controller: a HAL component of kind "vehicle" that owns
 * the flight state machine and the link-loss failsafe, and composes the motion
 * (FlightDynamics, with its Geofence) and the battery (BatteryModel). SimDrone assembles
 * it with its axis actuators and battery sensor.
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
 * A new state starts from rest: no setpoint outlives the state it was given in.
 *
 * @example
 *   const controller = new SimFlightController("flight", { config: { linkLossHoldMs: 1000 } });
 *   controller.init();
 *   controller.arm();
 *   controller.takeOff(10);
 *   controller.step(10);     // 10 ms: climbing at take-off speed
 */
import { HalError } from "../../hal/errors.ts";
import { HalComponent } from "../../hal/HalComponent.ts";
import { ComponentState, type ComponentOptions } from "../../hal/types.ts";
import { clamp } from "../geometry.ts";
import { BatteryModel } from "./BatteryModel.ts";
import { resolveFlightConfig, type FlightConfigOverrides, type FlightControllerConfig } from "./FlightConfig.ts";
import { FlightDynamics, zeroSetpoint, type DroneAxisName, type Manoeuvre, type VelocitySetpoint } from "./FlightDynamics.ts";
import { FlightState, airborneStates, type Position3 } from "./FlightState.ts";

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

export interface FlightControllerOptions extends ComponentOptions {
  config?: FlightConfigOverrides;
}

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

/** Within this of a target altitude counts as arrived, m: summing 10 ms steps leaves rounding error. */
const ARRIVAL_TOLERANCE_M = 1e-6;

/** The states a fault or a critical battery turns into a landing. */
const landsOnTrouble: readonly FlightState[] = [FlightState.TakingOff, FlightState.Flying, FlightState.Failsafe];

export class SimFlightController extends HalComponent {
  readonly kind = "vehicle" as const;
  /** Limits, fence, battery model and failsafe timing. */
  readonly config: Readonly<FlightControllerConfig>;
  /** The motion: setpoint, pose, fence. */
  private readonly dynamics: FlightDynamics;
  /** Charge and its levels. */
  private readonly batteryModel: BatteryModel;
  /** The flight state machine's state; only setFlightState() changes it. */
  private flight: FlightState = FlightState.Disarmed;
  /** Why the vehicle entered `flight`. */
  private flightReason = "initial";
  /** Altitude TakingOff climbs to, m. */
  private takeoffTargetM = 0;
  /** Hover time left in Failsafe before landing, ms. */
  private failsafeHoldRemainingMs = 0;
  /** Whether the operator link is up, as told by linkLost()/linkRestored(). */
  private linkUp = true;

  constructor(id: string, options: FlightControllerOptions = {}) {
    const config = resolveFlightConfig(id, options.config);
    super(id, {
      name: "Flight controller",
      vendor: "Tsunagi",
      model: "sim-flight-controller",
      description: "simulated multirotor: arm, take-off, velocity setpoints, land, geofence, failsafe",
      unit: "m",
      limits: { min: 0, max: config.geofence.maxAltitudeM, maxRate: config.maxHorizontalSpeed },
    }, options);
    this.config = config;
    const emit = this.emit.bind(this);
    this.dynamics = new FlightDynamics(config, emit);
    this.batteryModel = new BatteryModel(config.battery, emit);
  }

  get flightState(): FlightState {
    return this.flight;
  }

  get airborne(): boolean {
    return airborneStates.includes(this.flight);
  }

  get battery(): number {
    return this.batteryModel.percent;
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
      const { x, y } = this.dynamics.pose;
      this.emit("geofence", { boundary: "altitude", limitM: geofence.maxAltitudeM, position: { x, y, z: altitudeM } });
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
    if (landsOnTrouble.includes(this.flight)) this.setFlightState(FlightState.Landing, "land command");
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
      this.dynamics.clearSetpoint();
      return;
    }
    this.setFlightState(FlightState.Flying, "hold command");
  }

  /** Sets the whole body-frame setpoint; omitted fields are 0. Only in Flying with the link up. */
  setVelocity(setpoint: Partial<VelocitySetpoint>): void {
    const requested = { ...zeroSetpoint(), ...setpoint };
    for (const key of ["vx", "vy", "vz", "yawRate"] as const) requireFinite(this.id, key, requested[key]);
    this.requireSetpointAllowed("setVelocity");
    this.dynamics.setVelocity(requested);
  }

  /** Sets one axis of the setpoint, keeping the others (what a HAL axis actuator calls). Outside Flying only 0 is accepted, as no input. */
  setAxis(axis: DroneAxisName, value: number): void {
    requireFinite(this.id, axis, value);
    // Zero is "no stick input": harmless outside Flying, and it must not abort a take-off,
    // a landing or a failsafe the way zeroAxis() (the watchdog's stop) deliberately does.
    if (value === 0 && this.flight !== FlightState.Flying && this.state === ComponentState.Ready) return;
    this.requireSetpointAllowed("setAxis");
    this.dynamics.setAxis(axis, value);
  }

  /**
   * Stops motion on one axis; never refuses. In Flying the axis' setpoint becomes 0, so
   * zeroing all four axes means hover in place. Zeroing vz during take-off stops the
   * climb and hovers. Landing and Failsafe are left alone: they are already the safe
   * manoeuvre, and a watchdog must not turn a landing into an indefinite hover.
   */
  zeroAxis(axis: DroneAxisName): void {
    if (this.flight === FlightState.Flying) {
      this.dynamics.zeroAxis(axis);
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
    const distanceM = this.dynamics.step(dtS, this.manoeuvre());
    this.advanceFlightState(dtMs);
    // Drained by the state the step started in (a touchdown step still flew).
    const becameCritical = this.batteryModel.drain(dtS, { airborne: wasAirborne, armed: this.flight === FlightState.Armed, distanceM });
    // An empty battery keeps descending at landing speed: the simulation does not model a
    // fall, and a vehicle that reaches empty has already been landing since critical.
    if (becameCritical) this.landOrDisarm("battery critical");
  }

  snapshot(): FlightSnapshot {
    const faults: string[] = [];
    if (!this.linkUp) faults.push("link-lost");
    const batteryFault = this.batteryModel.fault;
    if (batteryFault) faults.push(batteryFault);
    if (this.state === ComponentState.Fault) faults.push("component-fault");
    return {
      state: this.flight,
      stateReason: this.flightReason,
      pose: this.dynamics.pose,
      velocity: this.dynamics.siteVelocity,
      setpoint: this.dynamics.flownSetpoint,
      batteryPct: this.batteryModel.percent,
      linkUp: this.linkUp,
      home: { ...this.config.home },
      faults,
    };
  }

  /** The achieved velocity on one axis, in the body frame (what a HAL axis actuator reads). */
  bodyVelocity(axis: DroneAxisName): number {
    return this.dynamics.bodyVelocity(axis);
  }

  protected override onInit(): void {
    this.dynamics.clearSetpoint();
  }

  /** Keeps the flight state: a controller reset in the air must not forget that it is flying. */
  protected override onReinit(): void {
    this.dynamics.clearSetpoint();
  }

  protected override onFinalize(): void {
    if (this.airborne) {
      throw new FlightCommandError(this.id, "wrong-state", this.flight, "finalised while airborne; land first");
    }
    this.setFlightState(FlightState.Disarmed, "finalised");
  }

  protected override onFault(reason: string): void {
    this.landOrDisarm(`fault: ${reason}`);
  }

  /** What the current state asks of the next step. */
  private manoeuvre(): Manoeuvre {
    switch (this.flight) {
      case FlightState.TakingOff: return { kind: "climb", targetM: this.takeoffTargetM };
      case FlightState.Landing: return { kind: "descend" };
      case FlightState.Flying: return { kind: "fly" };
      default: return { kind: "hold" }; // Disarmed and Armed sit on the ground; Failsafe hovers
    }
  }

  /** Transitions that time or position cause: take-off complete, touchdown, failsafe hold over. */
  private advanceFlightState(dtMs: number): void {
    const altitude = this.dynamics.altitude;
    if (this.flight === FlightState.TakingOff && altitude >= this.takeoffTargetM - ARRIVAL_TOLERANCE_M) {
      this.dynamics.arriveAt(this.takeoffTargetM);
      this.setFlightState(FlightState.Flying, "take-off complete");
    } else if (this.flight === FlightState.Landing && altitude <= ARRIVAL_TOLERANCE_M) {
      this.dynamics.arriveAt(0);
      this.setFlightState(FlightState.Disarmed, "landed");
    } else if (this.flight === FlightState.Failsafe) {
      this.failsafeHoldRemainingMs -= dtMs;
      if (this.failsafeHoldRemainingMs <= 0) this.setFlightState(FlightState.Landing, "link lost: hold time over");
    }
  }

  /** Trouble (a fault, a critical battery): an airborne vehicle lands, an armed one disarms. */
  private landOrDisarm(reason: string): void {
    if (landsOnTrouble.includes(this.flight)) this.setFlightState(FlightState.Landing, reason);
    else if (this.flight === FlightState.Armed) this.setFlightState(FlightState.Disarmed, reason);
  }

  private setFlightState(to: FlightState, reason: string): void {
    const from = this.flight;
    this.flight = to;
    this.flightReason = reason;
    // a new state starts from rest: no setpoint outlives the state it was given in
    this.dynamics.clearSetpoint({ forgetClamps: true });
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
    if (this.batteryModel.critical) {
      throw new FlightCommandError(this.id, "battery-critical", this.flight, `${operation} refused: battery at ${this.batteryModel.percent.toFixed(1)} %`);
    }
  }
}

function requireFinite(componentId: string, name: string, value: unknown): void {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new HalError("INVALID_VALUE", `${componentId}: ${name} must be a finite number, got ${String(value)}`, { componentId });
  }
}
