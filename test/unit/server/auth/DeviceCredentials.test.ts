import { describe, it, expect, afterAll } from "vitest";
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import {
  DeviceCredentials, InMemoryDeviceRegistry, RedisDeviceRegistry, DeviceCredentialError, type DeviceRegistry,
} from "../../../../server/auth/DeviceCredentials.ts";
import { proveChallenge } from "../../../../proto/deviceAuth.ts";
import { ErrorCode } from "../../../../proto/index.ts";
import { clusterKeys } from "../../../../server/auth/keys.ts";
import type { AuthError } from "../../../../server/auth/tokens.ts";
import { testRedisUrl } from "../../../fixtures/redis.ts";

const deviceKey = clusterKeys("device-test-secret-0123456789abcdef0123").device;
const redis = new Redis(testRedisUrl(), { maxRetriesPerRequest: 1 });
const prefix = `devcred-${randomUUID().slice(0, 8)}:`;
afterAll(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
});

async function refusal(promise: Promise<unknown>): Promise<string | undefined> {
  try { await promise; return undefined; } catch (e) { return (e as DeviceCredentialError).reason; }
}

describe.each<[string, () => DeviceRegistry]>([
  ["in-memory", () => new InMemoryDeviceRegistry()],
  ["redis", () => new RedisDeviceRegistry(redis, prefix)],
])("DeviceCredentials (%s registry)", (_name, makeRegistry) => {
  it("accepts the proof of an enrolled device, on any node sharing the secret", async () => {
    const registry = makeRegistry();
    const { deviceSecret } = await new DeviceCredentials(deviceKey, registry).enroll("ex-1", "excavator");
    const otherNode = new DeviceCredentials(deviceKey, registry);
    const challenge = otherNode.challenge();
    const record = await otherNode.verify("ex-1", challenge, proveChallenge(deviceSecret, "ex-1", challenge));
    expect(record).toMatchObject({ deviceId: "ex-1", deviceClass: "excavator", revoked: false });
  });

  it("refuses unknown devices, forged proofs, replays and malformed input", async () => {
    const credentials = new DeviceCredentials(deviceKey, makeRegistry());
    const { deviceSecret } = await credentials.enroll("dr-1", "drone");
    const challenge = credentials.challenge();
    expect(await refusal(credentials.verify("ghost", challenge, proveChallenge(deviceSecret, "ghost", challenge)))).toBe("unknown-device");
    const forger = new DeviceCredentials(clusterKeys("another-cluster-secret-0123456789abcdef").device, new InMemoryDeviceRegistry());
    const { deviceSecret: forged } = await forger.enroll("dr-1", "drone");
    expect(await refusal(credentials.verify("dr-1", challenge, proveChallenge(forged, "dr-1", challenge)))).toBe("bad-proof");
    const replayed = proveChallenge(deviceSecret, "dr-1", challenge);
    expect(await refusal(credentials.verify("dr-1", credentials.challenge(), replayed))).toBe("bad-proof");
    expect(await refusal(credentials.verify("dr-1", challenge, "zz"))).toBe("malformed");
    expect(await refusal(credentials.verify("../etc", challenge, replayed))).toBe("malformed");
  });

  it("honours revocation and rotation at once", async () => {
    const credentials = new DeviceCredentials(deviceKey, makeRegistry());
    const first = await credentials.enroll("ex-2", "excavator");
    const rotated = await credentials.enroll("ex-2", "excavator");
    const challenge = credentials.challenge();
    expect(await refusal(credentials.verify("ex-2", challenge, proveChallenge(first.deviceSecret, "ex-2", challenge)))).toBe("bad-proof");
    await credentials.verify("ex-2", challenge, proveChallenge(rotated.deviceSecret, "ex-2", challenge));
    await credentials.revoke("ex-2");
    expect(await refusal(credentials.verify("ex-2", challenge, proveChallenge(rotated.deviceSecret, "ex-2", challenge)))).toBe("revoked");
  });

  it("gives every enrolment a new secret, even after the registry was wiped and the version starts again", async () => {
    const before = await new DeviceCredentials(deviceKey, makeRegistry()).enroll("ex-wiped", "excavator");
    await redis.del(`${prefix}device:ex-wiped`);
    const wiped = new DeviceCredentials(deviceKey, makeRegistry());
    const after = await wiped.enroll("ex-wiped", "excavator");
    expect(after.record.version).toBe(before.record.version);
    expect(after.deviceSecret).not.toBe(before.deviceSecret);
    const challenge = wiped.challenge();
    expect(await refusal(wiped.verify("ex-wiped", challenge, proveChallenge(before.deviceSecret, "ex-wiped", challenge)))).toBe("bad-proof");
    expect(await wiped.deviceSecret("ex-wiped")).toBe(after.deviceSecret);
  });

  it("admits a device token of the current enrolment only", async () => {
    const registry = makeRegistry();
    const credentials = new DeviceCredentials(deviceKey, registry);
    const { record } = await credentials.enroll("dr-token", "drone");
    const claims = DeviceCredentials.tokenClaims(record);
    expect(await credentials.admitToken("dr-token", claims)).toMatchObject({ deviceId: "dr-token", version: record.version });
    await credentials.enroll("dr-token", "drone");
    expect(await refusal(credentials.admitToken("dr-token", claims))).toBe("stale-enrolment");
    // The same version number after a wipe is another enrolment too.
    await redis.del(`${prefix}device:dr-token`);
    const fresh = new DeviceCredentials(deviceKey, makeRegistry());
    const { record: again } = await fresh.enroll("dr-token", "drone");
    const sameVersion = { ...claims, ver: again.version };
    expect(await refusal(fresh.admitToken("dr-token", sameVersion))).toBe("stale-enrolment");
    await fresh.admitToken("dr-token", DeviceCredentials.tokenClaims(again));
    const code = async (promise: Promise<unknown>) => { try { await promise; return undefined; } catch (e) { return (e as AuthError).code; } };
    expect(await code(fresh.admitToken("dr-token", { sub: "dr-token", role: "device" }))).toBe(ErrorCode.TOKEN_INVALID);
    expect(await code(fresh.admitToken("dr-token", { ...DeviceCredentials.tokenClaims(again), role: "operator" }))).toBe(ErrorCode.FORBIDDEN);
    expect(await code(fresh.admitToken("dr-other", DeviceCredentials.tokenClaims(again)))).toBe(ErrorCode.FORBIDDEN);
  });
});
