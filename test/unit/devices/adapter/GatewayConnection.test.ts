/**
 * GatewayConnection on its own: the backoff it waits between attempts.
 */
import { describe, expect, it } from "vitest";
import { backoffDelayMs } from "../../../../devices/adapter/GatewayConnection.ts";

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
