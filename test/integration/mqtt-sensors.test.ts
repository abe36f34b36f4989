/**
 * Site and hall sensors end to end: readings and beacon sightings published on a real
 * Mosquitto, as sensors do (mosquitto_pub), through a real adapter process running the
 * mqtt-sensors driver, a real node and its rooms, to what people see:
 *
 * - the site's teleop room relays the readings as telemetry, and raises and clears an
 *   AreaNotice when CO2 crosses its threshold;
 * - the expo hall the site room names (`hall`) gets the alert as an announcement to the
 *   visitors of that area, and the beacons' positions in its heatmap;
 * - 1,000 malformed payloads are counted by the driver and change nothing else;
 * - a second sensors device on a broker of its own sees it killed: its readings go
 *   offline in the room, and come back once the broker is back.
 */
import "../../server/polyfills.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { randomUUID } from "node:crypto";
import type { MqttClient } from "mqtt";
import type { RoomSession } from "../../client-sdk/RoomSession.ts";
import type { ExpoSession } from "../../client-sdk/ExpoSession.ts";
import type { tsunagi } from "../../proto/index.ts";
import { encodeBeaconSighting } from "../../devices/drivers/mqtt-sensors/index.ts";
import { freePort, startNode, waitFor, type NodeProcess } from "../fixtures/processes.ts";
import { EnvelopeLog, enrollDevices, joinTeleop, startAdapter, telemetryOf, type AdapterProcess } from "../fixtures/teleop.ts";
import { ExpoLog, joinExpo, leaveAll, openHall, smallHall } from "../fixtures/expo.ts";
import { SHARED_BROKER, SHARED_BROKER_PORT, mosquittoPub, mqttClient, ownMosquitto, requireSharedBroker, type OwnMosquitto } from "../fixtures/mosquitto.ts";
import { deleteKeys, testRedisUrl } from "../fixtures/redis.ts";

/** Database 0: keys of this file's own cluster and hall only, deleted afterwards (no flush). */
const redisUrl = testRedisUrl();
const clusterName = `sensors-${randomUUID().slice(0, 8)}`;
const HALL = `sensor-hall-${randomUUID().slice(0, 6)}`;
const ROOM = "site-sensors";
const SENSORS = "hall-sensors";
const SPARE = "spare-sensors";
const site = `it-${randomUUID().slice(0, 8)}`;
const prefix = `tsunagi/${site}`;
const dir = mkdtempSync(path.join(tmpdir(), "tsunagi-sensors-"));
/** The west wing of the hall, where the CO2 monitor and the beacon receivers stand. */
const WEST_WING = { id: "west-wing", name: "West wing", rect: { x: 0, y: 30, w: 40, h: 30 } };

let node: NodeProcess;
let adapter: AdapterProcess;
let spareAdapter: AdapterProcess;
let spareBroker: OwnMosquitto;
let supervisor: RoomSession;
let log: EnvelopeLog;
let publisher: MqttClient;

function driverConfig(name: string, config: object): string {
  const file = path.join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify(config));
  return file;
}

function latestTelemetry(deviceId: string): tsunagi.v1.Telemetry | undefined {
  for (let i = log.envelopes.length - 1; i >= 0; i--) {
    const telemetry = telemetryOf(log.envelopes[i]!, deviceId);
    if (telemetry) return telemetry;
  }
  return undefined;
}

function reading(deviceId: string, sensorId: string): tsunagi.v1.SensorReading | undefined {
  return latestTelemetry(deviceId)?.readings.find((r) => r.sensorId === sensorId) as tsunagi.v1.SensorReading | undefined;
}

