import { describe, it, expect } from "vitest";
import { runControlBench } from "../../bench/control.ts";

// Shape only: timing figures on a shared machine are noise, so no thresholds here.
describe("control bench", () => {
  it("measures a small control load through a region node and the relay baseline", { timeout: 120_000 }, async () => {
    const result = await runControlBench({ devices: 4, hz: 50, rounds: 2, seconds: 1.5, warmup: 0.5, estopRounds: 2 }, AbortSignal.timeout(110_000));

    expect(result).toMatchObject({ bench: "control", devices: 4, hz: 50, rounds: 2, seconds: 1.5 });
    expect(Object.keys(result).sort()).toEqual([
      "addedP50Ms", "addedP99Ms", "baseline", "baselineCpuPct", "bench", "commandsPerS", "cpuPerCommandRatio", "devices",
      "estopBaselineP99Ms", "estopP99Ms", "hz", "node", "pinned", "rounds", "seconds", "serverCpuPct",
    ]);
    expect(typeof result.pinned).toBe("boolean");
    expect(Object.keys(result.baseline).sort()).toEqual(["p50Ms", "p99Ms"]);
    expect(Object.keys(result.node).sort()).toEqual(["acked", "estopP50Ms", "estopP99Ms", "estops", "estopsLost", "lost", "p50Ms", "p99Ms"]);
    const figures = {
      addedP50Ms: result.addedP50Ms, addedP99Ms: result.addedP99Ms, estopP99Ms: result.estopP99Ms,
      commandsPerS: result.commandsPerS, serverCpuPct: result.serverCpuPct, estopBaselineP99Ms: result.estopBaselineP99Ms,
      cpuPerCommandRatio: result.cpuPerCommandRatio, baselineCpuPct: result.baselineCpuPct,
      ...Object.fromEntries(Object.entries(result.baseline).map(([key, value]) => [`baseline.${key}`, value])),
      ...Object.fromEntries(Object.entries(result.node).map(([key, value]) => [`node.${key}`, value])),
    };
    for (const [key, value] of Object.entries(figures)) expect(Number.isFinite(value), key).toBe(true);

    expect(result.commandsPerS).toBeGreaterThan(0);
    expect(result.node.acked).toBeGreaterThan(0);
    expect(result.serverCpuPct).toBeGreaterThan(0);
    expect(result.node.p99Ms).toBeGreaterThanOrEqual(result.node.p50Ms);
    expect(result.node.estopP99Ms).toBeGreaterThanOrEqual(result.node.estopP50Ms);
    expect(result.baseline.p99Ms).toBeGreaterThanOrEqual(result.baseline.p50Ms);
    expect(result.estopP99Ms).toBe(result.node.estopP99Ms);
    // Two turns of two e-stop rounds, each e-stopping all four devices under load, pooled; each one arrives.
    expect(result.node).toMatchObject({ estops: 16, estopsLost: 0 });
    // The pooled figures hold both turns: more commands than one turn's window could.
    expect(result.node.acked + result.node.lost).toBeGreaterThan(4 * 50 * 1.5);
  });
});
