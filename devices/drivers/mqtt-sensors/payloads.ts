/**
 * The payloads of site and hall sensors (topics in topics.ts), decoded and checked in
 * full before anything is used, so a malformed message changes nothing. Each decoder
 * returns a value or the reason it was refused; none throws.
 *
 * Reading (`…/sensors/<sensorId>/reading`), a JSON object; unknown fields are ignored:
 *
 * | field   | type   | required | meaning                                                        |
 * |---------|--------|----------|----------------------------------------------------------------|
 * | `kind`  | string | yes      | co2, temperature, humidity, noise or pm25 (limits.ts)          |
 * | `value` | number | yes      | finite, within the kind's plausible range                      |
 * | `unit`  | string | no       | the kind's unit or an alias (°C or C or degC); absent: implied |
 * | `area`  | string | no       | area id; absent: from the sensor's config, else "" (unassigned)|
 * | `x`,`y` | number | no       | position, metres, site frame; both or neither                  |
 * | `ts`    | number | no       | when measured, ms since the epoch                              |
 *
 * Status (`…/sensors/<sensorId>/status`): the text `online` or `offline`.
 *
 * Beacon sighting (`…/beacons/<receiverId>`), one fixed receiver's scan. A first byte of
 * 0x54 ('T') is the binary form; anything else is parsed as JSON:
 *
 *   {"x": 12.5, "y": 4, "area": "hall-a", "beacons": [{"id": "c3:00:00:0a:0b:0c", "rssi": -61}]}
 *
 * where x, y (metres, both or neither) and area may instead come from the receiver's
 * config, `beacons` holds at most 64 entries, `id` matches ID_PATTERN and `rssi` is in
 * dBm, -127 to 20. The binary form, all of it little-endian:
 *
 * | offset   | size | field                                                         |
 * |----------|------|---------------------------------------------------------------|
 * | 0        | 1    | magic 0x54 ('T')                                              |
 * | 1        | 1    | version, 1                                                    |
 * | 2        | 4    | receiver x, float32 LE, metres, site frame                    |
 * | 6        | 4    | receiver y, float32 LE, metres, site frame                    |
 * | 10       | 1    | n, beacons that follow, 0-64                                  |
 * | 11 + 7i  | 6    | beacon i's id, in written order: c3:00:00:0a:0b:0c is C3 00 00 0A 0B 0C (BLE controllers report addresses reversed) |
 * | 17 + 7i  | 1    | beacon i's RSSI, int8, dBm                                    |
 *
 * The message is exactly 11 + 7n bytes. A binary id reads as lowercase hex pairs joined
 * by ':'; a JSON id of that form is lowercased too, so both name the same beacon. A beacon
 * listed twice in one sighting keeps its strongest RSSI.
 *
 * @example
 *   const reading = parseReading(Buffer.from('{"kind":"co2","value":812,"unit":"ppm"}'));
 *   if (reading.ok) reading.value.value;              // 812
 *   else reading.reason;                              // "json", "kind", "range", …
 *   const bytes = encodeBeaconSighting({ x: 1, y: 2, beacons: [{ id: "c3:00:00:0a:0b:0c", rssi: -61 }] });
 *   parseSighting(bytes);                             // { ok: true, value: { x: 1, y: 2, beacons: [...] } }
 */
import {
  ID_PATTERN, ID_TEXT, MAX_BEACONS_PER_SIGHTING, MAX_COORDINATE_M, MAX_PAYLOAD_BYTES, MAX_RSSI_DBM, MAX_TIMESTAMP_MS, MIN_RSSI_DBM,
  isSensorKind, sensorKinds, type SensorKind,
} from "./limits.ts";

/** Why a message was ignored; the driver counts each. */
export const malformedReasons = [
  "topic", "oversized", "json", "binary", "type", "kind", "unit", "range", "id", "status", "beacon-count", "position",
] as const;
export type MalformedReason = (typeof malformedReasons)[number];

export type Decoded<T> = { ok: true; value: T } | { ok: false; reason: MalformedReason; detail: string };

export interface ReadingPayload {
  kind: SensorKind;
  value: number;
  /** The kind's canonical unit, whatever alias was sent. */
  unit: string;
  area?: string;
  x?: number;
  y?: number;
  ts?: number;
}

export type SensorStatus = "online" | "offline";

export interface BeaconHeard {
  id: string;
  rssi: number;
}

export interface SightingPayload {
  x?: number;
  y?: number;
  area?: string;
  beacons: BeaconHeard[];
}

/** First byte of the binary sighting, 'T'. */
export const SIGHTING_MAGIC = 0x54;
export const SIGHTING_VERSION = 1;
const SIGHTING_HEADER_BYTES = 11;
const SIGHTING_ENTRY_BYTES = 7;
const BEACON_ID_BYTES = 6;
/** A MAC-style id, which is compared lowercase. */
const macPattern = /^[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}$/;
const utf8 = new TextDecoder("utf-8", { fatal: true });

