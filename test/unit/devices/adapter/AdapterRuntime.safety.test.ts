/**
 * The safety rules through the whole runtime, against a scripted gateway: commands moving
 * the simulated excavator, every refusal, the watchdog and e-stop latches, disconnects
 * zeroing motion and killing the lease, and a drone's failsafe and landing. The
 * watchdog runs on a clock only the test moves (runtime-harness.ts).
 */
import { afterEach, describe, it, expect } from "vitest";
import { SimDrone, SimExcavator } from "../../../../devices/drivers/index.ts";
import { tsunagi } from "../../../../proto/index.ts";
import { action, command, DEVICE, joint, lease, nextEvent, online, run, runCleanups, setup, Status, statusName, telemetry, waitUntil, WATCHDOG_MS } from "./runtime-harness.ts";

afterEach(runCleanups);

describe("commands", () => {
  it("applies a command to the HAL as a complete setpoint and acks it with the command's correlation id", { timeout: 15_000 }, async () => {
    const s = await setup();
    await online(s);
    await lease(s, "L1");
    const ack = await command(s, { leaseId: "L1", seq: 1, axes: [{ name: "boom", value: 0.4 }, { name: "swing", value: 0.5 }] });
    expect(ack).toMatchObject({ deviceId: DEVICE, leaseId: "L1", seq: 1, status: Status.APPLIED, origin: tsunagi.v1.CommandAck.Origin.ADAPTER, detail: "", deviceRoundTripMs: 0 });
    expect(ack.receivedAtMs).toBeGreaterThanOrEqual(ack.issuedAtMs);
    expect(ack.appliedAtMs).toBeGreaterThanOrEqual(ack.receivedAtMs);
    expect(ack.oneWayLatencyMs).toBeCloseTo(ack.appliedAtMs - ack.issuedAtMs, 6);
    expect(ack.clockUncertaintyMs).toBeGreaterThanOrEqual(0);

    run(s.driver, 500);
    expect(joint(s.driver, "boom").position).toBeCloseTo(0.2, 6);
    expect(joint(s.driver, "swing").position).toBeCloseTo(0.25, 6);

    // the next command does not mention swing: it goes to 0
    expect(statusName(await command(s, { leaseId: "L1", seq: 2, axes: [{ index: 1, value: 0.4 }] }))).toBe("APPLIED");
    run(s.driver, 500);
    expect(joint(s.driver, "boom").position).toBeCloseTo(0.4, 6);
    expect(joint(s.driver, "swing").position).toBeCloseTo(0.25, 6);
    expect(joint(s.driver, "swing").velocity).toBe(0);

    const since = s.gateway.mark();
    const sample = await telemetry(s, (t) => Number(t.lastAppliedSeq) === 2, since);
    expect(sample.leaseId).toBe("L1");
    const boom = sample.joints.find((j) => j.name === "boom")!;
    expect(boom.position).toBeCloseTo(0.4, 6);
    expect(sample.joints.map((j) => j.name)).toEqual(["swing", "boom", "arm", "bucket", "left-track", "right-track"]);
    expect(s.runtime.counters.acks.APPLIED).toBe(2);
  });

  it("refuses NO_LEASE, EXPIRED, STALE and OUT_OF_BOUNDS, moving nothing", { timeout: 15_000 }, async () => {
    const s = await setup();
    const acks: number[] = [];
    s.runtime.on("ack", (ack) => acks.push(ack.status ?? 0));
    await online(s);
    // no lease announced yet (the gateway's LeaseState after the welcome had none)
    const noLease = await command(s, { leaseId: "L1", seq: 1, axes: [{ name: "boom", value: 0.4 }] });
    expect(statusName(noLease)).toBe("NO_LEASE");
    expect(noLease.appliedAtMs).toBe(0);
    expect(noLease.oneWayLatencyMs).toBeCloseTo(noLease.receivedAtMs - noLease.issuedAtMs, 6);

    await lease(s, "L1");
    expect(statusName(await command(s, { leaseId: "L0", seq: 1 }))).toBe("NO_LEASE");
    const now = s.runtime.clock.serverNow();
    expect(statusName(await command(s, { leaseId: "L1", seq: 1, issuedAtMs: now - 6000, deadlineMs: now - 1000 }))).toBe("EXPIRED");
    expect(statusName(await command(s, { leaseId: "L1", seq: 1, deadlineMs: 0 }))).toBe("EXPIRED");
    const oob = await command(s, { leaseId: "L1", seq: 1, axes: [{ name: "boom", value: 5 }] });
    expect(statusName(oob)).toBe("OUT_OF_BOUNDS");
    expect(oob.detail).toMatch(/boom: 5 beyond max_rate 0.4/);
    expect(statusName(await command(s, { leaseId: "L1", seq: 1, axes: [{ name: "dipper", value: 0 }] }))).toBe("OUT_OF_BOUNDS");
    run(s.driver, 200);
    expect(joint(s.driver, "boom").position).toBe(0);

    expect(statusName(await command(s, { leaseId: "L1", seq: 1, axes: [{ name: "boom", value: 0.1 }] }))).toBe("APPLIED");
    const replay = await command(s, { leaseId: "L1", seq: 1, axes: [{ name: "boom", value: 0.4 }] });
    expect(statusName(replay)).toBe("STALE");
    run(s.driver, 1000);
    expect(joint(s.driver, "boom").position).toBeCloseTo(0.1, 6); // the replay's 0.4 never applied

    expect(s.runtime.counters.acks).toEqual({ NO_LEASE: 2, EXPIRED: 2, OUT_OF_BOUNDS: 2, APPLIED: 1, STALE: 1 });
    expect(acks).toHaveLength(8);
  });

  it("an empty LeaseState zeroes motion and refuses further commands", { timeout: 15_000 }, async () => {
    const s = await setup();
    await online(s);
    await lease(s, "L1");
    expect(statusName(await command(s, { leaseId: "L1", seq: 1, axes: [{ name: "arm", value: 0.3 }] }))).toBe("APPLIED");
    run(s.driver, 100);
    expect(joint(s.driver, "arm").velocity).toBeCloseTo(0.3, 6);
    s.gateway.send({ correlationId: 0, leaseState: { deviceId: DEVICE, leaseId: "", endedLeaseId: "L1", cause: "released" } });
    await waitUntil(() => s.runtime.safety.lease === undefined, "the lease to end");
    run(s.driver, 100);
    expect(joint(s.driver, "arm").velocity).toBe(0);
    expect(statusName(await command(s, { leaseId: "L1", seq: 2, axes: [{ name: "arm", value: 0.3 }] }))).toBe("NO_LEASE");
  });

  it("acks STATUS_UNSPECIFIED and zeroes motion when the device refuses a setpoint", { timeout: 15_000 }, async () => {
    const drone = new SimDrone({ watchdogMs: WATCHDOG_MS, latencyBudgetMs: 10_000 }); // on the ground: setpoints are refused
    const s = await setup({ driver: drone });
    await online(s);
    await lease(s, "L1");
    const ack = await command(s, { leaseId: "L1", seq: 1, axes: [{ name: "vx", value: 1 }] });
    expect(statusName(ack)).toBe("STATUS_UNSPECIFIED");
    expect(ack.detail).toMatch(/device refused the setpoint .*vx/);
    expect(ack.appliedAtMs).toBe(0);
    // a zero setpoint never is refused (stop() goes through)
    expect(statusName(await command(s, { leaseId: "L1", seq: 2, axes: [] }))).toBe("APPLIED");
  });

});

