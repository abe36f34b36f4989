/** createDriver(): builds each driver by name with its options, and names the valid ones for a typo. */
import { describe, it, expect } from "vitest";
import {
  SimDrone, SimExcavator, createDriver, driverNames, isDriverName, type Driver, type DriverName,
} from "../../../../devices/drivers/index.ts";
import { FakeMqttClient } from "./mqtt-sensors/fakeMqtt.ts";

describe("createDriver", () => {
  it("builds each driver by name and passes its options through", () => {
    const excavator = createDriver("sim-excavator", { trackGaugeM: 2.1 });
    expect(excavator).toBeInstanceOf(SimExcavator);
    expect(excavator.profile().parameters.trackGaugeM).toBe(2.1);
    const drone = createDriver("sim-drone", { watchdogMs: 150 });
    expect(drone).toBeInstanceOf(SimDrone);
    expect(drone.profile().watchdogMs).toBe(150);
    expect(createDriver("sim-drone").profile().watchdogMs).toBe(200);
  });

  it("throws a TypeError listing the valid names for an unknown one", () => {
    expect(() => createDriver("sim-bulldozer" as DriverName)).toThrow(TypeError);
    expect(() => createDriver("sim-bulldozer" as DriverName)).toThrow('unknown driver "sim-bulldozer"; valid drivers: sim-excavator, sim-drone, mavlink, mqtt-sensors');
    // names that exist on every object are not drivers
    expect(() => createDriver("toString" as DriverName)).toThrow(/valid drivers/);
    expect(driverNames).toEqual(["sim-excavator", "sim-drone", "mavlink", "mqtt-sensors"]);
    expect(isDriverName("sim-drone")).toBe(true);
    expect(isDriverName("constructor")).toBe(false);
    expect(isDriverName(42)).toBe(false);
  });

  it("refuses a real device's driver without its settings, naming what is missing", () => {
    expect(() => createDriver("mavlink")).toThrow(/mavlink driver config: endpoint/);
    expect(() => createDriver("mqtt-sensors")).toThrow(/needs `site`/);
  });

  /** What each driver needs to be built without touching a network (real devices' links open in open() or init()). */
  const settings: Record<DriverName, object> = {
    "sim-excavator": {}, "sim-drone": {}, mavlink: { endpoint: "udpout:127.0.0.1:9" },
    // a stand-in for MQTT.js' connect: init() connects, and a unit test reaches no broker
    "mqtt-sensors": { site: "unit", connect: () => new FakeMqttClient() },
  };

  it.each(driverNames)("%s offers the adapter's whole surface", (name) => {
    const driver: Driver = createDriver(name, settings[name] as never);
    expect(driver.driverName).toBe(name);
    driver.init();
    driver.step(10);
    expect(driver.hal.zeroMotion().failed).toEqual([]);
    const profile = driver.profile();
    expect(JSON.parse(JSON.stringify(profile))).toStrictEqual(profile);
    // a sensors device has no axes; every machine has some
    expect(profile.axes.length > 0).toBe(profile.deviceClass !== "sensors");
    for (const axis of profile.axes) expect(() => driver.hal.actuator(axis.name)).not.toThrow();
    const telemetry = driver.telemetry();
    expect(JSON.parse(JSON.stringify(telemetry))).toStrictEqual(telemetry);
    expect(driver.finalize().failed).toEqual([]);
  });
});
