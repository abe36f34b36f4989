/**
 * The options of the MQTT sensors driver, checked and completed with defaults. Every
 * refusal is a TypeError that says what to change, so a wrong config fails when the
 * adapter starts, not when the first message arrives.
 *
 * @example
 *   const resolved = resolveOptions({ site: "site-7", sensors: { "co2-a": { area: "hall-a", x: 12.5, y: 4 } } });
 *   resolved.prefix;   // "tsunagi/site-7"
 *   resolved.url;      // "mqtt://127.0.0.1:1883"
 */
import type { IClientOptions, MqttClient } from "mqtt";
import { DEVICE_ID_PATTERN, DEVICE_ID_TEXT } from "../../../proto/ids.ts";
import type { Clock } from "../../hal/types.ts";
import { resolveThresholds, type ThresholdOptions } from "./AreaAlerts.ts";
import {
  BEACON_WINDOW_MS, DEFAULT_BEACON_TTL_MS, DEFAULT_BROKER_URL, DEFAULT_STALE_MS, ID_PATTERN, ID_TEXT, MAX_COORDINATE_M, MAX_SENSORS,
  MAX_STALE_MS, MIN_STALE_MS, type AlertThreshold, type SensorKind,
} from "./limits.ts";
import { consoleLogger, type SensorsLogger } from "./RateLimitedLog.ts";
import { checkPrefix, sitePrefix } from "./topics.ts";

/** Where a sensor or beacon receiver stands, when its messages do not say (they win when they do). */
export interface SensorConfig {
  area?: string;
  /** Metres, site frame; both or neither. */
  x?: number;
  y?: number;
}

export interface MqttSensorsOptions {
  /** The broker. Default mqtt://127.0.0.1:1883; mqtt:, mqtts:, ws: or wss:. */
  url?: string;
  /** Topics live under `tsunagi/<site>`. Give this or `prefix`. */
  site?: string;
  /** Topics live under this prefix instead (levels matching [A-Za-z0-9_.:-]{1,64}, `/`-separated). */
  prefix?: string;
  username?: string;
  password?: string;
  /** The device id this driver runs as, in its MQTT client id. Default "sensors". */
  deviceId?: string;
  /** Area and position of sensors and receivers, by id. */
  sensors?: Record<string, SensorConfig>;
  /** Alert levels by kind, over the defaults (co2 1,000 / 900 ppm); null switches a kind's alert off. */
  thresholds?: ThresholdOptions;
  /** A reading not renewed for this long goes offline, ms. Default 30,000. */
  staleMs?: number;
  /** A beacon not heard for this long is dropped, ms. Default 30,000. */
  beaconTtlMs?: number;
  /** Timestamps and staleness, ms. Default Date.now. */
  clock?: Clock;
  /** pino-like logger (info/warn with fields first). Default: lines on stderr. */
  logger?: SensorsLogger;
  /** MQTT.js' connect, injectable for tests. */
  connect?: (url: string, options: IClientOptions) => MqttClient;
}

export interface ResolvedOptions {
  url: string;
  prefix: string;
  username?: string;
  password?: string;
  clientId: string;
  sensors: ReadonlyMap<string, Readonly<SensorConfig>>;
  thresholds: ReadonlyMap<SensorKind, AlertThreshold>;
  staleMs: number;
  beaconTtlMs: number;
  clock: Clock;
  logger: SensorsLogger;
  connect?: (url: string, options: IClientOptions) => MqttClient;
}

const brokerProtocols = ["mqtt:", "mqtts:", "ws:", "wss:"];