describe("watchdog", () => {
  it("trips after the window without commands or heartbeats, zeroes velocity, and latches until a fresh lease", { timeout: 15_000 }, async () => {
    const s = await setup();
    await online(s);
    await lease(s, "L1");
    expect(statusName(await command(s, { leaseId: "L1", seq: 1, axes: [{ name: "boom", value: 0.3 }] }))).toBe("APPLIED");
    run(s.driver, 100);
    expect(joint(s.driver, "boom").velocity).toBeCloseTo(0.3, 6);

    const tripped = nextEvent(s.runtime, "watchdog");
    const since = s.gateway.mark();
    s.clock.jump(WATCHDOG_MS + 1);
    expect(await tripped).toEqual({ leaseId: "L1" });
    run(s.driver, 10);
    expect(joint(s.driver, "boom").velocity).toBe(0);
    const sample = await telemetry(s, (t) => t.watchdogTripped, since);
    expect(sample.estopped).toBe(false);

    // the latch holds: the old lease is dead, even re-announced; heartbeats under it do nothing
    expect(statusName(await command(s, { leaseId: "L1", seq: 2, axes: [{ name: "boom", value: 0.3 }] }))).toBe("NO_LEASE");
    s.gateway.send({ correlationId: 0, leaseState: { deviceId: DEVICE, leaseId: "L1" } });
    const dead = await command(s, { leaseId: "L1", seq: 3, axes: [{ name: "boom", value: 0.3 }] });
    expect(statusName(dead)).toBe("NO_LEASE");
    expect(dead.detail).toMatch(/watchdog/);
    expect(s.runtime.safety.watchdogTripped).toBe(true);

    // a fresh lease clears it
    await lease(s, "L2");
    expect(s.runtime.safety.watchdogTripped).toBe(false);
    expect(statusName(await command(s, { leaseId: "L2", seq: 1, axes: [{ name: "boom", value: 0.3 }] }))).toBe("APPLIED");
    expect(s.runtime.counters.watchdogTrips).toBe(1);
  });

  it("is kept alive by heartbeats under the current lease, and only by those", { timeout: 15_000 }, async () => {
    const s = await setup();
    await online(s);
    await lease(s, "L1");
    let seq = 0;
    const heartbeat = (leaseId: string) => {
      s.gateway.send({ correlationId: 0, heartbeat: { deviceId: DEVICE, leaseId, seq: ++seq, sentAtMs: s.runtime.clock.serverNow() } });
    };
    /** Lets the adapter read what was sent, and its watchdog poll run. */
    const settle = async () => {
      const probe = await command(s, { leaseId: "nobody", seq: 1 }); // a round trip through the adapter (refused, feeds nothing)
      expect(statusName(probe)).toBe("NO_LEASE");
      await new Promise((resolve) => setTimeout(resolve, 50));
    };
    for (let i = 0; i < 3; i++) {
      s.clock.jump(WATCHDOG_MS * 0.75);
      heartbeat("L1");
      await settle();
    }
    expect(s.runtime.counters.watchdogTrips).toBe(0);
    // heartbeats under another lease do not count
    s.clock.jump(WATCHDOG_MS * 0.75);
    heartbeat("L0");
    await settle();
    const tripped = nextEvent(s.runtime, "watchdog");
    s.clock.jump(WATCHDOG_MS * 0.5);
    await tripped;
    expect(s.runtime.safety.lease).toBeUndefined();
  });
});