function refuse(reason: MalformedReason, detail: string): { ok: false; reason: MalformedReason; detail: string } {
  return { ok: false, reason, detail };
}

export function parseReading(payload: Uint8Array): Decoded<ReadingPayload> {
  const object = jsonObject(payload);
  if (!object.ok) return object;
  const { kind, value, unit } = object.value;
  if (typeof kind !== "string") return refuse("type", "kind must be a string");
  if (!isSensorKind(kind)) return refuse("kind", `unknown kind ${JSON.stringify(kind.slice(0, 32))}; kinds: ${Object.keys(sensorKinds).join(", ")}`);
  const spec = sensorKinds[kind];
  if (typeof value !== "number") return refuse("type", "value must be a number");
  if (!Number.isFinite(value) || value < spec.min || value > spec.max) return refuse("range", `${kind} value ${value} is outside ${spec.min}-${spec.max} ${spec.unit}`);
  if (unit !== undefined) {
    if (typeof unit !== "string") return refuse("type", "unit must be a string");
    if (unit !== spec.unit && !(spec.aliases as readonly string[]).includes(unit)) {
      return refuse("unit", `unit ${JSON.stringify(unit.slice(0, 16))} is not ${kind}'s (${[spec.unit, ...spec.aliases].join(" or ")})`);
    }
  }
  const place = placeOf(object.value);
  if (!place.ok) return place;
  const reading: ReadingPayload = { kind, value, unit: spec.unit, ...place.value };
  const { ts } = object.value;
  if (ts !== undefined) {
    if (typeof ts !== "number") return refuse("type", "ts must be a number (ms since the epoch)");
    if (!(ts >= 0 && ts <= MAX_TIMESTAMP_MS)) return refuse("range", `ts ${ts} is not a time (ms since the epoch)`);
    reading.ts = ts;
  }
  return { ok: true, value: reading };
}

export function parseStatus(payload: Uint8Array): Decoded<SensorStatus> {
  if (payload.length > MAX_PAYLOAD_BYTES) return refuse("oversized", `${payload.length} bytes; at most ${MAX_PAYLOAD_BYTES}`);
  const text = decodeText(payload)?.trim();
  if (text === "online" || text === "offline") return { ok: true, value: text };
  return refuse("status", `status must be "online" or "offline", got ${JSON.stringify(text?.slice(0, 32) ?? "non-UTF-8 bytes")}`);
}

/** A sighting in either form, told apart by the first byte. */
export function parseSighting(payload: Uint8Array): Decoded<SightingPayload> {
  if (payload.length > 0 && payload[0] === SIGHTING_MAGIC) return parseBinarySighting(payload);
  const object = jsonObject(payload);
  if (!object.ok) return object;
  const place = placeOf(object.value);
  if (!place.ok) return place;
  const list = object.value.beacons;
  if (!Array.isArray(list)) return refuse("type", "beacons must be an array");
  if (list.length > MAX_BEACONS_PER_SIGHTING) return refuse("beacon-count", `${list.length} beacons; at most ${MAX_BEACONS_PER_SIGHTING} per message`);
  const beacons: BeaconHeard[] = [];
  for (const [index, entry] of list.entries()) {
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) return refuse("type", `beacons[${index}] must be an object`);
    const { id, rssi } = entry as Record<string, unknown>;
    if (typeof id !== "string") return refuse("type", `beacons[${index}].id must be a string`);
    if (!ID_PATTERN.test(id)) return refuse("id", `beacons[${index}].id must match ${ID_TEXT}`);
    if (typeof rssi !== "number") return refuse("type", `beacons[${index}].rssi must be a number`);
    if (!(rssi >= MIN_RSSI_DBM && rssi <= MAX_RSSI_DBM)) return refuse("range", `beacons[${index}].rssi ${rssi} is outside ${MIN_RSSI_DBM} to ${MAX_RSSI_DBM} dBm`);
    beacons.push({ id: macPattern.test(id) ? id.toLowerCase() : id, rssi });
  }
  return { ok: true, value: { ...place.value, beacons: strongestEach(beacons) } };
}

/** The binary form of a sighting (the table above); throws a RangeError for what it cannot carry. */
export function encodeBeaconSighting(sighting: { x: number; y: number; beacons: readonly BeaconHeard[] }): Uint8Array {
  const { x, y, beacons } = sighting;
  if (beacons.length > MAX_BEACONS_PER_SIGHTING) throw new RangeError(`at most ${MAX_BEACONS_PER_SIGHTING} beacons per sighting, got ${beacons.length}`);
  const bytes = Buffer.alloc(SIGHTING_HEADER_BYTES + SIGHTING_ENTRY_BYTES * beacons.length);
  bytes[0] = SIGHTING_MAGIC;
  bytes[1] = SIGHTING_VERSION;
  bytes.writeFloatLE(x, 2);
  bytes.writeFloatLE(y, 6);
  bytes[10] = beacons.length;
  for (const [index, beacon] of beacons.entries()) {
    if (!macPattern.test(beacon.id)) throw new RangeError(`the binary form carries 6-byte ids (aa:bb:cc:dd:ee:ff), got ${JSON.stringify(beacon.id)}`);
    if (!Number.isInteger(beacon.rssi) || beacon.rssi < -128 || beacon.rssi > 127) throw new RangeError(`rssi must be an int8, got ${beacon.rssi}`);
    const offset = SIGHTING_HEADER_BYTES + SIGHTING_ENTRY_BYTES * index;
    Buffer.from(beacon.id.replaceAll(":", ""), "hex").copy(bytes, offset);
    bytes.writeInt8(beacon.rssi, offset + BEACON_ID_BYTES);
  }
  return bytes;
}

