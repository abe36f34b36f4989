/**
 * CommandGuard: every ack status, checked in the contract's order; replays; dead leases
 * after a lease change, an e-stop, a reset and a watchdog trip; and the heartbeat rules.
 */
import { describe, it, expect } from "vitest";
import { CommandGuard, CommandStatus } from "../../../../devices/adapter/CommandGuard.ts";
import { tsunagi } from "../../../../proto/index.ts";

const { AxisMode } = tsunagi.v1;

/** A profile with one axis of each mode, plus one that is not commandable. */
const profile: tsunagi.v1.IDeviceProfile = {
  deviceId: "ex-1",
  axes: [
    { name: "boom", mode: AxisMode.AXIS_MODE_VELOCITY, unit: "rad", min: -0.6, max: 1.0, maxRate: 0.4, rateUnit: "rad/s" },
    { name: "swing", mode: AxisMode.AXIS_MODE_VELOCITY, unit: "rad", maxRate: 1.0, rateUnit: "rad/s" },
    { name: "blade", mode: AxisMode.AXIS_MODE_POSITION, unit: "m", min: 0, max: 0.5, maxRate: 0.1 },
    { name: "winch", mode: AxisMode.AXIS_MODE_TORQUE, unit: "m", maxRate: 1, maxEffort: 300 },
    { name: "lamp", mode: AxisMode.AXIS_MODE_UNSPECIFIED, unit: "m", maxRate: 1 },
  ],
};

const NOW = 1_700_000_000_000;
const BUDGET = 50;

/** A command under `leaseId` that passes every check at NOW unless overridden. */
function command(overrides: Partial<tsunagi.v1.IControlCommand> = {}): tsunagi.v1.IControlCommand {
  return { deviceId: "ex-1", leaseId: "L1", seq: 1, issuedAtMs: NOW - 5, deadlineMs: NOW + 40, axes: [{ name: "boom", value: 0.2 }], ...overrides };
}

function guardWith(leaseId = "L1"): CommandGuard {
  const guard = new CommandGuard();
  expect(guard.announceLease(leaseId)).toBe("granted");
  return guard;
}

const statusOf = (guard: CommandGuard, cmd: tsunagi.v1.IControlCommand, now = NOW) => CommandStatus[guard.check(cmd, now, BUDGET, profile).status];

