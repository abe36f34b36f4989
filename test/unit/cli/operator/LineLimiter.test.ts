/** LineLimiter: at most N lines a second, and the next line shown counts those held back. */
import { describe, it, expect } from "vitest";
import { LineLimiter } from "../../../../cli/operator/LineLimiter.ts";

describe("LineLimiter", () => {
  it("shows perSecond lines a second, then says how many it held back", () => {
    let now = 10_000;
    const limiter = new LineLimiter(2, () => now);
    expect([limiter.take(), limiter.take(), limiter.take(), limiter.take()]).toEqual(["", "", undefined, undefined]);
    now += 999;
    expect(limiter.take()).toBeUndefined();
    now += 1;
    expect(limiter.take()).toBe(" (3 more not shown)");
    expect(limiter.take()).toBe("");
    expect(limiter.take()).toBeUndefined();
  });
});
