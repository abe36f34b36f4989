import { describe, it, expect } from "vitest";
import { credentialsBench } from "../../bench/credentials.ts";
import { testRedisUrl } from "../fixtures/redis.ts";

describe("credentials bench", () => {
  it("reports verification rates, the JWT baseline, issuance latencies, and the device certificates' handshake rate and issuance latency", { timeout: 60_000 }, async () => {
    const figures = await credentialsBench.run({ verifications: 500, issuances: 20, redisUrl: testRedisUrl(), handshakes: 20, certIssuances: 20 }) as Record<string, number | string>;
    expect(figures.bench).toBe("credentials");
    for (const key of ["verificationsPerCpuS", "baselineJwtPerCpuS", "ratioVsJwt", "issuanceP50Ms", "issuanceP99Ms", "certHandshakesPerCoreS", "certIssuanceP50Ms", "certIssuanceP99Ms"]) {
      expect(Number.isFinite(figures[key]), key).toBe(true);
      expect(figures[key] as number, key).toBeGreaterThan(0);
    }
  });
});
