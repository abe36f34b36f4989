/**
 * The waits between the adapter's attempts: full-jitter backoff after a failed cycle, and
 * the jittered conflict wait.
 */
import { describe, expect, it } from "vitest";
import { backoffDelayMs, conflictDelayMs } from "../../../../devices/adapter/backoff.ts";

describe("conflictDelayMs", () => {
  it("draws between half the conflict backoff and all of it", () => {
    expect(conflictDelayMs(30_000, () => 0)).toBe(15_000);
    expect(conflictDelayMs(30_000, () => 0.999999)).toBe(29_999);
    expect(conflictDelayMs(30_000, () => Number.NaN)).toBe(22_500);
  });
});

describe("backoffDelayMs", () => {
  it("draws uniformly below a cap that doubles from initialMs up to maxMs", () => {
    const top = () => 0.999999;
    expect(backoffDelayMs(0, 100, 5000, top)).toBe(99);
    expect(backoffDelayMs(1, 100, 5000, top)).toBe(199);
    expect(backoffDelayMs(5, 100, 5000, top)).toBe(3199);
    expect(backoffDelayMs(6, 100, 5000, top)).toBe(4999);
    expect(backoffDelayMs(1000, 100, 5000, top)).toBe(4999);
    expect(backoffDelayMs(3, 100, 5000, () => 0)).toBe(0);
    expect(backoffDelayMs(0, 100, 5000, () => 0.5)).toBe(50);
  });
});
