/**
 * AreaAlerts: raise above the raise level, clear below the clear level, hold in between
 * (hysteresis); the worst sensor decides; an area without online sensors holds its alert
 * until its sensors are gone; thresholds are checked.
 */
import { describe, expect, it } from "vitest";
import { AreaAlerts, resolveThresholds } from "../../../../../devices/drivers/mqtt-sensors/AreaAlerts.ts";

const T0 = 1_733_200_000_000;
const at = (sensorId: string, value: number) => ({ sensorId, value });

describe("AreaAlerts", () => {
  it("raises over 1,000 ppm CO2, holds in between and clears below 900 (the defaults)", () => {
    const alerts = new AreaAlerts({});
    expect(alerts.evaluate("hall-a", "co2", [at("a", 1000)], true, T0)).toBeUndefined(); // over, not at
    expect(alerts.evaluate("hall-a", "co2", [at("a", 1001)], true, T0 + 1)).toEqual({
      type: "raised", alert: { area: "hall-a", kind: "co2", sensorId: "a", value: 1001, threshold: 1000, raisedAtMs: T0 + 1 },
    });
    expect(alerts.evaluate("hall-a", "co2", [at("a", 1200)], true, T0 + 2)).toBeUndefined();
    expect(alerts.evaluate("hall-a", "co2", [at("a", 950)], true, T0 + 3)).toBeUndefined();
    expect(alerts.evaluate("hall-a", "co2", [at("a", 900)], true, T0 + 4)).toBeUndefined(); // below, not at
    expect(alerts.active()).toEqual([{ area: "hall-a", kind: "co2", sensorId: "a", value: 900, threshold: 1000, raisedAtMs: T0 + 1 }]);
    expect(alerts.evaluate("hall-a", "co2", [at("a", 899)], true, T0 + 5)).toEqual({
      type: "cleared", alert: { area: "hall-a", kind: "co2", sensorId: "a", value: 899, threshold: 1000, raisedAtMs: T0 + 1 }, clearedAtMs: T0 + 5,
    });
    expect(alerts.active()).toEqual([]);
    // and no flapping on the way back up until over the raise level again
    expect(alerts.evaluate("hall-a", "co2", [at("a", 990)], true, T0 + 6)).toBeUndefined();
  });

  it("names the worst sensor of the area, and follows it while raised", () => {
    const alerts = new AreaAlerts({});
    expect(alerts.evaluate("hall-a", "co2", [at("a", 800), at("b", 1500), at("c", 1100)], true, T0)).toMatchObject({ alert: { sensorId: "b", value: 1500 } });
    alerts.evaluate("hall-a", "co2", [at("a", 800), at("b", 700), at("c", 1100)], true, T0 + 1);
    expect(alerts.active()[0]).toMatchObject({ sensorId: "c", value: 1100 });
    // one sensor still above the clear level keeps it raised
    expect(alerts.evaluate("hall-a", "co2", [at("a", 800), at("b", 700), at("c", 901)], true, T0 + 2)).toBeUndefined();
    expect(alerts.evaluate("hall-a", "co2", [at("a", 800), at("b", 700), at("c", 850)], true, T0 + 3)).toMatchObject({ type: "cleared" });
  });

  it("keeps areas and kinds apart", () => {
    const alerts = new AreaAlerts({ noise: { raiseAbove: 85, clearBelow: 80 } });
    alerts.evaluate("hall-a", "co2", [at("a", 1500)], true, T0);
    alerts.evaluate("hall-b", "noise", [at("n", 90)], true, T0);
    expect(alerts.evaluate("hall-b", "co2", [at("b", 500)], true, T0)).toBeUndefined();
    expect(alerts.evaluate("hall-a", "temperature", [at("t", 99)], true, T0)).toBeUndefined();
    expect(alerts.active().map((a) => `${a.area}/${a.kind}`)).toEqual(["hall-a/co2", "hall-b/noise"]);
    expect(alerts.watches("temperature")).toBe(false);
  });

  it("holds an alert while the area has no online sensor of the kind, and clears it once none is left", () => {
    const alerts = new AreaAlerts({});
    alerts.evaluate("hall-a", "co2", [at("a", 1500)], true, T0);
    expect(alerts.evaluate("hall-a", "co2", [], true, T0 + 1)).toBeUndefined();
    expect(alerts.active()[0]).toMatchObject({ sensorId: "a", value: 1500 });
    expect(alerts.evaluate("hall-a", "co2", [], false, T0 + 2)).toMatchObject({ type: "cleared", alert: { sensorId: "a", value: 1500 }, clearedAtMs: T0 + 2 });
  });

  it("takes thresholds over the defaults, null switches one off, and bad ones are refused with the fix", () => {
    expect(resolveThresholds({ co2: null }).size).toBe(0);
    expect([...resolveThresholds({ pm25: { raiseAbove: 35, clearBelow: 25 } })]).toEqual([
      ["co2", { raiseAbove: 1000, clearBelow: 900 }], ["pm25", { raiseAbove: 35, clearBelow: 25 }],
    ]);
    expect(() => resolveThresholds({ co2: { raiseAbove: 900, clearBelow: 1000 } })).toThrow(/clearBelow 1000 is above raiseAbove 900/);
    expect(() => resolveThresholds({ co2: { raiseAbove: Number.NaN, clearBelow: 900 } })).toThrow(/raiseAbove must be a number within 0-40000 ppm/);
    expect(() => resolveThresholds({ humidity: { raiseAbove: 120, clearBelow: 90 } })).toThrow(/within 0-100 %/);
    expect(() => resolveThresholds({ radon: { raiseAbove: 1, clearBelow: 0 } } as never)).toThrow(/unknown kind "radon"/);
  });
});
