/** BatteryModel: what drains it, and each level announced once, critical answered to the caller. */
import { describe, it, expect } from "vitest";
import { BatteryModel } from "../../../../../devices/drivers/sim-drone/BatteryModel.ts";
import { defaultFlightControllerConfig } from "../../../../../devices/drivers/sim-drone/FlightConfig.ts";
import { FakeFlightEventEmitter } from "../../../../fixtures/fakes/FakeFlightEventEmitter.ts";

const config = { ...defaultFlightControllerConfig.battery, initialPct: 40, lowPct: 30, criticalPct: 15 };
const hovering = { airborne: true, armed: false, distanceM: 0 };

describe("BatteryModel", () => {
  it("drains when idling armed, more in the air, more with distance, and not at all on the ground disarmed", () => {
    const battery = new BatteryModel(config, new FakeFlightEventEmitter().emit);
    battery.drain(10, { airborne: false, armed: false, distanceM: 0 });
    expect(battery.percent).toBe(40);
    battery.drain(10, { airborne: false, armed: true, distanceM: 0 });
    expect(battery.percent).toBeCloseTo(40 - 0.2, 9);
    battery.drain(10, hovering);
    expect(battery.percent).toBeCloseTo(40 - 0.2 - 1, 9);
    battery.drain(1, { airborne: true, armed: false, distanceM: 100 });
    expect(battery.percent).toBeCloseTo(40 - 0.2 - 1 - 0.1 - 1, 9);
  });

  it("announces low, then critical, once each; answers true only when it just became critical; never below 0", () => {
    const events = new FakeFlightEventEmitter();
    const battery = new BatteryModel(config, events.emit);
    const critical: boolean[] = [];
    for (let s = 0; s < 500; s++) critical.push(battery.drain(1, hovering));
    expect(events.types()).toEqual(["battery-low", "battery-critical"]);
    expect(critical.filter(Boolean)).toHaveLength(1);
    expect(critical.indexOf(true)).toBe(249); // 40 % at 0.1 %/s reaches 15 % in the 250th second
    expect(battery.critical).toBe(true);
    expect(battery.percent).toBe(0);
    expect(battery.fault).toBe("battery-empty");
  });

  it("a step that empties it at once still announces both levels and answers critical", () => {
    const events = new FakeFlightEventEmitter();
    const battery = new BatteryModel(config, events.emit);
    expect(battery.drain(1, { airborne: true, armed: false, distanceM: 10_000 })).toBe(true);
    expect(events.types()).toEqual(["battery-low", "battery-critical"]);
    expect(battery.fault).toBe("battery-empty");
  });

  it("starts at the level of its initial charge, announcing nothing it already was", () => {
    const events = new FakeFlightEventEmitter();
    const battery = new BatteryModel({ ...config, initialPct: 20 }, events.emit);
    expect([battery.fault, battery.critical]).toEqual(["battery-low", false]);
    while (!battery.drain(1, hovering));
    expect(events.types()).toEqual(["battery-critical"]);
  });
});
