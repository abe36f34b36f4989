/** LogThrottle on a clock the test moves: one line per key a second, the held-back count told with the next. */
import { describe, expect, it } from "vitest";
import { LogThrottle } from "../../../common/LogThrottle.ts";

describe("LogThrottle", () => {
  it("lets one line per key through each second, holds back the rest, and tells their number with the next line", () => {
    const clock = { now: 5_000 };
    const throttle = new LogThrottle(1, () => clock.now);
    const written = Array.from({ length: 500 }, () => throttle.admit(4413)).filter((heldBack) => heldBack !== undefined);
    expect(written).toEqual([0]);
    expect(throttle.admit(4429)).toBe(0); // another code has its own line
    clock.now += 1000;
    expect(throttle.admit(4413)).toBe(499);
    expect(throttle.admit(4413)).toBeUndefined();
  });
});
