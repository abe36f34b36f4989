/**
 * A simulated multirotor on the HAL: a flight controller (kind "vehicle"), four
 * velocity axes (vx, vy, vz, yaw-rate) and a battery sensor, stepped at 100 Hz.
 *
 * The watchdog's `hal.zeroMotion()` zeroes the four axes: a flying drone hovers in
 * place, a climbing one stops climbing and hovers, and a landing or failsafe carries
 * on. It never cuts the motors.
 *
 * @example
 *   const drone = new SimDrone({ config: { geofence: { maxRadiusM: 50 } } });
 *   drone.init();
 *   drone.arm();
 *   drone.takeOff(10);
 *   while (drone.flightState !== "flying") drone.step(10);
 *   drone.setVelocity({ vx: 2 });          // m/s forward
 *   drone.step(1000);
 *   drone.land();
 */
import { Hal, type FinalizeReport } from "../../hal/Hal.ts";
import type { Clock, ComponentState } from "../../hal/types.ts";
import { checkStep } from "../geometry.ts";
import { SimulationLoop, driverLoop } from "../SimulationLoop.ts";
import { SimStopButton } from "../SimStopButton.ts";
import type { ActionSpec, DeviceProfile, Driver } from "../types.ts";
import { droneAxisProfiles } from "../droneAxes.ts";
import { BatterySensor } from "./BatterySensor.ts";
import { DroneAxis } from "./DroneAxis.ts";
import { droneAxes, type VelocitySetpoint } from "./FlightDynamics.ts";
import type { FlightState } from "./FlightState.ts";
import { FlightCommandError, SimFlightController, type FlightControllerOptions, type FlightSnapshot } from "./SimFlightController.ts";

export const droneComponentIds = { flightController: "flight", battery: "battery" } as const;

export interface SimDroneOptions {
  /** Timestamps for telemetry and events. Default Date.now. */
  clock?: Clock;
  /** Monotonic ms for the real-time loop. Default performance.now. */
  tickClock?: () => number;
  /** Overrides of defaultFlightControllerConfig. */
  config?: FlightControllerOptions["config"];
  /** Watchdog window published in the profile, ms. Default 200. */
  watchdogMs?: number;
  /** Latency budget published in the profile, ms. Default 50. */
  latencyBudgetMs?: number;
}

export interface DroneTelemetry extends FlightSnapshot {
  timestamp: number;
  /** Simulated time since construction, ms. */
  simTimeMs: number;
  /** Lifecycle state of each component, by id. */
  components: Record<string, ComponentState>;
}

const STEP_MS = 10;

export class SimDrone implements Driver {
  readonly driverName = "sim-drone" as const;
  readonly hal = new Hal();
  readonly flightController: SimFlightController;
  /** The transmitter's kill switch: pressed, the drone holds still, then lands (or disarms on the ground), as an e-stop does. */
  readonly stopButton = new SimStopButton(() => { this.hal.zeroMotion(); this.emergencyStop(); });
  /** Telemetry timestamps. */
  private readonly clock: Clock;
  /** Published in profile(). */
  private readonly watchdogMs: number;
  /** Published in profile(). */
  private readonly latencyBudgetMs: number;
  /** Drives step() in real time between start() and stop(). */
  private readonly loop: SimulationLoop;
  /** Simulated ms stepped so far. */
  private simTimeMs = 0;

  constructor(options: SimDroneOptions = {}) {
    this.clock = options.clock ?? Date.now;
    const componentOptions = { clock: this.clock };
    this.flightController = this.hal.add(new SimFlightController(droneComponentIds.flightController, { ...componentOptions, config: options.config }));
    for (const axis of droneAxes) this.hal.add(new DroneAxis(axis, this.flightController, componentOptions));
    this.hal.add(new BatterySensor(droneComponentIds.battery, this.flightController, componentOptions));
    this.watchdogMs = options.watchdogMs ?? 200;
    this.latencyBudgetMs = options.latencyBudgetMs ?? 50;
    this.loop = driverLoop("sim-drone", this.hal, (dtMs) => this.step(dtMs), { stepMs: STEP_MS, now: options.tickClock });
  }

  get running(): boolean {
    return this.loop.running;
  }

