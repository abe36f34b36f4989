/**
 * SimulationLoop: fixed steps that catch up after a late timer, a bounded catch-up
 * after a stall, and a loop that stops itself when the model throws. The monotonic
 * clock and the timers are both fake, so nothing here depends on real time.
 */
import { afterEach, beforeEach, describe, it, expect, vi } from "vitest";
import { SimulationLoop } from "../../../../devices/drivers/index.ts";

let now = 0;
beforeEach(() => {
  vi.useFakeTimers();
  now = 0;
});
afterEach(() => {
  vi.useRealTimers();
});

describe("SimulationLoop", () => {
  it("simulates the real time that passed, in whole fixed steps", () => {
    const steps: number[] = [];
    const loop = new SimulationLoop((dt) => steps.push(dt), { now: () => now });
    loop.start();
    loop.start(); // idempotent: still one timer
    expect(vi.getTimerCount()).toBe(1);
    now = 35; // the timer fires late: 35 ms have passed by its first tick
    vi.advanceTimersByTime(10);
    expect(steps).toEqual([10, 10, 10]); // 5 ms carried over
    now = 40;
    vi.advanceTimersByTime(10);
    expect(steps).toHaveLength(4);
    loop.stop();
    now = 1_000;
    vi.advanceTimersByTime(1_000);
    expect(steps).toHaveLength(4);
    expect(loop.running).toBe(false);
  });

  it("drops the backlog beyond maxStepsPerTick after a stall instead of replaying it", () => {
    const steps: number[] = [];
    const loop = new SimulationLoop((dt) => steps.push(dt), { now: () => now, maxStepsPerTick: 5 });
    loop.start();
    now = 10_003;
    vi.advanceTimersByTime(10);
    expect(steps).toHaveLength(5);
    expect(loop.droppedMs).toBe(9_950);
    now = 10_013;
    vi.advanceTimersByTime(10);
    expect(steps).toHaveLength(6); // 3 ms carried + 10 ms
    loop.stop();
  });

  it("stops itself and reports when a step throws, and survives a throwing error handler", () => {
    const errors: unknown[] = [];
    let calls = 0;
    const loop = new SimulationLoop(() => { calls += 1; throw new Error("model broke"); }, {
      now: () => now,
      onError: (error) => { errors.push(error); throw new Error("handler broke too"); },
    });
    loop.start();
    now = 50;
    vi.advanceTimersByTime(10);
    expect(calls).toBe(1);
    expect(loop.running).toBe(false);
    expect((errors[0] as Error).message).toBe("model broke");
    now = 100;
    vi.advanceTimersByTime(100);
    expect(calls).toBe(1);
  });

  it("rejects a nonsense configuration", () => {
    expect(() => new SimulationLoop(() => {}, { stepMs: 0 })).toThrow(TypeError);
    expect(() => new SimulationLoop(() => {}, { maxStepsPerTick: 0 })).toThrow(TypeError);
  });
});
