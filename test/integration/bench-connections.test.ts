import { describe, it, expect } from "vitest";
import { connectionsBench } from "../../bench/connections.ts";

describe("connections bench", () => {
  it("joins every client on all three sides and reports rates, CPU and memory per connection", async () => {
    const figures = await connectionsBench.run({ connections: 60, concurrency: 10, warmup: 0 }) as Record<string, unknown>;
    expect(figures.bench).toBe("connections");
    expect(figures.joined).toBe(60);
    expect(figures.stillOpen).toBe(60);
    expect(figures.failed).toBe(0);
    expect(figures.baselineFailed).toBe(0);
    expect(figures.stateBaselineFailed).toBe(0);
    for (const key of ["joinsPerS", "baselineJoinsPerS", "joinRatio", "stateBaselineJoinsPerS", "stateJoinRatio", "cpuMsPerJoin",
      "cpuPerJoinRatio", "stateCpuPerJoinRatio", "loadCpuMsPerJoin", "pingP99MsIdle", "pingP99MsLoaded"]) {
      expect(Number.isFinite(figures[key]), key).toBe(true);
      expect(figures[key] as number, key).toBeGreaterThan(0);
    }
    for (const key of ["rssBytesPerConnection", "baselineRssBytesPerConnection", "heapBytesPerConnection"]) {
      expect(Number.isFinite(figures[key]), key).toBe(true);
    }
  }, 240_000);
});