describe("e-stop", () => {
  it("zeroes motion at once, latches through fresh leases, and after a reset needs a lease granted after it", { timeout: 15_000 }, async () => {
    const s = await setup();
    await online(s);
    await lease(s, "L1");
    expect(statusName(await command(s, { leaseId: "L1", seq: 1, axes: [{ name: "bucket", value: 0.5 }] }))).toBe("APPLIED");
    run(s.driver, 100);

    const estopEvent = nextEvent(s.runtime, "estop");
    let since = s.gateway.mark();
    s.gateway.send({ correlationId: 0, estop: { deviceId: DEVICE, reason: "operator pressed e-stop", raisedBy: "op-1", raisedAtMs: Date.now() } });
    expect(await estopEvent).toEqual({ source: "remote", reason: "operator pressed e-stop", raisedBy: "op-1" });
    run(s.driver, 10);
    expect(joint(s.driver, "bucket").velocity).toBe(0);
    await telemetry(s, (t) => t.estopped, since);

    expect(statusName(await command(s, { leaseId: "L1", seq: 2, axes: [{ name: "bucket", value: 0.5 }] }))).toBe("ESTOPPED");
    await lease(s, "L2");
    expect(statusName(await command(s, { leaseId: "L2", seq: 1, axes: [{ name: "bucket", value: 0.5 }] }))).toBe("ESTOPPED");

    since = s.gateway.mark();
    s.gateway.send({ correlationId: 0, reset: { deviceId: DEVICE, by: "sup-1", reason: "area clear" } });
    await telemetry(s, (t) => !t.estopped, since);
    expect(s.runtime.safety).toMatchObject({ estopped: false, lease: undefined, lastApplied: undefined });
    expect(statusName(await command(s, { leaseId: "L2", seq: 2, axes: [{ name: "bucket", value: 0.5 }] }))).toBe("NO_LEASE");
    await lease(s, "L3");
    expect(statusName(await command(s, { leaseId: "L3", seq: 1, axes: [{ name: "bucket", value: 0.5 }] }))).toBe("APPLIED");
    expect(s.runtime.counters.estops).toBe(1);
  });

  it("latches when the room reports an e-stop the adapter missed, and re-announces its latch after a reconnect", { timeout: 15_000 }, async () => {
    const s = await setup();
    await online(s);
    s.gateway.send({ correlationId: 0, leaseState: { deviceId: DEVICE, leaseId: "", estopped: true } });
    await waitUntil(() => s.runtime.safety.estopped, "the latch");
    const since = s.gateway.mark();
    const back = nextEvent(s.runtime, "online");
    s.gateway.dropConnection();
    await back;
    const estop = await s.gateway.waitFor((e) => e.body === "estop", since);
    expect(estop.estop).toMatchObject({ deviceId: DEVICE, raisedBy: `device:${DEVICE}` });
  });

  it("raiseEStop() stops the device and tells the gateway", { timeout: 15_000 }, async () => {
    const s = await setup();
    await online(s);
    await lease(s, "L1");
    expect(statusName(await command(s, { leaseId: "L1", seq: 1, axes: [{ name: "left-track", value: 1 }] }))).toBe("APPLIED");
    const since = s.gateway.mark();
    s.runtime.raiseEStop("physical button");
    const estop = await s.gateway.waitFor((e) => e.body === "estop", since);
    expect(estop.estop).toMatchObject({ deviceId: DEVICE, reason: "physical button", raisedBy: `device:${DEVICE}` });
    expect((s.driver as SimExcavator).track("left").effectiveVelocity).toBe(0);
    expect(statusName(await command(s, { leaseId: "L1", seq: 2 }))).toBe("ESTOPPED");
  });

  it("the machine's own stop button latches an e-stop the gateway hears of; a supervisor's reset is refused ESTOP_LOCAL until released and reset at the machine", { timeout: 15_000 }, async () => {
    const excavator = new SimExcavator({ watchdogMs: WATCHDOG_MS, latencyBudgetMs: 10_000 });
    const s = await setup({ driver: excavator });
    await online(s);
    let since = s.gateway.mark();
    excavator.stopButton.press();
    const raised = await s.gateway.waitFor((e) => e.body === "estop", since);
    expect(raised.estop).toMatchObject({ deviceId: DEVICE, raisedBy: `device:${DEVICE}` });
    expect(s.runtime.status().safety).toMatchObject({ estopped: true, estopOrigin: "local" });

    since = s.gateway.mark();
    s.gateway.send({ correlationId: 0, reset: { deviceId: DEVICE, by: "sam (sup-1)", reason: "area clear" } });
    const refusal = await s.gateway.waitFor((e) => e.body === "error", since);
    expect(refusal.error!.code).toBe(tsunagi.v1.ErrorCode.ESTOP_LOCAL);
    await s.gateway.waitFor((e) => e.body === "estop", since); // the room latches again
    expect(s.runtime.localReset()).toMatchObject({ released: false }); // still pressed

    excavator.stopButton.release();
    expect(s.runtime.localReset()).toMatchObject({ released: true });
    s.gateway.send({ correlationId: 0, reset: { deviceId: DEVICE, by: "sam (sup-1)", reason: "area clear" } });
    await waitUntil(() => !s.runtime.safety.estopped, "the supervisor's reset");
    expect(s.runtime.counters.resetsRefused).toBe(1);
  });
});

