/**
 * The MQTT sensors driver against real Mosquitto brokers: the shared one on
 * 127.0.0.1:1883 (under a random prefix per run, so parallel runs do not meet), and one
 * of this test's own on a free loopback port, killed and started again.
 *
 * Readings, statuses and sightings published with mosquitto_pub land in telemetry; a
 * retained reading is shown offline; a sensor's last will takes it offline; a CO2
 * reading over the threshold raises an area alert and one below the clear level clears
 * it; 1,000 malformed payloads (published with MQTT.js, every kind) are counted and
 * ignored, a payload over the packet bound never reaches the driver, and a good reading
 * after them all still lands; a broker killed with SIGKILL takes every reading offline,
 * and once it is back the driver reconnects, subscribes again and takes new readings.
 *
 * Every wait is on a condition with a deadline; every process and client is ended in afterAll.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { MqttClient } from "mqtt";
import { MqttSensors, encodeBeaconSighting, type SensorsChange } from "../../devices/drivers/mqtt-sensors/index.ts";
import { MAX_PAYLOAD_BYTES } from "../../devices/drivers/mqtt-sensors/limits.ts";
import { freePort, waitFor } from "../fixtures/processes.ts";
import { SHARED_BROKER, mosquittoPub, mqttClient, ownMosquitto, requireSharedBroker, type OwnMosquitto } from "../fixtures/mosquitto.ts";

const dir = mkdtempSync(path.join(tmpdir(), "tsunagi-mqtt-sensors-"));

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Lines the driver logs, for the assertions on its log bound and for failure messages. */
function collectingLogger() {
  const lines: { level: string; fields: Record<string, unknown>; message: string }[] = [];
  const add = (level: string) => (fields: object, message: string) => void lines.push({ level, fields: fields as Record<string, unknown>, message });
  return { lines, logger: { info: add("info"), warn: add("warn") } };
}

const malformedTotal = (sensors: MqttSensors) => Object.values(sensors.counters().malformed).reduce((sum, n) => sum + n, 0);

