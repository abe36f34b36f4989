/**
 * The device CA (DeviceCa, x509.ts) and the registry's rule for admitting a certificate
 * (DeviceCertificates), with certificates made here: node's X509Certificate (OpenSSL)
 * must accept what the CA builds, and each way a certificate can fail has its code.
 */
import { describe, it, expect, afterAll } from "vitest";
import { randomUUID, X509Certificate, createPrivateKey } from "node:crypto";
import { Redis } from "ioredis";
import { DeviceCa } from "../../../../server/auth/DeviceCa.ts";
import {
  CertificateError, DeviceCertificates, InMemoryCertificateRegistry, RedisCertificateRegistry, type CertificateRegistry, type PresentedCertificate,
} from "../../../../server/auth/DeviceCertificates.ts";
import { isSerialText, normalizeSerial, randomSerial, subjectCommonName } from "../../../../server/auth/x509.ts";
import { ErrorCode } from "../../../../proto/index.ts";
import { testRedisUrl } from "../../../fixtures/redis.ts";

const redis = new Redis(testRedisUrl(), { maxRetriesPerRequest: 1 });
const prefix = `devcert-${randomUUID().slice(0, 8)}:`;
afterAll(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
});

const made = DeviceCa.create();
const ca = DeviceCa.load(made.certPem, made.keyPem);

/** What a TLS handshake would show of `certPem`, verified against the CA as OpenSSL does for the chain and validity. */
function presented(certPem: string, now = new Date()): PresentedCertificate {
  const certificate = new X509Certificate(certPem);
  const chains = certificate.checkIssued(ca.certificate) && certificate.verify(ca.certificate.publicKey);
  const expired = now > new Date(certificate.validTo) || now < new Date(certificate.validFrom);
  return {
    authorized: chains && !expired,
    authorizationError: !chains ? "DEPTH_ZERO_SELF_SIGNED_CERT" : expired ? "CERT_HAS_EXPIRED" : undefined,
    subjectCn: subjectCommonName(certificate), serial: normalizeSerial(certificate.serialNumber),
  };
}

async function code(promise: Promise<unknown>): Promise<number | undefined> {
  try { await promise; return undefined; } catch (error) { return (error as CertificateError).code; }
}

