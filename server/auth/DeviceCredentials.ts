/**
 * Per-device credentials for edge adapters.
 *
 * Enrolment records a device (id, class, version and a fresh random salt) in the
 * registry and hands its adapter a secret. The secret is derived, never stored:
 * HMAC(device key, deviceId | version | salt), so any node can verify without a secrets
 * table. Bumping `version` (rotation or revocation) invalidates every secret issued
 * before, and the salt makes every enrolment's secret new even when the registry was
 * wiped and the version starts again at 1. The device key is the cluster's `device` key
 * (keys.ts): it can make device secrets and nothing else.
 *
 * A device token (the other credential mode) names the enrolment it was issued for
 * (`ver` and `enr`, from tokenClaims()); the gateway refuses it, at the hello and when it
 * revalidates, once the registry holds another enrolment.
 *
 * Proof: the gateway sends a random nonce; the adapter answers with proveChallenge()
 * (proto/deviceAuth.ts). A replayed proof fails because the nonce is fresh per connection.
 *
 * @example
 *   const credentials = new DeviceCredentials(clusterKeys(secret).device, new InMemoryDeviceRegistry());
 *   const { deviceSecret } = await credentials.enroll("ex-1", "excavator");
 *   const challenge = credentials.challenge();
 *   const proof = proveChallenge(deviceSecret, "ex-1", challenge);        // on the adapter
 *   await credentials.verify("ex-1", challenge, proof);                   // on the gateway
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { Redis } from "ioredis";
import { DEVICE_ID_TEXT, isDeviceId } from "../../proto/ids.ts";
import { PROOF_PATTERN, proveChallenge, type DeviceChallenge } from "../../proto/deviceAuth.ts";
import { ErrorCode } from "../../proto/index.ts";
import { KEY_BYTES } from "./keys.ts";
import { AuthError, type TokenClaims } from "./tokens.ts";

export type { DeviceChallenge };

export interface DeviceRecord {
  deviceId: string;
  deviceClass: string;
  /** Bumped by rotate() and revoke(): secrets of older versions stop working. */
  version: number;
  /** Random per enrolment (hex): part of the secret, so no two enrolments share one. */
  salt: string;
  revoked: boolean;
  enrolledAt: number;
}

/** Which enrolment a connection proved (a secret or a token is good for one only). */
export interface Enrolment {
  version: number;
  /** Names the enrolment without revealing its salt. */
  id: string;
}

/** Bytes of an enrolment's salt. */
const SALT_BYTES = 16;

export interface DeviceRegistry {
  get(deviceId: string): Promise<DeviceRecord | undefined>;
  put(record: DeviceRecord): Promise<void>;
}

export class InMemoryDeviceRegistry implements DeviceRegistry {
  /** Records by device id. */
  private readonly records = new Map<string, DeviceRecord>();
  async get(deviceId: string) { const r = this.records.get(deviceId); return r && { ...r }; }
  async put(record: DeviceRecord) { this.records.set(record.deviceId, { ...record }); }
}

/** Redis layout: `<prefix>device:<id>` JSON DeviceRecord. */
export class RedisDeviceRegistry implements DeviceRegistry {
  constructor(private readonly redis: Redis, private readonly prefix: string) {}
  async get(deviceId: string) {
    const value = await this.redis.get(`${this.prefix}device:${deviceId}`);
    return value ? (JSON.parse(value) as DeviceRecord) : undefined;
  }
  async put(record: DeviceRecord) {
    await this.redis.set(`${this.prefix}device:${record.deviceId}`, JSON.stringify(record));
  }
}

/** Why a device was refused; the gateway maps each to a coded error. */
export type DeviceRefusal = "unknown-device" | "revoked" | "bad-proof" | "malformed" | "stale-enrolment";

export class DeviceCredentialError extends Error {
  constructor(readonly reason: DeviceRefusal, message: string) {
    super(message);
    this.name = "DeviceCredentialError";
  }
}

/** The enrolment a record holds. */
export function enrolmentOf(record: DeviceRecord): Enrolment {
  return { version: record.version, id: createHash("sha256").update(`tsunagi-enrolment|${record.salt}`).digest("hex").slice(0, 16) };
}

/** Whether `record` still holds the enrolment a connection proved. */
export function sameEnrolment(record: DeviceRecord, proven: Enrolment): boolean {
  const current = enrolmentOf(record);
  return current.version === proven.version && current.id === proven.id;
}

export class DeviceCredentials {
  /** Key all device secrets derive from: the cluster's device key (keys.ts). */
  private readonly deviceKey: Buffer;

  constructor(deviceKey: Buffer, private readonly registry: DeviceRegistry) {
    if (deviceKey.byteLength !== KEY_BYTES) throw new RangeError(`the device key must be ${KEY_BYTES} bytes (keys.ts)`);
    this.deviceKey = deviceKey;
  }

