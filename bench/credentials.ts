/**
 * Device credentials: challenge-proof verifications per CPU-second (the registry lookup
 * included, in-memory so Redis round trips do not hide the CPU cost), against a baseline
 * of jose HS256 JWT verifications in the same run; and issuance (enrolment against the
 * real Redis on 127.0.0.1:6379) latency percentiles.
 */
import { randomUUID } from "node:crypto";
import { z } from "zod";
import { Redis } from "ioredis";
import { defineBench } from "./lib/bench.ts";
import { DeviceCredentials, InMemoryDeviceRegistry, RedisDeviceRegistry } from "../server/auth/DeviceCredentials.ts";
import { proveChallenge } from "../proto/deviceAuth.ts";
import { TokenService } from "../server/auth/tokens.ts";
import { clusterKeys } from "../server/auth/keys.ts";

const options = z.object({
  verifications: z.coerce.number().int().min(100).default(50_000),
  issuances: z.coerce.number().int().min(10).default(1_000),
  redisUrl: z.string().default("redis://127.0.0.1:6379"),
});

const keys = clusterKeys("bench-cluster-secret-0123456789abcdef01234");

/** Runs `work` `count` times (awaiting each) and returns operations per CPU-second of this process. */
async function perCpuSecond(count: number, work: (i: number) => Promise<unknown>): Promise<number> {
  const before = process.cpuUsage();
  for (let i = 0; i < count; i++) await work(i);
  const used = process.cpuUsage(before);
  return count / ((used.user + used.system) / 1e6);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export const credentialsBench = defineBench({
  description: "device credential verifications per CPU-second (vs JWT baseline) and issuance latency",
  options,
  timeoutSeconds: () => 120,
  async run(opts) {
    const credentials = new DeviceCredentials(keys.device, new InMemoryDeviceRegistry());
    const devices = await Promise.all(Array.from({ length: 100 }, (_, i) => credentials.enroll(`dev-${i}`, "excavator")));
    const challenges = devices.map(() => credentials.challenge());
    const proofs = devices.map((d, i) => proveChallenge(d.deviceSecret, d.record.deviceId, challenges[i]));

    const tokens = new TokenService({ key: keys.token, audience: "bench" });
    const jwts = await Promise.all(devices.map((d) => tokens.issue(DeviceCredentials.tokenClaims(d.record))));

    // Warm both paths before measuring.
    for (let i = 0; i < 2000; i++) { await credentials.verify(`dev-${i % 100}`, challenges[i % 100], proofs[i % 100]); await tokens.verify(jwts[i % 100]); }
    process.stderr.write(`credentials: ${opts.verifications} verifications each way\n`);
    const verificationsPerCpuS = await perCpuSecond(opts.verifications, (i) => credentials.verify(`dev-${i % 100}`, challenges[i % 100], proofs[i % 100]));
    const jwtPerCpuS = await perCpuSecond(opts.verifications, (i) => tokens.verify(jwts[i % 100]));

    const redis = new Redis(opts.redisUrl, { maxRetriesPerRequest: 1 });
    const prefix = `bench-${randomUUID().slice(0, 8)}:`;
    try {
      const issuer = new DeviceCredentials(keys.device, new RedisDeviceRegistry(redis, prefix));
      process.stderr.write(`credentials: ${opts.issuances} enrolments against ${opts.redisUrl}\n`);
      const latencies: number[] = [];
      for (let i = 0; i < opts.issuances; i++) {
        const started = performance.now();
        await issuer.enroll(`issue-${i}`, "drone");
        latencies.push(performance.now() - started);
      }
      latencies.sort((a, b) => a - b);
      const round = (n: number) => Math.round(n * 100) / 100;
      return {
        bench: "credentials",
        verificationsPerCpuS: Math.round(verificationsPerCpuS),
        baselineJwtPerCpuS: Math.round(jwtPerCpuS),
        ratioVsJwt: round(verificationsPerCpuS / jwtPerCpuS),
        issuanceP50Ms: round(percentile(latencies, 50)),
        issuanceP99Ms: round(percentile(latencies, 99)),
      };
    } finally {
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length) await redis.del(...keys);
      redis.disconnect();
    }
  },
});
