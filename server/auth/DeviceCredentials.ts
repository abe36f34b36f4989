/**
 * Per-device credentials for edge adapters.
 *
 * Enrolment records a device (id, class) in the registry and hands its adapter a
 * secret. The secret is derived, never stored: HMAC(cluster secret, deviceId, version),
 * so any node can verify without a secrets table, and bumping `version` (rotation or
 * revocation) invalidates every secret issued before.
 *
 * Proof: the gateway sends a random nonce; the adapter answers with proveChallenge()
 * (proto/deviceAuth.ts). A replayed proof fails because the nonce is fresh per connection.
 *
 * @example
 *   const credentials = new DeviceCredentials(secret, new InMemoryDeviceRegistry());
 *   const { deviceSecret } = await credentials.enroll("ex-1", "excavator");
 *   const challenge = credentials.challenge();
 *   const proof = proveChallenge(deviceSecret, "ex-1", challenge);        // on the adapter
 *   await credentials.verify("ex-1", challenge, proof);                   // on the gateway
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { Redis } from "ioredis";
import { DEVICE_ID_TEXT, isDeviceId } from "../../proto/ids.ts";
import { PROOF_PATTERN, proveChallenge, type DeviceChallenge } from "../../proto/deviceAuth.ts";

export type { DeviceChallenge };

export interface DeviceRecord {
  deviceId: string;
  deviceClass: string;
  /** Bumped by rotate() and revoke(): secrets of older versions stop working. */
  version: number;
  revoked: boolean;
  enrolledAt: number;
}

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
export type DeviceRefusal = "unknown-device" | "revoked" | "bad-proof" | "malformed";

export class DeviceCredentialError extends Error {
  constructor(readonly reason: DeviceRefusal, message: string) {
    super(message);
    this.name = "DeviceCredentialError";
  }
}

export class DeviceCredentials {
  /** Key all device secrets derive from (the cluster secret). */
  private readonly masterKey: Buffer;

  constructor(clusterSecret: string, private readonly registry: DeviceRegistry) {
    this.masterKey = createHmac("sha256", clusterSecret).update("tsunagi-device-secrets").digest();
  }

  /** Registers a device (or re-enrols it with a new version) and returns its secret. */
  async enroll(deviceId: string, deviceClass: string): Promise<{ record: DeviceRecord; deviceSecret: string }> {
    if (!isDeviceId(deviceId)) throw new TypeError(`device id must match ${DEVICE_ID_TEXT}`);
    const existing = await this.registry.get(deviceId);
    const record: DeviceRecord = {
      deviceId, deviceClass, version: (existing?.version ?? 0) + 1, revoked: false, enrolledAt: Date.now(),
    };
    await this.registry.put(record);
    return { record, deviceSecret: this.secretFor(deviceId, record.version) };
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
    const record = await this.registry.get(deviceId);
    if (!record) throw new DeviceCredentialError("unknown-device", `no device "${deviceId}" is enrolled`);
    if (record.revoked) throw new DeviceCredentialError("revoked", `device "${deviceId}" is revoked`);
    const expected = Buffer.from(proveChallenge(this.secretFor(deviceId, record.version), deviceId, challenge), "hex");
    if (!timingSafeEqual(expected, Buffer.from(proof, "hex"))) {
      throw new DeviceCredentialError("bad-proof", `proof for device "${deviceId}" does not match its current credential`);
    }
    return record;
  }

  /**
   * The secret of an enrolled device's current credential (the record from verify() or
   * lookup()): the gateway proves itself to the adapter with it and derives the channel's
   * MAC keys from it (proto/deviceAuth.ts). Never sent, never logged.
   */
  secretOf(record: DeviceRecord): string {
    return this.secretFor(record.deviceId, record.version);
  }

  private secretFor(deviceId: string, version: number): string {
    return createHmac("sha256", this.masterKey).update(`${deviceId}|${version}`).digest("hex");
  }
}
