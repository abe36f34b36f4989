/**
 * `npm run devices -- <enroll|revoke|show> DEVICE_ID [--class CLASS] [--redis-url URL | --redis-sentinels HOST:PORT,... --redis-master-name NAME]
 *   [--cluster-name NAME] [--device-key-file FILE]`
 *
 * Provisioning for edge adapters, against the cluster Redis every node verifies from:
 * - enroll: registers the device (or re-enrols it with a new version and a fresh salt,
 *   which rotates its secret: the old one stops working, and so does a device token of
 *   the old enrolment) and prints `{deviceId, deviceClass, version, enrolment,
 *   deviceSecret}` as JSON. Hand the secret to the adapter (`TSUNAGI_DEVICE_SECRET_FILE`);
 *   it is not stored anywhere, and enrolling again is the only way to get a new one.
 *   Needs the cluster's device key (`npm run keys -- device-key`), from which device
 *   secrets derive: never the cluster secret, so this tool cannot mint access tokens.
 * - revoke: the device's secret stops working on every node; an adapter connected with
 *   it is cut off within the gateway's revalidation interval, and its machine stops.
 * - show: prints the device's record, with its enrolment (`version`, `id`: the `ver` and
 *   `enr` claims of a device token), never a secret or the salt it derives from.
 *
 * - init-ca, issue-cert, revoke-cert: the device CA and its certificates (certificate
 *   mode), cli/deviceCertificates.ts.
 *
 * Exit codes: 0 done; 2 bad usage; 4 no such device; 1 anything else (Redis down...).
 */
import type { Redis } from "ioredis";
import { DEVICE_ID_PATTERN, DEVICE_ID_TEXT } from "../proto/ids.ts";
import { DeviceCredentialError, DeviceCredentials, enrolmentOf, RedisDeviceRegistry, type DeviceRecord } from "../server/auth/DeviceCredentials.ts";
import { keyFromHex } from "../server/auth/keys.ts";
import { resolveSecret, SecretError } from "../common/secrets.ts";
import { CLUSTER_REDIS_USAGE, RedisFlagsError, cliEnv, clusterRedisAddress, clusterRedisFlags, openClusterRedis, parseCliArgs, runCli, usageError } from "./env.ts";
import { CERTIFICATE_USAGE, CertificateNotFound, CertificateUsageError, isCertificateCommand, runCertificateCommand } from "./deviceCertificates.ts";

const USAGE = `usage: npm run devices -- <enroll|revoke|show> DEVICE_ID [--class CLASS] ${CLUSTER_REDIS_USAGE} [--device-key-file FILE]\n`
  + CERTIFICATE_USAGE + "\n"
  + "  enroll needs the cluster's device key (npm run keys -- device-key): --device-key-file FILE, TSUNAGI_DEVICE_KEY_FILE or TSUNAGI_DEVICE_KEY";

