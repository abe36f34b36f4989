/**
 * The MAVLink driver: a real multirotor (ArduPilot Copter, or anything that speaks its
 * dialect of MAVLink v2) behind the same surface as the simulated drone, so the adapter,
 * the room and the operator's tools drive it unchanged. A flight controller (kind
 * "vehicle", MavlinkVehicle.ts) and four velocity axes (vx, vy, vz, yaw-rate) on the HAL.
 *
 * Safety, in short (docs/devices.md, "MAVLink", has the whole of it):
 * - the adapter's watchdog zeroes the axes: the vehicle is sent a zero setpoint at once,
 *   and hovers;
 * - the operator's link lost: BRAKE, then LAND after `linkLossHoldMs`;
 * - the adapter gone: the vehicle's own GCS failsafe, whose parameters are checked at
 *   connect (FailsafeCheck.ts);
 * - the vehicle gone (no HEARTBEAT): available() is false and the adapter takes the
 *   device offline, so the room ends the lease and says so;
 * - e-stop: LAND, or flight termination, by `estopAction`.
 *
 * @example
 *   const drone = new MavlinkDrone({ endpoint: "udpout:127.0.0.1:14555" });
 *   await drone.open();
 *   drone.init();
 *   drone.start();
 *   drone.perform("arm", 0);
 *   drone.perform("takeoff", 5);
 *   drone.hal.actuator("vx").setValue("velocity", 2);
 */
import { Hal, type FinalizeReport } from "../../hal/Hal.ts";
import { driverLoop, type SimulationLoop } from "../SimulationLoop.ts";
import type { ActionSpec, DeviceProfile, Driver, DriverLogger } from "../types.ts";
import { droneAxes, droneAxisProfiles } from "../droneAxes.ts";
import { resolveMavlinkConfig, type MavlinkConfig, type MavlinkConfigInput } from "./config.ts";
import { MavlinkAxis } from "./MavlinkAxis.ts";
import { MavlinkVehicle } from "./MavlinkVehicle.ts";

export type MavlinkDroneOptions = MavlinkConfigInput & {
  /** Where the driver's own lines go: the adapter's pino logger, or anything with info() and warn(). */
  logger?: DriverLogger;
  /** The device id the adapter runs (not used here; every driver is given it). */
  deviceId?: string;
};


export class MavlinkDrone implements Driver {
  readonly driverName = "mavlink" as const;
  readonly hal = new Hal();
  readonly vehicle: MavlinkVehicle;
  readonly config: MavlinkConfig;
  private readonly loop: SimulationLoop;

  constructor(options: MavlinkDroneOptions) {
    const { logger, deviceId: _deviceId, ...input } = options;
    this.config = resolveMavlinkConfig(input);
    this.vehicle = this.hal.add(new MavlinkVehicle("flight", this.config, { logger }));
    for (const axis of droneAxes) this.hal.add(new MavlinkAxis(axis, this.vehicle));
    this.loop = driverLoop("mavlink", this.hal, () => this.step(), { stepMs: 1000 / this.config.setpointHz, maxStepsPerTick: 1 });
  }

  get running(): boolean {
    return this.loop.running;
  }

  /** Opens the link to the vehicle; before init(). */
  open(): Promise<void> {
    return this.vehicle.open();
  }

  available(): boolean {
    return this.vehicle.available;
  }

  init(): void {
    this.hal.initAll();
  }

  /** Refused (throws) while the vehicle is in the air: land first. */
  finalize(): FinalizeReport {
    if (this.vehicle.airborne) throw new Error("the vehicle is in the air: land it before shutting the adapter down");
    this.loop.stop();
    void this.vehicle.close();
    return this.hal.finalizeAll();
  }

  step(): void {
    this.vehicle.step();
  }

  start(): void {
    this.loop.start();
  }

  stop(): void {
    this.loop.stop();
  }

  actions(): ActionSpec[] {
    return [
      { name: "arm", description: "switch to GUIDED and arm the motors on the ground" },
      { name: "takeoff", description: "climb to the given altitude and hover", value: { unit: "m", min: 1, max: this.config.maxAltitudeM } },
      { name: "hold", description: "hover in place in GUIDED (also takes control back after a failsafe)" },
      { name: "land", description: "land where it is and disarm on touchdown" },
      { name: "rtl", description: "return to the launch point and land" },
      { name: "disarm", description: "stop the motors (on the ground only)" },
    ];
  }

  perform(action: string, value: number): void {
    switch (action) {
      case "arm": return this.vehicle.arm();
      case "takeoff": return this.vehicle.takeOff(value);
      case "hold": return this.vehicle.hold();
      case "land": return this.vehicle.land();
      case "rtl": return this.vehicle.returnToLaunch();
      case "disarm": return this.vehicle.disarm();
      default: throw new Error(`no action "${action}"`);
    }
  }

  emergencyStop(): void {
    this.vehicle.emergencyStop();
  }

  linkLost(): void {
    this.vehicle.linkLost();
  }

  linkRestored(): void {
    this.vehicle.linkRestored();
  }

  mode(): string {
    return this.vehicle.modeText;
  }

  counters(): Record<string, unknown> {
    return { link: { ...this.vehicle.link?.counters }, commands: this.vehicle.commandCounters, ...this.vehicle.counters };
  }

  telemetry(): object {
    const state = this.vehicle.vehicleState;
    const now = Date.now();
    return {
      timestamp: now,
      pose: state.pose,
      armed: state.armed,
      joints: [{ name: "vz", position: state.altitudeM, velocity: state.velocity.up }],
      // JSON-plain: absent until the vehicle has said
      ...(state.battery ? { battery: state.battery } : {}),
      ...(state.geo ? { geo: state.geo } : {}),
      statusTexts: state.recentTexts(now),
      faults: this.vehicle.faults(now),
    };
  }

  profile(): DeviceProfile {
    const { config } = this;
    const axes = droneAxisProfiles(config);
    return {
      driver: this.driverName,
      deviceClass: "drone",
      vendor: "ArduPilot",
      model: "MAVLink autopilot",
      axes,
      watchdogMs: config.watchdogMs,
      latencyBudgetMs: config.latencyBudgetMs,
      stepHz: config.setpointHz,
      parameters: {
        geofenceAltitudeM: config.maxAltitudeM,
        linkLossHoldMs: config.linkLossHoldMs,
        vehicleHeartbeatTimeoutMs: config.heartbeatTimeoutMs,
        estopTerminates: config.estopAction === "terminate" ? 1 : 0,
        maxGcsFailsafeS: config.maxGcsTimeoutS,
        maxGuidedTimeoutS: config.maxGuidedTimeoutS,
      },
    };
  }
}
