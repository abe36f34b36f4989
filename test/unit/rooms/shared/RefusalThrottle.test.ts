/**
 * RefusalThrottle: one told refusal per client, code and interval; the rest only counted;
 * old entries swept so a stream of refused clients does not grow the map without bound.
 */
import { describe, expect, it } from "vitest";
import { REFUSAL_INTERVAL_MS, RefusalThrottle } from "../../../../rooms/shared/RefusalThrottle.ts";

describe("RefusalThrottle", () => {
  it("tells the first refusal of each code to each client per interval, and only counts the rest", () => {
    let now = 1_000_000;
    const throttle = new RefusalThrottle(() => now);
    expect([throttle.tell("a", 4429), throttle.tell("a", 4429), throttle.tell("a", 4402), throttle.tell("b", 4429)]).toEqual([true, false, true, true]);
    now += REFUSAL_INTERVAL_MS - 1;
    expect(throttle.tell("a", 4429)).toBe(false);
    now += 1;
    expect([throttle.tell("a", 4429), throttle.tell("a", 4429)]).toEqual([true, false]);
  });

  it("sweeps entries older than the interval once it holds many, so it holds only the clients refused lately", () => {
    let now = 0;
    const throttle = new RefusalThrottle(() => now);
    for (let i = 0; i < 5000; i++) {
      now += 10; // 100 clients refused per interval
      throttle.tell(`client-${i}`, 4429);
    }
    expect(throttle.size).toBeLessThanOrEqual(1024 + 1);
    expect(throttle.tell("client-4999", 4429)).toBe(false); // a recent one is still remembered
  });
});