describe("MqttSensors on the shared Mosquitto (127.0.0.1:1883)", () => {
  const prefix = `tsunagi-test/${randomUUID().slice(0, 8)}`;
  const { lines, logger } = collectingLogger();
  const changes: SensorsChange[] = [];
  let sensors: MqttSensors;
  let publisher: MqttClient | undefined;

  beforeAll(async () => {
    await requireSharedBroker();
    publisher = await mqttClient(SHARED_BROKER);
    // what a sensor said before the driver was there: the broker replays it on subscribing
    await publisher.publishAsync(`${prefix}/sensors/old-1/reading`, JSON.stringify({ kind: "co2", value: 3000, area: "hall-z" }), { qos: 1, retain: true });
    sensors = new MqttSensors({ prefix, url: SHARED_BROKER, deviceId: "it-sensors", logger, sensors: { "rx-2": { area: "hall-b", x: 10, y: 0 } } });
    sensors.onChange((change) => changes.push(change));
    sensors.init();
    sensors.start();
    await waitFor(() => sensors.brokerConnected, 10_000, "the driver connected and subscribed");
  }, 30_000);

  afterAll(async () => {
    await sensors?.close();
    // an empty retained message deletes the retained one
    await publisher?.publishAsync(`${prefix}/sensors/old-1/reading`, "", { qos: 1, retain: true });
    await publisher?.endAsync();
  }, 20_000);

  it("shows a retained reading (the broker's replay) offline, raising nothing", async () => {
    const old = await waitFor(() => sensors.telemetry().readings.find((r) => r.sensorId === "old-1"), 10_000, "the retained reading");
    expect(old).toMatchObject({ value: 3000, online: false });
    expect(sensors.telemetry().alerts).toEqual([]);
  }, 20_000);

  it("takes a sensor offline when its last will (status offline) arrives", async () => {
    const sensor = await mqttClient(SHARED_BROKER, { will: { topic: `${prefix}/sensors/will-1/status`, payload: Buffer.from("offline"), qos: 1, retain: false } });
    try {
      await sensor.publishAsync(`${prefix}/sensors/will-1/reading`, JSON.stringify({ kind: "noise", value: 62, area: "hall-a" }), { qos: 1 });
      await waitFor(() => sensors.telemetry().readings.find((r) => r.sensorId === "will-1")?.online, 10_000, "will-1 online");
      sensor.stream.destroy(); // gone without a DISCONNECT: the broker publishes the will
      await waitFor(() => sensors.telemetry().readings.find((r) => r.sensorId === "will-1")?.online === false, 10_000, "will-1 offline on its will");
    } finally {
      sensor.end(true);
    }
  }, 20_000);

  it("takes readings, statuses and sightings published with mosquitto_pub into telemetry", async () => {
    await mosquittoPub(1883, `${prefix}/sensors/co2-a/reading`, JSON.stringify({ kind: "co2", value: 812, unit: "ppm", area: "hall-a", x: 12.5, y: 4 }));
    await mosquittoPub(1883, `${prefix}/sensors/env-1/reading`, JSON.stringify({ kind: "temperature", value: 21.5, unit: "°C", area: "hall-a" }));
    await mosquittoPub(1883, `${prefix}/beacons/rx-1`, JSON.stringify({ x: 0, y: 0, area: "hall-a", beacons: [{ id: "c3:00:00:0a:0b:0c", rssi: -60 }] }), 0);
    const binary = path.join(dir, "sighting.bin");
    writeFileSync(binary, encodeBeaconSighting({ x: 10, y: 0, beacons: [{ id: "c3:00:00:0a:0b:0c", rssi: -60 }] }));
    await mosquittoPub(1883, `${prefix}/beacons/rx-2`, { file: binary }, 0);
    const telemetry = await waitFor(() => {
      const t = sensors.telemetry();
      return t.readings.some((r) => r.sensorId === "env-1") && t.readings.some((r) => r.sensorId === "co2-a") && t.beacons[0]?.receivers === 2 && t;
    }, 10_000, "two readings and a beacon heard by two receivers");
    expect(telemetry.readings.filter((r) => r.sensorId === "co2-a" || r.sensorId === "env-1")).toEqual([
      { sensorId: "co2-a", kind: "co2", value: 812, unit: "ppm", area: "hall-a", x: 12.5, y: 4, readAtMs: expect.any(Number), online: true },
      { sensorId: "env-1", kind: "temperature", value: 21.5, unit: "°C", area: "hall-a", readAtMs: expect.any(Number), online: true },
    ]);
    expect(telemetry.beacons).toEqual([{ beaconId: "c3:00:00:0a:0b:0c", x: 5, y: 0, area: expect.stringMatching(/^hall-[ab]$/), rssi: -60, seenAtMs: expect.any(Number), receivers: 2 }]);
    expect(telemetry.brokerConnected).toBe(true);
    await mosquittoPub(1883, `${prefix}/sensors/env-1/status`, "offline");
    await waitFor(() => sensors.telemetry().readings.find((r) => r.sensorId === "env-1")?.online === false, 10_000, "env-1 offline on its status");
  }, 30_000);

  it("raises a CO2 alert over 1,000 ppm and clears it below 900 ppm, telling listeners", async () => {
    await mosquittoPub(1883, `${prefix}/sensors/co2-a/reading`, JSON.stringify({ kind: "co2", value: 1350, area: "hall-a" }));
    const raised = await waitFor(() => changes.find((c) => c.type === "alert-raised"), 10_000, "the alert raised");
    expect(raised).toEqual({ type: "alert-raised", alert: { area: "hall-a", kind: "co2", sensorId: "co2-a", value: 1350, threshold: 1000, raisedAtMs: expect.any(Number) } });
    expect(sensors.telemetry().alerts).toEqual([raised.type === "alert-raised" && raised.alert]);
    await mosquittoPub(1883, `${prefix}/sensors/co2-a/reading`, JSON.stringify({ kind: "co2", value: 950, area: "hall-a" }));
    await waitFor(() => sensors.telemetry().readings.find((r) => r.kind === "co2")?.value === 950, 10_000, "the 950 ppm reading");
    expect(sensors.telemetry().alerts).toHaveLength(1); // between the levels: held
    await mosquittoPub(1883, `${prefix}/sensors/co2-a/reading`, JSON.stringify({ kind: "co2", value: 850, area: "hall-a" }));
    await waitFor(() => changes.find((c) => c.type === "alert-cleared"), 10_000, "the alert cleared");
    expect(sensors.telemetry().alerts).toEqual([]);
    expect(sensors.counters()).toMatchObject({ alertsRaised: 1, alertsCleared: 1 });
  }, 30_000);

  it("counts and ignores 1,000 malformed payloads of every kind; a good reading after them lands", async () => {
    const before = sensors.telemetry();
    const baseline = malformedTotal(sensors);
    const linesBefore = lines.length;
    const bad: ((i: number) => [string, string | Buffer])[] = [
      (i) => [`${prefix}/sensors/co2-a/reading`, `{"kind":"co2","value":${i}`],
      (i) => [`${prefix}/sensors/co2-a/reading`, JSON.stringify({ kind: "radon", value: i })],
      (i) => [`${prefix}/sensors/co2-a/reading`, JSON.stringify({ kind: "co2", value: 40_001 + i })],
      (i) => [`${prefix}/sensors/co2-a/reading`, JSON.stringify({ kind: "co2", value: String(i) })],
      () => [`${prefix}/sensors/co2-a/reading`, JSON.stringify({ kind: "co2", value: 500, unit: "°C" })],
      () => [`${prefix}/sensors/co2-a/reading`, JSON.stringify({ kind: "co2", value: 500, pad: "x".repeat(MAX_PAYLOAD_BYTES) })],
      () => [`${prefix}/sensors/co2-a/reading`, Buffer.from([0xff, 0xfe, 0x00])],
      (i) => [`${prefix}/sensors/${"s".repeat(65)}/reading`, JSON.stringify({ kind: "co2", value: i })],
      () => [`${prefix}/sensors/co2-a/status`, "maybe"],
      () => [`${prefix}/beacons/rx-1`, Buffer.from([0x54, 1, 0, 0, 0])],
      () => [`${prefix}/beacons/rx-1`, Buffer.from([0x54, 9, ...Buffer.alloc(9)])],
      () => [`${prefix}/beacons/rx-1`, JSON.stringify({ x: 0, y: 0, beacons: [{ id: "b/1", rssi: -50 }] })],
      () => [`${prefix}/beacons/rx-9`, JSON.stringify({ beacons: [{ id: "b1", rssi: -50 }] })],
    ];
    const started = Date.now();
    for (let chunk = 0; chunk < 1000; chunk += 50) {
      await Promise.all(Array.from({ length: 50 }, (_, j) => {
        const [topic, payload] = bad[(chunk + j) % bad.length]!(chunk + j);
        return publisher!.publishAsync(topic, payload, { qos: 1 });
      }));
    }
    // bigger than the driver's packet bound (MQTT 5 Maximum Packet Size): the broker never sends it
    await publisher!.publishAsync(`${prefix}/sensors/co2-a/reading`, Buffer.alloc(100 * 1024, 0x20), { qos: 1 });
    await waitFor(() => malformedTotal(sensors) >= baseline + 1000, 15_000, "1,000 malformed payloads counted");
    await publisher!.publishAsync(`${prefix}/sensors/co2-a/reading`, JSON.stringify({ kind: "co2", value: 777, area: "hall-a" }), { qos: 1 });
    await waitFor(() => sensors.telemetry().readings.find((r) => r.sensorId === "co2-a")?.value === 777, 10_000, "the good reading after the malformed ones");
    const elapsedMs = Date.now() - started;
    const after = sensors.telemetry();
    expect(malformedTotal(sensors)).toBe(baseline + 1000); // the 100 KiB one never arrived
    expect(after.counters.malformed).toMatchObject({ json: expect.any(Number), kind: expect.any(Number), range: expect.any(Number), type: expect.any(Number), unit: expect.any(Number), oversized: expect.any(Number), topic: expect.any(Number), status: expect.any(Number), binary: expect.any(Number), id: expect.any(Number), position: expect.any(Number) });
    for (const reason of ["json", "kind", "range", "type", "unit", "oversized", "topic", "status", "binary", "id", "position"] as const) {
      expect(after.counters.malformed[reason], reason).toBeGreaterThan(0);
    }
    expect(after.counters.handlerErrors).toBe(0);
    expect(after.counters.disconnects).toBe(0);
    expect(after.brokerConnected).toBe(true);
    // nothing malformed changed the picture: only the good reading did
    expect(after.readings.filter((r) => r.sensorId !== "co2-a")).toEqual(before.readings.filter((r) => r.sensorId !== "co2-a"));
    expect(after.beacons.map((b) => b.beaconId)).toEqual(before.beacons.map((b) => b.beaconId));
    // the log is bounded: at most one line per reason within 10 s
    const malformedLines = lines.slice(linesBefore).filter((l) => l.message === "mqtt-sensors: malformed message ignored");
    expect(malformedLines.length).toBeLessThanOrEqual(elapsedMs < 10_000 ? 12 : 24);
    console.log(`1,000 malformed + 1 good through the shared broker in ${elapsedMs} ms; ${malformedLines.length} log lines`);
  }, 40_000);
});

