/**
 * `npm run devices -- <enroll|revoke|show> DEVICE_ID [--class CLASS] [--redis-url URL]
 *   [--cluster-name NAME] [--auth-secret SECRET]`
 *
 * Provisioning for edge adapters, against the cluster Redis every node verifies from:
 * - enroll: registers the device (or re-enrols it, which rotates its secret: the old
 *   one stops working) and prints `{deviceId, deviceClass, version, deviceSecret}` as
 *   JSON. Hand the secret to the adapter (`TSUNAGI_DEVICE_SECRET`); it is not stored
 *   anywhere, and enrolling again is the only way to get a new one. Needs the cluster's
 *   auth secret, from which device secrets derive.
 * - revoke: the device's secret stops working on every node; an adapter connected with
 *   it is cut off within the gateway's revalidation interval, and its machine stops.
 * - show: prints the device's record (never a secret).
 *
 * Exit codes: 0 done; 2 bad usage; 4 no such device; 1 anything else (Redis down...).
 */
import { Redis } from "ioredis";
import { DEVICE_ID_PATTERN, DEVICE_ID_TEXT } from "../proto/ids.ts";
import { DeviceCredentialError, DeviceCredentials, RedisDeviceRegistry } from "../server/auth/DeviceCredentials.ts";
import { cliEnv, clusterRedisFlags, parseCliArgs, runCli, usageError } from "./env.ts";

const USAGE = "usage: npm run devices -- <enroll|revoke|show> DEVICE_ID [--class CLASS] [--redis-url URL] [--cluster-name NAME] [--auth-secret SECRET]";

async function main(): Promise<number> {
  const env = cliEnv();
  const parsed = parseCliArgs({
    class: { type: "string", default: "other" },
    ...clusterRedisFlags(env),
    "auth-secret": { type: "string", default: env.authSecret },
  });
  if (parsed instanceof Error) return usage(parsed.message);
  const [command, deviceId, ...rest] = parsed.positionals;
  if (command !== "enroll" && command !== "revoke" && command !== "show") return usage(`unknown command "${command ?? ""}"`);
  if (!deviceId) return usage("DEVICE_ID is required");
  if (rest.length > 0) return usage(`unexpected argument "${rest[0]}"`);
  if (!DEVICE_ID_PATTERN.test(deviceId)) return usage(`DEVICE_ID "${deviceId.slice(0, 80)}" must match ${DEVICE_ID_TEXT}`);
  const deviceClass = parsed.values.class!;
  if (!/^[a-z0-9-]{1,32}$/.test(deviceClass)) return usage(`--class "${deviceClass.slice(0, 40)}" must match [a-z0-9-]{1,32} (excavator, drone, rc-car, crane, other)`);
  const secret = parsed.values["auth-secret"];
  if (command === "enroll" && (!secret || secret.length < 32)) {
    return usage("enroll needs the cluster's auth secret (--auth-secret or TSUNAGI_AUTH_SECRET, at least 32 characters): device secrets derive from it");
  }

  const redis = new Redis(parsed.values["redis-url"]!, { maxRetriesPerRequest: 1, lazyConnect: true, retryStrategy: () => null });
  redis.on("error", () => {}); // connect() rejects with the reason
  try {
    await redis.connect();
    const registry = new RedisDeviceRegistry(redis, `${parsed.values["cluster-name"]}:`);
    // revoke and show never derive a secret, so any key does for them
    const credentials = new DeviceCredentials(secret ?? "unused-for-revoke-and-show-0000000000", registry);
    if (command === "enroll") {
      const { record, deviceSecret } = await credentials.enroll(deviceId, deviceClass);
      process.stdout.write(JSON.stringify({ deviceId: record.deviceId, deviceClass: record.deviceClass, version: record.version, deviceSecret }) + "\n");
      process.stderr.write(`device ${deviceId} enrolled (version ${record.version}); any earlier secret of it no longer works\n`);
      return 0;
    }
    if (command === "revoke") {
      await credentials.revoke(deviceId);
      process.stderr.write(`device ${deviceId} revoked: its secret no longer attaches, and a connected adapter is cut off\n`);
      return 0;
    }
    process.stdout.write(JSON.stringify(await credentials.lookup(deviceId)) + "\n");
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

function usage(problem: string): number {
  return usageError("devices", USAGE, problem);
}

runCli("devices", main);
