/**
 * Every bound and default of the MQTT sensors driver, in one place, and the kinds of
 * reading it understands with their units and plausible ranges. A value outside its
 * kind's range is a broken sensor or a wrong unit, not air quality, and is refused as
 * malformed rather than raising an alert.
 *
 * @example
 *   if (payload.length > MAX_PAYLOAD_BYTES) return malformed("oversized", ...);
 *   const { unit, min, max } = sensorKinds.co2;   // "ppm", 0, 40_000
 */

// --- input bounds -----------------------------------------------------------------------

/** Largest payload read, bytes; a binary sighting of 64 beacons is 459. */
export const MAX_PAYLOAD_BYTES = 4 * 1024;
/** Sensor ids tracked at once; a reading from a further sensor is refused and counted. */
export const MAX_SENSORS = 1_000;
/** Beacons tracked at once; a sighting of a further beacon is refused and counted. */
export const MAX_BEACONS = 10_000;
/** Beacons one sighting message may carry; more makes the message malformed. */
export const MAX_BEACONS_PER_SIGHTING = 64;
/** Receivers remembered per beacon within the fix window; the oldest sighting gives way. */
export const MAX_RECEIVERS_PER_BEACON = 32;
/** Sensor, receiver, beacon, area and site ids. */
export const ID_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;
/** ID_PATTERN as people read it, for error messages. */
export const ID_TEXT = "[A-Za-z0-9_.:-]{1,64}";
/** Longest topic prefix, characters. */
export const MAX_PREFIX_LENGTH = 128;
/** Largest |x| or |y| of a position in the site frame, metres. */
export const MAX_COORDINATE_M = 100_000;
/** RSSI bounds, dBm. 127 is BLE's "not available"; anything above 20 dBm is not a real signal. */
export const MIN_RSSI_DBM = -127;
export const MAX_RSSI_DBM = 20;
/** Latest sensor timestamp (`ts`) accepted at all, ms since the epoch (the ECMAScript Date limit). */
export const MAX_TIMESTAMP_MS = 8.64e15;
/**
 * A sensor's `ts` further than this from the driver's clock is not trusted as the time of
 * the reading, which is then timestamped on arrival (an unsynchronised sensor clock).
 */
export const MAX_SENSOR_CLOCK_SKEW_MS = 60_000;

// --- time -------------------------------------------------------------------------------

/** Default: a sensor's reading not renewed for this long goes offline. */
export const DEFAULT_STALE_MS = 30_000;
/** Default: a beacon not heard for this long is dropped. */
export const DEFAULT_BEACON_TTL_MS = 30_000;
/** A beacon's fix uses the receivers that heard it within this window before its latest sighting. */
export const BEACON_WINDOW_MS = 5_000;
/** Bounds of the staleMs option; beaconTtlMs runs from BEACON_WINDOW_MS to the same MAX_STALE_MS. */
export const MIN_STALE_MS = 1_000;
export const MAX_STALE_MS = 3_600_000;
/** A sensor not heard for this long is forgotten: its readings leave telemetry and its slot is freed. */
export const FORGET_SENSOR_AFTER_MS = 3_600_000;
/** How often the staleness timer (start()/stop()) runs, ms. */
export const STALENESS_TICK_MS = 1_000;
/** At most one log line per malformed reason (or broker error) in this window; the rest are counted. */
export const LOG_INTERVAL_MS = 10_000;
/** Keys the rate-limited log tracks: a few reasons and error codes, so more is a bug, and it starts afresh. */
export const MAX_LOG_KEYS = 64;

// --- broker connection ------------------------------------------------------------------

/** Broker when none is given. */
export const DEFAULT_BROKER_URL = "mqtt://127.0.0.1:1883";
/** Reconnect backoff: the first wait, doubling per failed attempt up to the cap, ms. */
export const RECONNECT_INITIAL_MS = 500;
export const RECONNECT_MAX_MS = 10_000;
/** Each wait is drawn from [delay·(1 − jitter), delay], so many drivers do not retry in step. */
export const RECONNECT_JITTER = 0.2;
/** A TCP connection without CONNACK for this long is given up and retried, ms. */
export const CONNECT_TIMEOUT_MS = 5_000;
/** MQTT keepalive, seconds: a silent broker is noticed within 1.5 × this. */
export const KEEPALIVE_S = 15;
/** How long stopping waits for a clean DISCONNECT before it drops the socket, ms. */
export const STOP_TIMEOUT_MS = 2_000;
/**
 * Largest packet the broker may send us (MQTT 5 Maximum Packet Size), bytes: the broker
 * drops bigger ones, so a flood of huge payloads never reaches memory. Payloads between
 * MAX_PAYLOAD_BYTES and this are received and counted as oversized.
 */
export const MAX_PACKET_BYTES = 64 * 1024;

// --- kinds ------------------------------------------------------------------------------

export interface SensorKindSpec {
  /** The unit readings are reported in. */
  unit: string;
  /** Other spellings of the unit a sensor may send; reported as `unit`. */
  aliases: readonly string[];
  /** Plausible range, inclusive, in `unit`. */
  min: number;
  max: number;
}

/** The kinds of reading, their units and plausible ranges. */
export const sensorKinds = Object.freeze({
  co2: { unit: "ppm", aliases: [], min: 0, max: 40_000 },
  temperature: { unit: "°C", aliases: ["C", "degC"], min: -50, max: 100 },
  humidity: { unit: "%", aliases: ["%RH"], min: 0, max: 100 },
  noise: { unit: "dB", aliases: ["dBA", "dB(A)"], min: 0, max: 200 },
  // µ (micro sign) is canonical; μ (Greek mu) and ASCII are what keyboards produce
  pm25: { unit: "µg/m³", aliases: ["μg/m³", "ug/m3"], min: 0, max: 5_000 },
} satisfies Record<string, SensorKindSpec>);

export type SensorKind = keyof typeof sensorKinds;
export const sensorKindNames = Object.freeze(Object.keys(sensorKinds) as SensorKind[]);

export function isSensorKind(kind: unknown): kind is SensorKind {
  return typeof kind === "string" && Object.hasOwn(sensorKinds, kind);
}

// --- alerts -----------------------------------------------------------------------------

/** An alert's levels: raised when the worst reading goes above `raiseAbove`, cleared when it falls below `clearBelow`. */
export interface AlertThreshold {
  raiseAbove: number;
  clearBelow: number;
}

/** Default thresholds: CO2 over 1,000 ppm (a stuffy hall) raises; below 900 ppm clears. */
export const DEFAULT_THRESHOLDS: Readonly<Partial<Record<SensorKind, AlertThreshold>>> = Object.freeze({
  co2: Object.freeze({ raiseAbove: 1_000, clearBelow: 900 }),
});
