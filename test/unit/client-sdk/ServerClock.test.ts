/**
 * ServerClock's arithmetic, without a room: the NTP-style offset, best of the last 8
 * samples by round trip, refusal of impossible samples, and the fallback before any.
 * (OperatorControls.test.ts runs it against a room whose clock is skewed.)
 */
import { describe, it, expect } from "vitest";
import { ServerClock } from "../../../client-sdk/ServerClock.ts";
import type { RoomSession } from "../../../client-sdk/RoomSession.ts";

/** A clock whose client time is `now.value`; never started, so the session is never used. */
function clockAt(start = 1000, options: { maxSamples?: number } = {}) {
  const now = { value: start };
  const clock = new ServerClock({} as RoomSession, { now: () => now.value, ...options });
  return { clock, now };
}

describe("ServerClock", () => {
  it("computes offset = ((t1 - t0) + (t2 - t3)) / 2 and the uncertainty from the round trip", () => {
    const { clock, now } = clockAt();
    // client 1000 → server receives at 50 010, answers at 50 012, client gets it at 1030
    expect(clock.addSample(1000, 50_010, 50_012, 1030)).toBe(true);
    expect(clock.offsetMs).toBe(((50_010 - 1000) + (50_012 - 1030)) / 2);
    expect(clock.roundTripMs).toBe(28);
    expect(clock.uncertaintyMs).toBe(14);
    now.value = 2000;
    expect(clock.now()).toBe(2000 + clock.offsetMs);
    expect(clock.toServer(1500)).toBe(1500 + clock.offsetMs);
  });

  it("keeps the sample with the smallest round trip among the last 8", () => {
    const { clock } = clockAt();
    clock.addSample(0, 10_005, 10_005, 10); // rtt 10, offset 10 000
    for (let i = 1; i <= 7; i++) clock.addSample(i * 100, i * 100 + 20_050, i * 100 + 20_050, i * 100 + 100); // rtt 100, offset 20 000
    expect(clock.offsetMs).toBe(10_000);
    expect(clock.sampleCount).toBe(8);
    clock.addSample(900, 20_950, 20_950, 1000); // the rtt-10 sample falls out of the window
    expect(clock.sampleCount).toBe(8);
    expect(clock.offsetMs).toBe(20_000);
    expect(clock.roundTripMs).toBe(100);
  });

  it("refuses samples that cannot be real", () => {
    const { clock } = clockAt();
    expect(clock.addSample(100, 0, 0, 110)).toBe(false);            // server times unset
    expect(clock.addSample(100, 5000, 5001, 90)).toBe(false);       // answered before it was asked
    expect(clock.addSample(100, 5002, 5001, 110)).toBe(false);      // server sent before it received
    expect(clock.addSample(100, 5000, 5020, 110)).toBe(false);      // server took longer than the round trip
    expect(clock.addSample(Number.NaN, 5000, 5000, 110)).toBe(false);
    expect(clock.synced).toBe(false);
  });

  it("falls back to the local wall clock, with infinite uncertainty, before the first sample", () => {
    const { clock } = clockAt(0);
    expect(clock.synced).toBe(false);
    expect(clock.uncertaintyMs).toBe(Infinity);
    expect(Math.abs(clock.now() - Date.now())).toBeLessThan(1000);
  });

  it("refuses bad options with TypeError", () => {
    expect(() => new ServerClock({} as RoomSession, { intervalMs: 0 })).toThrow(TypeError);
    expect(() => new ServerClock({} as RoomSession, { maxSamples: 0 })).toThrow(TypeError);
    expect(() => new ServerClock({} as RoomSession, { initialSamples: 1.5 })).toThrow(TypeError);
  });
});
