import { describe, it, expect } from "vitest";
import { credentialsBench } from "../../bench/credentials.ts";

describe("credentials bench", () => {
  it("reports verification rates, the JWT baseline and issuance latencies", async () => {
    const figures = await credentialsBench.run({ verifications: 500, issuances: 20, redisUrl: "redis://127.0.0.1:6379" }) as Record<string, number | string>;
    expect(figures.bench).toBe("credentials");
    for (const key of ["verificationsPerCpuS", "baselineJwtPerCpuS", "ratioVsJwt", "issuanceP50Ms", "issuanceP99Ms"]) {
      expect(Number.isFinite(figures[key]), key).toBe(true);
      expect(figures[key] as number, key).toBeGreaterThan(0);
    }
  });
});
