/**
 * Device drivers and the registry that builds them by name, as an adapter's config
 * names them.
 *
 * @example
 *   const driver = createDriver("sim-excavator", { trackGaugeM: 2.2 });
 *   driver.init();
 *   driver.start();
 *   watchdog.onExpire(() => driver.hal.zeroMotion());
 */
import { SimDrone, type SimDroneOptions } from "./sim-drone/index.ts";
import { SimExcavator, type SimExcavatorOptions } from "./sim-excavator/index.ts";
import { MavlinkDrone, type MavlinkDroneOptions } from "./mavlink/index.ts";
import { MqttSensors, type MqttSensorsOptions } from "./mqtt-sensors/index.ts";
import type { DriverName } from "./types.ts";

export * from "./sim-excavator/index.ts";
export * from "./sim-drone/index.ts";
export * from "./mavlink/index.ts";
export * from "./mqtt-sensors/index.ts";
export { SimulationLoop } from "./SimulationLoop.ts";
export type { SimulationLoopOptions } from "./SimulationLoop.ts";
export type { AxisProfile, DeviceProfile, Driver, DriverName } from "./types.ts";

export interface DriverOptions {
  "sim-excavator": SimExcavatorOptions;
  "sim-drone": SimDroneOptions;
  mavlink: MavlinkDroneOptions;
  "mqtt-sensors": MqttSensorsOptions;
}

export interface DriverInstance {
  "sim-excavator": SimExcavator;
  "sim-drone": SimDrone;
  mavlink: MavlinkDrone;
  "mqtt-sensors": MqttSensors;
}

const factories: { [N in DriverName]: (options: DriverOptions[N]) => DriverInstance[N] } = {
  "sim-excavator": (options) => new SimExcavator(options),
  "sim-drone": (options) => new SimDrone(options),
  mavlink: (options) => new MavlinkDrone(options),
  "mqtt-sensors": (options) => new MqttSensors(options),
};

/** Every name createDriver() accepts. */
export const driverNames = Object.freeze(Object.keys(factories) as DriverName[]);

export function isDriverName(name: unknown): name is DriverName {
  return typeof name === "string" && Object.hasOwn(factories, name);
}

/**
 * Builds a driver by name. Throws a TypeError naming the valid drivers for an unknown
 * one, so a typo in an adapter's config fails at start with the fix in the message.
 */
export function createDriver<N extends DriverName>(name: N, options?: DriverOptions[N]): DriverInstance[N] {
  if (!isDriverName(name)) {
    throw new TypeError(`unknown driver ${JSON.stringify(name)}; valid drivers: ${driverNames.join(", ")}`);
  }
  const factory = factories[name] as (options: DriverOptions[N]) => DriverInstance[N];
  return factory(options ?? ({} as DriverOptions[N]));
}
