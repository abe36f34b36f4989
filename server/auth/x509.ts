/**
 * The few X.509 operations the device CA needs (DeviceCa.ts), on ECDSA P-256 keys. Node
 * parses and verifies certificates (crypto.X509Certificate) but cannot build one, so the
 * DER of a certificate is assembled with @peculiar/asn1-x509 (pure JS, no process spawn)
 * and signed with node's crypto. Serials are normalised to one spelling (uppercase hex,
 * no leading zeros, as X509Certificate.serialNumber and TLS peer certificates give them),
 * so the registry, the CLI and the gateway compare them as text.
 *
 * @example
 *   const keys = newKeyPair();
 *   const pem = buildCertificate({ subject: "ex-1", issuer: "Tsunagi device CA", serial: randomSerial(),
 *     publicKey: keys.publicKey, signingKey: caKey, notBefore, notAfter, ca: false });
 */
import { createHash, createPublicKey, generateKeyPairSync, randomBytes, sign, X509Certificate, type KeyObject } from "node:crypto";
import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
import {
  AlgorithmIdentifier, AttributeTypeAndValue, AttributeValue, AuthorityKeyIdentifier, BasicConstraints, Certificate, ExtendedKeyUsage,
  Extension, Extensions, id_ce_authorityKeyIdentifier, id_ce_basicConstraints, id_ce_extKeyUsage, id_ce_keyUsage, id_ce_subjectKeyIdentifier,
  id_kp_clientAuth, KeyIdentifier, KeyUsage, KeyUsageFlags, Name, RelativeDistinguishedName, SubjectKeyIdentifier, SubjectPublicKeyInfo,
  TBSCertificate, Validity, Version,
} from "@peculiar/asn1-x509";

/** ecdsa-with-SHA256 (RFC 5758). */
const ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2";
/** The commonName attribute type. */
const COMMON_NAME = "2.5.4.3";
/** Bytes of a random serial: 128 bits, well above RFC 5280's floor of 64 unpredictable bits. */
const SERIAL_BYTES = 16;

/** An ECDSA P-256 key pair. */
export function newKeyPair(): { publicKey: KeyObject; privateKey: KeyObject } {
  return generateKeyPairSync("ec", { namedCurve: "P-256" });
}

/** A fresh random serial, normalised: a positive integer of 16 bytes, 32 hex digits (first byte 0x10 to 0x7f). */
export function randomSerial(): string {
  const bytes = randomBytes(SERIAL_BYTES);
  bytes[0] = 0x10 + (bytes[0]! % 0x70);
  return normalizeSerial(bytes.toString("hex"));
}

/** A serial in the one spelling used everywhere: uppercase hex, no colons, no leading zeros. */
export function normalizeSerial(text: string): string {
  return text.replace(/:/g, "").toUpperCase().replace(/^0+(?=.)/, "");
}

/** Whether `text` spells a serial (hex, optionally with colons), before normalising. */
export function isSerialText(text: string): boolean {
  return /^[0-9A-Fa-f]{2}(:?[0-9A-Fa-f]{2}){0,19}$/.test(text) || /^[0-9A-Fa-f]{1,40}$/.test(text);
}

export interface CertificateSpec {
  /** The subject's common name (a device id, or the CA's name). */
  subject: string;
  /** The issuer's common name (the subject's own for a self-signed certificate). */
  issuer: string;
  /** Normalised hex (randomSerial()). */
  serial: string;
  /** The subject's public key. */
  publicKey: KeyObject;
  /** The issuer's private key, which signs. */
  signingKey: KeyObject;
  /** The issuer's public key, for the authority key identifier; default: the subject's (self-signed). */
  issuerPublicKey?: KeyObject;
  notBefore: Date;
  notAfter: Date;
  /** A CA certificate (keyCertSign, path length 0) or a device's (digitalSignature, clientAuth). */
  ca: boolean;
}

