import { describe, it, expect } from "vitest";
import { runBench } from "../fixtures/bench.ts";


// Shape and correctness only: timing figures on a shared machine are noise, so no thresholds here.
describe("handoff bench", () => {
  // Two regions of two nodes with their Redis servers and proxies, 20 visitors, two handoffs
  // (the second back to the first node, which waits out its old copy: --seat-seconds 3), then
  // one kill of the hall's node. The bounds only catch a hang.
  it("hands a small hall there and back, brings it back after its node is killed, and loses and repeats no input", { timeout: 180_000 }, async () => {
    const { code, stdout, stderr } = await runBench("handoff",
      ["--clients", "20", "--handoffs", "2", "--interval-ms", "500", "--warmup", "1", "--seat-seconds", "3", "--kills", "1", "--timeout", "150"], 165_000);
    expect(code, stderr.slice(-3000)).toBe(0);
    // npm prints its own header on stdout first: the bench's one JSON line is the last one.
    const lines = stdout.trim().split("\n").filter((line) => line.startsWith("{"));
    expect(lines, stdout).toHaveLength(1);
    const result = JSON.parse(lines[0]!);

    for (const key of [
      "clients", "rttMs", "pauseP50Ms", "pauseP99Ms", "lost", "duplicated", "duplicatesDropped", "resent",
      "handoffs", "handoffMsP50", "handoffMsP99", "detectMs", "rtoMs", "rtoServerMs", "rpoMs", "failoverLost", "failover", "kills",
      "moveHz", "regions", "loadCpuPct",
    ]) expect(result, key).toHaveProperty(key);
    expect(result).toMatchObject({
      bench: "handoff", clients: 20, source: "jp-tokyo", target: "jp-osaka", regions: ["jp-tokyo", "jp-osaka"], rttMs: 8, moveHz: 5,
      handoffs: 2, failover: "measured", failoverLost: 0,
      targets: { detectMs: 1000, rtoMs: 3000, rpoMs: 250, failoverLost: 0 },
    });
    expect(result.lost, stderr.slice(-3000)).toBe(0);
    expect(result.duplicated, stderr.slice(-3000)).toBe(0);
    expect(result.neighbourSeqRegressions).toBe(0);
    // Every visitor's pause stamped for both moves, and finite.
    expect(result.pauseSamples).toBe(40);
    for (const key of ["pauseP50Ms", "pauseP99Ms", "handoffMsP50", "handoffMsP99"]) {
      expect(Number.isFinite(result[key]) && result[key] > 0, key).toBe(true);
    }
    expect(result.pauseP99Ms).toBeGreaterThanOrEqual(result.pauseP50Ms);
    expect(result.perHandoff.map((h: { from: string; to: string }) => `${h.from}>${h.to}`)).toEqual(["jp-tokyo>jp-osaka", "jp-osaka>jp-tokyo"]);

    // The kill: the hall's node (back on Tokyo's first node) SIGKILLed, the hall restored on
    // another node, every visitor back on it, no move lost; each figure a number of ms.
    expect(result.kills).toHaveLength(1);
    const [kill] = result.kills;
    expect(kill, stderr.slice(-3000)).toMatchObject({ killed: "tokyo-1", visitorsBack: 20, lost: 0 });
    expect(kill.restoredOn).toMatch(/^(tokyo|osaka)-\d$/);
    expect(kill.restoredOn).not.toBe("tokyo-1");
    for (const key of ["detectMs", "rtoMs", "rtoServerMs", "rpoMs"]) {
      expect(Number.isFinite(result[key]), key).toBe(true);
      expect(kill[key], key).toBe(result[key]);
    }
    // The loss is seen after the kill, and the hall is back after that.
    expect(result.detectMs).toBeGreaterThan(0);
    expect(result.rtoServerMs).toBeGreaterThanOrEqual(result.detectMs);
    expect(kill.rtoMs).toBe(kill.clientMs.firstFrame.max);
    for (const step of ["seat", "handoffEvent", "firstFrame"]) expect(Number.isFinite(kill.clientMs[step].p50), step).toBe(true);
    expect(Array.isArray(result.warnings)).toBe(true);
  });
});
