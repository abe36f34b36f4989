import { describe, expect, it } from "vitest";
import { Cached } from "../../../../server/http/Cached.ts";

describe("Cached", () => {
  it("loads once per interval, however many ask, and again after it", async () => {
    let now = 0;
    let loads = 0;
    const cached = new Cached(async () => ++loads, 1000, () => now);
    expect(await Promise.all([cached.get(), cached.get()])).toEqual([1, 1]);
    now = 999;
    expect(await cached.get()).toBe(1);
    now = 1000;
    expect(await cached.get()).toBe(2);
    expect(loads).toBe(2);
  });

  it("keeps no failed load: the next caller tries again", async () => {
    let fail = true;
    const cached = new Cached(async () => { if (fail) throw new Error("registry down"); return "ok"; }, 1000, () => 0);
    await expect(cached.get()).rejects.toThrow("registry down");
    fail = false;
    expect(await cached.get()).toBe("ok");
  });
});
