/**
 * The mqtt bench, tiny: 4 sensors, two short steps (200 and 400 readings/s) through a real
 * Mosquitto, adapter, node and site room, each with its baseline on the broker alone; the
 * one JSON line has every figure, they add up, and nothing of the run is left behind
 * (broker, node, adapter, load processes, the cluster's Redis keys). Needs `mosquitto`
 * and the test Redis, as the MQTT sensors tests do.
 */
import { readdirSync, readFileSync } from "node:fs";
import { Redis } from "ioredis";
import { describe, it, expect } from "vitest";
import { runBench } from "../fixtures/bench.ts";
import { testRedisUrl } from "../fixtures/redis.ts";

/** Pids of the processes whose command line holds `text`. */
function processesWith(text: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(text)) pids.push(Number(entry));
    } catch { /* gone meanwhile */ }
  }
  return pids;
}

// Shape and sanity only: timing figures on a shared machine are noise, so no thresholds here.
describe("mqtt bench", () => {
  it("measures two small steps of sensor readings from Mosquitto to the site room's client, and the broker alone", { timeout: 60_000 }, async () => {
    const { code, stdout, stderr } = await runBench("mqtt",
      ["--sensors", "4", "--steps", "200,400", "--seconds", "1", "--warmup", "0.5", "--redis-url", testRedisUrl(), "--timeout", "50"], 55_000);
    expect(code, stderr.slice(-3000)).toBe(0);
    // npm prints its own header on stdout first: the bench's one JSON line is the last one.
    const lines = stdout.trim().split("\n").filter((line) => line.startsWith("{"));
    expect(lines, stdout).toHaveLength(1);
    const result = JSON.parse(lines[0]!);

    for (const key of [
      "bench", "runId", "sensors", "qos", "telemetryHz", "adapterHz", "seconds", "pinned", "samplingBoundMs", "knee", "steps",
      "readingsPerSec", "offered", "p99Ms", "baselineP99Ms", "limitedBy", "warnings",
    ]) expect(result, key).toHaveProperty(key);
    expect(result).toMatchObject({ bench: "mqtt", sensors: 4, qos: 1, telemetryHz: 10, adapterHz: 20, seconds: 1, samplingBoundMs: 150 });
    expect(result.knee).toMatchObject({ minIngestPct: 99, minDeliveredPct: 99, p99LimitMs: 300 });
    expect(Array.isArray(result.warnings)).toBe(true);

    // Stepping stops at the first step that does not keep up: one or both steps, in order.
    expect(result.steps.length).toBeGreaterThanOrEqual(1);
    expect(result.steps.map((step: { target: number }) => step.target)).toEqual([200, 400].slice(0, result.steps.length));
    for (const step of result.steps) {
      const at = `step ${step.target}/s`;
      expect(step.offered, at).toBeGreaterThan(0);
      expect(step.ingested, at).toBeGreaterThan(0);
      expect(step.ingestedPerSec, at).toBeGreaterThan(0);
      expect(step.malformed + step.refused, at).toBe(0);
      // Every reading of the window is delivered (carried or coalesced) or lost; some are delivered.
      expect(step.delivered, at).toBeGreaterThan(0);
      expect(step.carried + step.coalesced, at).toBe(step.delivered);
      expect(step.delivered + step.lost, at).toBe(step.readings);
      expect(step.framesPerSec, at).toBeGreaterThan(0);
      expect(step.p95Ms, at).toBeGreaterThanOrEqual(step.p50Ms);
      expect(step.p99Ms, at).toBeGreaterThanOrEqual(step.p95Ms);
      // max is exact, the percentiles the upper edges of 0.05 ms buckets
      expect(step.maxMs + 0.05, at).toBeGreaterThanOrEqual(step.p99Ms);
      for (const stage of ["driver", "sample", "fanOut"]) {
        expect(Number.isFinite(step[`${stage}P50Ms`]), `${at} ${stage}`).toBe(true);
        expect(step[`${stage}P99Ms`], `${at} ${stage}`).toBeGreaterThanOrEqual(step[`${stage}P50Ms`]);
      }
      // The baseline ran at the same step, on the broker alone.
      expect(step.baselineOffered, at).toBeGreaterThan(0);
      expect(step.baselineReceived, at).toBeGreaterThan(0);
      expect(step.baselineReceived + step.baselineLost, at).toBe(step.baselineReadings);
      expect(step.baselineP99Ms, at).toBeGreaterThanOrEqual(step.baselineP50Ms);
      for (const name of ["broker", "adapter", "node", "publisher", "observer", "machine"]) expect(typeof step.cpuPct[name], `${at} ${name}`).toBe("number");
      expect(step.keepsUp, at).toBe(step.failed.length === 0);
    }
    // The figure is the highest step that kept up, or none.
    const kept = result.steps.filter((step: { keepsUp: boolean }) => step.keepsUp);
    if (kept.length === 0) {
      expect(result).toMatchObject({ readingsPerSec: null, p99Ms: null, baselineP99Ms: null });
    } else {
      const knee = kept.at(-1);
      expect(result).toMatchObject({ readingsPerSec: knee.ingestedPerSec, offered: knee.target, p99Ms: knee.p99Ms, baselineP99Ms: knee.baselineP99Ms });
    }

    // Nothing of the run is left: no process (broker, node, adapter, load) and no key of its cluster.
    expect(processesWith(result.runId)).toEqual([]);
    const redis = new Redis(testRedisUrl(), { maxRetriesPerRequest: 1 });
    try {
      expect(await redis.keys(`bench-mqtt-${result.runId}:*`)).toEqual([]);
    } finally {
      redis.disconnect();
    }
  });
});
