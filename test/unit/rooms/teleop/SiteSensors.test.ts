/**
 * SiteSensors over Colyseus' in-memory presence: an area alert raised or cleared becomes
 * one AreaNotice to the room and one announcement to the hall's area, never repeated
 * while it stands; beacons reach the hall once per new sighting, as a `sensors` hall
 * event the hall's zones take into their heatmaps; a bad `hall` option is refused.
 */
import { describe, expect, it } from "vitest";
import { LocalPresence } from "@colyseus/core";
import { pino } from "pino";
import type { IEnvelope, tsunagi } from "../../../../proto/index.ts";
import { ErrorCode, TELEMETRY_LIMITS, tsunagi as proto } from "../../../../proto/index.ts";
import { HallChannels, type HallEvent } from "../../../../rooms/expo/HallChannels.ts";
import { applyHallSensors } from "../../../../rooms/expo/HallSensors.ts";
import { ExpoAnalytics } from "../../../../rooms/expo/Analytics.ts";
import { SiteSensors, parseSiteHall } from "../../../../rooms/teleop/SiteSensors.ts";

const silent = pino({ level: "silent" });
const SENSORS = proto.v1.DeviceClass.DEVICE_CLASS_SENSORS;
const co2 = (value: number): tsunagi.v1.IAreaAlert => ({ area: "west-wing", kind: "co2", sensorId: "co2-1", value, threshold: 1000, raisedAtMs: 1 });

async function setup(hallId: string | undefined) {
  const presence = new LocalPresence();
  const sent: IEnvelope[] = [];
  const sensors = new SiteSensors({ roomId: "site-a", hallId, presence, broadcast: (envelope) => sent.push(envelope), logger: silent });
  const events: HallEvent[] = [];
  const zone = new HallChannels(presence, {
    hallId: hallId ?? "none", roomId: "hall-a", zoneId: "", retentionMs: 60_000,
    background: () => {}, onHandlerError: (error) => { throw error; },
  });
  await zone.onEvents((event) => events.push(event));
  return { sensors, sent, events };
}