  get flightState(): FlightState {
    return this.flightController.flightState;
  }

  init(): void {
    this.hal.initAll();
  }

  /** Stops the loop and finalises every component. Refused (FlightCommandError) while airborne: land first. */
  finalize(): FinalizeReport {
    if (this.flightController.airborne) {
      throw new FlightCommandError(this.flightController.id, "wrong-state", this.flightState, "cannot shut down while airborne; land first");
    }
    this.loop.stop();
    return this.hal.finalizeAll();
  }

  arm(): void {
    this.flightController.arm();
  }

  disarm(): void {
    this.flightController.disarm();
  }

  takeOff(altitudeM: number): void {
    this.flightController.takeOff(altitudeM);
  }

  land(): void {
    this.flightController.land();
  }

  hold(): void {
    this.flightController.hold();
  }

  setVelocity(setpoint: Partial<VelocitySetpoint>): void {
    this.flightController.setVelocity(setpoint);
  }

  /** What an operator can ask of the drone besides velocity setpoints. */
  actions(): ActionSpec[] {
    const maxAltitudeM = this.flightController.config.geofence.maxAltitudeM;
    return [
      { name: "arm", description: "spin up the motors on the ground, ready to take off" },
      { name: "takeoff", description: "climb to the given altitude and hover", value: { unit: "m", min: 1, max: maxAltitudeM } },
      { name: "hold", description: "hover in place (also ends a failsafe, a take-off or a landing)" },
      { name: "land", description: "descend where it is and disarm on touchdown" },
      { name: "disarm", description: "stop the motors (on the ground only)" },
    ];
  }

  perform(action: string, value: number): void {
    switch (action) {
      case "arm": this.arm(); return;
      case "takeoff": this.takeOff(value); return;
      case "hold": this.hold(); return;
      case "land": this.land(); return;
      case "disarm": this.disarm(); return;
      default: throw new FlightCommandError(this.flightController.id, "wrong-state", this.flightState, `no action "${action}"`);
    }
  }

  /** An e-stop in the air lands (hovering until the battery runs out is not a stop); on the ground it disarms. */
  emergencyStop(): void {
    try {
      if (this.flightController.airborne) this.flightController.land();
      else if (this.flightState === "armed") this.flightController.disarm();
    } catch {
      // zeroMotion has already stopped every axis; a refused landing leaves it hovering
    }
  }

  mode(): string {
    return this.flightState;
  }

  stopEngaged(): boolean {
    return this.stopButton.pressed;
  }

  linkLost(): void {
    this.flightController.linkLost();
  }

  linkRestored(): void {
    this.flightController.linkRestored();
  }

  step(dtMs: number): void {
    checkStep(dtMs);
    this.flightController.step(dtMs);
    this.simTimeMs += dtMs;
  }

  start(): void {
    this.loop.start();
  }

  stop(): void {
    this.loop.stop();
  }

  telemetry(): DroneTelemetry {
    const components: Record<string, ComponentState> = {};
    for (const component of this.hal.list()) components[component.id] = component.state;
    return { timestamp: this.clock(), simTimeMs: this.simTimeMs, ...this.flightController.snapshot(), components };
  }

  profile(): DeviceProfile {
    const config = this.flightController.config;
    const axes = droneAxisProfiles({ ...config, maxAltitudeM: config.geofence.maxAltitudeM });
    return {
      driver: this.driverName,
      deviceClass: "drone",
      vendor: "Tsunagi",
      model: "sim-drone",
      axes,
      watchdogMs: this.watchdogMs,
      latencyBudgetMs: this.latencyBudgetMs,
      stepHz: 1000 / STEP_MS,
      parameters: {
        geofenceRadiusM: config.geofence.maxRadiusM,
        geofenceAltitudeM: config.geofence.maxAltitudeM,
        minFlightAltitudeM: config.minFlightAltitudeM,
        takeoffSpeedMps: config.takeoffSpeed,
        landingSpeedMps: config.landingSpeed,
        linkLossHoldMs: config.linkLossHoldMs,
        batteryLowPct: config.battery.lowPct,
        batteryCriticalPct: config.battery.criticalPct,
      },
    };
  }
}
