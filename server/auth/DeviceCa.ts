/**
 * The cluster's device CA: a key and a self-signed CA certificate, made once by the
 * operator (`npm run devices -- init-ca`), and the device certificates it signs
 * (`issue-cert ID`): subject CN=<device id>, ECDSA P-256, a random 128-bit serial,
 * clientAuth. The CA key stays with the operator's provisioning tool; nodes get the CA
 * certificate only (gateway.deviceCaFile). Recording an issued serial in the registry,
 * which is what makes it revocable and admitted, is DeviceCertificates' job.
 *
 * @example
 *   const ca = DeviceCa.create();                         // { certPem, keyPem } to keep
 *   const issued = DeviceCa.load(ca.certPem, ca.keyPem).issue("ex-1", { days: 365 });
 *   await certificates.recordIssued(issued);              // DeviceCertificates
 */
import { createPrivateKey, type KeyObject, type X509Certificate } from "node:crypto";
import { DEVICE_ID_TEXT, isDeviceId } from "../../proto/ids.ts";
import { buildCertificate, keyMatches, newKeyPair, normalizeSerial, parseCertificate, privateKeyPem, randomSerial, subjectCommonName } from "./x509.ts";

/** The CA certificate's subject when none is given. */
export const DEFAULT_CA_NAME = "Tsunagi device CA";
/** Validity of a device certificate when none is given, days. */
export const DEFAULT_DEVICE_DAYS = 365;
/** Validity of a CA certificate when none is given, days: rotate well before. */
export const DEFAULT_CA_DAYS = 3650;
/** Longest validity either may be given, days. */
export const MAX_DAYS = 36_500;
/** notBefore is this far back, so a device whose clock runs a little behind accepts nothing stranger than a fresh certificate. */
const BACKDATE_MS = 5 * 60_000;

/** A device certificate just issued: what the adapter needs, and what the registry records. */
export interface IssuedCertificate {
  deviceId: string;
  /** Normalised hex (x509.normalizeSerial). */
  serial: string;
  certPem: string;
  keyPem: string;
  notBefore: Date;
  notAfter: Date;
}

export interface IssueOptions {
  /** Validity from now, days (default 365). */
  days?: number;
  /** An explicit window instead of `days` (tests make expired and not-yet-valid certificates). */
  notBefore?: Date;
  notAfter?: Date;
}

export class DeviceCa {
  /** The CA certificate, parsed. */
  readonly certificate: X509Certificate;
  /** Its PEM text (what nodes get as gateway.deviceCaFile). */
  readonly certPem: string;
  /** The CA's signing key. */
  private readonly key: KeyObject;
  /** The CA certificate's subject CN: the issuer of every device certificate. */
  private readonly name: string;

  private constructor(certPem: string, certificate: X509Certificate, key: KeyObject) {
    this.certPem = certPem;
    this.certificate = certificate;
    this.key = key;
    this.name = subjectCommonName(certificate) ?? DEFAULT_CA_NAME;
  }

  /** A new CA key and self-signed certificate, as PEM texts. */
  static create(options: { name?: string; days?: number } = {}): { certPem: string; keyPem: string } {
    const days = checkedDays(options.days ?? DEFAULT_CA_DAYS);
    const name = options.name ?? DEFAULT_CA_NAME;
    const keys = newKeyPair();
    const now = Date.now();
    const certPem = buildCertificate({
      subject: name, issuer: name, serial: randomSerial(), publicKey: keys.publicKey, signingKey: keys.privateKey,
      notBefore: new Date(now - BACKDATE_MS), notAfter: new Date(now + days * 86_400_000), ca: true,
    });
    return { certPem, keyPem: privateKeyPem(keys.privateKey) };
  }

  /** The CA from its certificate and key (PEM texts); a TypeError saying what is wrong with them. */
  static load(certPem: string, keyPem: string): DeviceCa {
    const certificate = parseCertificate(certPem, "the CA certificate");
    if (!certificate.ca) throw new TypeError("the CA certificate is not a CA certificate (basicConstraints CA:TRUE)");
    let key: KeyObject;
    try {
      key = createPrivateKey(keyPem);
    } catch (error) {
      throw new TypeError(`the CA key is not a readable PEM private key: ${(error as Error).message}`);
    }
    if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "prime256v1") throw new TypeError("the CA key must be ECDSA P-256 (npm run devices -- init-ca)");
    if (!keyMatches(certificate, key)) throw new TypeError("the CA key does not belong to the CA certificate");
    return new DeviceCa(certPem, certificate, key);
  }

  /** Issues a device certificate with a fresh key: subject CN=`deviceId`, a random serial. */
  issue(deviceId: string, options: IssueOptions = {}): IssuedCertificate {
    if (!isDeviceId(deviceId)) throw new TypeError(`device id must match ${DEVICE_ID_TEXT}`);
    const now = Date.now();
    const notBefore = options.notBefore ?? new Date(now - BACKDATE_MS);
    const notAfter = options.notAfter ?? new Date(now + checkedDays(options.days ?? DEFAULT_DEVICE_DAYS) * 86_400_000);
    if (!(notAfter > notBefore)) throw new RangeError("notAfter must be after notBefore");
    const keys = newKeyPair();
    const serial = randomSerial();
    const certPem = buildCertificate({
      subject: deviceId, issuer: this.name, serial, publicKey: keys.publicKey, signingKey: this.key,
      issuerPublicKey: this.certificate.publicKey, notBefore, notAfter, ca: false,
    });
    return { deviceId, serial: normalizeSerial(serial), certPem, keyPem: privateKeyPem(keys.privateKey), notBefore, notAfter };
  }
}

function checkedDays(days: number): number {
  if (!Number.isInteger(days) || days < 1 || days > MAX_DAYS) throw new RangeError(`days must be a whole number from 1 to ${MAX_DAYS}, got ${String(days)}`);
  return days;
}
