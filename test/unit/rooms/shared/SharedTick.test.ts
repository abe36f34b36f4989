/** SharedTick on fake timers: one timer per period for every check, a throwing check reported and the rest run, the timer gone with the last check. */
import { afterEach, describe, expect, it, vi } from "vitest";
import { sharedTick } from "../../../../rooms/shared/SharedTick.ts";

afterEach(() => { vi.useRealTimers(); });

describe("sharedTick", () => {
  it("runs every check of a period from one timer, reports a check that throws, and stops the timer with the last check", () => {
    vi.useFakeTimers();
    const ran: string[] = [];
    const errors: unknown[] = [];
    const stopA = sharedTick(20, () => { ran.push("a"); }, (error) => errors.push(error));
    const stopB = sharedTick(20, () => { ran.push("b"); throw new Error("b broke"); }, (error) => errors.push(error));
    const stopC = sharedTick(20, () => { ran.push("c"); }, (error) => errors.push(error));
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(40);
    expect(ran).toEqual(["a", "b", "c", "a", "b", "c"]);
    expect(errors.map((error) => (error as Error).message)).toEqual(["b broke", "b broke"]);
    stopB();
    stopB(); // stopping twice is harmless
    vi.advanceTimersByTime(20);
    expect(ran.slice(6)).toEqual(["a", "c"]);
    stopA();
    stopC();
    expect(vi.getTimerCount()).toBe(0);
    const stopD = sharedTick(20, () => { ran.push("d"); }, () => {});
    vi.advanceTimersByTime(20);
    expect(ran.at(-1)).toBe("d");
    stopD();
    expect(vi.getTimerCount()).toBe(0);
  });

  it("refuses a period that is not a positive number", () => {
    for (const bad of [0, -5, Number.NaN, Infinity]) expect(() => sharedTick(bad, () => {}, () => {}), String(bad)).toThrow(RangeError);
  });
});
