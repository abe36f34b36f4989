/**
 * TickSlices against a fake clock: members spread over the slices (a newcomer in the
 * emptiest), each member's slice once per tick, slices on a fixed schedule that late
 * timers do not stretch, a fresh schedule after a stall, and a throwing slice that does
 * not stop the next.
 */
import { describe, expect, it } from "vitest";
import { TickSlices } from "../../../../rooms/expo/TickSlices.ts";
import { FakeSliceClock } from "../../../fixtures/fakes/FakeSliceClock.ts";

/** TickSlices of strings over a fake clock, recording every slice run. */
function setUp(tickMs = 50, slices = 10) {
  const clock = new FakeSliceClock();
  const runs: Array<{ tick: number; slice: number; members: string[]; at: number }> = [];
  const errors: unknown[] = [];
  let failing = false;
  const ticks = new TickSlices<string>({
    tickMs, slices, clock,
    runSlice: (tick, slice, members) => {
      runs.push({ tick, slice, members: [...members], at: clock.now() });
      if (failing) throw new Error("slice failed");
    },
    onError: (error) => errors.push(error),
  });
  return { clock, ticks, runs, errors, fail: (on: boolean) => { failing = on; } };
}

describe("TickSlices", () => {
  it("has one slice per ms of the tick at most, and one at least", () => {
    expect(setUp(50, 10).ticks.count).toBe(10);
    expect(setUp(5, 10).ticks.count).toBe(5);
    expect(setUp(50, 0).ticks.count).toBe(1);
    expect(setUp(50, 10).ticks.sliceMs).toBe(5);
  });

  it("spreads members over the slices: a newcomer goes to the emptiest", () => {
    const { clock, ticks, runs } = setUp(40, 4);
    for (const name of ["a", "b", "c", "d", "e"]) ticks.add(name);
    ticks.remove("c");
    ticks.add("f"); // c's slice is the emptiest now
    ticks.start();
    clock.advance(40);
    expect(runs.map((run) => run.members.sort().join("")).sort()).toEqual(["ae", "b", "d", "f"]);
  });

  it("runs each member's slice once per tick; the counter counts slices, slice 0 starts a tick", () => {
    const { clock, ticks, runs } = setUp(50, 10);
    for (let i = 0; i < 25; i++) ticks.add(`v${i}`);
    ticks.start();
    clock.advance(150); // three ticks
    expect(runs.map((r) => r.tick)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(runs.map((r) => r.slice)).toEqual(runs.map((r) => r.tick % 10));
    expect(ticks.tick).toBe(30);
    const seen = new Map<string, number>();
    for (const run of runs) for (const member of run.members) seen.set(member, (seen.get(member) ?? 0) + 1);
    expect([...seen.values()]).toEqual(Array(25).fill(3));
  });

  it("keeps a fixed schedule: a late slice does not push the ones after it", () => {
    const { clock, ticks, runs } = setUp(50, 10);
    ticks.start();
    clock.advance(10); // slices at 5, 10
    clock.stall(13);   // the slice due at 15 runs at 23, and the one due at 20 right behind it
    clock.advance(27); // up to 50: back on the schedule
    expect(runs.map((r) => r.at)).toEqual([5, 10, 23, 23, 25, 30, 35, 40, 45, 50]);
  });

  it("after falling more than a tick behind it starts a new schedule instead of rushing the missed slices", () => {
    const { clock, ticks, runs } = setUp(50, 10);
    ticks.start();
    clock.advance(5);
    clock.stall(200); // the process stalled for 200 ms
    const runsAfterStall = runs.length;
    clock.advance(20);
    expect(runsAfterStall).toBe(2); // the one due at 10 ran late, once
    expect(runs.slice(2).map((r) => r.at)).toEqual([210, 215, 220, 225]);
  });

  it("reports a slice that throws and goes on with the next", () => {
    const { clock, ticks, runs, errors, fail } = setUp(50, 10);
    ticks.start();
    fail(true);
    clock.advance(5);
    fail(false);
    clock.advance(10);
    expect(errors).toHaveLength(1);
    expect(runs).toHaveLength(3);
  });

  it("runs nothing once stopped", () => {
    const { clock, ticks, runs } = setUp(50, 10);
    ticks.start();
    clock.advance(12);
    ticks.stop();
    clock.advance(100);
    expect(runs).toHaveLength(2);
    expect(clock.pending).toBe(0);
  });

  it("a stop from within a slice (the hall closing in a tick) ends the schedule too", () => {
    const clock = new FakeSliceClock();
    let runs = 0;
    const ticks: TickSlices<string> = new TickSlices<string>({
      tickMs: 50, slices: 10, clock, onError: () => {},
      runSlice: () => { runs++; ticks.stop(); },
    });
    ticks.start();
    clock.advance(100);
    expect(runs).toBe(1);
    expect(clock.pending).toBe(0);
  });

  it("remove takes a member out of its slice; has says whether it is in one", () => {
    const { clock, ticks, runs } = setUp(10, 1);
    ticks.add("a");
    ticks.add("b");
    ticks.remove("a");
    expect([ticks.has("a"), ticks.has("b")]).toEqual([false, true]);
    ticks.start();
    clock.advance(10);
    expect(runs[0].members).toEqual(["b"]);
  });
});
