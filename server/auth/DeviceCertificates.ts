/**
 * Device certificates in the registry, and the gateway's rule for admitting one.
 *
 * Every certificate the device CA issues (DeviceCa) is recorded by its serial with the
 * device it names; revoking marks the record, by serial or for every certificate of a
 * device. The gateway admits a client certificate only when TLS found it chaining to the
 * cluster's device CA and within its validity, its subject CN is the hello's device id,
 * and the registry holds its serial for that device unrevoked: a certificate the registry
 * does not know (another cluster's CA key, a wiped registry) is not admitted either. The
 * gateway asks again every revalidation period (stillAdmitted), so a revoked serial is cut
 * off within it, as a revoked secret is.
 *
 * @example
 *   const certificates = new DeviceCertificates(new RedisCertificateRegistry(redis, "tsunagi:"));
 *   await certificates.recordIssued(DeviceCa.load(cert, key).issue("ex-1"));
 *   await certificates.admit("ex-1", presented);   // CertificateError with the refusal code
 *   await certificates.revoke("ex-1");             // every certificate of ex-1
 */
import type { Redis } from "ioredis";
import { ErrorCode } from "../../proto/index.ts";
import { isDeviceId } from "../../proto/ids.ts";
import type { IssuedCertificate } from "./DeviceCa.ts";
import { isSerialText, normalizeSerial } from "./x509.ts";

export interface CertificateRecord {
  /** Normalised hex (x509.normalizeSerial). */
  serial: string;
  deviceId: string;
  issuedAt: number;
  /** The certificate's notAfter, ms. */
  notAfter: number;
  revoked: boolean;
  revokedAt?: number;
}

/** What the TLS handshake showed of a client certificate (CertificateListener). */
export interface PresentedCertificate {
  /** Whether TLS verified it against the device CA (chain and validity). */
  authorized: boolean;
  /** OpenSSL's reason when not authorized: "CERT_HAS_EXPIRED", "DEPTH_ZERO_SELF_SIGNED_CERT"... */
  authorizationError?: string;
  /** The subject's CN, if it has exactly one. */
  subjectCn?: string;
  /** Normalised hex. */
  serial: string;
}

export interface CertificateRegistry {
  getCertificate(serial: string): Promise<CertificateRecord | undefined>;
  putCertificate(record: CertificateRecord): Promise<void>;
  /** Serials ever recorded for a device. */
  serialsOf(deviceId: string): Promise<string[]>;
}

export class InMemoryCertificateRegistry implements CertificateRegistry {
  /** Records by serial. */
  private readonly records = new Map<string, CertificateRecord>();
  async getCertificate(serial: string) { const r = this.records.get(serial); return r && { ...r }; }
  async putCertificate(record: CertificateRecord) { this.records.set(record.serial, { ...record }); }
  async serialsOf(deviceId: string) { return [...this.records.values()].filter((r) => r.deviceId === deviceId).map((r) => r.serial); }
}

/** Redis layout: `<prefix>cert:<serial>` JSON CertificateRecord; `<prefix>device-certs:<id>` set of serials. */
export class RedisCertificateRegistry implements CertificateRegistry {
  constructor(private readonly redis: Redis, private readonly prefix: string) {}
  async getCertificate(serial: string) {
    const value = await this.redis.get(`${this.prefix}cert:${serial}`);
    return value ? (JSON.parse(value) as CertificateRecord) : undefined;
  }
  async putCertificate(record: CertificateRecord) {
    await this.redis.multi()
      .set(`${this.prefix}cert:${record.serial}`, JSON.stringify(record))
      .sadd(`${this.prefix}device-certs:${record.deviceId}`, record.serial)
      .exec();
  }
  async serialsOf(deviceId: string) {
    return this.redis.smembers(`${this.prefix}device-certs:${deviceId}`);
  }
}

/** A certificate that does not admit a device; `code` is the ErrorCode the adapter is told. */
export class CertificateError extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
    this.name = "CertificateError";
  }
}

/** OpenSSL's verification results that mean "outside its validity", not "not ours". */
const VALIDITY_ERRORS = new Set(["CERT_HAS_EXPIRED", "CERT_NOT_YET_VALID"]);

export class DeviceCertificates {
  constructor(private readonly registry: CertificateRegistry, private readonly now: () => number = Date.now) {}