  /** Registers a device (or re-enrols it with a new version and salt) and returns its secret. */
  async enroll(deviceId: string, deviceClass: string): Promise<{ record: DeviceRecord; deviceSecret: string }> {
    if (!isDeviceId(deviceId)) throw new TypeError(`device id must match ${DEVICE_ID_TEXT}`);
    const existing = await this.registry.get(deviceId);
    const record: DeviceRecord = {
      deviceId, deviceClass, version: (existing?.version ?? 0) + 1, salt: randomBytes(SALT_BYTES).toString("hex"),
      revoked: false, enrolledAt: Date.now(),
    };
    await this.registry.put(record);
    return { record, deviceSecret: this.secretOf(record) };
  }

  /**
   * The secret of an enrolled device, for the gateway's side of a mutual proof. Throws
   * DeviceCredentialError when the device is not enrolled or is revoked.
   */
  async deviceSecret(deviceId: string): Promise<string> {
    return this.secretOf(await this.usable(deviceId));
  }

  /** The claims of a device token for the device's current enrolment; sign them with a TokenService. */
  static tokenClaims(record: DeviceRecord): Omit<TokenClaims, "exp"> {
    const { version, id } = enrolmentOf(record);
    return { sub: record.deviceId, role: "device", ver: version, enr: id };
  }

  /**
   * Resolves with the device's record when a verified device token (`claims`) attaches
   * `deviceId`: a device token for this device and its current enrolment. Throws
   * AuthError (FORBIDDEN, TOKEN_INVALID) or DeviceCredentialError saying why not.
   */
  async admitToken(deviceId: string, claims: TokenClaims): Promise<DeviceRecord> {
    if (claims.role !== "device") throw new AuthError(ErrorCode.FORBIDDEN, `a "${claims.role}" token cannot attach a device`);
    if (claims.sub !== deviceId) throw new AuthError(ErrorCode.FORBIDDEN, `the token is for device "${claims.sub.slice(0, 64)}"`);
    if (claims.ver === undefined || claims.enr === undefined) {
      throw new AuthError(ErrorCode.TOKEN_INVALID, "a device token must name its enrolment (ver and enr claims): issue it with DeviceCredentials.tokenClaims()");
    }
    const record = await this.usable(deviceId);
    if (!sameEnrolment(record, { version: claims.ver, id: claims.enr })) {
      throw new DeviceCredentialError("stale-enrolment", `the token was issued for an earlier enrolment of device "${deviceId}" (version ${claims.ver}; now ${record.version}): issue a new one`);
    }
    return record;
  }

  /** Revokes a device: its current secret stops working at once, on every node. */
  async revoke(deviceId: string): Promise<void> {
    const existing = await this.registry.get(deviceId);
    if (!existing) throw new DeviceCredentialError("unknown-device", `no device "${deviceId}" is enrolled`);
    await this.registry.put({ ...existing, revoked: true, version: existing.version + 1 });
  }

  /** The device's record; throws DeviceCredentialError("unknown-device") when it is not enrolled. */
  async lookup(deviceId: string): Promise<DeviceRecord> {
    const record = await this.registry.get(deviceId);
    if (!record) throw new DeviceCredentialError("unknown-device", `no device "${deviceId}" is enrolled`);
    return record;
  }

  challenge(now = Date.now()): DeviceChallenge {
    return { nonce: randomBytes(32).toString("hex"), serverTimeMs: now };
  }

  /** Resolves with the device's record, or throws DeviceCredentialError saying why not. */
  async verify(deviceId: string, challenge: DeviceChallenge, proof: string): Promise<DeviceRecord> {
    if (!isDeviceId(deviceId) || typeof proof !== "string" || !PROOF_PATTERN.test(proof)) {
      throw new DeviceCredentialError("malformed", "device id or proof malformed");
    }
    const record = await this.usable(deviceId);
    const expected = Buffer.from(proveChallenge(this.secretOf(record), deviceId, challenge), "hex");
    if (!timingSafeEqual(expected, Buffer.from(proof, "hex"))) {
      throw new DeviceCredentialError("bad-proof", `proof for device "${deviceId}" does not match its current credential`);
    }
    return record;
  }

  /**
   * The record of an enrolled device that may attach (not revoked); DeviceCredentialError
   * saying why not. Certificate mode asks this after the certificate admitted the device.
   */
  async usable(deviceId: string): Promise<DeviceRecord> {
    const record = await this.lookup(deviceId);
    if (record.revoked) throw new DeviceCredentialError("revoked", `device "${deviceId}" is revoked`);
    if (!record.salt) throw new DeviceCredentialError("stale-enrolment", `device "${deviceId}" was enrolled before per-enrolment salts: enrol it again`);
    return record;
  }

  /**
   * The secret of an enrolled device's current credential (the record from verify() or
   * lookup()): the gateway proves itself to the adapter with it and derives the channel's
   * MAC keys from it (proto/deviceAuth.ts). Never sent, never logged.
   */
  secretOf(record: DeviceRecord): string {
    return createHmac("sha256", this.deviceKey).update(`${record.deviceId}|${record.version}|${record.salt}`).digest("hex");
  }
}
