/**
 * ReconnectBackoff: 0.5 s doubling to a 10 s cap, jittered down by at most 20 %, and
 * back to the start after a connection.
 */
import { describe, expect, it } from "vitest";
import { ReconnectBackoff } from "../../../../../devices/drivers/mqtt-sensors/ReconnectBackoff.ts";

describe("ReconnectBackoff", () => {
  it("doubles from 0.5 s to the 10 s cap", () => {
    const backoff = new ReconnectBackoff({ random: () => 0 });
    expect(Array.from({ length: 8 }, () => backoff.next())).toEqual([500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000]);
    expect(backoff.attempts).toBe(8);
    backoff.reset();
    expect(backoff.next()).toBe(500);
  });

  it("draws each wait from the top 20 % below it", () => {
    const low = new ReconnectBackoff({ random: () => 0.999999 });
    expect(low.next()).toBe(400);
    const waits = Array.from({ length: 1000 }, () => new ReconnectBackoff().next());
    expect(Math.min(...waits)).toBeGreaterThanOrEqual(400);
    expect(Math.max(...waits)).toBeLessThanOrEqual(500);
    expect(new ReconnectBackoff({ random: () => Number.NaN }).next()).toBe(450);
  });

  it("refuses nonsense bounds", () => {
    expect(() => new ReconnectBackoff({ initialMs: 0 })).toThrow(RangeError);
    expect(() => new ReconnectBackoff({ initialMs: 1000, maxMs: 10 })).toThrow(RangeError);
  });
});