  /** Records a certificate DeviceCa issued, so that it admits its device and can be revoked. */
  async recordIssued(issued: IssuedCertificate): Promise<CertificateRecord> {
    const record: CertificateRecord = {
      serial: normalizeSerial(issued.serial), deviceId: issued.deviceId, issuedAt: this.now(), notAfter: issued.notAfter.getTime(), revoked: false,
    };
    await this.registry.putCertificate(record);
    return record;
  }

  /**
   * Resolves with the certificate's record when `presented` admits `deviceId`; throws
   * CertificateError with the refusal code otherwise (`presented` undefined: none was sent).
   */
  async admit(deviceId: string, presented: PresentedCertificate | undefined): Promise<CertificateRecord> {
    if (!presented) throw new CertificateError(ErrorCode.CERTIFICATE_MISSING, "no client certificate was presented in the TLS handshake");
    if (!presented.authorized) {
      const reason = presented.authorizationError ?? "unverified";
      if (VALIDITY_ERRORS.has(reason)) throw new CertificateError(ErrorCode.CERTIFICATE_EXPIRED, `the client certificate is outside its validity (${reason})`);
      throw new CertificateError(ErrorCode.CERTIFICATE_UNTRUSTED, `the client certificate does not chain to the cluster's device CA (${reason})`);
    }
    if (presented.subjectCn !== deviceId) {
      throw new CertificateError(ErrorCode.CERTIFICATE_MISMATCH, `the client certificate is for "${String(presented.subjectCn).slice(0, 64)}", not device "${deviceId}"`);
    }
    const record = await this.registry.getCertificate(presented.serial);
    if (!record) throw new CertificateError(ErrorCode.CERTIFICATE_REVOKED, `certificate ${presented.serial} is not in the device registry (not issued with npm run devices -- issue-cert, or the registry was reset): issue a new one`);
    if (record.deviceId !== deviceId) throw new CertificateError(ErrorCode.CERTIFICATE_MISMATCH, `certificate ${record.serial} was issued to device "${record.deviceId}"`);
    if (record.revoked) throw new CertificateError(ErrorCode.CERTIFICATE_REVOKED, `certificate ${record.serial} of device "${deviceId}" is revoked`);
    return record;
  }

  /**
   * Why a connected device's certificate no longer admits it (revoked, gone from the
   * registry, expired since), with the code; undefined while it does. Registry errors
   * propagate: the caller decides what an unreachable registry means.
   */
  async stillAdmitted(serial: string): Promise<{ code: number; why: string } | undefined> {
    const record = await this.registry.getCertificate(serial);
    if (!record) return { code: ErrorCode.CERTIFICATE_REVOKED, why: `certificate ${serial} is no longer in the device registry` };
    if (record.revoked) return { code: ErrorCode.CERTIFICATE_REVOKED, why: `certificate ${serial} was revoked` };
    if (record.notAfter <= this.now()) return { code: ErrorCode.CERTIFICATE_EXPIRED, why: `certificate ${serial} expired` };
    return undefined;
  }

  /**
   * Revokes one certificate (by serial) or every certificate of a device (by id); resolves
   * with the serials newly revoked. Throws a RangeError when nothing matches.
   */
  async revoke(serialOrDeviceId: string): Promise<string[]> {
    const bySerial = isSerialText(serialOrDeviceId) ? await this.registry.getCertificate(normalizeSerial(serialOrDeviceId)) : undefined;
    const records = bySerial ? [bySerial] : [];
    if (!bySerial && isDeviceId(serialOrDeviceId)) {
      for (const serial of await this.registry.serialsOf(serialOrDeviceId)) {
        const record = await this.registry.getCertificate(serial);
        if (record) records.push(record);
      }
    }
    if (records.length === 0) throw new RangeError(`no certificate with serial or device id "${serialOrDeviceId.slice(0, 80)}" is in the registry`);
    const revoked: string[] = [];
    for (const record of records) {
      if (record.revoked) continue;
      await this.registry.putCertificate({ ...record, revoked: true, revokedAt: this.now() });
      revoked.push(record.serial);
    }
    return revoked;
  }

  /** The records of a device's certificates, newest first. */
  async certificatesOf(deviceId: string): Promise<CertificateRecord[]> {
    const records = await Promise.all((await this.registry.serialsOf(deviceId)).map((serial) => this.registry.getCertificate(serial)));
    return records.filter((r): r is CertificateRecord => r !== undefined).sort((a, b) => b.issuedAt - a.issuedAt);
  }
}
