/**
 * One velocity axis of the simulated drone as a HAL actuator (vx, vy, vz or yaw-rate,
 * body frame), so the adapter commands a drone the same way as any other machine:
 * `hal.actuator("vz").setValue("velocity", 0.5)`.
 *
 * stop() zeroes the axis without ever refusing; zeroing all four (Hal.zeroMotion())
 * makes the drone hover in place, never cut its motors. See SimFlightController.zeroAxis.
 */
import { HalActuator } from "../../hal/HalActuator.ts";
import type { ActuatorMode, ComponentOptions } from "../../hal/types.ts";
import { droneAxisDescriptions, droneAxisRate, type DroneAxisName } from "../droneAxes.ts";
import type { SimFlightController } from "./SimFlightController.ts";

export class DroneAxis extends HalActuator {
  /** Which setpoint axis this actuator drives. */
  readonly axis: DroneAxisName;
  /** The vehicle that owns the setpoint; it checks flight state, link and limits. */
  private readonly controller: SimFlightController;

  constructor(axis: DroneAxisName, controller: SimFlightController, options: ComponentOptions = {}) {
    const { config } = controller;
    const maxRate = droneAxisRate(axis, { ...config, maxAltitudeM: config.geofence.maxAltitudeM });
    const { name, unit, description } = droneAxisDescriptions[axis];
    super(axis, {
      name, unit, description,
      vendor: "Tsunagi",
      model: "sim-drone-axis",
      limits: axis === "vz" ? { min: 0, max: config.geofence.maxAltitudeM, maxRate } : { maxRate },
    }, { command: ["velocity"], read: ["velocity"] }, options);
    this.axis = axis;
    this.controller = controller;
  }

  protected override applyValue(_mode: ActuatorMode, value: number): void {
    // refusals (link down, not flying) come back as FlightCommandError and leave this axis Ready
    this.controller.setAxis(this.axis, value);
  }

  protected override readValue(): number {
    return this.controller.bodyVelocity(this.axis);
  }

  protected override applyStop(): void {
    this.controller.zeroAxis(this.axis);
  }
}