describe("checks, in the contract's order", () => {
  it("applies a valid command and returns the complete setpoint", () => {
    const guard = guardWith();
    const verdict = guard.check(command({ axes: [{ name: "boom", value: 0.2 }, { index: 3, value: -100 }] }), NOW, BUDGET, profile);
    expect(verdict.status).toBe(CommandStatus.APPLIED);
    expect(verdict.detail).toBe("");
    expect(verdict.setpoint).toEqual([
      { name: "boom", mode: AxisMode.AXIS_MODE_VELOCITY, value: 0.2 },
      { name: "swing", mode: AxisMode.AXIS_MODE_VELOCITY, value: undefined },
      { name: "blade", mode: AxisMode.AXIS_MODE_POSITION, value: undefined },
      { name: "winch", mode: AxisMode.AXIS_MODE_TORQUE, value: -100 },
      { name: "lamp", mode: AxisMode.AXIS_MODE_UNSPECIFIED, value: undefined },
    ]);
    expect(guard.lastApplied).toEqual({ leaseId: "L1", seq: 1 });
  });

  it("reports the first failing check: ESTOPPED > NO_LEASE > EXPIRED > STALE > OUT_OF_BOUNDS", () => {
    // a command failing every check at once
    const hopeless = () => command({ leaseId: "other", seq: 0, deadlineMs: 0, axes: [{ name: "nope", value: 1 }] });
    const guard = guardWith();
    expect(guard.check(command({ seq: 5 }), NOW, BUDGET, profile).status).toBe(CommandStatus.APPLIED);

    guard.estop();
    expect(statusOf(guard, hopeless())).toBe("ESTOPPED");
    guard.reset();
    guard.announceLease("L2");
    expect(statusOf(guard, hopeless())).toBe("NO_LEASE");
    expect(statusOf(guard, { ...hopeless(), leaseId: "L2" })).toBe("EXPIRED");
    expect(statusOf(guard, { ...hopeless(), leaseId: "L2", deadlineMs: NOW + 10 })).toBe("STALE");
    expect(statusOf(guard, { ...hopeless(), leaseId: "L2", deadlineMs: NOW + 10, seq: 1 })).toBe("OUT_OF_BOUNDS");
    expect(statusOf(guard, command({ leaseId: "L2", seq: 1 }))).toBe("APPLIED");
  });

  it("EXPIRED: past the deadline, past issued + budget, or no deadline at all", () => {
    const guard = guardWith();
    expect(statusOf(guard, command({ deadlineMs: NOW - 1 }))).toBe("EXPIRED");
    expect(statusOf(guard, command({ deadlineMs: 0 }))).toBe("EXPIRED");
    expect(statusOf(guard, command({ deadlineMs: undefined }))).toBe("EXPIRED");
    expect(statusOf(guard, command({ deadlineMs: Number.NaN }))).toBe("EXPIRED");
    // a generous deadline cannot outlive the budget: min(deadline, issued + 50)
    expect(statusOf(guard, command({ issuedAtMs: NOW - 51, deadlineMs: NOW + 10_000 }))).toBe("EXPIRED");
    expect(statusOf(guard, command({ issuedAtMs: 0, deadlineMs: NOW + 10 }))).toBe("EXPIRED");
    // exactly at the deadline still counts
    expect(statusOf(guard, command({ issuedAtMs: NOW - 50, deadlineMs: NOW + 10 }))).toBe("APPLIED");
    // budget 0: the deadline alone
    expect(guard.check(command({ seq: 2, issuedAtMs: NOW - 10_000, deadlineMs: NOW + 1 }), NOW, 0, profile).status).toBe(CommandStatus.APPLIED);
    const detail = guard.check(command({ seq: 3, deadlineMs: NOW - 1 }), NOW, BUDGET, profile).detail;
    expect(detail).toMatch(/past the deadline/);
  });

  it("STALE: a seq at or below the last applied under the lease; refusals do not advance it", () => {
    const guard = guardWith();
    expect(statusOf(guard, command({ seq: 3 }))).toBe("APPLIED");
    expect(statusOf(guard, command({ seq: 3 }))).toBe("STALE"); // a replay
    expect(statusOf(guard, command({ seq: 2 }))).toBe("STALE"); // reordered
    expect(statusOf(guard, command({ seq: 4, axes: [{ name: "boom", value: 9 }] }))).toBe("OUT_OF_BOUNDS");
    expect(statusOf(guard, command({ seq: 4 }))).toBe("APPLIED");
    expect(statusOf(guard, command({ seq: 10 }))).toBe("APPLIED"); // gaps are fine
    expect(guard.check(command({ seq: 10 }), NOW, BUDGET, profile).detail).toMatch(/seq 10 is not above 10/);
  });

  it.each([
    ["a velocity above max_rate", [{ name: "boom", value: 0.41 }], /beyond max_rate 0.4 rad\/s/],
    ["a negative velocity above max_rate", [{ name: "boom", value: -0.5 }], /beyond max_rate/],
    ["a position below min", [{ name: "blade", value: -0.01 }], /outside \[0, 0.5\]/],
    ["a position above max", [{ name: "blade", value: 0.6 }], /outside \[0, 0.5\]/],
    ["a torque above max_effort", [{ name: "winch", value: 301 }], /beyond max_effort 300/],
    ["a non-commandable axis", [{ name: "lamp", value: 0 }], /not commandable/],
    ["NaN", [{ name: "swing", value: Number.NaN }], /not finite/],
    ["Infinity", [{ name: "swing", value: Infinity }], /not finite/],
    ["an unknown name", [{ name: "stick", value: 0 }], /no axis "stick"/],
    ["an empty name", [{ name: "", value: 0 }], /no axis ""/],
    ["an index past the end", [{ index: 5, value: 0 }], /index 5 is outside the profile's 5 axes/],
    ["an axis named twice", [{ name: "boom", value: 0.1 }, { index: 0, value: 0.1 }], /boom is named twice/],
    ["name and index both", [{ name: "boom", index: 0, value: 0.1 }], /not both/],
    ["neither name nor index", [{ value: 0.1 }], /not neither/],
  ])("OUT_OF_BOUNDS: %s, and nothing is recorded", (_label, axes, detail) => {
    const guard = guardWith();
    const verdict = guard.check(command({ axes: axes as tsunagi.v1.IAxisValue[] }), NOW, BUDGET, profile);
    expect(CommandStatus[verdict.status]).toBe("OUT_OF_BOUNDS");
    expect(verdict.detail).toMatch(detail);
    expect(verdict.setpoint).toBeUndefined();
    expect(guard.lastApplied).toBeUndefined();
    expect(statusOf(guard, command({ seq: 1 }))).toBe("APPLIED"); // the seq was not consumed
  });

  it("accepts values exactly at the bounds, and an empty command (a stop)", () => {
    const guard = guardWith();
    expect(statusOf(guard, command({ seq: 1, axes: [{ name: "boom", value: -0.4 }, { name: "blade", value: 0.5 }, { name: "winch", value: -300 }] }))).toBe("APPLIED");
    const stop = guard.check(command({ seq: 2, axes: [] }), NOW, BUDGET, profile);
    expect(stop.status).toBe(CommandStatus.APPLIED);
    expect(stop.setpoint!.every((entry) => entry.value === undefined)).toBe(true);
  });

  it("decoded messages resolve like plain objects (oneof defaults are null)", () => {
    const guard = guardWith();
    const bytes = tsunagi.v1.ControlCommand.encode(command({ axes: [{ index: 1, value: 0.5 }] })).finish();
    const decoded = tsunagi.v1.ControlCommand.decode(bytes);
    const verdict = guard.check(decoded, NOW, BUDGET, profile);
    expect(verdict.status).toBe(CommandStatus.APPLIED);
    expect(verdict.setpoint![1].value).toBe(0.5);
  });

  it("treats a bad time or budget as a caller bug", () => {
    const guard = guardWith();
    expect(() => guard.check(command(), Number.NaN, BUDGET, profile)).toThrow(TypeError);
    expect(() => guard.check(command(), NOW, -1, profile)).toThrow(/latency budget/);
  });
});

describe("leases", () => {
  it("refuses everything NO_LEASE before any announcement and after an empty one", () => {
    const guard = new CommandGuard();
    expect(statusOf(guard, command())).toBe("NO_LEASE");
    expect(guard.check(command(), NOW, BUDGET, profile).detail).toMatch(/no lease is current/);
    guard.announceLease("L1");
    expect(guard.announceLease("")).toBe("cleared");
    expect(guard.currentLease).toBeUndefined();
    expect(statusOf(guard, command())).toBe("NO_LEASE");
    expect(statusOf(guard, command({ leaseId: "" }))).toBe("NO_LEASE");
  });

  it("an ended lease is dead for good; re-announcing it is ignored", () => {
    const guard = guardWith("L1");
    expect(statusOf(guard, command({ seq: 7 }))).toBe("APPLIED");
    expect(guard.announceLease("L1")).toBe("unchanged");
    expect(statusOf(guard, command({ seq: 7 }))).toBe("STALE"); // renewal keeps the seq state
    expect(guard.announceLease("L2")).toBe("granted");
    expect(guard.isDead("L1")).toBe(true);
    expect(statusOf(guard, command({ leaseId: "L1", seq: 8 }))).toBe("NO_LEASE");
    expect(guard.check(command({ leaseId: "L1", seq: 8 }), NOW, BUDGET, profile).detail).toMatch(/has ended/);
    expect(guard.announceLease("L1")).toBe("dead");
    expect(guard.currentLease).toBe("L2"); // the dead announcement changed nothing
    // a new lease starts its own seq from scratch
    expect(statusOf(guard, command({ leaseId: "L2", seq: 1 }))).toBe("APPLIED");
  });

  it("e-stop: everything ESTOPPED while latched, even under a lease announced meanwhile; reset kills that lease too", () => {
    const guard = guardWith("L1");
    guard.estop();
    guard.estop(); // idempotent
    expect(guard.estopped).toBe(true);
    expect(guard.isDead("L1")).toBe(true);
    expect(statusOf(guard, command())).toBe("ESTOPPED");
    expect(guard.announceLease("L2")).toBe("granted"); // a fresh lease does not clear the e-stop
    expect(statusOf(guard, command({ leaseId: "L2" }))).toBe("ESTOPPED");
    guard.reset();
    expect(guard.estopped).toBe(false);
    expect(guard.currentLease).toBeUndefined();
    expect(statusOf(guard, command({ leaseId: "L1" }))).toBe("NO_LEASE");
    expect(statusOf(guard, command({ leaseId: "L2" }))).toBe("NO_LEASE");
    expect(guard.announceLease("L2")).toBe("dead");
    expect(guard.check(command({ leaseId: "L2" }), NOW, BUDGET, profile).detail).toMatch(/predates the e-stop reset/);
    expect(guard.announceLease("L3")).toBe("granted");
    expect(statusOf(guard, command({ leaseId: "L3" }))).toBe("APPLIED");
  });

  it("setpointRefused takes back the last-applied record of the command just checked, but not its seq", () => {
    const guard = guardWith("L1");
    guard.check(command({ seq: 4 }), NOW, BUDGET, profile);
    guard.check(command({ seq: 5 }), NOW, BUDGET, profile);
    guard.setpointRefused("L1", 5);
    expect(guard.lastApplied).toEqual({ leaseId: "L1", seq: 4 });
    expect(statusOf(guard, command({ seq: 5 }))).toBe("STALE");
    guard.setpointRefused("L1", 5); // not the last applied any more: nothing to take back
    expect(guard.lastApplied).toEqual({ leaseId: "L1", seq: 4 });

    const first = guardWith("L1");
    first.check(command({ seq: 1 }), NOW, BUDGET, profile);
    first.setpointRefused("L1", 1);
    expect(first.lastApplied).toBeUndefined();
  });

  it("reset clears the last-applied record; e-stop keeps it", () => {
    const guard = guardWith("L1");
    guard.check(command({ seq: 4 }), NOW, BUDGET, profile);
    guard.estop();
    expect(guard.lastApplied).toEqual({ leaseId: "L1", seq: 4 });
    guard.reset();
    expect(guard.lastApplied).toBeUndefined();
  });

  it("watchdog trip: the lease dies and the latch holds until a fresh lease (not the dead one)", () => {
    const guard = guardWith("L1");
    expect(guard.tripWatchdog()).toBe("L1");
    expect(guard.watchdogTripped).toBe(true);
    expect(statusOf(guard, command())).toBe("NO_LEASE");
    expect(guard.check(command(), NOW, BUDGET, profile).detail).toMatch(/watchdog tripped/);
    expect(guard.announceLease("L1")).toBe("dead");
    expect(guard.watchdogTripped).toBe(true);
    expect(guard.announceLease("")).toBe("cleared");
    expect(guard.watchdogTripped).toBe(true);
    expect(guard.announceLease("L2")).toBe("granted");
    expect(guard.watchdogTripped).toBe(false);
    expect(statusOf(guard, command({ leaseId: "L2" }))).toBe("APPLIED");
  });

  it("forgets the oldest dead leases beyond its bound", () => {
    const guard = new CommandGuard({ maxDeadLeases: 2 });
    for (const lease of ["A", "B", "C", "D"]) guard.announceLease(lease);
    expect(guard.isDead("A")).toBe(false);
    expect(guard.isDead("B")).toBe(true);
    expect(guard.isDead("C")).toBe(true);
    expect(() => new CommandGuard({ maxDeadLeases: 0 })).toThrow(TypeError);
  });
});

describe("heartbeats", () => {
  const WINDOW = 200;

  it("count under the current lease, with a rising seq, sent within the window", () => {
    const guard = guardWith("L1");
    expect(guard.acceptHeartbeat({ leaseId: "L1", seq: 1, sentAtMs: NOW - 10 }, NOW, WINDOW)).toBe(true);
    expect(guard.acceptHeartbeat({ leaseId: "L1", seq: 1, sentAtMs: NOW }, NOW, WINDOW)).toBe(false); // duplicate
    expect(guard.acceptHeartbeat({ leaseId: "L1", seq: 3, sentAtMs: NOW - 200 }, NOW, WINDOW)).toBe(true); // at the edge
    expect(guard.acceptHeartbeat({ leaseId: "L1", seq: 2, sentAtMs: NOW }, NOW, WINDOW)).toBe(false); // reordered
    expect(guard.acceptHeartbeat({ leaseId: "L1", seq: 4, sentAtMs: NOW - 201 }, NOW, WINDOW)).toBe(false); // too old
    expect(guard.acceptHeartbeat({ leaseId: "L1", seq: 5, sentAtMs: NOW + 500 }, NOW, WINDOW)).toBe(false); // from the future
    expect(guard.acceptHeartbeat({ leaseId: "L1", seq: 6, sentAtMs: 0 }, NOW, WINDOW)).toBe(false);
    expect(guard.acceptHeartbeat({ leaseId: "L1", seq: 7 }, NOW, WINDOW)).toBe(false);
    // a refused heartbeat does not consume its seq
    expect(guard.acceptHeartbeat({ leaseId: "L1", seq: 4, sentAtMs: NOW }, NOW, WINDOW)).toBe(true);
  });

  it("never count under another, a dead or no lease, or while e-stopped", () => {
    const guard = guardWith("L1");
    expect(guard.acceptHeartbeat({ leaseId: "L0", seq: 1, sentAtMs: NOW }, NOW, WINDOW)).toBe(false);
    guard.tripWatchdog();
    expect(guard.acceptHeartbeat({ leaseId: "L1", seq: 1, sentAtMs: NOW }, NOW, WINDOW)).toBe(false);
    guard.announceLease("L2");
    expect(guard.acceptHeartbeat({ leaseId: "L2", seq: 1, sentAtMs: NOW }, NOW, WINDOW)).toBe(true);
    guard.estop();
    expect(guard.acceptHeartbeat({ leaseId: "L2", seq: 2, sentAtMs: NOW }, NOW, WINDOW)).toBe(false);
  });

  it("heartbeat seq is per lease, separate from command seq", () => {
    const guard = guardWith("L1");
    expect(guard.acceptHeartbeat({ leaseId: "L1", seq: 9, sentAtMs: NOW }, NOW, WINDOW)).toBe(true);
    expect(statusOf(guard, command({ seq: 1 }))).toBe("APPLIED");
    guard.announceLease("L2");
    expect(guard.acceptHeartbeat({ leaseId: "L2", seq: 1, sentAtMs: NOW }, NOW, WINDOW)).toBe(true);
  });
});
