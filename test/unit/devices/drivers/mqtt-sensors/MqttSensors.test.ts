/**
 * The MqttSensors driver without a broker: messages fed through ingest() (and a stand-in
 * MQTT client for the connection's effects) land in telemetry; alerts are raised and
 * cleared with events; staleness, statuses and a lost broker take readings offline;
 * malformed messages are counted, logged within bounds and change nothing; options are
 * checked; the Driver surface holds.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import fc from "fast-check";
import { pino } from "pino";
import { MqttSensors, encodeBeaconSighting, type MqttSensorsOptions, type SensorsChange } from "../../../../../devices/drivers/mqtt-sensors/index.ts";
import { MAX_PAYLOAD_BYTES, MAX_SENSORS } from "../../../../../devices/drivers/mqtt-sensors/limits.ts";
import { fakeConnect } from "./fakeMqtt.ts";

const T0 = 1_733_200_000_000;
const P = "tsunagi/site-7";

function driver(options: Partial<MqttSensorsOptions> = {}) {
  let now = T0;
  const lines: { level: string; fields: Record<string, unknown>; message: string }[] = [];
  const changes: SensorsChange[] = [];
  const sensors = new MqttSensors({
    site: "site-7", clock: () => now,
    logger: {
      info: (fields, message) => lines.push({ level: "info", fields: fields as Record<string, unknown>, message }),
      warn: (fields, message) => lines.push({ level: "warn", fields: fields as Record<string, unknown>, message }),
    },
    ...options,
  });
  sensors.onChange((change) => changes.push(change));
  const reading = (sensorId: string, body: object, retained = false) => sensors.ingest(`${P}/sensors/${sensorId}/reading`, Buffer.from(JSON.stringify(body)), retained);
  return { sensors, lines, changes, reading, advance: (ms: number) => { now += ms; }, now: () => now };
}

afterEach(() => {
  vi.useRealTimers();
});

describe("readings", () => {
  it("land in telemetry, with area and position from the payload or else the sensor's config", () => {
    const { sensors, reading } = driver({ sensors: { "co2-b": { area: "hall-b", x: 1, y: 2 } } });
    reading("co2-a", { kind: "co2", value: 812, unit: "ppm", area: "hall-a", x: 12.5, y: 4, ts: T0 - 500 });
    reading("co2-b", { kind: "co2", value: 640 });
    reading("co2-b", { kind: "humidity", value: 40, area: "hall-c", x: 5, y: 6 });
    reading("t-1", { kind: "temperature", value: 21, unit: "C", ts: T0 - 3_600_000 }); // a clock an hour off
    const telemetry = sensors.telemetry();
    expect(JSON.parse(JSON.stringify(telemetry))).toEqual(telemetry); // JSON-plain
    expect(telemetry.readings).toEqual([
      { sensorId: "co2-a", kind: "co2", value: 812, unit: "ppm", area: "hall-a", x: 12.5, y: 4, readAtMs: T0 - 500, online: true },
      { sensorId: "co2-b", kind: "co2", value: 640, unit: "ppm", area: "hall-b", x: 1, y: 2, readAtMs: T0, online: true },
      { sensorId: "co2-b", kind: "humidity", value: 40, unit: "%", area: "hall-c", x: 5, y: 6, readAtMs: T0, online: true },
      { sensorId: "t-1", kind: "temperature", value: 21, unit: "°C", area: "", readAtMs: T0, online: true },
    ]);
    expect(telemetry).toMatchObject({ timestamp: T0, brokerConnected: false, beacons: [], alerts: [] });
    expect(telemetry.counters).toMatchObject({ messages: 4, connects: 0, handlerErrors: 0 });
  });

  it("go offline staleMs after they arrived (step() or the timer), on an offline status, and back with a new reading", () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    const { sensors, reading, advance } = driver({ staleMs: 10_000 });
    reading("co2-a", { kind: "co2", value: 812, area: "hall-a" });
    advance(9_999);
    sensors.step(10);
    expect(sensors.telemetry().readings[0]!.online).toBe(true);
    advance(1);
    expect(sensors.telemetry().readings[0]!.online).toBe(false);
    reading("co2-a", { kind: "co2", value: 820, area: "hall-a" });
    sensors.start();
    expect(sensors.running).toBe(true);
    advance(10_000);
    vi.advanceTimersByTime(1_000);
    expect(sensors.telemetry().readings[0]).toMatchObject({ value: 820, online: false });
    sensors.stop();
    expect(sensors.running).toBe(false);
    reading("co2-a", { kind: "co2", value: 830, area: "hall-a" });
    sensors.ingest(`${P}/sensors/co2-a/status`, Buffer.from("online"));
    expect(sensors.telemetry().readings[0]!.online).toBe(true);
    sensors.ingest(`${P}/sensors/co2-a/status`, Buffer.from("offline"));
    expect(sensors.telemetry().readings[0]).toMatchObject({ value: 830, online: false });
  });

  it("a retained reading (the broker's replay) is shown offline and raises nothing", () => {
    const { sensors, reading } = driver();
    reading("co2-a", { kind: "co2", value: 5000, area: "hall-a" }, true);
    expect(sensors.telemetry().readings[0]).toMatchObject({ value: 5000, online: false });
    expect(sensors.telemetry().alerts).toEqual([]);
  });

  it(`refuses and counts readings from sensors beyond the first ${MAX_SENSORS}`, () => {
    const { sensors, reading, lines } = driver();
    for (let i = 0; i <= MAX_SENSORS; i++) reading(`s-${i}`, { kind: "humidity", value: 50 });
    expect(sensors.telemetry().readings).toHaveLength(MAX_SENSORS);
    expect(sensors.counters().refused).toEqual({ sensors: 1, beacons: 0 });
    expect(lines.filter((l) => /refused/.test(l.message))).toHaveLength(1);
  });
});

describe("area alerts", () => {
  it("raise over 1,000 ppm and clear below 900, told to listeners at once", () => {
    const { sensors, reading, changes, advance, lines } = driver();
    reading("co2-a", { kind: "co2", value: 980, area: "hall-a" });
    reading("co2-b", { kind: "co2", value: 1250, area: "hall-a" });
    expect(changes).toEqual([{ type: "alert-raised", alert: { area: "hall-a", kind: "co2", sensorId: "co2-b", value: 1250, threshold: 1000, raisedAtMs: T0 } }]);
    expect(sensors.telemetry().alerts).toEqual([{ area: "hall-a", kind: "co2", sensorId: "co2-b", value: 1250, threshold: 1000, raisedAtMs: T0 }]);
    advance(1000);
    reading("co2-b", { kind: "co2", value: 950, area: "hall-a" });
    expect(sensors.telemetry().alerts[0]).toMatchObject({ sensorId: "co2-a", value: 980 });
    reading("co2-a", { kind: "co2", value: 850, area: "hall-a" });
    reading("co2-b", { kind: "co2", value: 899, area: "hall-a" });
    expect(changes[1]).toEqual({ type: "alert-cleared", alert: { area: "hall-a", kind: "co2", sensorId: "co2-b", value: 899, threshold: 1000, raisedAtMs: T0 }, clearedAtMs: T0 + 1000 });
    expect(sensors.telemetry().alerts).toEqual([]);
    expect(sensors.counters()).toMatchObject({ alertsRaised: 1, alertsCleared: 1 });
    expect(lines.map((l) => l.message)).toEqual(['mqtt-sensors: co2 alert raised in area "hall-a"', 'mqtt-sensors: co2 alert cleared in area "hall-a"']);
  });

  it("hold while the area's sensors are offline: the driver cannot tell the air cleared", () => {
    const { sensors, reading, advance } = driver();
    reading("co2-a", { kind: "co2", value: 1500, area: "hall-a" });
    sensors.ingest(`${P}/sensors/co2-a/status`, Buffer.from("offline"));
    advance(60_000);
    sensors.step(10);
    expect(sensors.telemetry().alerts).toHaveLength(1);
    reading("co2-a", { kind: "co2", value: 700, area: "hall-a" });
    expect(sensors.telemetry().alerts).toEqual([]);
  });

  it("follow configured thresholds; a listener that throws breaks nothing", () => {
    const { sensors, reading, lines } = driver({ thresholds: { co2: null, noise: { raiseAbove: 85, clearBelow: 80 } } });
    sensors.onChange(() => { throw new Error("listener bug"); });
    reading("co2-a", { kind: "co2", value: 1500, area: "hall-a" });
    reading("mic-1", { kind: "noise", value: 90, area: "hall-a" });
    expect(sensors.telemetry().alerts).toEqual([expect.objectContaining({ kind: "noise", value: 90, threshold: 85 })]);
    expect(lines.some((l) => /listener" listener threw|"change" listener threw/.test(l.message))).toBe(true);
    expect(sensors.profile().parameters).toMatchObject({ noiseRaiseAbove: 85, noiseClearBelow: 80 });
    expect(sensors.profile().parameters.co2RaiseAbove).toBeUndefined();
  });
});

describe("beacons", () => {
  it("are fixed from JSON and binary sightings, receivers placed by payload or config", () => {
    const { sensors } = driver({ sensors: { "rx-2": { area: "hall-b", x: 10, y: 0 } } });
    sensors.ingest(`${P}/beacons/rx-1`, Buffer.from(JSON.stringify({ x: 0, y: 0, area: "hall-a", beacons: [{ id: "C3:00:00:0A:0B:0C", rssi: -60 }] })));
    sensors.ingest(`${P}/beacons/rx-2`, encodeBeaconSighting({ x: 10, y: 0, beacons: [{ id: "c3:00:00:0a:0b:0c", rssi: -60 }, { id: "00:00:00:00:00:01", rssi: -70 }] }));
    sensors.ingest(`${P}/beacons/rx-2`, Buffer.from(JSON.stringify({ beacons: [{ id: "worker-7", rssi: -50 }] })));
    const { beacons } = sensors.telemetry();
    expect(beacons).toEqual([
      { beaconId: "00:00:00:00:00:01", x: 10, y: 0, area: "hall-b", rssi: -70, seenAtMs: T0, receivers: 1 },
      { beaconId: "c3:00:00:0a:0b:0c", x: 5, y: 0, area: "hall-b", rssi: -60, seenAtMs: T0, receivers: 2 },
      { beaconId: "worker-7", x: 10, y: 0, area: "hall-b", rssi: -50, seenAtMs: T0, receivers: 1 },
    ]);
  });

  it("a receiver with no position anywhere is malformed; a retained sighting is ignored; TTL drops", () => {
    const { sensors, advance } = driver({ beaconTtlMs: 10_000 });
    sensors.ingest(`${P}/beacons/rx-9`, Buffer.from(JSON.stringify({ beacons: [{ id: "b", rssi: -50 }] })));
    expect(sensors.counters().malformed.position).toBe(1);
    sensors.ingest(`${P}/beacons/rx-1`, encodeBeaconSighting({ x: 1, y: 1, beacons: [{ id: "c3:00:00:0a:0b:0c", rssi: -60 }] }), true);
    expect(sensors.telemetry().beacons).toEqual([]);
    sensors.ingest(`${P}/beacons/rx-1`, encodeBeaconSighting({ x: 1, y: 1, beacons: [{ id: "c3:00:00:0a:0b:0c", rssi: -60 }] }));
    advance(10_000);
    expect(sensors.telemetry().beacons).toEqual([]);
  });
});

describe("malformed messages", () => {
  const garbage: [string, string | Uint8Array, string][] = [
    [`${P}/sensors/co2-a/reading`, "{not json", "json"],
    [`${P}/sensors/co2-a/reading`, JSON.stringify({ kind: "radon", value: 1 }), "kind"],
    [`${P}/sensors/co2-a/reading`, JSON.stringify({ kind: "co2", value: 99_999 }), "range"],
    [`${P}/sensors/co2-a/reading`, JSON.stringify({ kind: "co2", value: "812" }), "type"],
    [`${P}/sensors/co2-a/reading`, JSON.stringify({ kind: "co2", value: 812, unit: "%" }), "unit"],
    [`${P}/sensors/co2-a/reading`, JSON.stringify({ kind: "co2", value: 812, area: "a/b" }), "id"],
    [`${P}/sensors/co2-a/reading`, JSON.stringify({ kind: "co2", value: 812, pad: "x".repeat(MAX_PAYLOAD_BYTES) }), "oversized"],
    [`${P}/sensors/co2-a/status`, "gone", "status"],
    [`${P}/beacons/rx-1`, Buffer.from([0x54, 2, 0, 0]), "binary"],
    [`${P}/beacons/rx-1`, JSON.stringify({ x: 0, y: 0, beacons: Array.from({ length: 65 }, (_, i) => ({ id: `b${i}`, rssi: -50 })) }), "beacon-count"],
    [`${P}/sensors/a b/reading`, JSON.stringify({ kind: "co2", value: 812 }), "topic"],
    [`${P}/elsewhere`, "x", "topic"],
  ];

  it("are counted by reason, change nothing, and log at most one line per reason per 10 s", () => {
    const { sensors, reading, lines, advance } = driver();
    reading("co2-a", { kind: "co2", value: 812, area: "hall-a" });
    const before = sensors.telemetry();
    for (let round = 0; round < 10; round++) {
      for (const [topic, payload] of garbage) sensors.ingest(topic, typeof payload === "string" ? Buffer.from(payload) : payload);
    }
    const after = sensors.telemetry();
    expect(after.readings).toEqual(before.readings);
    expect(after.beacons).toEqual(before.beacons);
    const expected: Record<string, number> = {};
    for (const [, , reason] of garbage) expected[reason] = (expected[reason] ?? 0) + 10;
    expect(after.counters.malformed).toEqual(expect.objectContaining(expected));
    expect(Object.values(after.counters.malformed).reduce((a, b) => a + b, 0)).toBe(garbage.length * 10);
    expect(after.counters.messages).toBe(1 + garbage.length * 10);
    const malformedLines = lines.filter((l) => l.message === "mqtt-sensors: malformed message ignored");
    expect(malformedLines).toHaveLength(new Set(garbage.map(([, , reason]) => reason)).size);
    advance(10_000);
    sensors.ingest(`${P}/sensors/co2-a/status`, Buffer.from("gone"));
    expect(lines.at(-1)!.fields).toMatchObject({ reason: "status", suppressed: 9 });
  });

  it("never throw out of the handler, whatever the topic and bytes", () => {
    const { sensors } = driver();
    const topic = fc.oneof(
      fc.constantFrom(`${P}/sensors/s1/reading`, `${P}/sensors/s1/status`, `${P}/beacons/r1`),
      fc.string({ maxLength: 80 }).map((tail) => `${P}/${tail}`),
    );
    const payload = fc.oneof(
      fc.uint8Array({ maxLength: 200 }),
      fc.jsonValue().map((value) => Buffer.from(JSON.stringify(value) ?? "")),
      fc.uint8Array({ maxLength: 200 }).map((tail) => Buffer.concat([Buffer.from([0x54, 1]), tail])),
    );
    fc.assert(fc.property(topic, payload, (t, p) => { sensors.ingest(t, p); }), { numRuns: 2000 });
    expect(sensors.counters().handlerErrors).toBe(0);
  });
});

describe("the broker connection, through a stand-in client", () => {
  it("marks every reading offline while disconnected, tells listeners, counts connects and reconnects", async () => {
    const fake = fakeConnect();
    const { sensors, changes, reading } = driver({ connect: fake.connect, deviceId: "hall-sensors" });
    sensors.init();
    expect(fake.calls[0]!.options.clientId).toMatch(/^tsunagi-hall-sensors-[0-9a-f]+$/);
    fake.client.up();
    await new Promise((resolve) => setImmediate(resolve));
    expect(sensors.brokerConnected).toBe(true);
    expect(sensors.mode()).toBe("connected");
    fake.client.deliver(`${P}/sensors/co2-a/reading`, JSON.stringify({ kind: "co2", value: 1200, area: "hall-a" }));
    expect(sensors.telemetry().readings[0]).toMatchObject({ value: 1200, online: true });
    fake.client.drop();
    expect(sensors.telemetry()).toMatchObject({ brokerConnected: false, readings: [{ online: false }], alerts: [{ value: 1200 }] });
    expect(sensors.mode()).toBe("disconnected");
    fake.client.up();
    await new Promise((resolve) => setImmediate(resolve));
    reading("co2-a", { kind: "co2", value: 700, area: "hall-a" });
    expect(changes.map((c) => c.type)).toEqual(["broker-connected", "alert-raised", "broker-disconnected", "broker-connected", "alert-cleared"]);
    expect(sensors.counters()).toMatchObject({ connects: 2, reconnects: 1, disconnects: 1 });
    await sensors.close();
    expect(changes.at(-1)).toEqual({ type: "broker-disconnected", reason: "finalized" });
    expect(sensors.brokerConnected).toBe(false);
    fake.client.deliver(`${P}/sensors/co2-a/reading`, JSON.stringify({ kind: "co2", value: 1500, area: "hall-a" }));
    expect(sensors.telemetry().alerts).toEqual([]); // nothing after finalize
    expect(() => sensors.init()).toThrow(/after finalize/);
  });
});

describe("the Driver surface", () => {
  it("a sensors profile without axes, nothing to stop, JSON-plain", () => {
    const { sensors } = driver();
    const profile = sensors.profile();
    expect(profile).toMatchObject({ driver: "mqtt-sensors", deviceClass: "sensors", axes: [], watchdogMs: 2000, stepHz: 1 });
    expect(profile.parameters).toMatchObject({ staleMs: 30_000, beaconTtlMs: 30_000, co2RaiseAbove: 1000, co2ClearBelow: 900 });
    expect(JSON.parse(JSON.stringify(profile))).toEqual(profile);
    expect(sensors.hal.zeroMotion()).toEqual({ stopped: [], skipped: [], failed: [] });
    expect(sensors.finalize()).toEqual({ finalized: [], failed: [] });
    expect(() => sensors.step(0)).toThrow(/step\(dtMs\)/);
  });

  it("takes a pino logger as it is", () => {
    const sensors = new MqttSensors({ site: "a", logger: pino({ level: "silent" }) });
    expect(() => sensors.ingest("tsunagi/a/elsewhere", Buffer.from("x"))).not.toThrow();
    expect(sensors.counters().malformed.topic).toBe(1);
  });

  it.each<[string, MqttSensorsOptions, RegExp]>([
    ["no site nor prefix", {}, /needs `site`.*or `prefix`/],
    ["both site and prefix", { site: "a", prefix: "b" }, /not both/],
    ["a bad site", { site: "a/b" }, /site must match/],
    ["a prefix with a wildcard", { prefix: "x/+" }, /every "\/"-separated level/],
    ["a URL of another scheme", { site: "a", url: "http://127.0.0.1:1883" }, /url must be mqtt:/],
    ["no URL at all", { site: "a", url: "broker" }, /not a URL/],
    ["a password without a username", { site: "a", password: "p" }, /needs a username/],
    ["staleMs too short", { site: "a", staleMs: 10 }, /staleMs must be a number of ms within 1000-3600000/],
    ["beaconTtlMs below the window", { site: "a", beaconTtlMs: 1000 }, /beaconTtlMs must be a number of ms within 5000/],
    ["a bad sensor id", { site: "a", sensors: { "a b": {} } }, /a sensor id must match/],
    ["a sensor with x alone", { site: "a", sensors: { s: { x: 1 } } }, /both x and y/],
    ["a bad device id", { site: "a", deviceId: "a:b" }, /deviceId must match/],
    ["a logger without info", { site: "a", logger: { warn: () => {} } as never }, /logger must have info/],
    ["bad thresholds", { site: "a", thresholds: { co2: { raiseAbove: 900, clearBelow: 950 } } }, /clearBelow 950 is above raiseAbove 900/],
  ])("refuses options with %s, saying what to change", (_name, options, message) => {
    expect(() => new MqttSensors(options)).toThrow(message);
  });
});
