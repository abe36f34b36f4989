/**
 * AdapterRuntimeOptions checked once, at construction, with their defaults filled in:
 * each bad option throws a TypeError naming it, so a misconfigured adapter never starts
 * half-way (a device that cannot connect is safe; one that connects wrongly may not be).
 *
 * @example
 *   const options = resolveAdapterOptions({ deviceId: "ex-1", driver, credential: { secret }, nodes, adapterVersion: "1.0.0" });
 *   options.telemetryHz;    // 20, the default
 */
import { pino, type Logger } from "pino";
import { nodeUrls } from "../../common/nodeUrl.ts";
import { DEVICE_ID_PATTERN, DEVICE_ID_TEXT } from "../../proto/ids.ts";
import type { Driver } from "../drivers/types.ts";
import type { AdapterCredential, AdapterRuntimeOptions } from "./types.ts";

/** PEM text holding a certificate (--ca, --cert). */
export const PEM_CERTIFICATE_PATTERN = /-----BEGIN CERTIFICATE-----/;
/** PEM text holding a private key, PKCS#8 or SEC1 (--key). */
export const PEM_PRIVATE_KEY_PATTERN = /-----BEGIN (EC |)PRIVATE KEY-----/;

/** Every option checked, every default applied. */
export interface ResolvedAdapterOptions {
  deviceId: string;
  driver: Driver;
  credential: AdapterCredential;
  /** Node HTTP base URLs, without trailing "/". */
  nodes: string[];
  ca: string | Buffer | undefined;
  devMode: boolean;
  adapterVersion: string;
  telemetryHz: number;
  telemetryBufferSize: number;
  backoff: { initialMs: number; maxMs: number };
  conflictBackoffMs: number;
  handshakeTimeoutMs: number;
  httpTimeoutMs: number;
  clockSyncIntervalMs: number;
  random: () => number;
  /** Absent: ClockSync's own default (performance.now). */
  now: (() => number) | undefined;
  /** Carries the device id on every line. */
  logger: Logger;
}

const SEMVER_PATTERN = /^\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$/;
const SECRET_PATTERN = /^[0-9a-fA-F]{64}$/;

/** Checks `options` (throwing a TypeError that names the bad one) and applies the defaults. */
export function resolveAdapterOptions(options: AdapterRuntimeOptions): ResolvedAdapterOptions {
  const { deviceId, driver, credential, nodes, adapterVersion } = options ?? ({} as AdapterRuntimeOptions);
  if (typeof deviceId !== "string" || !DEVICE_ID_PATTERN.test(deviceId)) {
    throw new TypeError(`deviceId must match ${DEVICE_ID_TEXT}, got ${JSON.stringify(deviceId)}`);
  }
  if (!driver || typeof driver.profile !== "function" || !driver.hal) throw new TypeError("AdapterRuntime needs a driver (see devices/drivers createDriver)");
  const checkedCredential = checkCredential(credential);
  const devMode = options.devMode ?? false;
  if (typeof devMode !== "boolean") throw new TypeError(`devMode must be true or false, got ${String(options.devMode)}`);
  const checkedNodes = checkNodes(nodes, devMode);
  if (options.ca !== undefined && !(typeof options.ca === "string" || Buffer.isBuffer(options.ca)) ) throw new TypeError("ca must be PEM text (a string or Buffer)");
  if (typeof adapterVersion !== "string" || !SEMVER_PATTERN.test(adapterVersion)) {
    throw new TypeError(`adapterVersion must be semver ("1.4.2"), got ${JSON.stringify(adapterVersion)}`);
  }
  const telemetryHz = options.telemetryHz ?? 20;
  if (!(telemetryHz > 0 && telemetryHz <= 1000)) throw new TypeError(`telemetryHz must be in (0, 1000], got ${String(options.telemetryHz)}`);
  const telemetryBufferSize = options.telemetryBufferSize ?? 600;
  if (!Number.isInteger(telemetryBufferSize) || telemetryBufferSize < 1) {
    throw new TypeError(`telemetryBufferSize must be a positive integer, got ${String(options.telemetryBufferSize)}`);
  }
  const backoff = { initialMs: options.backoff?.initialMs ?? 100, maxMs: options.backoff?.maxMs ?? 5000 };
  if (!(backoff.initialMs > 0 && backoff.maxMs >= backoff.initialMs && Number.isFinite(backoff.maxMs))) {
    throw new TypeError(`backoff needs 0 < initialMs <= maxMs (finite), got ${backoff.initialMs} and ${backoff.maxMs}`);
  }
  return {
    deviceId,
    driver,
    credential: checkedCredential,
    nodes: checkedNodes,
    ca: options.ca,
    devMode,
    adapterVersion,
    telemetryHz,
    telemetryBufferSize,
    backoff,
    conflictBackoffMs: positive(options.conflictBackoffMs ?? 30_000, "conflictBackoffMs"),
    handshakeTimeoutMs: positive(options.handshakeTimeoutMs ?? 10_000, "handshakeTimeoutMs"),
    httpTimeoutMs: positive(options.httpTimeoutMs ?? 2000, "httpTimeoutMs"),
    clockSyncIntervalMs: positive(options.clockSyncIntervalMs ?? 5000, "clockSyncIntervalMs"),
    random: options.random ?? Math.random,
    now: options.now,
    logger: (options.logger ?? pino({ level: "silent" })).child({ deviceId }),
  };
}

function checkCredential(credential: AdapterCredential): AdapterCredential {
  if (credential && "secret" in credential) {
    if (typeof credential.secret !== "string" || !SECRET_PATTERN.test(credential.secret)) {
      throw new TypeError("the device secret must be the 64 hex characters issued at enrolment");
    }
    return { secret: credential.secret };
  }
  if (credential && "token" in credential) {
    if (typeof credential.token !== "string" || credential.token === "") throw new TypeError("the device token must be a non-empty string (a JWT)");
    return { token: credential.token };
  }
  if (credential && "certificate" in credential) {
    const { cert, key } = credential.certificate ?? {};
    if (typeof cert !== "string" || !PEM_CERTIFICATE_PATTERN.test(cert)) throw new TypeError("the device certificate must be PEM text (npm run devices -- issue-cert)");
    if (typeof key !== "string" || !PEM_PRIVATE_KEY_PATTERN.test(key)) throw new TypeError("the device certificate's key must be PEM text");
    return { certificate: { cert, key } };
  }
  throw new TypeError("credential must be { secret } (64 hex characters), { token } (a device JWT) or { certificate: { cert, key } } (PEM)");
}

function checkNodes(nodes: string[], devMode: boolean): string[] {
  let checked: string[];
  try {
    checked = nodeUrls(nodes);
  } catch (error) {
    throw new TypeError(`nodes: ${(error as Error).message}`);
  }
  const plain = checked.find((url) => !url.startsWith("https://"));
  if (plain && !devMode) throw new TypeError(`nodes: ${plain} is plain http://; outside dev mode an adapter reaches its region over https:// only (devMode for a loopback dev node)`);
  return checked;
}

function positive(value: number, name: string): number {
  if (typeof value !== "number" || !(value > 0) || !Number.isFinite(value)) throw new TypeError(`${name} must be a finite number > 0, got ${String(value)}`);
  return value;
}
