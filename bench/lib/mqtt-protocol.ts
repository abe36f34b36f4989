/**
 * What the mqtt bench's processes say to each other (the publisher, lib/mqtt-publisher.ts,
 * and the observer, lib/mqtt-observer.ts), and how a simulated sensor's reading carries
 * its sequence number so a telemetry frame can be matched to the publishes it reflects.
 *
 * Sensor i is `s-0000`…, of kind KINDS[i % 5] in area `area-<i % 10>`, and publishes JSON
 * readings as the driver documents them (devices/drivers/mqtt-sensors/payloads.ts):
 *
 *   {"kind":"co2","value":400.0123,"unit":"ppm","area":"area-0","sentAt":1712345678901.123}
 *
 * `value` = base + seq / SEQ_SCALE: the driver keeps it as it is, telemetry carries it as a
 * double, and seqOfValue() reads the sequence back. CO2 stays within 400-450 ppm, under
 * its 1,000 ppm alert (an alert would make the adapter send telemetry at once, off its
 * tick); the other kinds stay within 0-50, inside their plausible ranges.
 *
 * No `ts`: without one the driver stamps a reading with its own arrival time (readAtMs),
 * which telemetry carries, and that splits the path at the driver. `sentAt` is the publish
 * time (wallClockMs, shared by every process of the run), a field the driver ignores (it
 * ignores unknown fields); the baseline subscriber measures from it.
 */
import type { HistogramData } from "./measure.ts";

/** The kinds the simulated sensors report, in turn, and the value each sequence starts from. */
export const KINDS = [
  { kind: "co2", unit: "ppm", base: 400 },
  { kind: "temperature", unit: "°C", base: 0 },
  { kind: "humidity", unit: "%", base: 0 },
  { kind: "noise", unit: "dB", base: 0 },
  { kind: "pm25", unit: "µg/m³", base: 0 },
] as const;

/** value = base + seq / SEQ_SCALE. */
export const SEQ_SCALE = 10_000;
/** Readings per sensor over a whole run at most: keeps every value inside its kind's range (and CO2 under its alert). */
export const MAX_SEQ = 500_000;
/** Areas the sensors are spread over (CO2 alerts are evaluated per area). */
const AREAS = 10;

export function sensorId(index: number): string {
  return `s-${String(index).padStart(4, "0")}`;
}

/** The index of a sensor id sensorId() made; -1 for any other. */
export function sensorIndex(id: string): number {
  if (id.length !== 6 || !id.startsWith("s-")) return -1;
  const index = Number(id.slice(2));
  return Number.isInteger(index) ? index : -1;
}

export function readingTopic(prefix: string, index: number): string {
  return `${prefix}/sensors/${sensorId(index)}/reading`;
}

/** Sensor `index`'s reading number `seq`, published at `sentAt` (wall-clock ms). */
export function readingPayload(index: number, seq: number, sentAt: number): string {
  if (seq > MAX_SEQ) throw new RangeError(`sensor ${sensorId(index)} reached ${MAX_SEQ} readings: its values would leave the kind's range; use more sensors or shorter steps`);
  const { kind, unit, base } = KINDS[index % KINDS.length]!;
  return `{"kind":"${kind}","value":${base + seq / SEQ_SCALE},"unit":"${unit}","area":"area-${index % AREAS}","sentAt":${sentAt}}`;
}

/** The sequence number a reading value of sensor `index` carries. */
export function seqOfValue(index: number, value: number): number {
  return Math.round((value - KINDS[index % KINDS.length]!.base) * SEQ_SCALE);
}

// --- the publisher -------------------------------------------------------------------

export interface PublisherConfig {
  runId: string;
  brokerUrl: string;
  sensors: number;
  qos: 0 | 1;
}

export interface PublishRequest {
  /** Topic prefix: the driver's (`tsunagi/<site>`) or the baseline's, which no driver subscribes to. */
  prefix: string;
  /** Readings per second, all sensors together, round-robin over them. */
  rate: number;
  warmupMs: number;
  windowMs: number;
}

export interface PublishRun {
  /** Wall-clock ms of the window's start; `times` are relative to it. */
  windowStartMs: number;
  windowEndMs: number;
  /** Readings published in the window, and in the whole run (warm-up included). */
  sent: number;
  sentTotal: number;
  /** Publishes that failed (the client's callback had an error). */
  errors: number;
  /** Per sensor: the sequence of its first reading in the window (-1: none) and the publish time of each from there, ms after windowStartMs. */
  firstSeq: number[];
  times: number[][];
  /** Per sensor: the sequence of its last reading of this run (-1: it published none). */
  lastSeq: number[];
  /** The publisher's own event-loop delay p99 over the run, ms. */
  eventLoopDelayP99Ms: number;
}

// --- the observer --------------------------------------------------------------------

export interface ObserverConfig {
  runId: string;
  /** The node, the token of a supervisor, the site room to create and the sensors device in it. */
  httpUrl: string;
  token: string;
  roomId: string;
  deviceId: string;
  /** The baseline's plain subscriber: the broker and the prefix only it subscribes to. */
  brokerUrl: string;
  baselinePrefix: string;
  sensors: number;
}

/**
 * What the site room's telemetry frames showed over a recording: per sensor, each time a
 * frame showed a newer sequence than any before, flattened ADVANCE_FIELDS at a time:
 * [seq, receivedAtMs, sampledAtMs, readAtMs, …]. All on the run's wall clock: received,
 * the client's; sampled, the adapter's sample time (on the node's clock as the adapter
 * estimates it); read, the driver's arrival time of that reading (its Date.now()); the
 * last two moved from Date.now() to wallClockMs() by the difference the observer sees
 * between the two, so a wall clock slewed during the run shifts nothing.
 */
export const ADVANCE_FIELDS = 4;

export interface Advances {
  advances: number[][];
  /** Telemetry frames of the device received over the recording. */
  frames: number;
  recordingMs: number;
  eventLoopDelayP99Ms: number;
}

export interface BaselineWindow {
  /** Readings with a publish time in the window that the plain subscriber received, and their publish → receive latency. */
  received: number;
  /** Messages of the phase that repeated or went back on a sensor's sequence (not counted as received). */
  duplicates: number;
  latency: HistogramData;
  maxMs: number;
  eventLoopDelayP99Ms: number;
}
