/**
 * TokenBucket on an injected clock, plus a seeded random check that retryAfterMs is
 * exactly the wait needed.
 */
import { describe, it, expect, vi } from "vitest";
import { TokenBucket } from "../../../common/TokenBucket.ts";
import { prng } from "../../fixtures/random.ts";

/** A bucket on a clock the test moves by hand. */
function clocked(ratePerSecond: number, burst: number, start = 1_000_000) {
  const clock = { now: start };
  const bucket = new TokenBucket(ratePerSecond, burst, () => clock.now);
  return { bucket, clock };
}

describe("TokenBucket", () => {
  it("starts full: a burst goes through, the next is refused", () => {
    const { bucket } = clocked(2, 3);
    expect([bucket.take(), bucket.take(), bucket.take()]).toEqual([true, true, true]);
    expect(bucket.take()).toBe(false);
    expect(bucket.take()).toBe(false);
  });

  it("refills at the rate, and says how long to wait", () => {
    const { bucket, clock } = clocked(2, 3);
    expect(bucket.retryAfterMs()).toBe(0);
    expect(bucket.take(3)).toBe(true);
    expect(bucket.retryAfterMs()).toBe(500);
    expect(bucket.retryAfterMs(2)).toBe(1000);
    clock.now += 499;
    expect(bucket.retryAfterMs()).toBe(1);
    expect(bucket.take()).toBe(false);
    clock.now += 1;
    expect(bucket.retryAfterMs()).toBe(0);
    expect(bucket.take()).toBe(true);
    expect(bucket.take()).toBe(false);
    // half a token accrued: the rest of the wait
    clock.now += 250;
    expect(bucket.retryAfterMs()).toBe(250);
    expect(bucket.retryAfterMs(2)).toBe(750);
    clock.now += 750;
    expect(bucket.take(2)).toBe(true);
    expect(bucket.retryAfterMs()).toBe(500);
  });

  it("never holds more than the burst, however long it rests", () => {
    const { bucket, clock } = clocked(2, 3);
    bucket.take(3);
    clock.now += 3_600_000;
    expect([bucket.take(), bucket.take(), bucket.take(), bucket.take()]).toEqual([true, true, true, false]);
    expect(bucket.retryAfterMs()).toBe(500);
  });

  it("a refused take takes nothing; a count above the burst never fits", () => {
    const { bucket, clock } = clocked(1, 3);
    bucket.take(2);
    expect(bucket.take(2)).toBe(false);
    expect(bucket.take(1)).toBe(true);
    expect(bucket.take(4)).toBe(false);
    expect(bucket.retryAfterMs(4)).toBe(Infinity);
    clock.now += 3000;
    expect(bucket.take(4)).toBe(false);
    expect(bucket.take(3)).toBe(true);
    expect(bucket.take(0)).toBe(true);
    expect(bucket.retryAfterMs(0)).toBe(0);
  });

  it("rounds the wait up to a whole millisecond, and fractional rates work", () => {
    const { bucket, clock } = clocked(3, 1);
    bucket.take();
    expect(bucket.retryAfterMs()).toBe(334); // 333.33… ms
    clock.now += 333;
    expect(bucket.take()).toBe(false);
    clock.now += 1;
    expect(bucket.take()).toBe(true);

    const slow = clocked(0.5, 1);
    slow.bucket.take();
    expect(slow.bucket.retryAfterMs()).toBe(2000);
  });

  it("gives nothing for a clock that steps backwards", () => {
    const { bucket, clock } = clocked(1, 2);
    bucket.take(2);
    clock.now -= 60_000;
    expect(bucket.take()).toBe(false);
    clock.now += 60_000; // back where it was: still nothing accrued
    expect(bucket.take()).toBe(false);
    expect(bucket.retryAfterMs()).toBe(1000);
    clock.now += 1000;
    expect(bucket.take()).toBe(true);
  });

  it("uses Date.now by default", () => {
    let now = 5_000;
    const spy = vi.spyOn(Date, "now").mockImplementation(() => now);
    try {
      const bucket = new TokenBucket(10, 1);
      expect(bucket.take()).toBe(true);
      expect(bucket.retryAfterMs()).toBe(100);
      now += 100;
      expect(bucket.take()).toBe(true);
      expect(spy).toHaveBeenCalled();
    } finally {
      spy.mockRestore();
    }
  });

  it("throws RangeError for a non-positive or non-finite rate or burst, and for a bad count", () => {
    for (const bad of [0, -1, Number.NaN, Infinity]) {
      expect(() => new TokenBucket(bad, 1), `rate ${bad}`).toThrow(RangeError);
      expect(() => new TokenBucket(1, bad), `burst ${bad}`).toThrow(RangeError);
    }
    const { bucket } = clocked(1, 1);
    for (const bad of [-1, Number.NaN, Infinity]) {
      expect(() => bucket.take(bad), `take(${bad})`).toThrow(RangeError);
      expect(() => bucket.retryAfterMs(bad), `retryAfterMs(${bad})`).toThrow(RangeError);
    }
    expect(bucket.take()).toBe(true); // the refused calls took nothing
  });

  it("random: retryAfterMs is exactly the wait needed, and no more than burst + rate × time is ever taken", () => {
    const seed = 0xb0c7;
    const random = prng(seed);
    for (let run = 0; run < 40; run++) {
      const rate = Math.ceil(random() * 200) / 10; // 0.1 .. 20 per second
      const burst = 1 + Math.floor(random() * 8);
      const { bucket, clock } = clocked(rate, burst, 0);
      let taken = 0;
      let checkedWaits = 0;
      for (let op = 0; op < 200; op++) {
        const label = `seed ${seed}, run ${run} (rate ${rate}, burst ${burst}), op ${op}, t ${clock.now}`;
        const count = 1 + Math.floor(random() * burst);
        const wait = bucket.retryAfterMs(count);
        if (wait === 0) {
          expect(bucket.take(count), label).toBe(true);
          taken += count;
        } else {
          expect(wait, label).toBeGreaterThan(0);
          expect(Number.isInteger(wait), label).toBe(true);
          clock.now += wait - 1;
          expect(bucket.take(count), `${label}: one ms early`).toBe(false);
          clock.now += 1;
          expect(bucket.take(count), `${label}: after ${wait} ms`).toBe(true);
          taken += count;
          checkedWaits++;
        }
        expect(taken, label).toBeLessThanOrEqual(burst + (rate * clock.now) / 1000 + 1e-6);
        clock.now += Math.floor(random() * 400);
      }
      expect(checkedWaits).toBeGreaterThan(0);
    }
  });
});
