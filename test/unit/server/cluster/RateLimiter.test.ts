import { describe, it, expect } from "vitest";
import { RateLimiter } from "../../../../server/cluster/ClusterMatchmaker.ts";

describe("matchmaking RateLimiter", () => {
  it("refuses a caller past its burst, and not another caller", () => {
    let now = 0;
    const limiter = new RateLimiter(2, 100, 1000, () => now);
    expect([1, 2, 3, 4].map(() => limiter.take("a"))).toEqual([true, true, true, true]);
    expect(limiter.take("a")).toBe(false);
    expect(limiter.take("b")).toBe(true);
    now += 500; // one token back at 2/s
    expect(limiter.take("a")).toBe(true);
    expect(limiter.take("a")).toBe(false);
  });

  it("drops callers whose bucket refilled, so a crowd that joined once holds no bucket each", () => {
    let now = 0;
    const limiter = new RateLimiter(10, 100_000, 1000, () => now);
    for (let i = 0; i < 5000; i++) limiter.take(`visitor-${i}`);
    expect(limiter.size).toBe(5000);
    now += 1000;
    limiter.take("late");
    expect(limiter.size).toBe(1);
  });

  it("keeps a caller still short of tokens across a sweep, so sweeping hands out nothing", () => {
    let now = 0;
    const limiter = new RateLimiter(1, 100, 1000, () => now);
    limiter.take("a"); limiter.take("a"); // burst of 2 spent
    now += 1000; // one token back, one still missing
    limiter.take("b"); // sweeps
    expect(limiter.size).toBe(2);
    expect(limiter.take("a")).toBe(true);
    expect(limiter.take("a")).toBe(false);
  });

  it("evicts the oldest caller past its key bound", () => {
    const limiter = new RateLimiter(1, 3, 60_000, () => 0);
    for (const key of ["a", "b", "c", "d"]) limiter.take(key);
    expect(limiter.size).toBe(3);
  });
});
