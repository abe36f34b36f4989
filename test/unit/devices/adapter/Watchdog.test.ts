/**
 * Watchdog: trips only when armed and silent for more than its window, reports each trip
 * once, latches until re-armed, and treats bad times as caller bugs. Time is passed in.
 */
import { describe, it, expect } from "vitest";
import { Watchdog } from "../../../../devices/adapter/Watchdog.ts";

describe("Watchdog", () => {
  it("does nothing until armed", () => {
    const watchdog = new Watchdog(200);
    expect(watchdog.armed).toBe(false);
    expect(watchdog.check(1_000_000)).toBe(false);
    expect(watchdog.tripped).toBe(false);
    expect(watchdog.remaining(5)).toBe(Infinity);
  });

  it("trips once, strictly after the window since the last feed, and latches", () => {
    const watchdog = new Watchdog(200);
    watchdog.arm(1000);
    expect(watchdog.check(1200)).toBe(false); // exactly the window: still fine
    watchdog.feed(1150);
    expect(watchdog.remaining(1200)).toBe(150);
    expect(watchdog.check(1350)).toBe(false);
    expect(watchdog.check(1351)).toBe(true);
    expect(watchdog.tripped).toBe(true);
    expect(watchdog.armed).toBe(false);
    // reported once; the latch holds
    expect(watchdog.check(1400)).toBe(false);
    expect(watchdog.tripped).toBe(true);
  });

  it("ignores feeds after a trip: only arm() clears the latch", () => {
    const watchdog = new Watchdog(100);
    watchdog.arm(0);
    expect(watchdog.check(101)).toBe(true);
    watchdog.feed(102);
    expect(watchdog.tripped).toBe(true);
    expect(watchdog.check(150)).toBe(false);
    watchdog.arm(200);
    expect(watchdog.tripped).toBe(false);
    expect(watchdog.check(300)).toBe(false);
    expect(watchdog.check(301)).toBe(true);
  });

  it("disarm stops watching without clearing a latch", () => {
    const watchdog = new Watchdog(100);
    watchdog.arm(0);
    watchdog.disarm();
    expect(watchdog.check(10_000)).toBe(false);
    expect(watchdog.tripped).toBe(false);
    watchdog.arm(10_000);
    expect(watchdog.check(10_101)).toBe(true);
    watchdog.disarm();
    expect(watchdog.tripped).toBe(true);
  });

  it("a feed from a clock that went backwards does not move the deadline back", () => {
    const watchdog = new Watchdog(100);
    watchdog.arm(1000);
    watchdog.feed(900);
    expect(watchdog.lastFed).toBe(1000);
    expect(watchdog.check(1100)).toBe(false);
  });

  it("refuses a bad window or time with a TypeError naming the call", () => {
    expect(() => new Watchdog(0)).toThrow(/finite number > 0/);
    expect(() => new Watchdog(Number.NaN)).toThrow(TypeError);
    const watchdog = new Watchdog(100);
    expect(() => watchdog.arm(Number.NaN)).toThrow(/Watchdog.arm/);
    expect(() => watchdog.check(Infinity)).toThrow(/Watchdog.check/);
    expect(() => watchdog.feed("5" as unknown as number)).toThrow(/Watchdog.feed/);
  });
});
