/**
 * ClockSync: the NTP-style offset and round trip of device.proto's ClockSyncPing, the
 * smallest round trip of the last 8 samples winning, impossible samples refused, and the
 * device wall clock as the fallback before any sample.
 */
import { describe, it, expect } from "vitest";
import { ClockPingSchedule, ClockSync } from "../../../common/ClockSync.ts";

/** A manual monotonic clock. */
function manualClock(start = 0) {
  let now = start;
  return { now: () => now, set: (value: number) => { now = value; } };
}

describe("ClockSync", () => {
  it("computes offset and round trip as the contract says", () => {
    const clock = manualClock();
    const sync = new ClockSync({ now: clock.now, wallClock: () => 0 });
    // client sends at 100; server (1_000_000 ahead, 5 ms away) receives at 1_000_105, answers at 1_000_106; pong back at 111
    expect(sync.addSample({ t0: 100, t1: 1_000_105, t2: 1_000_106, t3: 111 })).toBe(true);
    expect(sync.roundTripMs).toBe(10);
    expect(sync.offsetMs).toBe(1_000_000);
    expect(sync.uncertaintyMs).toBe(5);
    clock.set(200);
    expect(sync.serverNow()).toBe(1_000_200);
    expect(sync.toServer(50)).toBe(1_000_050);
  });

  it("keeps the sample with the smallest round trip among the last 8", () => {
    const sync = new ClockSync({ now: () => 0 });
    // a precise sample (rtt 2, offset 500), then 7 sloppy ones (rtt 40, offset 520)
    sync.addSample({ t0: 0, t1: 501, t2: 501, t3: 2 });
    for (let i = 1; i <= 7; i++) sync.addSample({ t0: i * 100, t1: i * 100 + 540, t2: i * 100 + 540, t3: i * 100 + 40 });
    expect(sync.sampleCount).toBe(8);
    expect(sync.offsetMs).toBe(500);
    expect(sync.uncertaintyMs).toBe(1);
    // the ninth pushes the precise one out: the best of what is left wins
    sync.addSample({ t0: 900, t1: 1430, t2: 1430, t3: 960 });
    expect(sync.sampleCount).toBe(8);
    expect(sync.offsetMs).toBe(520);
    expect(sync.roundTripMs).toBe(40);
  });

  it("refuses samples that cannot be real", () => {
    const sync = new ClockSync({ now: () => 0 });
    expect(sync.addSample({ t0: 10, t1: 0, t2: 0, t3: 5 })).toBe(false); // pong before ping
    expect(sync.addSample({ t0: 0, t1: 10, t2: 5, t3: 20 })).toBe(false); // server answered before it received
    expect(sync.addSample({ t0: 0, t1: 0, t2: 30, t3: 10 })).toBe(false); // negative round trip
    expect(sync.addSample({ t0: 0, t1: Number.NaN, t2: 1, t3: 1 })).toBe(false);
    expect(sync.addPong({ t0Ms: 0, t1Ms: null, t2Ms: 1 }, 2)).toBe(false);
    expect(sync.addPong({ t0Ms: 0, t1Ms: 0, t2Ms: 0 }, 2)).toBe(false); // unset server times
    expect(sync.addPong({ t1Ms: 5, t2Ms: 5 }, 2)).toBe(false); // no t0
    expect(sync.synced).toBe(false);
  });

  it("falls back to the device wall clock before the first sample and after reset()", () => {
    const clock = manualClock(50);
    const sync = new ClockSync({ now: clock.now, wallClock: () => 1_700_000_000_000 });
    expect(sync.synced).toBe(false);
    expect(sync.uncertaintyMs).toBe(Infinity);
    clock.set(60);
    expect(sync.serverNow()).toBe(1_700_000_000_010);
    sync.addPong({ t0Ms: 60, t1Ms: 9_000, t2Ms: 9_000, t3Ms: undefined } as never, 60);
    expect(sync.synced).toBe(true);
    expect(sync.offsetMs).toBe(8_940);
    sync.reset();
    expect(sync.synced).toBe(false);
    expect(sync.serverNow()).toBe(1_700_000_000_010);
  });

  it("rejects a bad sample window", () => {
    expect(() => new ClockSync({ maxSamples: 0 })).toThrow(/positive integer/);
  });
});

describe("ClockPingSchedule", () => {
  it("paces the quick rounds after connecting, then the steady interval", () => {
    const schedule = new ClockPingSchedule({ intervalMs: 5000, earlyRounds: 3, earlyGapMs: 100 });
    expect([schedule.afterPong(), schedule.afterPong(), schedule.afterPong(), schedule.afterPong()]).toEqual([100, 100, 5000, 5000]);
  });

  it("never waits longer between quick rounds than the steady interval", () => {
    expect(new ClockPingSchedule({ intervalMs: 50 }).afterPong()).toBe(50);
    expect(new ClockPingSchedule({ intervalMs: 5000 }).afterPong()).toBe(100);
  });
});
