import { describe, it, expect } from "vitest";
import { runTransportBench } from "../../bench/transport.ts";

// Shape only: timing figures on a shared machine are noise, so no thresholds here.
describe("transport bench", () => {
  it("measures a tiny broadcast load on both transports", { timeout: 60_000 }, async () => {
    const result = await runTransportBench({ clients: 5, hz: 20, seconds: 1, warmup: 0.5 }, AbortSignal.timeout(55_000));

    expect(result).toMatchObject({ bench: "transport", clients: 5, hz: 20, seconds: 1 });
    expect(Object.keys(result).sort()).toEqual(["bench", "clients", "hz", "ratioDelivered", "seconds", "uws", "ws"]);
    for (const figures of [result.uws, result.ws]) {
      expect(Object.keys(figures).sort()).toEqual(["deliveredPerS", "p50Ms", "p99Ms", "serverCpuPct"]);
      expect(figures.deliveredPerS).toBeGreaterThan(0);
      for (const value of Object.values(figures)) expect(Number.isFinite(value)).toBe(true);
    }
    expect(result.ratioDelivered).toBeGreaterThan(0);
  });
});