/** Builds and signs a certificate; its PEM text. */
export function buildCertificate(spec: CertificateSpec): string {
  const spki = AsnConvert.parse(spec.publicKey.export({ format: "der", type: "spki" }), SubjectPublicKeyInfo);
  const keyId = (key: KeyObject) => keyIdentifier(key);
  const extension = (extnID: string, critical: boolean, value: unknown) =>
    new Extension({ extnID, critical, extnValue: new OctetString(AsnConvert.serialize(value)) });
  const extensions = spec.ca
    ? [
      extension(id_ce_basicConstraints, true, new BasicConstraints({ cA: true, pathLenConstraint: 0 })),
      extension(id_ce_keyUsage, true, new KeyUsage(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign)),
    ]
    : [
      extension(id_ce_basicConstraints, true, new BasicConstraints({ cA: false })),
      extension(id_ce_keyUsage, true, new KeyUsage(KeyUsageFlags.digitalSignature)),
      extension(id_ce_extKeyUsage, false, new ExtendedKeyUsage([id_kp_clientAuth])),
    ];
  extensions.push(extension(id_ce_subjectKeyIdentifier, false, new SubjectKeyIdentifier(keyId(spec.publicKey))));
  extensions.push(extension(id_ce_authorityKeyIdentifier, false,
    new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(keyId(spec.issuerPublicKey ?? spec.publicKey)) })));
  const algorithm = new AlgorithmIdentifier({ algorithm: ECDSA_WITH_SHA256 });
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: arrayBuffer(Buffer.from(spec.serial.length % 2 ? `0${spec.serial}` : spec.serial, "hex")),
    signature: algorithm,
    issuer: commonName(spec.issuer),
    validity: new Validity({ notBefore: spec.notBefore, notAfter: spec.notAfter }),
    subject: commonName(spec.subject),
    subjectPublicKeyInfo: spki,
    extensions: new Extensions(extensions),
  });
  const tbsDer = Buffer.from(AsnConvert.serialize(tbs));
  // Node signs ECDSA in DER (r, s), the encoding X.509 wants.
  const signature = sign("sha256", tbsDer, spec.signingKey);
  const der = Buffer.from(AsnConvert.serialize(new Certificate({ tbsCertificate: tbs, signatureAlgorithm: algorithm, signatureValue: arrayBuffer(signature) })));
  return toPem(der, "CERTIFICATE");
}

/** The common name of a certificate's subject, or undefined when it has none (or several). */
export function subjectCommonName(certificate: X509Certificate): string | undefined {
  const names = certificate.subject.split("\n").filter((line) => line.startsWith("CN=")).map((line) => line.slice(3));
  return names.length === 1 ? names[0] : undefined;
}

/** Parses PEM text holding one certificate; throws a TypeError naming `what` when it does not. */
export function parseCertificate(pem: string, what: string): X509Certificate {
  if (!pem.includes("-----BEGIN CERTIFICATE-----")) throw new TypeError(`${what} holds no PEM certificate`);
  try {
    return new X509Certificate(pem);
  } catch (error) {
    throw new TypeError(`${what} is not a readable certificate: ${(error as Error).message}`);
  }
}

/** Whether a private key and a certificate's public key are one pair. */
export function keyMatches(certificate: X509Certificate, privateKey: KeyObject): boolean {
  const spki = (key: KeyObject) => key.export({ format: "der", type: "spki" });
  return spki(certificate.publicKey).equals(spki(createPublicKey(privateKey)));
}

/** PKCS#8 PEM of a private key. */
export function privateKeyPem(key: KeyObject): string {
  return key.export({ format: "pem", type: "pkcs8" }).toString();
}

/** RFC 5280's method 1: SHA-1 of the subject public key's bits (here of the whole SPKI, which is as unique). */
function keyIdentifier(key: KeyObject): ArrayBuffer {
  return arrayBuffer(createHash("sha1").update(key.export({ format: "der", type: "spki" })).digest());
}

/** The bytes of a Buffer as an ArrayBuffer of their own (a Buffer may be a view into a shared pool). */
function arrayBuffer(bytes: Buffer): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

function commonName(value: string): Name {
  return new Name([new RelativeDistinguishedName([new AttributeTypeAndValue({ type: COMMON_NAME, value: new AttributeValue({ utf8String: value }) })])]);
}

function toPem(der: Buffer, label: string): string {
  const lines = der.toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}
