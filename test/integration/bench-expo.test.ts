import { describe, it, expect } from "vitest";
import { Redis } from "ioredis";
import { runBench } from "../fixtures/bench.ts";
import { testRedisUrl } from "../fixtures/redis.ts";


// Shape only: timing figures on a shared machine are noise, so no thresholds here.
describe("expo bench", () => {
  // A busy 2-core machine (CI shares its cores) can take minutes over what takes 25 s quiet: the bounds only catch a hang.
  it("measures a tiny hall, its broadcast baseline and a hall in 4 zones on 4 nodes", { timeout: 180_000 }, async () => {
    const { code, stdout, stderr } = await runBench("expo",
      ["--visitors", "40", "--seconds", "2", "--warmup", "1", "--zone-visitors", "40", "--timeout", "150", "--redis-url", testRedisUrl(11)], 165_000);
    expect(code, stderr.slice(-3000)).toBe(0);
    // npm prints its own header on stdout first: the bench's one JSON line is the last one.
    const result = JSON.parse(stdout.trim().split("\n").pop()!);

    for (const key of [
      "bench", "visitors", "hz", "tickMs", "seconds", "p99Ms", "p50Ms", "cpuPerUpdate", "baselineCpuPerUpdate", "cpuPerUpdateRatio",
      "updatesPerS", "baselineUpdatesPerS", "serverCpuPct", "baselineServerCpuPct", "baseline", "zones", "warnings",
    ]) expect(result, key).toHaveProperty(key);
    expect(result).toMatchObject({ bench: "expo", visitors: 40, hz: 10, tickMs: 100, seconds: 2 });

    const positive = { cpuPerUpdate: result.cpuPerUpdate, baselineCpuPerUpdate: result.baselineCpuPerUpdate, cpuPerUpdateRatio: result.cpuPerUpdateRatio };
    for (const [key, value] of Object.entries(positive)) {
      expect(Number.isFinite(value), key).toBe(true);
      expect(value, key).toBeGreaterThan(0);
    }
    expect(Number.isFinite(result.p99Ms)).toBe(true);
    expect(Number.isFinite(result.p50Ms)).toBe(true);
    expect(result.p99Ms).toBeGreaterThanOrEqual(result.p50Ms);
    expect(result.updatesPerS).toBeGreaterThan(0);
    expect(result.baselineUpdatesPerS).toBeGreaterThan(0);

    expect(result.baseline).toMatchObject({ transport: "ws", clients: 40 });
    expect(Number.isFinite(result.baseline.p99Ms)).toBe(true);

    const zones = result.zones;
    expect(zones).toMatchObject({ nodes: 4, visitors: 40 });
    expect(zones.cpuPctPerNode).toHaveLength(4);
    expect(zones.handoffs).toBeGreaterThanOrEqual(0);
    expect(zones.handoffsTotal).toBeGreaterThanOrEqual(zones.handoffs);
    expect(zones.updatesPerS).toBeGreaterThan(0);
    expect(Number.isFinite(zones.p99Ms)).toBe(true);
    expect(Number.isFinite(zones.cpuPerUpdate) && zones.cpuPerUpdate > 0).toBe(true);
    expect(zones.projectedVisitors).toBeGreaterThan(0);
    expect(Array.isArray(result.warnings)).toBe(true);

    // The run removed its keys from its Redis DB.
    const redis = new Redis(testRedisUrl(11), { maxRetriesPerRequest: 1 });
    try {
      const left = [
        ...await redis.keys(`expo:bench-expo-zoned-${result.runId}:*`),
        ...await redis.keys(`bench-expo-${result.runId}:*`),
        ...(await redis.hkeys("roomcaches")).filter((roomId) => roomId.includes(result.runId)),
      ];
      expect(left).toEqual([]);
    } finally {
      redis.disconnect();
    }
  });
});