async function main(): Promise<number> {
  const env = cliEnv();
  const parsed = parseCliArgs({
    class: { type: "string", default: "other" },
    ...clusterRedisFlags(env),
    "device-key": { type: "string" },
    "device-key-file": { type: "string" },
    out: { type: "string" },
    days: { type: "string" },
    name: { type: "string" },
    "ca-cert": { type: "string" },
    "ca-key": { type: "string" },
  });
  if (parsed instanceof Error) return usage(parsed.message);
  let address: string;
  try {
    address = clusterRedisAddress(parsed.values, env);
  } catch (error) {
    if (error instanceof RedisFlagsError) return usage(error.message);
    throw error;
  }
  const [command, deviceId, ...rest] = parsed.positionals;
  if (isCertificateCommand(command)) {
    if (rest.length > 0) return usage(`unexpected argument "${rest[0]}"`);
    return certificateCommand(command, deviceId, parsed.values, address);
  }
  if (command !== "enroll" && command !== "revoke" && command !== "show") return usage(`unknown command "${command ?? ""}"`);
  if (!deviceId) return usage("DEVICE_ID is required");
  if (rest.length > 0) return usage(`unexpected argument "${rest[0]}"`);
  if (!DEVICE_ID_PATTERN.test(deviceId)) return usage(`DEVICE_ID "${deviceId.slice(0, 80)}" must match ${DEVICE_ID_TEXT}`);
  const deviceClass = parsed.values.class!;
  if (!/^[a-z0-9-]{1,32}$/.test(deviceClass)) return usage(`--class "${deviceClass.slice(0, 40)}" must match [a-z0-9-]{1,32} (excavator, drone, rc-car, crane, other)`);
  let deviceKey: Buffer | undefined;
  try {
    const { secret, warning } = resolveSecret("device key", {
      flag: parsed.values["device-key"], flagName: "--device-key", file: parsed.values["device-key-file"], fileName: "--device-key-file",
      env: env.deviceKey, envName: "TSUNAGI_DEVICE_KEY", envFile: env.deviceKeyFile, envFileName: "TSUNAGI_DEVICE_KEY_FILE",
    });
    if (warning) process.stderr.write(`devices: warning: ${warning}\n`);
    deviceKey = secret === undefined ? undefined : keyFromHex(secret, "the device key");
  } catch (error) {
    if (error instanceof SecretError || error instanceof TypeError) return usage(error.message);
    throw error;
  }
  if (command === "enroll" && !deviceKey) return usage("enroll needs the cluster's device key, from which device secrets derive");

  const redis = openClusterRedis(address);
  try {
    await redis.connect();
    const registry = new RedisDeviceRegistry(redis, `${parsed.values["cluster-name"]}:`);
    // revoke and show never derive a secret, so any key does for them
    const credentials = new DeviceCredentials(deviceKey ?? Buffer.alloc(32), registry);
    if (command === "enroll") {
      const { record, deviceSecret } = await credentials.enroll(deviceId, deviceClass);
      process.stdout.write(JSON.stringify({ ...shown(record), deviceSecret }) + "\n");
      process.stderr.write(`device ${deviceId} enrolled (version ${record.version}); any earlier secret of it no longer works\n`);
      return 0;
    }
    if (command === "revoke") {
      await credentials.revoke(deviceId);
      process.stderr.write(`device ${deviceId} revoked: its secret no longer attaches, and a connected adapter is cut off\n`);
      return 0;
    }
    process.stdout.write(JSON.stringify(shown(await credentials.lookup(deviceId))) + "\n");
    return 0;
  } catch (error) {
    if (error instanceof DeviceCredentialError && error.reason === "unknown-device") {
      process.stderr.write(`devices: ${error.message}\n`);
      return 4;
    }
    throw error;
  } finally {
    redis.disconnect();
  }
}

/** init-ca, issue-cert, revoke-cert (cli/deviceCertificates.ts), with their exit codes. */
async function certificateCommand(command: Parameters<typeof runCertificateCommand>[0], target: string | undefined, values: Parameters<typeof runCertificateCommand>[2], address: string): Promise<number> {
  let redis: Redis | undefined;
  const connect = async () => {
    redis = openClusterRedis(address);
    await redis.connect();
    return redis;
  };
  try {
    await runCertificateCommand(command, target, values, connect);
    return 0;
  } catch (error) {
    if (error instanceof CertificateUsageError) return usage(error.message);
    if (error instanceof CertificateNotFound) {
      process.stderr.write(`devices: ${error.message}\n`);
      return 4;
    }
    throw error;
  } finally {
    redis?.disconnect();
  }
}

/** What the tool prints of a record: never the salt a secret derives from. */
function shown(record: DeviceRecord) {
  return {
    deviceId: record.deviceId, deviceClass: record.deviceClass, version: record.version, enrolment: enrolmentOf(record).id,
    revoked: record.revoked, enrolledAt: record.enrolledAt,
  };
}

function usage(problem: string): number {
  return usageError("devices", USAGE, problem);
}

runCli("devices", main);
