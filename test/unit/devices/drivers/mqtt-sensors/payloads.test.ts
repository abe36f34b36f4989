/**
 * The sensor payloads: readings, statuses and beacon sightings (JSON and binary), good
 * ones decoded, every kind of bad one refused with its reason, and the binary codec's
 * round trip (by example and by property).
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  encodeBeaconSighting, parseReading, parseSighting, parseStatus, SIGHTING_MAGIC, type MalformedReason,
} from "../../../../../devices/drivers/mqtt-sensors/payloads.ts";
import { MAX_PAYLOAD_BYTES } from "../../../../../devices/drivers/mqtt-sensors/limits.ts";

const json = (value: unknown) => Buffer.from(typeof value === "string" ? value : JSON.stringify(value));
const reasonOf = (result: { ok: boolean; reason?: MalformedReason }) => (result.ok ? "ok" : result.reason);

describe("readings", () => {
  it("decode every kind, with the canonical unit, and the optional fields when present", () => {
    expect(parseReading(json({ kind: "co2", value: 812, unit: "ppm", area: "hall-a", x: 12.5, y: 4, ts: 1733200000000 }))).toEqual({
      ok: true, value: { kind: "co2", value: 812, unit: "ppm", area: "hall-a", x: 12.5, y: 4, ts: 1733200000000 },
    });
    expect(parseReading(json({ kind: "temperature", value: -12.5, unit: "degC" }))).toEqual({ ok: true, value: { kind: "temperature", value: -12.5, unit: "°C" } });
    expect(parseReading(json({ kind: "humidity", value: 55, unit: "%RH" }))).toMatchObject({ ok: true, value: { unit: "%" } });
    expect(parseReading(json({ kind: "noise", value: 85, unit: "dB(A)" }))).toMatchObject({ ok: true, value: { unit: "dB" } });
    expect(parseReading(json({ kind: "pm25", value: 35, unit: "μg/m³" }))).toMatchObject({ ok: true, value: { unit: "µg/m³" } });
    expect(parseReading(json({ kind: "pm25", value: 35, unit: "ug/m3" }))).toMatchObject({ ok: true, value: { unit: "µg/m³" } });
    // no unit: the kind's; unknown fields ignored; whitespace around JSON is fine
    expect(parseReading(json(' {"kind":"co2","value":0,"firmware":"1.2"} '))).toEqual({ ok: true, value: { kind: "co2", value: 0, unit: "ppm" } });
    expect(parseReading(json({ kind: "co2", value: 40_000 }))).toMatchObject({ ok: true });
  });

  it.each<[string, string | object, MalformedReason]>([
    ["not JSON", "{kind: co2}", "json"],
    ["empty", "", "json"],
    ["a JSON array", [1, 2], "json"],
    ["a JSON string", '"co2"', "json"],
    ["JSON null", "null", "json"],
    ["kind missing", { value: 812 }, "type"],
    ["kind a number", { kind: 7, value: 812 }, "type"],
    ["unknown kind", { kind: "radon", value: 12 }, "kind"],
    ["value missing", { kind: "co2" }, "type"],
    ["value a string", { kind: "co2", value: "812" }, "type"],
    ["value above the range", { kind: "co2", value: 40_001 }, "range"],
    ["value below the range", { kind: "humidity", value: -1 }, "range"],
    ["value infinite (1e400)", '{"kind":"co2","value":1e400}', "range"],
    ["unit of another kind", { kind: "co2", value: 812, unit: "°C" }, "unit"],
    ["unit a number", { kind: "co2", value: 812, unit: 1 }, "type"],
    ["area a number", { kind: "co2", value: 812, area: 3 }, "type"],
    ["area with a space", { kind: "co2", value: 812, area: "hall a" }, "id"],
    ["area too long", { kind: "co2", value: 812, area: "a".repeat(65) }, "id"],
    ["x without y", { kind: "co2", value: 812, x: 1 }, "type"],
    ["x a string", { kind: "co2", value: 812, x: "1", y: 2 }, "type"],
    ["x out of the site", { kind: "co2", value: 812, x: 1e9, y: 2 }, "range"],
    ["ts a string", { kind: "co2", value: 812, ts: "now" }, "type"],
    ["ts negative", { kind: "co2", value: 812, ts: -1 }, "range"],
  ])("refuse %s", (_name, payload, reason) => {
    expect(reasonOf(parseReading(json(payload)))).toBe(reason);
  });

  it("refuse a payload over MAX_PAYLOAD_BYTES, and bytes that are not UTF-8", () => {
    const padded = json({ kind: "co2", value: 812, pad: "x".repeat(MAX_PAYLOAD_BYTES) });
    expect(reasonOf(parseReading(padded))).toBe("oversized");
    expect(reasonOf(parseReading(Buffer.from([0x7b, 0xff, 0xfe, 0x7d])))).toBe("json");
  });

  it("never throw, whatever the bytes", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      const result = parseReading(bytes);
      expect(typeof result.ok).toBe("boolean");
    }), { numRuns: 500 });
    fc.assert(fc.property(fc.jsonValue(), (value) => {
      const result = parseReading(json(JSON.stringify(value)));
      if (result.ok) expect(Number.isFinite(result.value.value)).toBe(true);
    }), { numRuns: 500 });
  });
});

describe("statuses", () => {
  it("are online or offline, and nothing else", () => {
    expect(parseStatus(json("online"))).toEqual({ ok: true, value: "online" });
    expect(parseStatus(json("offline\n"))).toEqual({ ok: true, value: "offline" });
    expect(reasonOf(parseStatus(json("OFFLINE")))).toBe("status");
    expect(reasonOf(parseStatus(json('{"status":"offline"}')))).toBe("status");
    expect(reasonOf(parseStatus(Buffer.from([0xff])))).toBe("status");
    expect(reasonOf(parseStatus(Buffer.alloc(MAX_PAYLOAD_BYTES + 1, 0x20)))).toBe("oversized");
  });
});

describe("JSON sightings", () => {
  it("decode, lowercase MAC-style ids, and keep a beacon's strongest RSSI", () => {
    const result = parseSighting(json({
      x: 1, y: 2, area: "hall-a",
      beacons: [{ id: "C3:00:00:0A:0B:0C", rssi: -70 }, { id: "worker-17", rssi: -61 }, { id: "c3:00:00:0a:0b:0c", rssi: -65 }],
    }));
    expect(result).toEqual({
      ok: true, value: { x: 1, y: 2, area: "hall-a", beacons: [{ id: "c3:00:00:0a:0b:0c", rssi: -65 }, { id: "worker-17", rssi: -61 }] },
    });
    // position and area may come from the receiver's config instead
    expect(parseSighting(json({ beacons: [] }))).toEqual({ ok: true, value: { beacons: [] } });
  });

  it.each<[string, object | string, MalformedReason]>([
    ["beacons missing", { x: 1, y: 2 }, "type"],
    ["beacons an object", { x: 1, y: 2, beacons: {} }, "type"],
    ["65 beacons", { x: 1, y: 2, beacons: Array.from({ length: 65 }, (_, i) => ({ id: `b${i}`, rssi: -60 })) }, "beacon-count"],
    ["an entry not an object", { x: 1, y: 2, beacons: ["c3:00:00:0a:0b:0c"] }, "type"],
    ["an id not a string", { x: 1, y: 2, beacons: [{ id: 12, rssi: -60 }] }, "type"],
    ["an id with a slash", { x: 1, y: 2, beacons: [{ id: "a/b", rssi: -60 }] }, "id"],
    ["an rssi a string", { x: 1, y: 2, beacons: [{ id: "b1", rssi: "-60" }] }, "type"],
    ["an rssi of 127 (not available)", { x: 1, y: 2, beacons: [{ id: "b1", rssi: 127 }] }, "range"],
    ["an rssi below -127", { x: 1, y: 2, beacons: [{ id: "b1", rssi: -128 }] }, "range"],
    ["y without x", { y: 2, beacons: [] }, "type"],
    ["not JSON", "{beacons", "json"],
  ])("refuse %s", (_name, payload, reason) => {
    expect(reasonOf(parseSighting(json(payload)))).toBe(reason);
  });
});

describe("binary sightings", () => {
  const beacons = [{ id: "c3:00:00:0a:0b:0c", rssi: -61 }, { id: "00:11:22:33:44:ff", rssi: -90 }];

  it("follow the documented layout byte for byte", () => {
    const bytes = Buffer.from(encodeBeaconSighting({ x: 12.5, y: -4, beacons }));
    expect(bytes.length).toBe(11 + 7 * 2);
    expect(bytes[0]).toBe(0x54);
    expect(bytes[1]).toBe(1);
    expect(bytes.readFloatLE(2)).toBe(12.5);
    expect(bytes.readFloatLE(6)).toBe(-4);
    expect(bytes[10]).toBe(2);
    expect(bytes.subarray(11, 17).toString("hex")).toBe("c300000a0b0c");
    expect(bytes.readInt8(17)).toBe(-61);
    expect(bytes.subarray(18, 24).toString("hex")).toBe("0011223344ff");
    expect(bytes.readInt8(24)).toBe(-90);
  });

  it("round-trip", () => {
    expect(parseSighting(encodeBeaconSighting({ x: 12.5, y: -4, beacons }))).toEqual({ ok: true, value: { x: 12.5, y: -4, beacons } });
    expect(parseSighting(encodeBeaconSighting({ x: 0, y: 0, beacons: [] }))).toEqual({ ok: true, value: { x: 0, y: 0, beacons: [] } });
  });

  it("round-trip any sighting it can carry (property)", () => {
    const mac = fc.uint8Array({ minLength: 6, maxLength: 6 }).map((bytes) => [...bytes].map((b) => b.toString(16).padStart(2, "0")).join(":"));
    const coordinate = fc.float({ min: -100_000, max: 100_000, noNaN: true }).map((v) => Math.fround(v));
    const sighting = fc.record({
      x: coordinate, y: coordinate,
      beacons: fc.uniqueArray(fc.record({ id: mac, rssi: fc.integer({ min: -127, max: 20 }) }), { maxLength: 64, selector: (b) => b.id }),
    });
    fc.assert(fc.property(sighting, (value) => {
      const decoded = parseSighting(encodeBeaconSighting(value));
      expect(decoded).toEqual({ ok: true, value: { x: value.x, y: value.y, beacons: value.beacons } });
    }), { numRuns: 300 });
  });

  it("refuse what does not fit the layout", () => {
    const good = Buffer.from(encodeBeaconSighting({ x: 1, y: 2, beacons }));
    const withByte = (offset: number, value: number) => { const copy = Buffer.from(good); copy[offset] = value; return copy; };
    const cases: [string, Uint8Array, MalformedReason][] = [
      ["the magic alone", Buffer.from([SIGHTING_MAGIC]), "binary"],
      ["a header cut short", good.subarray(0, 10), "binary"],
      ["version 2", withByte(1, 2), "binary"],
      ["one beacon cut short", good.subarray(0, good.length - 1), "binary"],
      ["a trailing byte", Buffer.concat([good, Buffer.from([0])]), "binary"],
      ["a count above what follows", withByte(10, 3), "binary"],
      ["a count of 65", withByte(10, 65), "beacon-count"],
      ["an RSSI of 127", withByte(17, 127), "range"],
      ["x NaN", (() => { const copy = Buffer.from(good); copy.writeFloatLE(Number.NaN, 2); return copy; })(), "range"],
      ["y beyond the site", (() => { const copy = Buffer.from(good); copy.writeFloatLE(1e7, 6); return copy; })(), "range"],
      ["a first byte that is neither 'T' nor JSON", Buffer.from([0x00, 0x01]), "json"],
    ];
    for (const [name, bytes, reason] of cases) expect(reasonOf(parseSighting(bytes)), name).toBe(reason);
    expect(reasonOf(parseSighting(Buffer.concat([good, Buffer.alloc(MAX_PAYLOAD_BYTES)])))).toBe("oversized");
  });

  it("never throw, whatever follows the magic", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), (tail) => {
      const result = parseSighting(Buffer.concat([Buffer.from([SIGHTING_MAGIC]), tail]));
      expect(typeof result.ok).toBe("boolean");
    }), { numRuns: 1000 });
  });

  it("the encoder refuses what the form cannot carry", () => {
    expect(() => encodeBeaconSighting({ x: 0, y: 0, beacons: [{ id: "worker-17", rssi: -60 }] })).toThrow(/6-byte ids/);
    expect(() => encodeBeaconSighting({ x: 0, y: 0, beacons: [{ id: "c3:00:00:0a:0b:0c", rssi: -200 }] })).toThrow(/int8/);
    expect(() => encodeBeaconSighting({ x: 0, y: 0, beacons: Array.from({ length: 65 }, () => beacons[0]!) })).toThrow(/at most 64/);
  });
});
