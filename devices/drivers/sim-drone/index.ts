/** The simulated drone driver: flight controller, velocity axes and battery on the HAL. */
export { SimDrone, droneComponentIds } from "./SimDrone.ts";
export type { DroneTelemetry, SimDroneOptions } from "./SimDrone.ts";
export {
  SimFlightController, FlightState, FlightCommandError, droneAxes, defaultFlightControllerConfig,
} from "./SimFlightController.ts";
export type {
  BatteryConfig, DroneAxisName, FlightControllerConfig, FlightControllerOptions, FlightRefusal,
  FlightSnapshot, Position3, VelocitySetpoint,
} from "./SimFlightController.ts";
export { DroneAxis } from "./DroneAxis.ts";
export { BatterySensor } from "./BatterySensor.ts";
