/** The simulated drone driver: flight controller, velocity axes and battery on the HAL. */
export { SimDrone, droneComponentIds } from "./SimDrone.ts";
export type { DroneTelemetry, SimDroneOptions } from "./SimDrone.ts";
export { SimFlightController, FlightCommandError } from "./SimFlightController.ts";
export type { FlightControllerOptions, FlightRefusal, FlightSnapshot } from "./SimFlightController.ts";
export { FlightState } from "./FlightState.ts";
export type { Position3 } from "./FlightState.ts";
export { droneAxes } from "./FlightDynamics.ts";
export type { DroneAxisName, VelocitySetpoint } from "./FlightDynamics.ts";
export { defaultFlightControllerConfig } from "./FlightConfig.ts";
export type { BatteryConfig, FlightControllerConfig } from "./FlightConfig.ts";
export { DroneAxis } from "./DroneAxis.ts";
export { BatterySensor } from "./BatterySensor.ts";
