/**
 * The device CA commands of `npm run devices` (cli/devices.ts hands them here):
 *
 * - `init-ca --out DIR [--days N] [--name CN]`: a new device CA, DIR/ca.key (mode 0600)
 *   and DIR/ca.crt. Keep the key with the provisioning tool, offline if you can; nodes get
 *   ca.crt only (gateway.deviceCaFile). An existing DIR/ca.key is never overwritten.
 * - `issue-cert ID --ca-cert FILE --ca-key FILE --out DIR [--days N]`: a certificate for
 *   an enrolled device, DIR/ID.key (0600) and DIR/ID.crt, its serial recorded in the
 *   cluster registry (so it attaches, and can be revoked); prints `{deviceId, serial,
 *   notAfter, certFile, keyFile}` as JSON.
 * - `revoke-cert SERIAL|ID`: revokes one certificate, or every certificate of a device; a
 *   connected adapter using one is cut off within gateway.revalidateMs.
 *
 * Exit codes as cli/devices.ts: 0 done; 2 bad usage or unreadable files; 4 no such device
 * or certificate; 1 anything else.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Redis } from "ioredis";
import { DeviceCa, MAX_DAYS } from "../server/auth/DeviceCa.ts";
import { DeviceCertificates, RedisCertificateRegistry } from "../server/auth/DeviceCertificates.ts";
import { DeviceCredentialError, DeviceCredentials, RedisDeviceRegistry } from "../server/auth/DeviceCredentials.ts";
import { DEVICE_ID_PATTERN, DEVICE_ID_TEXT } from "../proto/ids.ts";
import { CLUSTER_REDIS_USAGE } from "./env.ts";

export const CERTIFICATE_COMMANDS = ["init-ca", "issue-cert", "revoke-cert"] as const;
export type CertificateCommand = (typeof CERTIFICATE_COMMANDS)[number];

export const CERTIFICATE_USAGE = "       npm run devices -- init-ca --out DIR [--days N] [--name CN]\n"
  + "       npm run devices -- issue-cert DEVICE_ID --ca-cert FILE --ca-key FILE --out DIR [--days N] " + CLUSTER_REDIS_USAGE + "\n"
  + "       npm run devices -- revoke-cert SERIAL|DEVICE_ID " + CLUSTER_REDIS_USAGE;

export interface CertificateFlags {
  out?: string;
  days?: string;
  name?: string;
  "ca-cert"?: string;
  "ca-key"?: string;
  "cluster-name"?: string;
}

/** A problem with the command line or its files: exit 2 with the usage. */
export class CertificateUsageError extends Error {}
/** No such device or certificate: exit 4. */
export class CertificateNotFound extends Error {}

/** Whether `command` is one of these. */
export function isCertificateCommand(command: string | undefined): command is CertificateCommand {
  return (CERTIFICATE_COMMANDS as readonly string[]).includes(command ?? "");
}

/** init-ca needs no registry; the others get `redis()`, connected. */
export async function runCertificateCommand(command: CertificateCommand, target: string | undefined, flags: CertificateFlags, redis: () => Promise<Redis>): Promise<void> {
  const days = flags.days === undefined ? undefined : Number(flags.days);
  if (days !== undefined && !(Number.isInteger(days) && days >= 1 && days <= MAX_DAYS)) throw new CertificateUsageError(`--days "${flags.days}" must be a whole number of days, 1 to ${MAX_DAYS}`);
  if (command === "init-ca") {
    if (target !== undefined) throw new CertificateUsageError(`unexpected argument "${target}"`);
    const out = required(flags.out, "--out DIR: where ca.key and ca.crt go");
    const keyFile = path.join(out, "ca.key");
    if (existsSync(keyFile)) throw new CertificateUsageError(`${keyFile} exists: a CA key is never overwritten (move it away to make a new CA)`);
    const ca = DeviceCa.create({ days, name: flags.name });
    mkdirSync(out, { recursive: true });
    writeFileSync(keyFile, ca.keyPem, { mode: 0o600, flag: "wx" });
    writeFileSync(path.join(out, "ca.crt"), ca.certPem);
    process.stdout.write(JSON.stringify({ certFile: path.join(out, "ca.crt"), keyFile }) + "\n");
    process.stderr.write(`device CA made: give nodes ${path.join(out, "ca.crt")} (gateway.deviceCaFile); keep ${keyFile} off the nodes\n`);
    return;
  }
  if (target === undefined) throw new CertificateUsageError(command === "issue-cert" ? "DEVICE_ID is required" : "SERIAL or DEVICE_ID is required");
  const prefix = `${flags["cluster-name"]}:`;
  if (command === "issue-cert") {
    if (!DEVICE_ID_PATTERN.test(target)) throw new CertificateUsageError(`DEVICE_ID "${target.slice(0, 80)}" must match ${DEVICE_ID_TEXT}`);
    const out = required(flags.out, "--out DIR: where DEVICE_ID.key and DEVICE_ID.crt go");
    const ca = loadCa(required(flags["ca-cert"], "--ca-cert FILE: the device CA's certificate"), required(flags["ca-key"], "--ca-key FILE: the device CA's key"));
    const client = await redis();
    try {
      // An enrolled device only: its class is the registry's, and revoking it cuts every credential.
      await new DeviceCredentials(Buffer.alloc(32), new RedisDeviceRegistry(client, prefix)).usable(target);
    } catch (error) {
      if (error instanceof DeviceCredentialError) throw new CertificateNotFound(`${error.message}: enrol it first (npm run devices -- enroll ${target} --class CLASS)`);
      throw error;
    }
    const issued = ca.issue(target, { days });
    await new DeviceCertificates(new RedisCertificateRegistry(client, prefix)).recordIssued(issued);
    mkdirSync(out, { recursive: true });
    const keyFile = path.join(out, `${target}.key`);
    const certFile = path.join(out, `${target}.crt`);
    writeFileSync(keyFile, issued.keyPem, { mode: 0o600 });
    writeFileSync(certFile, issued.certPem);
    process.stdout.write(JSON.stringify({ deviceId: target, serial: issued.serial, notAfter: issued.notAfter.toISOString(), certFile, keyFile }) + "\n");
    process.stderr.write(`certificate ${issued.serial} issued to device ${target}: install ${certFile} and ${keyFile} on its adapter (--cert, --key)\n`);
    return;
  }
  let revoked: string[];
  try {
    revoked = await new DeviceCertificates(new RedisCertificateRegistry(await redis(), prefix)).revoke(target);
  } catch (error) {
    if (error instanceof RangeError) throw new CertificateNotFound(error.message);
    throw error;
  }
  process.stdout.write(JSON.stringify({ revoked }) + "\n");
  process.stderr.write(revoked.length
    ? `revoked ${revoked.join(", ")}: no longer attaches, and a connected adapter is cut off within the gateway's revalidation period\n`
    : `${target}: already revoked\n`);
}

function required(value: string | undefined, what: string): string {
  if (value === undefined || value === "") throw new CertificateUsageError(`${what} is required`);
  return value;
}

function loadCa(certFile: string, keyFile: string): DeviceCa {
  const read = (file: string, flag: string) => {
    try {
      return readFileSync(file, "utf8");
    } catch (error) {
      throw new CertificateUsageError(`${flag} ${file}: ${(error as Error).message}`);
    }
  };
  try {
    return DeviceCa.load(read(certFile, "--ca-cert"), read(keyFile, "--ca-key"));
  } catch (error) {
    if (error instanceof TypeError) throw new CertificateUsageError(`--ca-cert ${certFile} / --ca-key ${keyFile}: ${error.message}`);
    throw error;
  }
}
