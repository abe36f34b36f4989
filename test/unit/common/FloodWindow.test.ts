/** FloodWindow on a clock the test moves: the limit per window, one "tell" per window, the over count. */
import { describe, expect, it } from "vitest";
import { FloodWindow } from "../../../common/FloodWindow.ts";

describe("FloodWindow", () => {
  it("passes perSecond messages a window, tells the sender once, counts the rest, and starts again a second later", () => {
    const clock = { now: 1_000 };
    const flood = new FloodWindow(3, () => clock.now);
    expect([flood.admit(), flood.admit(), flood.admit()]).toEqual(["within", "within", "within"]);
    expect([flood.admit(), flood.admit(), flood.admit()]).toEqual(["over-first", "over", "over"]);
    expect(flood.takeOverCount()).toBe(3);
    expect(flood.takeOverCount()).toBe(0);
    clock.now += 999;
    expect(flood.admit()).toBe("over");
    clock.now += 1;
    expect([flood.admit(), flood.admit(), flood.admit(), flood.admit()]).toEqual(["within", "within", "within", "over-first"]);
  });

  it("refuses a limit that is not a positive number", () => {
    for (const bad of [0, -1, Number.NaN, Infinity]) expect(() => new FloodWindow(bad), String(bad)).toThrow(RangeError);
  });
});