beforeAll(async () => {
  await requireSharedBroker();
  const secrets = await enrollDevices(redisUrl, clusterName, [[SENSORS, "sensors"], [SPARE, "sensors"]]);
  node = await startNode({ regionId: "jp-tokyo", redisUrl, clusterName });
  expect((await openHall(node, { ...smallHall(HALL), areas: [...smallHall(HALL).areas, WEST_WING] })).status).toBe(201);
  spareBroker = ownMosquitto(await freePort());
  await spareBroker.start();
  const sensorsConfig = {
    site, url: SHARED_BROKER,
    // the receivers' places in the hall, as the site's installer would list them
    sensors: { "rx-1": { area: WEST_WING.id, x: 10, y: 40 }, "rx-2": { area: WEST_WING.id, x: 30, y: 40 }, "co2-1": { area: WEST_WING.id, x: 20, y: 45 } },
  };
  [adapter, spareAdapter] = await Promise.all([
    startAdapter({ deviceId: SENSORS, driver: "mqtt-sensors", nodes: [node.httpUrl], secret: secrets[SENSORS], telemetryHz: 10,
      extraArgs: ["--driver-config", driverConfig(SENSORS, sensorsConfig)] }),
    startAdapter({ deviceId: SPARE, driver: "mqtt-sensors", nodes: [node.httpUrl], secret: secrets[SPARE], telemetryHz: 10,
      extraArgs: ["--driver-config", driverConfig(SPARE, { site, url: spareBroker.url })] }),
  ]);
  await Promise.all([adapter, spareAdapter].map((a) => a.waitForStatus((s) => s.state === "online", 20_000, `${a.deviceId} online`)));
  supervisor = await joinTeleop(node, ROOM, "supervisor", { devices: [SENSORS, SPARE], hall: HALL, sub: "site-supervisor" });
  log = new EnvelopeLog(supervisor);
  await waitFor(() => supervisor.deviceSnapshot(SENSORS).lease?.online && supervisor.deviceSnapshot(SPARE).lease?.online, 15_000, "both sensors devices online in the room");
  publisher = await mqttClient(SHARED_BROKER);
}, 90_000);

afterAll(async () => {
  await publisher?.endAsync().catch(() => {});
  await leaveAll();
  await supervisor?.leave().catch(() => {});
  await Promise.allSettled([adapter?.stop(2000), spareAdapter?.stop(2000)]);
  await spareBroker?.dispose();
  await node?.stop();
  rmSync(dir, { recursive: true, force: true });
  await deleteKeys(redisUrl, [`${clusterName}:*`, `expo:${HALL}:*`]);
}, 30_000);