describe("SiteSensors", () => {
  it("turns an alert's raise and clear into one notice each, and one announcement each in the hall's area", async () => {
    const { sensors, sent, events } = await setup("hall-a");
    sensors.telemetry("hall-sensors", SENSORS, { alerts: [co2(1250)] });
    sensors.telemetry("hall-sensors", SENSORS, { alerts: [co2(1300)] }); // still raised: no second notice
    sensors.telemetry("hall-sensors", SENSORS, { alerts: [] });
    expect(sent.map((e) => [e.areaNotice?.raised, e.areaNotice?.alert?.value])).toEqual([[true, 1250], [false, 1300]]);
    expect(sent[0]!.areaNotice).toMatchObject({ deviceId: "hall-sensors", alert: { area: "west-wing", kind: "co2", sensorId: "co2-1" } });
    await new Promise((resolve) => setImmediate(resolve));
    const announcements = events.filter((e) => e.type === "announce");
    expect(announcements.map((e) => e.type === "announce" && [e.announcement.areaId, e.announcement.fromName, e.from])).toEqual([
      ["west-wing", "site sensors", "site-a"], ["west-wing", "site sensors", "site-a"],
    ]);
    expect(announcements[0]!.type === "announce" && announcements[0]!.announcement.text).toMatch(/CO2 is 1250 here, over 1000/);
  });

  it("tells only its own room when it names no hall", async () => {
    const { sensors, sent, events } = await setup(undefined);
    sensors.telemetry("hall-sensors", SENSORS, { alerts: [co2(1250)], beacons: [{ beaconId: "b1", x: 1, y: 1, seenAtMs: 5 }] });
    sensors.flush();
    await new Promise((resolve) => setImmediate(resolve));
    expect(sent).toHaveLength(1);
    expect(events).toEqual([]);
  });

  it("sends each beacon sighting to the hall once, and the hall's heatmap counts it where it is", async () => {
    const { sensors, events } = await setup("hall-a");
    const fix = (seenAtMs: number, x = 12): tsunagi.v1.IBeaconFix => ({ beaconId: "c3:00:00:00:00:01", x, y: 41, area: "west-wing", seenAtMs, receivers: 2 });
    sensors.telemetry("hall-sensors", SENSORS, { beacons: [fix(100)] });
    sensors.telemetry("hall-sensors", SENSORS, { beacons: [fix(100)] }); // the same sighting, sampled again
    sensors.flush();
    sensors.flush(); // nothing new: nothing sent
    sensors.telemetry("hall-sensors", SENSORS, { beacons: [fix(1100, 13)] });
    sensors.flush();
    await new Promise((resolve) => setImmediate(resolve));
    const batches = events.filter((e): e is Extract<HallEvent, { type: "sensors" }> => e.type === "sensors");
    expect(batches.map((e) => e.sensors.beacons?.map((b) => b.x))).toEqual([[12], [13]]);
    expect(batches[0]!.sensors).toMatchObject({ deviceId: "hall-sensors", seconds: 1 });

    const analytics = new ExpoAnalytics({ hallId: "hall-a", booths: [], width: 100, height: 60, cellSize: 10 }, 0);
    const westZone = { id: "west", rect: { x: 0, y: 0, w: 50, h: 60 } };
    const eastZone = { id: "east", rect: { x: 50, y: 0, w: 50, h: 60 } };
    expect(applyHallSensors(batches[0]!.sensors, westZone as never, analytics)).toBe(1);
    expect(applyHallSensors(batches[0]!.sensors, eastZone as never, analytics)).toBe(0);
    expect(applyHallSensors({ beacons: [{ x: Number.NaN, y: 1 }], seconds: 1 }, undefined, analytics)).toBe(0);
    expect(applyHallSensors({ beacons: [{ x: 1, y: 1 }], seconds: -1 }, undefined, analytics)).toBe(0);
  });

  it("takes alerts and beacons from a sensors device only, and no more of them than TELEMETRY_LIMITS, with texts clipped", async () => {
    const { sensors, sent, events } = await setup("hall-a");
    sensors.telemetry("ex-1", proto.v1.DeviceClass.DEVICE_CLASS_EXCAVATOR, { alerts: [co2(1250)], beacons: [{ beaconId: "b", x: 1, y: 1, seenAtMs: 1 }] });
    sensors.flush();
    await new Promise((resolve) => setImmediate(resolve));
    expect(sent).toEqual([]);
    expect(events).toEqual([]);
    const many = Array.from({ length: TELEMETRY_LIMITS.alerts + 36 }, (_, i) => ({ ...co2(1250), area: `a${i}${"x".repeat(200)}` }));
    sensors.telemetry("hall-sensors", SENSORS, { alerts: many });
    const notices = sent.filter((e) => e.areaNotice);
    // the notice budget's burst stops them first; none names more than the text bound
    expect(notices.length).toBeLessThanOrEqual(TELEMETRY_LIMITS.alerts);
    expect(notices.every((e) => (e.areaNotice!.alert!.area ?? "").length <= TELEMETRY_LIMITS.textChars)).toBe(true);
  });

  it("drops notices past 5 a second (bursts of 20) from an adapter whose alerts flap", () => {
    const presence = new LocalPresence();
    const sent: IEnvelope[] = [];
    const sensors = new SiteSensors({ roomId: "site-a", hallId: undefined, presence, broadcast: (envelope) => sent.push(envelope), logger: silent });
    for (let i = 0; i < 200; i++) sensors.telemetry("hall-sensors", SENSORS, { alerts: i % 2 ? [] : [co2(1250)] });
    expect(sent.length).toBeGreaterThanOrEqual(20);
    expect(sent.length).toBeLessThan(30);
  });

  it("refuses a hall option that is not a hall id", () => {
    expect(parseSiteHall(undefined)).toBeUndefined();
    expect(parseSiteHall("hall-a")).toBe("hall-a");
    for (const bad of [42, "no spaces", "x".repeat(41), ["hall-a"], { id: "hall-a" }]) {
      expect(() => parseSiteHall(bad), JSON.stringify(bad)).toThrow(expect.objectContaining({ code: ErrorCode.WRONG_TYPE }));
    }
  });
});