export function resolveOptions(options: MqttSensorsOptions = {}): ResolvedOptions {
  if (typeof options !== "object" || options === null) throw new TypeError("MqttSensors options must be an object");
  const url = options.url ?? DEFAULT_BROKER_URL;
  checkUrl(url);
  if (options.site !== undefined && options.prefix !== undefined) throw new TypeError("MqttSensors: give `site` or `prefix`, not both (site means prefix tsunagi/<site>)");
  if (options.site === undefined && options.prefix === undefined) throw new TypeError("MqttSensors needs `site` (topics under tsunagi/<site>) or `prefix`");
  let prefix: string;
  if (options.prefix !== undefined) {
    checkPrefix(options.prefix);
    prefix = options.prefix;
  } else {
    prefix = sitePrefix(options.site!);
  }
  for (const name of ["username", "password"] as const) {
    if (options[name] !== undefined && typeof options[name] !== "string") throw new TypeError(`MqttSensors: ${name} must be a string`);
  }
  if (options.password !== undefined && options.username === undefined) throw new TypeError("MqttSensors: a password needs a username");
  const deviceId = options.deviceId ?? "sensors";
  if (typeof deviceId !== "string" || !DEVICE_ID_PATTERN.test(deviceId)) throw new TypeError(`MqttSensors: deviceId must match ${DEVICE_ID_TEXT}, got ${JSON.stringify(deviceId)}`);
  const staleMs = duration("staleMs", options.staleMs ?? DEFAULT_STALE_MS, MIN_STALE_MS);
  const beaconTtlMs = duration("beaconTtlMs", options.beaconTtlMs ?? DEFAULT_BEACON_TTL_MS, BEACON_WINDOW_MS);
  if (options.clock !== undefined && typeof options.clock !== "function") throw new TypeError("MqttSensors: clock must be a function returning ms");
  const logger = options.logger ?? consoleLogger;
  if (typeof logger?.warn !== "function" || typeof logger?.info !== "function") throw new TypeError("MqttSensors: logger must have info(fields, message) and warn(fields, message), as pino's does");
  if (options.connect !== undefined && typeof options.connect !== "function") throw new TypeError("MqttSensors: connect must be MQTT.js' connect or a stand-in");
  return {
    url, prefix,
    ...(options.username !== undefined ? { username: options.username } : {}),
    ...(options.password !== undefined ? { password: options.password } : {}),
    clientId: `tsunagi-${deviceId}-${Math.random().toString(16).slice(2, 10)}`,
    sensors: sensorConfigs(options.sensors),
    thresholds: resolveThresholds(options.thresholds),
    staleMs, beaconTtlMs,
    clock: options.clock ?? Date.now,
    logger,
    ...(options.connect ? { connect: options.connect } : {}),
  };
}

/** The broker URL without credentials, for logs. */
export function displayUrl(url: string): string {
  const parsed = new URL(url);
  parsed.username = "";
  parsed.password = "";
  return parsed.toString();
}

function checkUrl(url: unknown): void {
  let parsed: URL;
  try {
    parsed = new URL(String(url));
  } catch {
    throw new TypeError(`MqttSensors: url ${JSON.stringify(url)} is not a URL; e.g. ${DEFAULT_BROKER_URL}`);
  }
  if (typeof url !== "string" || !brokerProtocols.includes(parsed.protocol) || !parsed.hostname) {
    throw new TypeError(`MqttSensors: url must be ${brokerProtocols.map((p) => `${p}//host:port`).join(", ")}; e.g. ${DEFAULT_BROKER_URL}`);
  }
}

function duration(name: string, value: unknown, min: number): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < min || value > MAX_STALE_MS) {
    throw new TypeError(`MqttSensors: ${name} must be a number of ms within ${min}-${MAX_STALE_MS}, got ${String(value)}`);
  }
  return value;
}

function sensorConfigs(sensors: unknown): Map<string, SensorConfig> {
  const configs = new Map<string, SensorConfig>();
  if (sensors === undefined) return configs;
  if (typeof sensors !== "object" || sensors === null || Array.isArray(sensors)) throw new TypeError("MqttSensors: sensors must be an object: { [sensorId]: { area, x, y } }");
  const entries = Object.entries(sensors);
  if (entries.length > MAX_SENSORS) throw new TypeError(`MqttSensors: sensors configures ${entries.length} sensors; at most ${MAX_SENSORS}`);
  for (const [id, config] of entries) {
    const where = `MqttSensors: sensors[${JSON.stringify(id)}]`;
    if (!ID_PATTERN.test(id)) throw new TypeError(`${where}: a sensor id must match ${ID_TEXT}`);
    if (typeof config !== "object" || config === null) throw new TypeError(`${where} must be an object { area, x, y }`);
    const { area, x, y } = config as Record<string, unknown>;
    const resolved: SensorConfig = {};
    if (area !== undefined) {
      if (typeof area !== "string" || !ID_PATTERN.test(area)) throw new TypeError(`${where}.area must match ${ID_TEXT}`);
      resolved.area = area;
    }
    if ((x === undefined) !== (y === undefined)) throw new TypeError(`${where}: give both x and y, or neither`);
    if (x !== undefined) {
      for (const value of [x, y]) {
        if (typeof value !== "number" || !Number.isFinite(value) || Math.abs(value) > MAX_COORDINATE_M) throw new TypeError(`${where}: x and y must be numbers of metres within ±${MAX_COORDINATE_M}`);
      }
      resolved.x = x as number;
      resolved.y = y as number;
    }
    configs.set(id, Object.freeze(resolved));
  }
  return configs;
}
