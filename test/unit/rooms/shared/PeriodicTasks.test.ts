import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { PeriodicTasks } from "../../../../rooms/shared/PeriodicTasks.ts";

describe("PeriodicTasks", () => {
  beforeEach(() => { vi.useFakeTimers(); });
  afterEach(() => { vi.useRealTimers(); });

  it("runs a task first at its phase of the period, then every period", () => {
    const tasks = new PeriodicTasks(() => 0.25);
    const runs: number[] = [];
    const start = Date.now();
    tasks.every(100, () => runs.push(Date.now() - start));
    vi.advanceTimersByTime(24);
    expect(runs).toEqual([]);
    vi.advanceTimersByTime(300); // to 324 ms
    expect(runs).toEqual([25, 125, 225]);
    tasks.stop();
  });

  it("spreads rooms created in the same millisecond over the period", () => {
    let next = 0;
    const phases = [0, 0.2, 0.4, 0.6, 0.8];
    const firstRuns: number[] = [];
    const start = Date.now();
    const rooms = phases.map(() => new PeriodicTasks(() => phases[next++]!));
    for (const tasks of rooms) {
      let first = true;
      tasks.every(100, () => { if (first) firstRuns.push(Date.now() - start); first = false; });
    }
    vi.advanceTimersByTime(100);
    expect(firstRuns).toEqual([0, 20, 40, 60, 80]);
    for (const tasks of rooms) tasks.stop();
  });

  it("stop() ends every task, also one not yet run once, and refuses new ones", () => {
    const tasks = new PeriodicTasks(() => 0.5);
    let running = 0;
    let waiting = 0;
    tasks.every(10, () => running++);
    vi.advanceTimersByTime(20);
    expect(running).toBeGreaterThan(0);
    const runsBeforeStop = running;
    const late = new PeriodicTasks(() => 0.9);
    late.every(1000, () => waiting++);
    tasks.stop();
    late.stop();
    vi.advanceTimersByTime(5000);
    expect(running).toBe(runsBeforeStop);
    expect(waiting).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    expect(() => tasks.every(10, () => {})).toThrow(/after stop/);
  });
});