function parseBinarySighting(payload: Uint8Array): Decoded<SightingPayload> {
  if (payload.length > MAX_PAYLOAD_BYTES) return refuse("oversized", `${payload.length} bytes; at most ${MAX_PAYLOAD_BYTES}`);
  if (payload.length < SIGHTING_HEADER_BYTES) return refuse("binary", `${payload.length} bytes, shorter than the ${SIGHTING_HEADER_BYTES}-byte header`);
  if (payload[1] !== SIGHTING_VERSION) return refuse("binary", `version ${payload[1]}; this driver reads version ${SIGHTING_VERSION}`);
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const x = view.getFloat32(2, true);
  const y = view.getFloat32(6, true);
  if (!coordinate(x) || !coordinate(y)) return refuse("range", `receiver position (${x}, ${y}) is not within ±${MAX_COORDINATE_M} m`);
  const count = payload[10]!;
  if (count > MAX_BEACONS_PER_SIGHTING) return refuse("beacon-count", `${count} beacons; at most ${MAX_BEACONS_PER_SIGHTING} per message`);
  const expected = SIGHTING_HEADER_BYTES + SIGHTING_ENTRY_BYTES * count;
  if (payload.length !== expected) return refuse("binary", `${count} beacons need ${expected} bytes, got ${payload.length}`);
  const beacons: BeaconHeard[] = [];
  for (let index = 0; index < count; index++) {
    const offset = SIGHTING_HEADER_BYTES + SIGHTING_ENTRY_BYTES * index;
    const rssi = view.getInt8(offset + BEACON_ID_BYTES);
    if (rssi < MIN_RSSI_DBM || rssi > MAX_RSSI_DBM) return refuse("range", `beacon ${index}: rssi ${rssi} is outside ${MIN_RSSI_DBM} to ${MAX_RSSI_DBM} dBm`);
    const id = [...payload.subarray(offset, offset + BEACON_ID_BYTES)].map((byte) => byte.toString(16).padStart(2, "0")).join(":");
    beacons.push({ id, rssi });
  }
  return { ok: true, value: { x, y, beacons: strongestEach(beacons) } };
}

/** The payload as a JSON object, or why not. */
function jsonObject(payload: Uint8Array): Decoded<Record<string, unknown>> {
  if (payload.length > MAX_PAYLOAD_BYTES) return refuse("oversized", `${payload.length} bytes; at most ${MAX_PAYLOAD_BYTES}`);
  const text = decodeText(payload);
  if (text === undefined) return refuse("json", "not UTF-8");
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    return refuse("json", `not JSON: ${(error as Error).message.slice(0, 80)}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return refuse("json", "not a JSON object");
  return { ok: true, value: parsed as Record<string, unknown> };
}

/** The optional area and x/y of a reading or sighting. */
function placeOf(object: Record<string, unknown>): Decoded<{ area?: string; x?: number; y?: number }> {
  const place: { area?: string; x?: number; y?: number } = {};
  const { area, x, y } = object;
  if (area !== undefined) {
    if (typeof area !== "string") return refuse("type", "area must be a string");
    if (!ID_PATTERN.test(area)) return refuse("id", `area must match ${ID_TEXT}`);
    place.area = area;
  }
  if ((x === undefined) !== (y === undefined)) return refuse("type", "x and y go together: give both or neither");
  if (x !== undefined) {
    if (typeof x !== "number" || typeof y !== "number") return refuse("type", "x and y must be numbers (metres)");
    if (!coordinate(x) || !coordinate(y)) return refuse("range", `position (${x}, ${y}) is not within ±${MAX_COORDINATE_M} m`);
    place.x = x;
    place.y = y;
  }
  return { ok: true, value: place };
}

function coordinate(value: number): boolean {
  return Number.isFinite(value) && Math.abs(value) <= MAX_COORDINATE_M;
}

function decodeText(payload: Uint8Array): string | undefined {
  try {
    return utf8.decode(payload);
  } catch {
    return undefined;
  }
}

/** One entry per beacon id, its strongest RSSI, in first-heard order. */
function strongestEach(beacons: BeaconHeard[]): BeaconHeard[] {
  const byId = new Map<string, BeaconHeard>();
  for (const beacon of beacons) {
    const known = byId.get(beacon.id);
    if (!known || beacon.rssi > known.rssi) byId.set(beacon.id, beacon);
  }
  return byId.size === beacons.length ? beacons : [...byId.values()];
}
