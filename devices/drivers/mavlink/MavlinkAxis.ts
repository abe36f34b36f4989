/**
 * One velocity axis of a MAVLink vehicle as a HAL actuator (vx, vy, vz or yaw-rate, body
 * frame: forward, left, up, counter-clockwise), so an operator drives a real drone
 * exactly as the simulated one: `hal.actuator("vx").setValue("velocity", 2)`.
 *
 * stop() never refuses: it zeroes the setpoint, and the vehicle's zero goes at once.
 */
import { HalActuator } from "../../hal/HalActuator.ts";
import type { ActuatorMode, ComponentOptions } from "../../hal/types.ts";
import { droneAxisDescriptions, droneAxisRate } from "../droneAxes.ts";
import type { MavlinkAxisName, MavlinkVehicle } from "./MavlinkVehicle.ts";

export class MavlinkAxis extends HalActuator {
  readonly axis: MavlinkAxisName;
  private readonly vehicle: MavlinkVehicle;

  constructor(axis: MavlinkAxisName, vehicle: MavlinkVehicle, options: ComponentOptions = {}) {
    const { config } = vehicle;
    const maxRate = droneAxisRate(axis, config);
    super(axis, {
      ...droneAxisDescriptions[axis],
      vendor: "ArduPilot",
      model: "MAVLink velocity setpoint",
      limits: axis === "vz" ? { min: 0, max: config.maxAltitudeM, maxRate } : { maxRate },
    }, { command: ["velocity"], read: ["velocity"] }, options);
    this.axis = axis;
    this.vehicle = vehicle;
  }

  protected override applyValue(_mode: ActuatorMode, value: number): void {
    this.vehicle.setAxis(this.axis, value);
  }

  protected override readValue(): number {
    return this.vehicle.bodyVelocity(this.axis);
  }

  protected override applyStop(): void {
    this.vehicle.zeroAxis(this.axis);
  }
}
