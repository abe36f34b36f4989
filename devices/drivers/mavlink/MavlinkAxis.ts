/**
 * One velocity axis of a MAVLink vehicle as a HAL actuator (vx, vy, vz or yaw-rate, body
 * frame: forward, left, up, counter-clockwise), so an operator drives a real drone
 * exactly as the simulated one: `hal.actuator("vx").setValue("velocity", 2)`.
 *
 * stop() never refuses: it zeroes the setpoint, and the vehicle's zero goes at once.
 */
import { HalActuator } from "../../hal/HalActuator.ts";
import type { ActuatorMode, ComponentOptions } from "../../hal/types.ts";
import type { MavlinkAxisName, MavlinkVehicle } from "./MavlinkVehicle.ts";

const descriptions: Record<MavlinkAxisName, { name: string; unit: string; description: string }> = {
  vx: { name: "Forward velocity", unit: "m", description: "body frame, forward positive, m/s" },
  vy: { name: "Lateral velocity", unit: "m", description: "body frame, left positive, m/s" },
  vz: { name: "Vertical velocity", unit: "m", description: "up positive, m/s" },
  "yaw-rate": { name: "Yaw rate", unit: "rad", description: "counter-clockwise positive, rad/s" },
};

export class MavlinkAxis extends HalActuator {
  readonly axis: MavlinkAxisName;
  private readonly vehicle: MavlinkVehicle;

  constructor(axis: MavlinkAxisName, vehicle: MavlinkVehicle, options: ComponentOptions = {}) {
    const { config } = vehicle;
    const maxRate = axis === "vz" ? config.maxVerticalSpeed : axis === "yaw-rate" ? config.maxYawRate : config.maxHorizontalSpeed;
    super(axis, {
      ...descriptions[axis],
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