describe("MqttSensors when its broker dies and comes back", () => {
  const prefix = `tsunagi-test/${randomUUID().slice(0, 8)}`;
  const { lines, logger } = collectingLogger();
  const changes: SensorsChange[] = [];
  let broker: OwnMosquitto;
  let sensors: MqttSensors;

  beforeAll(async () => {
    broker = ownMosquitto(await freePort());
    await broker.start();
    sensors = new MqttSensors({ prefix, url: `mqtt://127.0.0.1:${broker.port}`, deviceId: "it-restart", logger });
    sensors.onChange((change) => changes.push(change));
    sensors.init();
    sensors.start();
    await waitFor(() => sensors.brokerConnected, 10_000, "the driver connected to its own broker");
  }, 30_000);

  afterAll(async () => {
    await sensors?.close();
    await broker?.dispose();
  }, 20_000);

  it("goes offline on SIGKILL, reconnects when the broker is back, subscribes again and takes new readings", async () => {
    const { port } = broker;
    await mosquittoPub(port, `${prefix}/sensors/co2-a/reading`, JSON.stringify({ kind: "co2", value: 1200, area: "hall-a" }));
    await mosquittoPub(port, `${prefix}/sensors/hum-1/reading`, JSON.stringify({ kind: "humidity", value: 45, area: "hall-a" }));
    await waitFor(() => sensors.telemetry().readings.filter((r) => r.online).length === 2, 10_000, "two readings online");
    expect(sensors.telemetry().alerts).toHaveLength(1);

    const killedAt = Date.now();
    await broker.kill();
    await waitFor(() => !sensors.brokerConnected, 10_000, "the driver to notice the broker gone");
    const noticedMs = Date.now() - killedAt;
    const down = sensors.telemetry();
    expect(down.brokerConnected).toBe(false);
    expect(down.readings.map((r) => r.online)).toEqual([false, false]);
    expect(down.alerts).toHaveLength(1); // held: the driver cannot tell the air cleared
    expect(sensors.mode()).toBe("disconnected");
    expect(changes.filter((c) => c.type === "broker-disconnected")).toHaveLength(1);

    // down for a while, so several attempts fail and the backoff grows
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const restartedAt = Date.now();
    await broker.start();
    await waitFor(() => sensors.brokerConnected, 20_000, "the driver reconnected and subscribed", 20);
    const reconnectMs = Date.now() - restartedAt;
    expect(sensors.counters()).toMatchObject({ connects: 2, reconnects: 1, disconnects: 1 });

    await mosquittoPub(port, `${prefix}/sensors/co2-a/reading`, JSON.stringify({ kind: "co2", value: 700, area: "hall-a" }));
    await waitFor(() => sensors.telemetry().readings.find((r) => r.sensorId === "co2-a")?.online, 10_000, "a new reading after the restart");
    expect(sensors.telemetry().readings).toEqual([
      expect.objectContaining({ sensorId: "co2-a", value: 700, online: true }),
      expect.objectContaining({ sensorId: "hum-1", value: 45, online: false }),
    ]);
    expect(sensors.telemetry().alerts).toEqual([]);
    expect(changes.map((c) => c.type)).toEqual(["broker-connected", "alert-raised", "broker-disconnected", "broker-connected", "alert-cleared"]);
    expect(lines.some((l) => l.message.startsWith("mqtt-sensors: broker connection lost"))).toBe(true);
    console.log(`broker SIGKILL noticed in ${noticedMs} ms; reconnected ${reconnectMs} ms after the broker was back`);
  }, 60_000);
});

describe("MqttSensors with no broker at all", () => {
  it("keeps trying without flooding its log, shows nothing connected, and closes at once", async () => {
    const { lines, logger } = collectingLogger();
    const sensors = new MqttSensors({ prefix: `tsunagi-test/${randomUUID().slice(0, 8)}`, url: `mqtt://127.0.0.1:${await freePort()}`, logger });
    sensors.init();
    sensors.start();
    // attempts at 0, ~0.5, ~1.5 s: refused each time
    await new Promise((resolve) => setTimeout(resolve, 1_800));
    expect(sensors.telemetry()).toMatchObject({ brokerConnected: false, readings: [], counters: { connects: 0, disconnects: 0 } });
    expect(sensors.mode()).toBe("disconnected");
    const errorLines = lines.filter((l) => l.message === "mqtt-sensors: broker connection error");
    expect(errorLines).toHaveLength(1);
    expect(errorLines[0]!.fields.err).toMatch(/ECONNREFUSED/);
    const closing = Date.now();
    await sensors.close();
    expect(Date.now() - closing).toBeLessThan(1_000);
  }, 20_000);
});
