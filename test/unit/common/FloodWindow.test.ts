/** FloodWindow on a clock the test moves: the limit per window, one telling per window, the drop count. */
import { describe, expect, it } from "vitest";
import { FloodWindow } from "../../../common/FloodWindow.ts";

describe("FloodWindow", () => {
  it("passes perSecond messages a window, tells the sender of the first drop only, counts the drops, and starts again a second later", () => {
    const clock = { now: 1_000 };
    const flood = new FloodWindow(3, () => clock.now);
    expect([flood.admit(), flood.admit(), flood.admit()]).toEqual([true, true, true]);
    expect(flood.admit()).toBe(false);
    expect(flood.drop()).toBe("tell");
    expect([flood.admit(), flood.drop(), flood.admit(), flood.drop()]).toEqual([false, "count", false, "count"]);
    expect(flood.takeOverCount()).toBe(3);
    expect(flood.takeOverCount()).toBe(0);
    clock.now += 999;
    expect(flood.admit()).toBe(false);
    clock.now += 1;
    expect([flood.admit(), flood.admit(), flood.admit(), flood.admit()]).toEqual([true, true, true, false]);
    expect(flood.drop()).toBe("tell"); // a new window tells again
  });

  it("a message let through over the limit (an e-stop) does not use up the window's telling", () => {
    const flood = new FloodWindow(1, () => 0);
    expect(flood.admit()).toBe(true);
    expect(flood.admit()).toBe(false); // an e-stop: the caller lets it pass and does not drop it
    expect(flood.admit()).toBe(false);
    expect(flood.drop()).toBe("tell"); // the first message actually dropped is told
  });

  it("refuses a limit that is not a positive number", () => {
    for (const bad of [0, -1, Number.NaN, Infinity]) expect(() => new FloodWindow(bad), String(bad)).toThrow(RangeError);
  });
});