describe("disconnects", () => {
  it("zeroes motion when the socket closes and kills the lease that was current", { timeout: 15_000 }, async () => {
    const s = await setup();
    await online(s);
    await lease(s, "L1");
    expect(statusName(await command(s, { leaseId: "L1", seq: 1, axes: [{ name: "boom", value: 0.3 }, { name: "right-track", value: 0.5 }] }))).toBe("APPLIED");
    run(s.driver, 100);
    expect(joint(s.driver, "boom").velocity).toBeCloseTo(0.3, 6);

    const offline = nextEvent(s.runtime, "offline");
    s.gateway.dropConnection();
    await offline;
    run(s.driver, 10);
    expect(joint(s.driver, "boom").velocity).toBe(0);
    expect((s.driver as SimExcavator).track("right").effectiveVelocity).toBe(0);
    // the status tells the true cause: the link, not the watchdog
    expect(s.runtime.status().safety).toMatchObject({ lease: undefined, watchdogTripped: false, stopLatch: "connection closed" });
    expect(s.runtime.status().counters).toMatchObject({ watchdogTrips: 0, linkLossStops: 1 });

    // back online (same gateway): the old lease stays dead, and telemetry shows the latch
    const since = s.gateway.mark();
    await nextEvent(s.runtime, "online");
    await telemetry(s, (t) => t.watchdogTripped, since);
    expect(statusName(await command(s, { leaseId: "L1", seq: 2, axes: [{ name: "boom", value: 0.3 }] }))).toBe("NO_LEASE");
    expect(s.runtime.counters.reconnects).toBe(1);
  });

});

