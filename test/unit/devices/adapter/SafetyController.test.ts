/**
 * SafetyController alone, against a fake driver and a clock only the test moves: each
 * rule of its file comment, stated as what the machine does. Every message goes through
 * encode and decode, as on the wire; the replies are what the controller returns (it
 * has no socket).
 */
import { describe, expect, it } from "vitest";
import { tsunagi } from "../../../../proto/index.ts";
import { DEVICE, Status, WINDOW_MS, announce, command, handle, setup, statusOf } from "./safety-harness.ts";

describe("SafetyController", () => {
  it("applies a command under the announced lease as a complete setpoint, with one APPLIED ack echoing its correlation id", () => {
    const s = setup();
    s.safety.linkUp();
    announce(s, "L1");
    expect(s.safety.state.lease).toBe("L1");
    const first = command(s, { leaseId: "L1", seq: 1, axes: [{ name: "boom", value: 0.3 }, { name: "swing", value: 0.5 }] });
    expect(first.ack).toMatchObject({ deviceId: DEVICE, leaseId: "L1", seq: 1, status: Status.APPLIED, detail: "" });
    expect(first.repliedTo).toBe(first.correlationId);
    expect(s.driver.velocity("boom")).toBe(0.3);
    expect(s.driver.velocity("swing")).toBe(0.5);
    // swing unmentioned: it goes to 0
    expect(statusOf(s, { leaseId: "L1", seq: 2, axes: [{ name: "boom", value: 0.1 }] })).toBe("APPLIED");
    expect(s.driver.velocity("swing")).toBe(0);
    expect(s.safety.state.lastApplied).toEqual({ leaseId: "L1", seq: 2 });
    expect(s.safety.counters.acks).toEqual({ APPLIED: 2 });
  });

  it("a profile that leaves the latency budget at 0 is held to the budget the gateway's welcome names", () => {
    const s = setup({ latencyBudgetMs: 0 });
    s.safety.linkUp(50);
    announce(s, "L1");
    const now = s.clock.serverNow();
    // a deadline 5 s out, but issued 60 ms ago: past issued + the welcome's 50 ms budget
    expect(statusOf(s, { leaseId: "L1", seq: 1, issuedAtMs: now - 60, deadlineMs: now + 5000, axes: [{ name: "boom", value: 0.3 }] })).toBe("EXPIRED");
    expect(statusOf(s, { leaseId: "L1", seq: 2, issuedAtMs: now - 40, deadlineMs: now + 5000, axes: [{ name: "boom", value: 0.3 }] })).toBe("APPLIED");
    // the profile's own budget wins over the welcome's
    const own = setup({ latencyBudgetMs: 100 });
    own.safety.linkUp(50);
    announce(own, "L1");
    expect(statusOf(own, { leaseId: "L1", seq: 1, issuedAtMs: own.clock.serverNow() - 60, deadlineMs: own.clock.serverNow() + 5000, axes: [{ name: "boom", value: 0.3 }] })).toBe("APPLIED");
  });

  it("refuses NO_LEASE, STALE, EXPIRED and OUT_OF_BOUNDS, and none of them moves the machine", () => {
    const s = setup();
    expect(statusOf(s, { leaseId: "L1", seq: 1, axes: [{ name: "boom", value: 0.3 }] })).toBe("NO_LEASE"); // nothing announced yet
    announce(s, "L1");
    expect(statusOf(s, { leaseId: "L0", seq: 1, axes: [{ name: "boom", value: 0.3 }] })).toBe("NO_LEASE");
    expect(statusOf(s, { leaseId: "L1", seq: 1, deviceId: "ex-2", axes: [{ name: "boom", value: 0.3 }] })).toBe("NO_LEASE"); // another device's
    const now = s.clock.serverNow();
    expect(statusOf(s, { leaseId: "L1", seq: 1, issuedAtMs: now - 6000, deadlineMs: now - 1, axes: [{ name: "boom", value: 0.3 }] })).toBe("EXPIRED");
    expect(statusOf(s, { leaseId: "L1", seq: 1, axes: [{ name: "boom", value: 5 }] })).toBe("OUT_OF_BOUNDS");
    expect(s.driver.moving).toBe(false);

    expect(statusOf(s, { leaseId: "L1", seq: 5, axes: [] })).toBe("APPLIED"); // all axes to 0
    expect(statusOf(s, { leaseId: "L1", seq: 5, axes: [{ name: "boom", value: 0.3 }] })).toBe("STALE");
    expect(statusOf(s, { leaseId: "L1", seq: 4, axes: [{ name: "boom", value: 0.3 }] })).toBe("STALE");
    expect(s.driver.moving).toBe(false);
    expect(s.safety.counters.acks).toEqual({ NO_LEASE: 3, EXPIRED: 1, OUT_OF_BOUNDS: 1, APPLIED: 1, STALE: 2 });
  });

  it("a new lease, or none, ends the previous lease's setpoint", () => {
    const s = setup();
    announce(s, "L1");
    command(s, { leaseId: "L1", seq: 1, axes: [{ name: "boom", value: 0.3 }] });
    announce(s, "L2");
    expect(s.driver.moving).toBe(false);
    expect(s.driver.calls).toContain("linkRestored");
    command(s, { leaseId: "L2", seq: 1, axes: [{ name: "boom", value: 0.3 }] });
    announce(s, "", { cause: "released" });
    expect(s.driver.moving).toBe(false);
    expect(s.driver.calls.at(-1)).toBe("linkLost"); // nobody drives: a drone's failsafe
  });

  it("watchdog: silence for the window zeroes motion and kills the lease, and the latch holds until a fresh lease", () => {
    const s = setup();
    s.safety.linkUp();
    announce(s, "L1");
    command(s, { leaseId: "L1", seq: 1, axes: [{ name: "boom", value: 0.3 }] });
    s.clock.jump(WINDOW_MS - 1);
    s.safety.pollWatchdog();
    expect(s.driver.moving).toBe(true); // within the window

    s.clock.jump(2);
    s.safety.pollWatchdog();
    expect(s.driver.moving).toBe(false);
    expect(s.safety.state).toMatchObject({ lease: undefined, watchdogTripped: true, stopLatch: "watchdog" });
    expect(s.events).toContainEqual({ event: "watchdog", payload: { leaseId: "L1" } });
    expect(s.driver.calls).toContain("linkLost");
    expect(s.safety.counters.watchdogTrips).toBe(1);

    // the latch holds: the dead lease, even announced again, moves nothing
    announce(s, "L1");
    const dead = command(s, { leaseId: "L1", seq: 2, axes: [{ name: "boom", value: 0.3 }] }).ack;
    expect(Status[dead.status!]).toBe("NO_LEASE");
    expect(dead.detail).toMatch(/watchdog/);
    expect(s.safety.state.watchdogTripped).toBe(true);
    expect(s.driver.moving).toBe(false);

    announce(s, "L2");
    expect(s.safety.state.watchdogTripped).toBe(false);
    expect(statusOf(s, { leaseId: "L2", seq: 1, axes: [{ name: "boom", value: 0.3 }] })).toBe("APPLIED");
    expect(s.driver.moving).toBe(true);
  });

  it("watchdog: the window starts at the grant, not at the first command: a lease never used dies after it", () => {
    const s = setup();
    s.safety.linkUp();
    announce(s, "L1");
    s.clock.jump(WINDOW_MS + 1);
    s.safety.pollWatchdog();
    expect(s.safety.state).toMatchObject({ lease: undefined, watchdogTripped: true });
    expect(statusOf(s, { leaseId: "L1", seq: 1, axes: [{ name: "boom", value: 0.3 }] })).toBe("NO_LEASE");
    expect(s.driver.moving).toBe(false);
  });

  it("LeaseState.estopped latches the adapter; estopped false clears nothing, only a Reset does", () => {
    const s = setup();
    s.safety.linkUp();
    announce(s, "L1", { estopped: true });
    expect(s.safety.state.estopped).toBe(true);
    announce(s, "L2", { estopped: false });
    expect(s.safety.state.estopped).toBe(true);
    expect(statusOf(s, { leaseId: "L2", seq: 1, axes: [{ name: "boom", value: 0.3 }] })).toBe("ESTOPPED");
    handle(s, { correlationId: 0, reset: { deviceId: DEVICE, by: "sam" } });
    expect(s.safety.state.estopped).toBe(false);
  });

  it("watchdog: a command arriving after the window does not rescue the silent lease", () => {
    const s = setup();
    announce(s, "L1");
    command(s, { leaseId: "L1", seq: 1, axes: [{ name: "boom", value: 0.3 }] });
    s.clock.jump(WINDOW_MS + 1);
    expect(statusOf(s, { leaseId: "L1", seq: 2, axes: [{ name: "boom", value: 0.3 }] })).toBe("NO_LEASE");
    expect(s.driver.moving).toBe(false);
  });

  it("watchdog: each applied command feeds it", () => {
    const s = setup();
    announce(s, "L1");
    for (let seq = 1; seq <= 3; seq++) {
      s.clock.jump(WINDOW_MS * 0.75);
      expect(statusOf(s, { leaseId: "L1", seq, axes: [{ name: "boom", value: 0.3 }] })).toBe("APPLIED");
    }
    s.safety.pollWatchdog();
    expect(s.safety.state.lease).toBe("L1");
    expect(s.driver.moving).toBe(true);
  });

  it("watchdog: heartbeats under the current lease keep it fed, and only those", () => {
    const s = setup();
    announce(s, "L1");
    command(s, { leaseId: "L1", seq: 1, axes: [{ name: "boom", value: 0.3 }] });
    const heartbeat = (leaseId: string, seq: number) => handle(s, { correlationId: 0, heartbeat: { deviceId: DEVICE, leaseId, seq, sentAtMs: s.clock.serverNow() } });
    for (let seq = 1; seq <= 3; seq++) {
      s.clock.jump(WINDOW_MS * 0.75);
      heartbeat("L1", seq);
    }
    s.safety.pollWatchdog();
    expect(s.safety.state.lease).toBe("L1");
    s.clock.jump(WINDOW_MS * 0.75);
    heartbeat("L0", 4); // another lease's: feeds nothing
    s.clock.jump(WINDOW_MS * 0.5);
    s.safety.pollWatchdog();
    expect(s.safety.state.lease).toBeUndefined();
    expect(s.driver.moving).toBe(false);
  });

  it("e-stop: stops at once and latches; a fresh lease does not clear it, only a reset does, and motion then needs a lease granted after it", () => {
    const s = setup();
    announce(s, "L1");
    command(s, { leaseId: "L1", seq: 1, axes: [{ name: "boom", value: 0.3 }] });
    handle(s, { correlationId: 0, estop: { deviceId: DEVICE, reason: "operator pressed e-stop", raisedBy: "op-1" } });
    expect(s.driver.moving).toBe(false);
    expect(s.driver.calls).toContain("emergencyStop");
    expect(s.safety.state).toMatchObject({ estopped: true, lease: undefined });
    expect(s.events).toContainEqual({ event: "estop", payload: { source: "remote", reason: "operator pressed e-stop", raisedBy: "op-1" } });

    announce(s, "L2");
    expect(statusOf(s, { leaseId: "L2", seq: 1, axes: [{ name: "boom", value: 0.3 }] })).toBe("ESTOPPED");
    expect(s.safety.state.estopped).toBe(true);
    expect(s.driver.moving).toBe(false);

    handle(s, { correlationId: 0, reset: { deviceId: DEVICE, by: "sup-1", reason: "area clear" } });
    expect(s.safety.state).toMatchObject({ estopped: false, lease: undefined });
    announce(s, "L2"); // current at the reset: dead with it
    expect(statusOf(s, { leaseId: "L2", seq: 2, axes: [{ name: "boom", value: 0.3 }] })).toBe("NO_LEASE");
    announce(s, "L3");
    expect(statusOf(s, { leaseId: "L3", seq: 1, axes: [{ name: "boom", value: 0.3 }] })).toBe("APPLIED");
    expect(s.safety.counters.estops).toBe(1);
  });

  it("e-stop: one naming another device still stops this one; so does the room reporting a latch", () => {
    const s = setup();
    announce(s, "L1");
    command(s, { leaseId: "L1", seq: 1, axes: [{ name: "boom", value: 0.3 }] });
    handle(s, { correlationId: 0, estop: { deviceId: "ex-2", reason: "wrong device" } });
    expect(s.driver.moving).toBe(false);
    expect(s.safety.state.estopped).toBe(true);

    const other = setup();
    other.safety.linkUp();
    announce(other, "", { estopped: true });
    expect(other.safety.state.estopped).toBe(true);
  });

  it("a reset with nothing latched is ignored: the lease stays and the machine keeps its setpoint", () => {
    const s = setup();
    announce(s, "L1");
    command(s, { leaseId: "L1", seq: 1, axes: [{ name: "boom", value: 0.3 }] });
    handle(s, { correlationId: 0, reset: { deviceId: DEVICE, by: "sup-1" } });
    expect(s.safety.state.lease).toBe("L1");
    expect(s.driver.velocity("boom")).toBe(0.3);
    expect(s.safety.counters.unexpected).toBe(1);
    expect(statusOf(s, { leaseId: "L1", seq: 2, axes: [{ name: "boom", value: 0.2 }] })).toBe("APPLIED");
  });

  it("local e-stop with no link: stops and latches, returns the EStop for the room, and the next link announces it again", () => {
    const s = setup();
    s.driver.hal.actuator("boom").setValue("velocity", 0.2); // moving by itself, no link, no lease
    const notice = s.safety.raiseEStop("physical button");
    expect(s.driver.moving).toBe(false);
    expect(s.driver.calls).toContain("emergencyStop");
    expect(s.safety.state.estopped).toBe(true);
    expect(notice.estop).toMatchObject({ deviceId: DEVICE, reason: "physical button", raisedBy: `device:${DEVICE}` });
    expect(s.events).toContainEqual({ event: "estop", payload: { source: "device", reason: "physical button", raisedBy: `device:${DEVICE}` } });
    expect(s.reports()).toBeGreaterThan(0); // telemetry shows the latch at once (buffered while offline)

    const [again] = s.safety.linkUp();
    expect(again?.estop).toMatchObject({ deviceId: DEVICE, raisedBy: `device:${DEVICE}` });
    announce(s, "L1");
    expect(statusOf(s, { leaseId: "L1", seq: 1, axes: [{ name: "boom", value: 0.3 }] })).toBe("ESTOPPED");
    expect(s.driver.moving).toBe(false);
  });

  it("a closed link zeroes motion and kills the lease that was current, reported as the link's doing, not the watchdog's; a link never welcomed only stops", () => {
    const s = setup();
    s.safety.linkUp();
    announce(s, "L1");
    command(s, { leaseId: "L1", seq: 1, axes: [{ name: "boom", value: 0.3 }] });
    s.safety.linkClosed({ welcomed: true, code: 1006, why: "connection closed (code 1006)" });
    expect(s.driver.moving).toBe(false);
    expect(s.safety.state).toMatchObject({ lease: undefined, watchdogTripped: false, stopLatch: "connection closed" });
    expect(s.driver.calls.at(-1)).toBe("linkLost");
    expect(s.safety.counters).toMatchObject({ watchdogTrips: 0, linkLossStops: 1 });
    expect(statusOf(s, { leaseId: "L1", seq: 2, axes: [{ name: "boom", value: 0.3 }] })).toBe("NO_LEASE");
    expect(s.safety.lastStop).toMatchObject({ reason: "connection closed" });

    const fresh = setup();
    announce(fresh, "L9");
    fresh.driver.hal.actuator("swing").setValue("velocity", 0.5);
    fresh.safety.linkClosed({ welcomed: false, code: 1006, why: "connection closed (code 1006)" });
    expect(fresh.driver.moving).toBe(false);
    expect(fresh.safety.state.lease).toBe("L9");
  });

  it("a device that refuses part of a setpoint gets none of it: motion zeroed, the ack not APPLIED", () => {
    const s = setup();
    announce(s, "L1");
    s.driver.refuseSetpoints("swing");
    const { ack } = command(s, { leaseId: "L1", seq: 1, axes: [{ name: "boom", value: 0.3 }, { name: "swing", value: 0.5 }] });
    expect(Status[ack.status!]).toBe("STATUS_UNSPECIFIED");
    expect(ack.detail).toMatch(/device refused the setpoint .*swing/);
    expect(ack.appliedAtMs).toBe(0);
    expect(s.driver.moving).toBe(false);
  });

  it("a command whose setpoint the device refused is not reported as last applied, yet its seq stays used (a replay is STALE)", () => {
    const s = setup();
    announce(s, "L1");
    expect(statusOf(s, { leaseId: "L1", seq: 1, axes: [{ name: "boom", value: 0.1 }] })).toBe("APPLIED");
    s.driver.refuseSetpoints("swing");
    expect(statusOf(s, { leaseId: "L1", seq: 2, axes: [{ name: "swing", value: 0.5 }] })).toBe("STATUS_UNSPECIFIED");
    expect(s.safety.state.lastApplied).toEqual({ leaseId: "L1", seq: 1 });
    s.driver.refuseSetpoints("swing", false);
    expect(statusOf(s, { leaseId: "L1", seq: 2, axes: [{ name: "swing", value: 0.5 }] })).toBe("STALE");
    expect(s.driver.moving).toBe(false);
  });

  it("an action passes the command checks and the device's own verdict, and asks for a report after its result", () => {
    const s = setup();
    const act = (leaseId: string) => {
      const now = s.clock.serverNow();
      return handle(s, { correlationId: 9, deviceAction: { deviceId: DEVICE, leaseId, action: "horn", issuedAtMs: now, deadlineMs: now + 5000 } })!;
    };
    expect(Status[act("L1").replies[0].actionResult!.status!]).toBe("NO_LEASE");
    expect(s.driver.calls).not.toContain("perform:horn");
    announce(s, "L1");
    const applied = act("L1");
    expect(Status[applied.replies[0].actionResult!.status!]).toBe("APPLIED");
    expect(applied.reportAfter).toBe(true);
    expect(s.driver.calls).toContain("perform:horn");
    s.driver.refuseActions = "not now";
    expect(act("L1").replies[0].actionResult).toMatchObject({ status: Status.STATUS_UNSPECIFIED, detail: "the device refused horn: not now" });
    expect(s.safety.counters.actions).toEqual({ NO_LEASE: 1, APPLIED: 1, STATUS_UNSPECIFIED: 1 });
  });

  it("after stop(), motion is zeroed and no lease is ever current again", () => {
    const s = setup();
    announce(s, "L1");
    command(s, { leaseId: "L1", seq: 1, axes: [{ name: "boom", value: 0.3 }] });
    s.safety.stop();
    expect(s.driver.moving).toBe(false);
    expect(s.safety.state.lease).toBeUndefined();
    announce(s, "L2");
    expect(s.safety.state.lease).toBeUndefined();
    expect(statusOf(s, { leaseId: "L2", seq: 1, axes: [{ name: "boom", value: 0.3 }] })).toBe("NO_LEASE");
    expect(s.driver.moving).toBe(false);
  });

  it("leaves the gateway's other messages alone", () => {
    const s = setup();
    expect(handle(s, { correlationId: 1, ping: { clientTimeMs: 1 } })).toBeUndefined();
    expect(handle(s, { correlationId: 0, gatewayRedirect: { url: "ws://elsewhere/device" } })).toBeUndefined();
  });
});
