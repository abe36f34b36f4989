/**
 * The voice bench, tiny: one step (2 speakers × 2 listeners through a real Janus), its
 * baseline without Janus; the one JSON line has every figure, and nothing of the run is
 * left behind (Janus, load processes). Needs `janus` on the PATH, as the voice tests do.
 */
import { readdirSync, readFileSync } from "node:fs";
import { describe, it, expect } from "vitest";
import { runBench } from "../fixtures/bench.ts";

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

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

// Shape only: timing figures on a shared machine are noise, so no thresholds here.
describe("voice bench", () => {
  it("measures one small step of Opus tracks through Janus, and its baseline without Janus", { timeout: 60_000 }, async () => {
    const { code, stdout, stderr } = await runBench("voice",
      ["--speakers", "2", "--listeners-per-step", "2", "--max-tracks", "4", "--seconds", "2", "--warmup", "0.5", "--load-processes", "1", "--timeout", "50"], 55_000);
    expect(code, stderr.slice(-3000)).toBe(0);
    // npm prints its own header on stdout first: the bench's one JSON line is the last one.
    const result = JSON.parse(stdout.trim().split("\n").pop()!);

    for (const key of [
      "bench", "runId", "mediaAddress", "janusPid", "tracks", "lossPct", "janusCpuPct", "tracksPerCore", "subscribeToFirstPacketP95Ms",
      "kneeTracks", "target", "steps", "baseline", "warnings",
    ]) expect(result, key).toHaveProperty(key);
    expect(result).toMatchObject({ bench: "voice", speakers: 2, seconds: 2 });
    expect(result.steps).toHaveLength(1);
    const [step] = result.steps;
    expect(step).toMatchObject({ step: 1, speakers: 2, listeners: 2, tracks: 4 });
    expect(step.subscribe.samples + step.subscribe.silent).toBe(4);

    // The one step is the reported one or, on a machine busy enough to lose 1 % of 4 tracks, the knee: never both, never neither.
    expect(typeof step.lossPct).toBe("number");
    expect(step.received).toBeGreaterThan(0);
    expect(Array.isArray(result.warnings)).toBe(true);
    if (step.lossPct >= 1) {
      expect(result).toMatchObject({ tracks: 0, kneeTracks: 4 });
    } else {
      expect(result).toMatchObject({ tracks: 4, lossPct: step.lossPct, kneeTracks: null });
      // A few hundred packets may cost Janus less than one 10 ms tick of /proc: CPU 0 leaves tracksPerCore null.
      expect(result.janusCpuPct).toBeGreaterThanOrEqual(0);
      expect(result.tracksPerCore === null || result.tracksPerCore > 0).toBe(true);
      expect(result.subscribeToFirstPacketP95Ms).toBeGreaterThan(0);
      expect(result.baseline).toMatchObject({ tracks: 4, listenersCpuPct: [expect.any(Number)] });
      expect(typeof result.baseline.lossPct).toBe("number");
      expect(result.baseline.steps[0].received).toBeGreaterThan(0);
      expect(Number.isFinite(result.baseline.fanoutCpuPct)).toBe(true);
    }

    // Nothing of the run is left: neither Janus nor any load process.
    expect(alive(result.janusPid)).toBe(false);
    expect(processesWith(result.runId)).toEqual([]);
  });
});
