/**
 * SensorRegistry: the newest reading per sensor and kind, online until stale, offline on
 * a status or when the broker is gone, retained replays stored offline, silent sensors
 * forgotten, and the sensor bound.
 */
import { describe, expect, it } from "vitest";
import { SensorRegistry, type ReadingInput } from "../../../../../devices/drivers/mqtt-sensors/SensorRegistry.ts";

const T0 = 1_733_200_000_000;

function reading(overrides: Partial<ReadingInput> = {}): ReadingInput {
  return { sensorId: "co2-a", kind: "co2", value: 812, unit: "ppm", area: "hall-a", readAtMs: T0, heardAtMs: T0, live: true, ...overrides };
}

describe("SensorRegistry", () => {
  it("keeps the newest reading per sensor and kind", () => {
    const registry = new SensorRegistry(30_000);
    registry.record(reading());
    registry.record(reading({ kind: "temperature", value: 21.5, unit: "°C" }));
    registry.record(reading({ value: 900, heardAtMs: T0 + 1000, readAtMs: T0 + 1000 }));
    expect(registry.snapshot(T0 + 1000)).toEqual([
      { sensorId: "co2-a", kind: "co2", value: 900, unit: "ppm", area: "hall-a", readAtMs: T0 + 1000, online: true },
      { sensorId: "co2-a", kind: "temperature", value: 21.5, unit: "°C", area: "hall-a", readAtMs: T0, online: true },
    ]);
    expect(registry.size).toBe(1);
  });

  it("takes a reading offline staleMs after it arrived, and a new one brings it back", () => {
    const registry = new SensorRegistry(30_000);
    registry.record(reading());
    expect(registry.sweep(T0 + 29_999)).toEqual([]);
    expect(registry.online("hall-a", "co2")).toHaveLength(1);
    expect(registry.sweep(T0 + 30_000)).toEqual([{ area: "hall-a", kind: "co2" }]);
    expect(registry.online("hall-a", "co2")).toEqual([]);
    expect(registry.known("hall-a", "co2")).toBe(true);
    expect(registry.snapshot(T0 + 30_000)[0]!.online).toBe(false);
    registry.record(reading({ heardAtMs: T0 + 40_000 }));
    expect(registry.online("hall-a", "co2")).toHaveLength(1);
  });

  it("shows a reading stale in telemetry even before the sweep", () => {
    const registry = new SensorRegistry(30_000);
    registry.record(reading());
    expect(registry.snapshot(T0 + 30_000)[0]!.online).toBe(false);
    expect(registry.online("hall-a", "co2")).toHaveLength(1); // the sweep has not run
  });

  it("goes offline on a status, and every sensor when the broker is gone", () => {
    const registry = new SensorRegistry(30_000);
    registry.record(reading());
    registry.record(reading({ sensorId: "co2-b", area: "hall-b" }));
    expect(registry.setOffline("co2-a")).toEqual([{ area: "hall-a", kind: "co2" }]);
    expect(registry.setOffline("co2-a")).toEqual([]);
    expect(registry.setOffline("nobody")).toEqual([]);
    expect(registry.setAllOffline()).toEqual([{ area: "hall-b", kind: "co2" }]);
    expect(registry.snapshot(T0).map((r) => r.online)).toEqual([false, false]);
  });

  it("stores a retained replay offline", () => {
    const registry = new SensorRegistry(30_000);
    registry.record(reading({ live: false }));
    expect(registry.snapshot(T0)[0]).toMatchObject({ value: 812, online: false });
    expect(registry.online("hall-a", "co2")).toEqual([]);
  });

  it("moves a reading to its new area, returning both groups", () => {
    const registry = new SensorRegistry(30_000);
    registry.record(reading());
    expect(registry.record(reading({ area: "hall-b" }))).toEqual({ stored: true, groups: [{ area: "hall-b", kind: "co2" }, { area: "hall-a", kind: "co2" }] });
    expect(registry.known("hall-a", "co2")).toBe(false);
    expect(registry.online("hall-b", "co2")).toHaveLength(1);
  });

  it("lists online readings first", () => {
    const registry = new SensorRegistry(30_000);
    registry.record(reading({ sensorId: "a" }));
    registry.record(reading({ sensorId: "b" }));
    registry.setOffline("a");
    expect(registry.snapshot(T0).map((r) => r.sensorId)).toEqual(["b", "a"]);
  });

  it("forgets a sensor not heard for an hour", () => {
    const registry = new SensorRegistry(30_000, 1000, 3_600_000);
    registry.record(reading());
    registry.sweep(T0 + 60_000);
    expect(registry.size).toBe(1);
    expect(registry.sweep(T0 + 3_600_000)).toEqual([{ area: "hall-a", kind: "co2" }]);
    expect(registry.size).toBe(0);
    expect(registry.known("hall-a", "co2")).toBe(false);
  });

  it("refuses a further sensor once maxSensors are tracked, but takes their new readings", () => {
    const registry = new SensorRegistry(30_000, 2);
    expect(registry.record(reading({ sensorId: "a" })).stored).toBe(true);
    expect(registry.record(reading({ sensorId: "b" })).stored).toBe(true);
    expect(registry.record(reading({ sensorId: "c" }))).toEqual({ stored: false });
    expect(registry.record(reading({ sensorId: "a", kind: "humidity", value: 40, unit: "%" })).stored).toBe(true);
    expect(registry.size).toBe(2);
  });
});