describe("drones", () => {
  it("flies a drone through actions; a dropped connection engages its failsafe, and only a fresh lease gives the operator the link back", { timeout: 15_000 }, async () => {
    const drone = new SimDrone({ watchdogMs: WATCHDOG_MS, latencyBudgetMs: 10_000 });
    const s = await setup({ driver: drone });
    await online(s);
    const profile = (await s.gateway.waitFor((e) => e.body === "deviceProfile")).deviceProfile!;
    expect(profile.deviceClass).toBe(tsunagi.v1.DeviceClass.DEVICE_CLASS_DRONE);
    expect(profile.actions!.map((a) => a.name)).toEqual(["arm", "takeoff", "hold", "land", "disarm"]);
    expect(profile.actions![1]).toMatchObject({ hasValue: true, unit: "m", min: 1 });
    await lease(s, "L1");
    expect(drone.telemetry().linkUp).toBe(true);
    expect(statusName(await action(s, { leaseId: "L1", action: "takeoff", value: 3 }))).toBe("STATUS_UNSPECIFIED"); // not armed yet: the drone says no
    expect(statusName(await action(s, { leaseId: "L1", action: "arm" }))).toBe("APPLIED");
    expect(statusName(await action(s, { leaseId: "L1", action: "takeoff", value: 500 }))).toBe("OUT_OF_BOUNDS");
    expect(statusName(await action(s, { leaseId: "L1", action: "barrel-roll" }))).toBe("OUT_OF_BOUNDS");
    expect(statusName(await action(s, { leaseId: "L0", action: "land" }))).toBe("NO_LEASE");
    expect(statusName(await action(s, { leaseId: "L1", action: "land", deadlineMs: 0 }))).toBe("EXPIRED");
    expect(statusName(await action(s, { leaseId: "L1", action: "takeoff", value: 3 }))).toBe("APPLIED");
    while (drone.flightState !== "flying") drone.step(10);
    expect(statusName(await command(s, { leaseId: "L1", seq: 1, axes: [{ name: "vx", value: 2 }] }))).toBe("APPLIED");
    expect(drone.telemetry().setpoint.vx).toBe(2);

    const offline = nextEvent(s.runtime, "offline");
    s.gateway.dropConnection();
    await offline;
    expect(drone.flightState).toBe("failsafe");
    expect(drone.telemetry().setpoint).toEqual({ vx: 0, vy: 0, vz: 0, yawRate: 0 });
    await nextEvent(s.runtime, "online");
    // Back online is not someone driving: the failsafe holds until a lease is announced...
    expect(drone.telemetry().linkUp).toBe(false);
    await lease(s, "L2");
    expect(drone.telemetry().linkUp).toBe(true);
    // ...and even then setpoints count only after a fresh manoeuvre.
    expect(statusName(await command(s, { leaseId: "L2", seq: 1, axes: [{ name: "vx", value: 1 }] }))).toBe("STATUS_UNSPECIFIED");
    expect(statusName(await action(s, { leaseId: "L2", action: "hold" }))).toBe("APPLIED");
    expect(drone.flightState).toBe("flying");
    expect(statusName(await command(s, { leaseId: "L2", seq: 2, axes: [{ name: "vx", value: 1 }] }))).toBe("APPLIED");
  });

  it("an e-stop lands a flying drone, and a lease that ends engages its failsafe", { timeout: 15_000 }, async () => {
    const drone = new SimDrone({ watchdogMs: WATCHDOG_MS, latencyBudgetMs: 10_000 });
    const s = await setup({ driver: drone });
    await online(s);
    await lease(s, "L1");
    await action(s, { leaseId: "L1", action: "arm" });
    await action(s, { leaseId: "L1", action: "takeoff", value: 3 });
    while (drone.flightState !== "flying") drone.step(10);
    await lease(s, ""); // the operator let go (or was demoted, or dropped)
    expect(drone.flightState).toBe("failsafe");
    await lease(s, "L2");
    await action(s, { leaseId: "L2", action: "hold" });
    expect(drone.flightState).toBe("flying");

    s.gateway.send({ correlationId: 0, estop: { deviceId: DEVICE, reason: "test" } });
    await waitUntil(() => s.runtime.safety.estopped, "the e-stop latched");
    expect(drone.flightState).toBe("landing");
    expect(statusName(await action(s, { leaseId: "L2", action: "hold" }))).toBe("ESTOPPED");
    for (let i = 0; i < 2000 && (drone.flightState as string) !== "disarmed"; i++) drone.step(10);
    expect(drone.flightState).toBe("disarmed");
  });
});