describe("DeviceCa", () => {
  it("makes a P-256 CA whose device certificates OpenSSL verifies: CN is the device id, the serial is random and normalised", () => {
    expect(ca.certificate.ca).toBe(true);
    expect(createPrivateKey(made.keyPem).asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
    const issued = ca.issue("ex-1", { days: 30 });
    const certificate = new X509Certificate(issued.certPem);
    expect(subjectCommonName(certificate)).toBe("ex-1");
    expect(certificate.checkIssued(ca.certificate)).toBe(true);
    expect(certificate.verify(ca.certificate.publicKey)).toBe(true);
    expect(certificate.ca).toBe(false);
    expect(normalizeSerial(certificate.serialNumber)).toBe(issued.serial);
    expect(issued.serial).not.toBe(ca.issue("ex-1").serial);
    expect(createPrivateKey(issued.keyPem).asymmetricKeyType).toBe("ec");
    expect(new Date(certificate.validTo).getTime()).toBeGreaterThan(Date.now() + 29 * 86_400_000);
  });

  it("refuses a bad device id, bad days, and a key or certificate that is not the CA's", () => {
    expect(() => ca.issue("not a device id")).toThrow(TypeError);
    expect(() => ca.issue("ex-1", { days: 0 })).toThrow(RangeError);
    expect(() => ca.issue("ex-1", { days: 1.5 })).toThrow(RangeError);
    const other = DeviceCa.create();
    expect(() => DeviceCa.load(made.certPem, other.keyPem)).toThrow(/does not belong/);
    expect(() => DeviceCa.load("garbage", made.keyPem)).toThrow(/no PEM certificate/);
    expect(() => DeviceCa.load(made.certPem, "garbage")).toThrow(/not a readable PEM private key/);
    expect(() => DeviceCa.load(ca.issue("ex-1").certPem, made.keyPem)).toThrow(/not a CA certificate/);
  });

  it("spells serials one way", () => {
    expect(normalizeSerial("00:0a:1B")).toBe("A1B");
    expect(isSerialText("0a:1b")).toBe(true);
    expect(isSerialText("ex-1")).toBe(false);
    for (let i = 0; i < 50; i++) expect(randomSerial()).toMatch(/^[1-7][0-9A-F]{31}$/);
  });
});

describe.each<[string, () => CertificateRegistry]>([
  ["in-memory", () => new InMemoryCertificateRegistry()],
  ["redis", () => new RedisCertificateRegistry(redis, `${prefix}${randomUUID().slice(0, 4)}:`)],
])("DeviceCertificates (%s registry)", (_name, makeRegistry) => {
  it("admits a recorded certificate of the CA for its device, and refuses each other case with its code", async () => {
    const certificates = new DeviceCertificates(makeRegistry());
    const good = ca.issue("ex-1");
    await certificates.recordIssued(good);
    expect(await certificates.admit("ex-1", presented(good.certPem))).toMatchObject({ serial: good.serial, deviceId: "ex-1", revoked: false });

    expect(await code(certificates.admit("ex-1", undefined))).toBe(ErrorCode.CERTIFICATE_MISSING);
    const selfSigned = DeviceCa.create({ name: "ex-1" });
    expect(await code(certificates.admit("ex-1", presented(selfSigned.certPem)))).toBe(ErrorCode.CERTIFICATE_UNTRUSTED);
    const expired = ca.issue("ex-1", { notBefore: new Date(Date.now() - 2 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000) });
    await certificates.recordIssued(expired);
    expect(await code(certificates.admit("ex-1", presented(expired.certPem)))).toBe(ErrorCode.CERTIFICATE_EXPIRED);
    const other = ca.issue("ex-2");
    await certificates.recordIssued(other);
    expect(await code(certificates.admit("ex-1", presented(other.certPem)))).toBe(ErrorCode.CERTIFICATE_MISMATCH);
    const unrecorded = ca.issue("ex-1");
    expect(await code(certificates.admit("ex-1", presented(unrecorded.certPem)))).toBe(ErrorCode.CERTIFICATE_REVOKED);
  });

  it("revokes by serial or by device id; a revoked certificate is refused and no longer admitted on revalidation", async () => {
    const certificates = new DeviceCertificates(makeRegistry());
    const first = ca.issue("ex-1");
    const second = ca.issue("ex-1");
    const third = ca.issue("ex-1");
    for (const issued of [first, second, third]) await certificates.recordIssued(issued);
    expect(await certificates.stillAdmitted(first.serial)).toBeUndefined();

    expect(await certificates.revoke(first.serial.toLowerCase())).toEqual([first.serial]);
    expect(await code(certificates.admit("ex-1", presented(first.certPem)))).toBe(ErrorCode.CERTIFICATE_REVOKED);
    expect(await certificates.stillAdmitted(first.serial)).toMatchObject({ code: ErrorCode.CERTIFICATE_REVOKED });
    expect(await certificates.stillAdmitted(second.serial)).toBeUndefined();

    expect((await certificates.revoke("ex-1")).sort()).toEqual([second.serial, third.serial].sort());
    expect(await certificates.stillAdmitted(third.serial)).toMatchObject({ code: ErrorCode.CERTIFICATE_REVOKED });
    expect((await certificates.certificatesOf("ex-1")).every((record) => record.revoked)).toBe(true);
    await expect(certificates.revoke("nobody")).rejects.toThrow(RangeError);
    expect(await certificates.stillAdmitted("ABCDEF")).toMatchObject({ code: ErrorCode.CERTIFICATE_REVOKED });
  });

  it("cuts a certificate that expires while connected", async () => {
    let now = Date.now();
    const certificates = new DeviceCertificates(makeRegistry(), () => now);
    const issued = ca.issue("ex-1", { days: 1 });
    await certificates.recordIssued(issued);
    expect(await certificates.stillAdmitted(issued.serial)).toBeUndefined();
    now += 2 * 86_400_000;
    expect(await certificates.stillAdmitted(issued.serial)).toMatchObject({ code: ErrorCode.CERTIFICATE_EXPIRED });
  });
});