describe("sensors over MQTT, to the site room and the hall", () => {
  it("relays readings published with mosquitto_pub as telemetry, with the sensor's place", async () => {
    await mosquittoPub(SHARED_BROKER_PORT, `${prefix}/sensors/co2-1/reading`, JSON.stringify({ kind: "co2", value: 640, unit: "ppm" }));
    await mosquittoPub(SHARED_BROKER_PORT, `${prefix}/sensors/env-1/reading`, JSON.stringify({ kind: "temperature", value: 22.5, unit: "°C", area: "east-wing", x: 80, y: 10 }));
    await waitFor(() => reading(SENSORS, "co2-1")?.online && reading(SENSORS, "env-1")?.online, 10_000, "both readings in the room's telemetry");
    expect(reading(SENSORS, "co2-1")).toMatchObject({ kind: "co2", value: 640, unit: "ppm", area: WEST_WING.id, hasPosition: true, x: 20, y: 45 });
    expect(reading(SENSORS, "env-1")).toMatchObject({ kind: "temperature", value: 22.5, unit: "°C", area: "east-wing", x: 80, y: 10 });
    expect(latestTelemetry(SENSORS)?.alerts).toEqual([]);
  }, 30_000);

  it("raises an area notice in the room and an announcement in the hall's area when CO2 crosses its threshold, and clears both", async () => {
    const visitor = await joinExpo(node, HALL, { name: "in the west wing", sub: "west-visitor" });
    const elsewhere = await joinExpo(node, HALL, { name: "at the entrance", sub: "entrance-visitor" });
    const visitorLog = new ExpoLog(visitor);
    const elsewhereLog = new ExpoLog(elsewhere);
    await walkInto(visitor, visitorLog, 20, 50);
    const from = log.length;

    await mosquittoPub(SHARED_BROKER_PORT, `${prefix}/sensors/co2-1/reading`, JSON.stringify({ kind: "co2", value: 1250, unit: "ppm" }));
    const raised = await log.next((e) => e.body === "areaNotice" && e.areaNotice!.raised === true, 10_000, "an AreaNotice raised", from);
    expect(raised.areaNotice).toMatchObject({ deviceId: SENSORS, raised: true, alert: { area: WEST_WING.id, kind: "co2", sensorId: "co2-1", value: 1250, threshold: 1000 } });
    // the telemetry holds the alert in force for anyone who looks later
    await waitFor(() => latestTelemetry(SENSORS)?.alerts.some((a) => a.area === WEST_WING.id && a.kind === "co2" && a.value === 1250), 5000, "the alert in the telemetry");
    const announced = await visitorLog.waitFor("announcement", (a) => a.areaId === WEST_WING.id && /CO2 is 1250/.test(a.text), "the CO2 announcement in the west wing", 10_000);
    expect(announced.fromName).toBe("site sensors");

    await mosquittoPub(SHARED_BROKER_PORT, `${prefix}/sensors/co2-1/reading`, JSON.stringify({ kind: "co2", value: 950, unit: "ppm" }));
    await mosquittoPub(SHARED_BROKER_PORT, `${prefix}/sensors/co2-1/reading`, JSON.stringify({ kind: "co2", value: 820, unit: "ppm" }));
    const cleared = await log.next((e) => e.body === "areaNotice" && e.areaNotice!.raised === false, 10_000, "the AreaNotice cleared", from);
    expect(cleared.areaNotice?.alert).toMatchObject({ area: WEST_WING.id, kind: "co2" });
    // 950 is within the hysteresis: one raise and one clear, not a flicker
    expect(log.envelopes.slice(from).filter((e) => e.body === "areaNotice")).toHaveLength(2);
    await visitorLog.waitFor("announcement", (a) => /back to normal/.test(a.text), "the all-clear in the west wing", 10_000);
    // a visitor outside the area is not told
    expect(elsewhereLog.of("announcement").filter((a) => a.fromName === "site sensors")).toEqual([]);
  }, 60_000);

  it("puts the beacons the receivers hear into the hall's heatmap, from the compact binary form", async () => {
    const host = await joinExpo(node, HALL, { role: "host", name: "host", sub: "sensor-host" });
    const cellOf = (report: tsunagi.v1.AnalyticsReport, x: number, y: number) => {
      const cellSize = report.heatmap!.cellSize!;
      const cols = report.heatmap!.cols!;
      return Math.floor(y / cellSize) * cols + Math.floor(x / cellSize);
    };
    const before = await host.host!.analytics();
    // two receivers hear the same two beacons; rx-1 louder: each beacon is nearer rx-1 (x 10) than rx-2 (x 30)
    const beacons = [{ id: "c3:00:00:00:00:01", rssi: -50 }, { id: "c3:00:00:00:00:02", rssi: -52 }];
    const rx1 = path.join(dir, "rx-1.bin");
    writeFileSync(rx1, encodeBeaconSighting({ x: 10, y: 40, beacons }));
    const deadline = Date.now() + 15_000;
    let heat = 0;
    // sightings keep coming, as receivers report every second or so
    while (Date.now() < deadline && heat < 2) {
      await mosquittoPub(SHARED_BROKER_PORT, `${prefix}/beacons/rx-1`, { file: rx1 }, 0);
      await publisher.publishAsync(`${prefix}/beacons/rx-2`, JSON.stringify({ beacons: beacons.map((b) => ({ ...b, rssi: b.rssi - 20 })) }), { qos: 0 });
      await new Promise((resolve) => setTimeout(resolve, 500));
      const report = await host.host!.analytics();
      const cell = cellOf(report, 11.8, 40); // 10^(rssi/20) weights: one tenth of the way from rx-1 to rx-2
      heat = (report.heatmap!.visitorSeconds![cell] ?? 0) - (before.heatmap!.visitorSeconds![cell] ?? 0);
    }
    expect(heat, "visitor-seconds the beacons added near rx-1").toBeGreaterThanOrEqual(2);
    const fixes = latestTelemetry(SENSORS)?.beacons ?? [];
    expect(fixes.map((f) => f.beaconId).sort()).toEqual(["c3:00:00:00:00:01", "c3:00:00:00:00:02"]);
    for (const fix of fixes) expect(fix).toMatchObject({ area: WEST_WING.id, receivers: 2 });
    expect(fixes[0]!.x).toBeGreaterThan(10);
    expect(fixes[0]!.x).toBeLessThan(15);
  }, 60_000);

  it("counts and ignores 1,000 malformed payloads, and the adapter and room carry on", async () => {
    const status = await adapter.status();
    const malformedBefore = malformedTotal(status.device);
    const bad = [
      (i: number) => [`${prefix}/sensors/co2-1/reading`, `{"kind":"co2","value":${i}`] as const,                 // cut-off JSON
      (i: number) => [`${prefix}/sensors/co2-1/reading`, JSON.stringify({ kind: "co2", value: "high", n: i })] as const, // wrong type
      (i: number) => [`${prefix}/sensors/co2-1/reading`, JSON.stringify({ kind: "radon", value: i })] as const,     // unknown kind
      (i: number) => [`${prefix}/sensors/co2-1/reading`, JSON.stringify({ kind: "co2", value: -5 - i })] as const,  // out of range
      (i: number) => [`${prefix}/beacons/rx-1`, Buffer.from([0x54, 1, 0, 0, 0, 0, i & 0xff])] as const,             // short binary
    ];
    for (let i = 0; i < 1000; i++) {
      const [topic, payload] = bad[i % bad.length]!(i);
      publisher.publish(topic, payload, { qos: 0 });
    }
    await mosquittoPub(SHARED_BROKER_PORT, `${prefix}/sensors/co2-1/reading`, JSON.stringify({ kind: "co2", value: 701, unit: "ppm" }));
    await waitFor(() => reading(SENSORS, "co2-1")?.value === 701, 15_000, "the good reading after the malformed ones");
    const after = await adapter.waitForStatus((s) => malformedTotal(s.device) - malformedBefore >= 1000, 15_000, "1,000 malformed payloads counted");
    expect(malformedTotal(after.device) - malformedBefore).toBe(1000);
    expect(after.state).toBe("online");
    expect(latestTelemetry(SENSORS)?.alerts).toEqual([]);
    // logged with a bound, not a line per payload
    const lines = adapter.output().split("\n").filter((line) => /malformed/i.test(line));
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.length).toBeLessThan(30);
  }, 60_000);

  it("shows a device's readings offline while its broker is down, and back after the broker restarts", async () => {
    await mosquittoPub(spareBroker.port, `${prefix}/sensors/co2-9/reading`, JSON.stringify({ kind: "co2", value: 500, area: "yard" }));
    await waitFor(() => reading(SPARE, "co2-9")?.online, 10_000, "the spare sensor online");
    await spareBroker.kill();
    await waitFor(() => reading(SPARE, "co2-9")?.online === false, 10_000, "the spare sensor offline in the room");
    expect(latestTelemetry(SPARE)?.mode).toBe("disconnected");
    await spareBroker.start();
    await spareAdapter.waitForStatus((s) => (s.device as { connects?: number } | undefined)?.connects === 2, 20_000, "the driver reconnected");
    await mosquittoPub(spareBroker.port, `${prefix}/sensors/co2-9/reading`, JSON.stringify({ kind: "co2", value: 530, area: "yard" }));
    await waitFor(() => reading(SPARE, "co2-9")?.online && reading(SPARE, "co2-9")?.value === 530, 10_000, "a new reading after the restart");
    expect(latestTelemetry(SPARE)?.mode).toBe("connected");
  }, 60_000);
});

/** Walks a visitor to (x, y) in steps the hall accepts, until it says it entered the west wing. */
async function walkInto(visitor: ExpoSession, visitorLog: ExpoLog, x: number, y: number): Promise<void> {
  const start = visitor.me;
  const steps = Math.ceil(Math.hypot(x - start.x, y - start.y) / 2);
  for (let i = 1; i <= steps; i++) {
    visitor.move(start.x + ((x - start.x) * i) / steps, start.y + ((y - start.y) * i) / steps);
    await new Promise((resolve) => setTimeout(resolve, 60));
  }
  await visitorLog.waitFor("areaEntered", (areaId) => areaId === WEST_WING.id, "the visitor in the west wing", 10_000);
}

function malformedTotal(device: object | undefined): number {
  const malformed = (device as { malformed?: Record<string, number> } | undefined)?.malformed ?? {};
  return Object.values(malformed).reduce((sum, n) => sum + n, 0);
}
