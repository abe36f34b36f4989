import { describe, it, expect, afterAll } from "vitest";
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import {
  DeviceCredentials, InMemoryDeviceRegistry, RedisDeviceRegistry, DeviceCredentialError, type DeviceRegistry,
} from "../../../../server/auth/DeviceCredentials.ts";
import { proveChallenge } from "../../../../proto/deviceAuth.ts";
import { testRedisUrl } from "../../../fixtures/redis.ts";

const secret = "device-test-secret-0123456789abcdef0123";
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
    const { deviceSecret } = await new DeviceCredentials(secret, registry).enroll("ex-1", "excavator");
    const otherNode = new DeviceCredentials(secret, registry);
    const challenge = otherNode.challenge();
    const record = await otherNode.verify("ex-1", challenge, proveChallenge(deviceSecret, "ex-1", challenge));
    expect(record).toMatchObject({ deviceId: "ex-1", deviceClass: "excavator", revoked: false });
  });

  it("refuses unknown devices, forged proofs, replays and malformed input", async () => {
    const credentials = new DeviceCredentials(secret, makeRegistry());
    const { deviceSecret } = await credentials.enroll("dr-1", "drone");
    const challenge = credentials.challenge();
    expect(await refusal(credentials.verify("ghost", challenge, proveChallenge(deviceSecret, "ghost", challenge)))).toBe("unknown-device");
    const forger = new DeviceCredentials("another-cluster-secret-0123456789abcdef", new InMemoryDeviceRegistry());
    const { deviceSecret: forged } = await forger.enroll("dr-1", "drone");
    expect(await refusal(credentials.verify("dr-1", challenge, proveChallenge(forged, "dr-1", challenge)))).toBe("bad-proof");
    const replayed = proveChallenge(deviceSecret, "dr-1", challenge);
    expect(await refusal(credentials.verify("dr-1", credentials.challenge(), replayed))).toBe("bad-proof");
    expect(await refusal(credentials.verify("dr-1", challenge, "zz"))).toBe("malformed");
    expect(await refusal(credentials.verify("../etc", challenge, replayed))).toBe("malformed");
  });

  it("honours revocation and rotation at once", async () => {
    const credentials = new DeviceCredentials(secret, makeRegistry());
    const first = await credentials.enroll("ex-2", "excavator");
    const rotated = await credentials.enroll("ex-2", "excavator");
    const challenge = credentials.challenge();
    expect(await refusal(credentials.verify("ex-2", challenge, proveChallenge(first.deviceSecret, "ex-2", challenge)))).toBe("bad-proof");
    await credentials.verify("ex-2", challenge, proveChallenge(rotated.deviceSecret, "ex-2", challenge));
    await credentials.revoke("ex-2");
    expect(await refusal(credentials.verify("ex-2", challenge, proveChallenge(rotated.deviceSecret, "ex-2", challenge)))).toBe("revoked");
  });
});
