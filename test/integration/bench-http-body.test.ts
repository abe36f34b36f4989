import { describe, it, expect } from "vitest";
import { runHttpBodyBench } from "../../bench/http-body.ts";

// Shape only: CPU figures on a shared machine are noise, so no thresholds here.
describe("http-body bench", () => {
  it("uploads a small chunked body to the stock handler and to the edge", { timeout: 90_000 }, async () => {
    const result = await runHttpBodyBench({ uploads: 1, bodyKib: 1024, pieceBytes: 1024 }, AbortSignal.timeout(85_000));
    expect(result).toMatchObject({ bench: "http-body", uploads: 1, bodyKib: 1024, pieceBytes: 1024 });
    expect(Object.keys(result).sort()).toEqual(["bench", "bodyKib", "cpuRatio", "edge", "pieceBytes", "stock", "uploads"]);
    for (const figures of [result.stock, result.edge]) {
      expect(Object.keys(figures).sort()).toEqual(["cpuMsPerUpload", "wallMsPerUpload"]);
      for (const value of Object.values(figures)) expect(Number.isFinite(value)).toBe(true);
    }
    expect(Number.isFinite(result.cpuRatio)).toBe(true);
  });
});
