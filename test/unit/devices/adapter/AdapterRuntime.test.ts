/**
 * AdapterRuntime against a scripted gateway (ws WebSocketServer + node:http on loopback,
 * ephemeral ports): the signed-challenge and token handshakes, the profile and clock
 * sync after the welcome, commands moving the simulated excavator, every refusal, the
 * watchdog and e-stop latches, disconnects zeroing motion, reconnects flushing the
 * telemetry buffered meanwhile, region choice, and resilience to garbage.
 *
 * The simulated devices are stepped by hand (their real-time loops are not started), so
 * motion is deterministic. The watchdog is driven through the runtime's injected
 * monotonic clock: tests jump it forward instead of waiting, so no assertion depends on
 * how fast this machine is.
 */
import { afterEach, describe, it, expect } from "vitest";
import { pino } from "pino";
import { AdapterRuntime, backoffDelayMs, type AdapterEvents, type AdapterRuntimeOptions } from "../../../../devices/adapter/AdapterRuntime.ts";
import { SimDrone, SimExcavator, type Driver } from "../../../../devices/drivers/index.ts";
import { ErrorCode, tsunagi } from "../../../../proto/index.ts";
import { proveChallenge } from "../../../../proto/deviceAuth.ts";
import { ScriptedGateway, type ScriptedGatewayOptions } from "../../../fixtures/fakes/ScriptedGateway.ts";

const { Status } = tsunagi.v1.CommandAck;
const DEVICE = "ex-1";
const SECRET = "a1".repeat(32);
const WATCHDOG_MS = 2000;

/** What each test started, stopped in afterEach whatever happened. */
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

/**
 * The adapter's clock, moved only by the test: the watchdog trips when the test jumps
 * past its window, never because real time passed (a slow machine cannot decide a test).
 */
function jumpableClock() {
  let t = performance.now();
  return { now: () => t, jump: (ms: number) => { t += ms; } };
}

interface Setup {
  gateway: ScriptedGateway;
  runtime: AdapterRuntime;
  driver: Driver;
  clock: ReturnType<typeof jumpableClock>;
}

async function setup(options: { driver?: Driver; runtime?: Partial<AdapterRuntimeOptions>; gateway?: Partial<ScriptedGatewayOptions> } = {}): Promise<Setup> {
  const gateway = await ScriptedGateway.start({ deviceId: DEVICE, secret: SECRET, token: "device-token", ...options.gateway });
  cleanups.push(() => gateway.close());
  const driver = options.driver ?? new SimExcavator({ watchdogMs: WATCHDOG_MS, latencyBudgetMs: 10_000 });
  driver.init();
  const clock = jumpableClock();
  const runtime = new AdapterRuntime({
    deviceId: DEVICE,
    driver,
    credential: { secret: SECRET },
    nodes: [gateway.httpUrl],
    adapterVersion: "1.2.3",
    backoff: { initialMs: 20, maxMs: 100 },
    clockSyncIntervalMs: 60_000,
    logger: pino({ level: "silent" }),
    now: clock.now,
    ...options.runtime,
  });
  cleanups.push(() => runtime.stop());
  return { gateway, runtime, driver, clock };
}

/** The next `event` from the runtime (or the current state, for "online" when already there). */
function nextEvent<K extends keyof AdapterEvents>(runtime: AdapterRuntime, event: K, timeoutMs = 5000): Promise<AdapterEvents[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { off(); reject(new Error(`no "${event}" event within ${timeoutMs} ms (state ${runtime.state})`)); }, timeoutMs);
    const off = runtime.on(event, (payload) => { clearTimeout(timer); off(); resolve(payload); });
  });
}

async function waitUntil(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function online(s: Setup): Promise<void> {
  const event = nextEvent(s.runtime, "online");
  s.runtime.start();
  await event;
}

let nextCorrelation = 1000;

/**
 * Sends a ControlCommand (issued now on the adapter's server clock, deadline 5 s on)
 * and resolves with the ack that echoes its correlation id.
 */
async function command(s: Setup, fields: Partial<tsunagi.v1.IControlCommand>): Promise<tsunagi.v1.CommandAck> {
  const correlationId = nextCorrelation++;
  const now = s.runtime.clock.serverNow();
  const since = s.gateway.mark();
  s.gateway.send({ correlationId, controlCommand: { deviceId: DEVICE, issuedAtMs: now, deadlineMs: now + 5000, ...fields } });
  const reply = await s.gateway.waitFor((e) => e.body === "commandAck" && Number(e.correlationId) === correlationId, since);
  return reply.commandAck as tsunagi.v1.CommandAck;
}

/** Sends a DeviceAction (issued now, deadline 5 s on) and resolves with its ActionResult. */
async function action(s: Setup, fields: Partial<tsunagi.v1.IDeviceAction>): Promise<tsunagi.v1.ActionResult> {
  const correlationId = nextCorrelation++;
  const now = s.runtime.clock.serverNow();
  const since = s.gateway.mark();
  s.gateway.send({ correlationId, deviceAction: { deviceId: DEVICE, issuedAtMs: now, deadlineMs: now + 5000, ...fields } });
  const reply = await s.gateway.waitFor((e) => e.body === "actionResult" && Number(e.correlationId) === correlationId, since);
  return reply.actionResult as tsunagi.v1.ActionResult;
}

const statusName = (ack: { status: tsunagi.v1.CommandAck.Status }) => Status[ack.status];

/** Announces a lease and waits until the adapter has taken it. */
async function lease(s: Setup, leaseId: string): Promise<void> {
  s.gateway.send({ correlationId: 0, leaseState: { deviceId: DEVICE, leaseId, holderSessionId: "op-1", holderRole: "operator" } });
  await waitUntil(() => (leaseId === "" ? s.runtime.safety.lease === undefined : s.runtime.safety.lease === leaseId) || s.runtime.safety.estopped, `lease ${leaseId}`);
}

function run(driver: Driver, ms: number): void {
  for (let t = 0; t < ms; t += 10) driver.step(10);
}

const joint = (driver: Driver, name: string) => (driver as SimExcavator).joints().find((j) => j.name === name)!;

/** The next Telemetry from the adapter at or after `since` that matches. */
async function telemetry(s: Setup, match: (t: tsunagi.v1.Telemetry) => boolean, since = 0): Promise<tsunagi.v1.Telemetry> {
  const envelope = await s.gateway.waitFor((e) => e.body === "telemetry" && match(e.telemetry as tsunagi.v1.Telemetry), since);
  return envelope.telemetry as tsunagi.v1.Telemetry;
}

describe("handshake", () => {
  it("answers the challenge with a signed hello, then sends the profile, five clock pings and telemetry", { timeout: 15_000 }, async () => {
    const s = await setup();
    const states: string[] = [];
    s.runtime.on("state", (state) => states.push(state));
    const onlineEvent = nextEvent(s.runtime, "online");
    s.runtime.start();
    expect(await onlineEvent).toEqual({ node: s.gateway.httpUrl, url: s.gateway.wsUrl, regionId: "jp-test", nodeId: "node-a" });
    expect(s.runtime.state).toBe("online");
    expect(states).toEqual(["probing", "connecting", "authenticating", "online"]);
    expect(s.runtime.connection).toMatchObject({ regionId: "jp-test", nodeId: "node-a" });

    const hello = s.gateway.received[0].envelope;
    expect(hello.body).toBe("deviceHello");
    expect(Number(hello.correlationId)).toBeGreaterThan(0);
    expect(hello.deviceHello).toMatchObject({ deviceId: DEVICE, adapterVersion: "1.2.3", driver: "sim-excavator", credential: "signedChallenge" });
    const [challenge] = s.gateway.challenges;
    expect(hello.deviceHello!.signedChallenge).toMatchObject({ nonce: challenge.nonce, signature: proveChallenge(SECRET, DEVICE, challenge) });

    await s.gateway.waitFor((e) => e.body === "telemetry");
    // profile first, then the five pings, then telemetry (the samples buffered while connecting)
    const frames = s.gateway.received.map((f) => f.envelope);
    expect(frames.slice(1, 7).map((e) => e.body)).toEqual(["deviceProfile", "clockSyncPing", "clockSyncPing", "clockSyncPing", "clockSyncPing", "clockSyncPing"]);
    const pingIds = frames.slice(2, 7).map((e) => Number(e.correlationId));
    expect(new Set(pingIds).size).toBe(5);
    expect(pingIds.every((id) => id > 0)).toBe(true);
    await waitUntil(() => s.runtime.clock.sampleCount >= 6, "the pongs"); // the challenge's coarse sample + 5
    expect(Number.isFinite(s.runtime.clock.uncertaintyMs)).toBe(true);
    expect(Math.abs(s.runtime.clock.serverNow() - Date.now())).toBeLessThan(1000); // same machine: the estimate lands near the wall clock
  });

  it("publishes the driver's profile, mapped to the contract", { timeout: 15_000 }, async () => {
    const s = await setup();
    await online(s);
    const envelope = await s.gateway.waitFor((e) => e.body === "deviceProfile");
    const profile = envelope.deviceProfile as tsunagi.v1.DeviceProfile;
    expect(profile).toMatchObject({
      deviceId: DEVICE, deviceClass: tsunagi.v1.DeviceClass.DEVICE_CLASS_EXCAVATOR, driver: "sim-excavator", vendor: "Tsunagi", model: "sim-excavator",
      watchdogWindowMs: WATCHDOG_MS, latencyBudgetMs: 10_000, telemetryRateHz: 20, controlRateHz: 100,
    });
    expect(profile.parameters).toEqual({ trackGaugeM: 2.4 });
    expect(profile.axes.map((a) => a.name)).toEqual(["swing", "boom", "arm", "bucket", "left-track", "right-track"]);
    const boom = profile.axes[1];
    expect(boom).toMatchObject({ mode: tsunagi.v1.AxisMode.AXIS_MODE_VELOCITY, unit: "rad", rateUnit: "rad/s", maxRate: 0.4, min: -0.6, max: 1.0 });
    // an unbounded axis carries no min/max at all (proto3 optional), not 0
    const swing = tsunagi.v1.AxisProfile.toObject(profile.axes[0] as tsunagi.v1.AxisProfile);
    expect(swing).not.toHaveProperty("min");
    expect(swing).not.toHaveProperty("max");
  });

  it("speaks token mode when given a token", { timeout: 15_000 }, async () => {
    const s = await setup({ runtime: { credential: { token: "device-token" } } });
    await online(s);
    const hello = s.gateway.received[0].envelope.deviceHello!;
    expect(hello.credential).toBe("token");
    expect(hello.token).toBe("device-token");
  });

  it("logs a refusal, keeps it as lastError and retries with backoff until the credentials are fixed", { timeout: 15_000 }, async () => {
    const s = await setup();
    s.gateway.secret = "b2".repeat(32); // the device was re-enrolled: our secret is stale
    const errors: string[] = [];
    s.runtime.on("error", (error) => errors.push(error.codeName));
    s.runtime.start();
    await waitUntil(() => s.gateway.connections >= 3, "three attempts");
    expect(s.runtime.state).not.toBe("online");
    expect(s.runtime.lastError).toMatchObject({ code: ErrorCode.AUTH_FAILED, codeName: "AUTH_FAILED", phase: "handshake", message: "bad proof" });
    expect(errors).toContain("AUTH_FAILED");
    expect(s.runtime.counters.connectAttempts).toBeGreaterThanOrEqual(3);

    s.gateway.refuseWith = { code: ErrorCode.FORBIDDEN, message: "device revoked" };
    await waitUntil(() => s.runtime.lastError?.codeName === "FORBIDDEN", "the FORBIDDEN refusal");

    const onlineEvent = nextEvent(s.runtime, "online");
    s.gateway.refuseWith = undefined;
    s.gateway.secret = SECRET; // fixed on the server side
    await onlineEvent;
    expect(s.runtime.counters.reconnects).toBe(0); // the first welcome is not a reconnect
  });
});

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
    expect(s.runtime.safety).toMatchObject({ lease: undefined, watchdogTripped: true });

    // back online (same gateway): the old lease stays dead, and telemetry shows the latch
    const since = s.gateway.mark();
    await nextEvent(s.runtime, "online");
    await telemetry(s, (t) => t.watchdogTripped, since);
    expect(statusName(await command(s, { leaseId: "L1", seq: 2, axes: [{ name: "boom", value: 0.3 }] }))).toBe("NO_LEASE");
    expect(s.runtime.counters.reconnects).toBe(1);
  });

  it("reconnects after the node restarts, flushing the telemetry buffered meanwhile, oldest first", { timeout: 20_000 }, async () => {
    const s = await setup({ runtime: { telemetryHz: 50 } });
    await online(s);
    await s.gateway.waitFor((e) => e.body === "telemetry");

    const offline = nextEvent(s.runtime, "offline");
    await s.gateway.stopWs();
    await offline;
    expect(s.runtime.state).toBe("backoff");
    await waitUntil(() => s.runtime.bufferedTelemetry >= 12, "a dozen buffered samples");
    const restartedAt = Date.now();
    const connectionsBefore = s.gateway.connections;

    const back = nextEvent(s.runtime, "online", 10_000);
    await s.gateway.startWs();
    await back;
    expect(s.runtime.counters.reconnects).toBe(1);
    await waitUntil(() => s.runtime.bufferedTelemetry <= 1, "the buffer to drain");
    // a live sample on the new connection: everything buffered arrived before it
    await s.gateway.waitFor((e, frame) => frame.connection > connectionsBefore && e.body === "telemetry" && Number(e.telemetry!.sampledAtMs) > restartedAt);

    const second = s.gateway.received.filter((f) => f.connection > connectionsBefore).map((f) => f.envelope);
    expect(second.slice(0, 7).map((e) => e.body)).toEqual(["deviceHello", "deviceProfile", "clockSyncPing", "clockSyncPing", "clockSyncPing", "clockSyncPing", "clockSyncPing"]);
    const samples = second.filter((e) => e.body === "telemetry").map((e) => Number(e.telemetry!.sampledAtMs));
    const buffered = samples.filter((at) => at < restartedAt);
    expect(buffered.length).toBeGreaterThanOrEqual(10);
    // oldest first, and all buffered samples before the live ones
    expect([...samples].sort((a, b) => a - b)).toEqual(samples);
    expect(s.runtime.counters.telemetryDropped).toBe(0);
  });

  it("cuts a link that answers no clock ping for three rounds (silent, never closed), stopping, and reconnects", { timeout: 15_000 }, async () => {
    const s = await setup({ runtime: { clockSyncIntervalMs: 100 } });
    await online(s);
    const offline = nextEvent(s.runtime, "offline");
    s.gateway.answerClockPings = false;
    await offline;
    expect(s.runtime.state).not.toBe("online");
    s.gateway.answerClockPings = true;
    await nextEvent(s.runtime, "online", 8000);
    expect(s.gateway.connections).toBe(2);
  });

  it("drops the oldest telemetry beyond the buffer size", { timeout: 15_000 }, async () => {
    const s = await setup({ runtime: { telemetryHz: 100, telemetryBufferSize: 5 } });
    await online(s);
    await s.gateway.stopWs();
    await waitUntil(() => s.runtime.counters.telemetryDropped >= 5, "dropped samples");
    expect(s.runtime.bufferedTelemetry).toBe(5);
  });

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

describe("regions", () => {
  it("picks the node with the lowest /ping round trip", { timeout: 15_000 }, async () => {
    const far = await ScriptedGateway.start({ deviceId: DEVICE, secret: SECRET, nodeId: "far", pingDelayMs: 150 });
    cleanups.push(() => far.close());
    const s = await setup({ gateway: { nodeId: "near" } });
    const runtime = new AdapterRuntime({
      deviceId: DEVICE, driver: s.driver, credential: { secret: SECRET }, nodes: [far.httpUrl, s.gateway.httpUrl], adapterVersion: "1.2.3",
    });
    cleanups.push(() => runtime.stop());
    const onlineEvent = nextEvent(runtime, "online");
    runtime.start();
    expect((await onlineEvent).nodeId).toBe("near");
    expect(far.connections).toBe(0);
  });

  it("falls back to the next node when the nearest cannot name a gateway (draining)", { timeout: 15_000 }, async () => {
    const other = await ScriptedGateway.start({ deviceId: DEVICE, secret: SECRET, nodeId: "other", pingDelayMs: 50 });
    cleanups.push(() => other.close());
    const s = await setup();
    s.gateway.gatewayStatus = 503;
    const runtime = new AdapterRuntime({
      deviceId: DEVICE, driver: s.driver, credential: { secret: SECRET }, nodes: [s.gateway.httpUrl, other.httpUrl], adapterVersion: "1.2.3",
    });
    cleanups.push(() => runtime.stop());
    const onlineEvent = nextEvent(runtime, "online");
    runtime.start();
    expect((await onlineEvent).nodeId).toBe("other");
  });

  it("follows a GatewayRedirect at once, stopping first: no backoff (a minute here) before it", { timeout: 15_000 }, async () => {
    const roomNode = await ScriptedGateway.start({ deviceId: DEVICE, secret: SECRET, nodeId: "room-node" });
    cleanups.push(() => roomNode.close());
    const s = await setup({ gateway: { nodeId: "near" }, runtime: { backoff: { initialMs: 60_000, maxMs: 60_000 } } });
    await online(s);
    await lease(s, "lease-r");
    expect((await command(s, { leaseId: "lease-r", seq: 1, axes: [{ name: "swing", value: 0.4 }] })).status).toBe(Status.APPLIED);

    const movedOnline = nextEvent(s.runtime, "online");
    const offline = nextEvent(s.runtime, "offline");
    s.gateway.send({ correlationId: 0, gatewayRedirect: { url: roomNode.wsUrl, regionId: "test", nodeId: "room-node", reason: "room site-1 on node room-node owns this device" } });
    s.gateway.dropConnection();
    await offline;
    expect(joint(s.driver, "swing").velocity).toBe(0);
    expect(s.runtime.safety.lease).toBeUndefined();
    // Within nextEvent's 5 s: a backoff would have been a minute.
    expect((await movedOnline).nodeId).toBe("room-node");
    expect(s.runtime.counters.redirects).toBe(1);
  });

  it("after a redirect, goes back to that gateway first when the link there drops", { timeout: 15_000 }, async () => {
    const roomNode = await ScriptedGateway.start({ deviceId: DEVICE, secret: SECRET, nodeId: "room-node" });
    cleanups.push(() => roomNode.close());
    const s = await setup({ gateway: { nodeId: "near" } });
    await online(s);
    const moved = nextEvent(s.runtime, "online");
    s.gateway.send({ correlationId: 0, gatewayRedirect: { url: roomNode.wsUrl, regionId: "test", nodeId: "room-node" } });
    s.gateway.dropConnection();
    expect((await moved).nodeId).toBe("room-node");

    const again = nextEvent(s.runtime, "online", 8000);
    roomNode.dropConnection();
    expect((await again).nodeId).toBe("room-node");
    expect(roomNode.connections).toBe(2);
    expect(s.gateway.connections).toBe(1);
  });

  it("ignores a redirect to anything but ws:// or wss://, and probes again when the named gateway does not take it", { timeout: 15_000 }, async () => {
    const s = await setup({ gateway: { nodeId: "near" } });
    await online(s);
    s.gateway.send({ correlationId: 0, gatewayRedirect: { url: "http://127.0.0.1:9/device", nodeId: "elsewhere" } });
    await waitUntil(() => s.runtime.counters.unexpected === 1, "the refused redirect counted");
    expect(s.runtime.state).toBe("online");
    expect(s.runtime.counters.redirects).toBe(0);

    s.gateway.send({ correlationId: 0, gatewayRedirect: { url: "ws://127.0.0.1:9/device", nodeId: "gone" } });
    s.gateway.dropConnection();
    await waitUntil(() => s.runtime.lastError?.message.includes("127.0.0.1:9") === true, "the failed connection to the named gateway");
    const back = await nextEvent(s.runtime, "online", 8000);
    expect(back.nodeId).toBe("near");
  });

  it("reports REGION_UNAVAILABLE while no node answers, and keeps trying", { timeout: 15_000 }, async () => {
    const s = await setup({ runtime: { nodes: ["http://127.0.0.1:9"], httpTimeoutMs: 500 } });
    s.runtime.start();
    await waitUntil(() => s.runtime.counters.connectAttempts >= 2, "two attempts");
    expect(s.runtime.lastError).toMatchObject({ code: ErrorCode.REGION_UNAVAILABLE, phase: "probe" });
  });
});

describe("robustness", () => {
  it("logs and counts malformed and unexpected frames, and carries on", { timeout: 15_000 }, async () => {
    const s = await setup();
    await online(s);
    await lease(s, "L1");
    s.gateway.sendRaw(new Uint8Array([0xff, 0xff, 0xff, 0xff])); // not protobuf
    s.gateway.sendRaw("hello"); // a text frame
    s.gateway.sendRaw(new Uint8Array([0xa2, 0x01, 0x00])); // field 20: a body from a newer contract
    s.gateway.send({ correlationId: 424242, clockSyncPong: { t0Ms: 1, t1Ms: 2, t2Ms: 3 } }); // unsolicited
    s.gateway.send({ correlationId: 0, deviceChallenge: { nonce: "00", serverTimeMs: 1 } }); // wrong phase
    s.gateway.send({ correlationId: 0, error: { code: ErrorCode.RATE_LIMITED, message: "slow down" } });
    expect(statusName(await command(s, { leaseId: "L1", seq: 1, axes: [{ name: "boom", value: 0.1 }] }))).toBe("APPLIED");
    expect(s.runtime.counters).toMatchObject({ malformed: 3, unexpected: 2, errorsReceived: 1, errors: { RATE_LIMITED: 1 } });
    expect(s.runtime.lastError).toMatchObject({ codeName: "RATE_LIMITED", phase: "online" });
    expect(s.runtime.state).toBe("online");
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

  it("stop() closes the connection, zeroes motion and is idempotent", { timeout: 15_000 }, async () => {
    const s = await setup();
    await online(s);
    await lease(s, "L1");
    expect(statusName(await command(s, { leaseId: "L1", seq: 1, axes: [{ name: "boom", value: 0.3 }] }))).toBe("APPLIED");
    const first = s.runtime.stop();
    expect(s.runtime.stop()).toBe(first);
    await first;
    expect(s.runtime.state).toBe("stopped");
    run(s.driver, 10);
    expect(joint(s.driver, "boom").velocity).toBe(0);
    await waitUntil(() => s.gateway.socket === undefined, "the gateway to see the close");
    expect(() => s.runtime.start()).toThrow(/already called/);
  });

  it("stops cleanly while backing off", { timeout: 15_000 }, async () => {
    const s = await setup({ runtime: { nodes: ["http://127.0.0.1:9"], backoff: { initialMs: 60_000, maxMs: 60_000 }, random: () => 0.99 } });
    s.runtime.start();
    await waitUntil(() => s.runtime.state === "backoff", "backoff");
    await s.runtime.stop();
    expect(s.runtime.state).toBe("stopped");
  });

  it("stop() does not wait out a probe of a node that never answers", { timeout: 10_000 }, async () => {
    const silent = await ScriptedGateway.start({ deviceId: DEVICE, secret: SECRET, pingDelayMs: 600_000 });
    cleanups.push(() => silent.close());
    const s = await setup({ runtime: { nodes: [silent.httpUrl], httpTimeoutMs: 60_000 } });
    s.runtime.start();
    await waitUntil(() => s.runtime.state === "probing", "probing");
    await s.runtime.stop();
    expect(s.runtime.state).toBe("stopped");
  });

  it("rejects bad options with a message naming the option", () => {
    const driver = new SimExcavator();
    const base = { deviceId: DEVICE, driver, credential: { secret: SECRET }, nodes: ["http://127.0.0.1:1"], adapterVersion: "1.0.0" };
    expect(() => new AdapterRuntime({ ...base, deviceId: "bad id" })).toThrow(/deviceId/);
    expect(() => new AdapterRuntime({ ...base, credential: { secret: "abc" } })).toThrow(/64 hex/);
    expect(() => new AdapterRuntime({ ...base, credential: { token: "" } })).toThrow(/token/);
    expect(() => new AdapterRuntime({ ...base, nodes: [] })).toThrow(/at least one node/);
    expect(() => new AdapterRuntime({ ...base, nodes: ["ws://x:1"] })).toThrow(/http/);
    expect(() => new AdapterRuntime({ ...base, nodes: ["http://a:1", "http://a:1/"] })).toThrow(/given twice/);
    expect(() => new AdapterRuntime({ ...base, adapterVersion: "dev" })).toThrow(/semver/);
    expect(() => new AdapterRuntime({ ...base, telemetryHz: 0 })).toThrow(/telemetryHz/);
    expect(() => new AdapterRuntime({ ...base, telemetryBufferSize: 0 })).toThrow(/telemetryBufferSize/);
    expect(() => new AdapterRuntime({ ...base, backoff: { initialMs: 100, maxMs: 50 } })).toThrow(/backoff/);
  });
});

describe("backoffDelayMs", () => {
  it("draws uniformly below a cap that doubles from initialMs up to maxMs", () => {
    const top = () => 0.999999;
    expect(backoffDelayMs(0, 100, 5000, top)).toBe(99);
    expect(backoffDelayMs(1, 100, 5000, top)).toBe(199);
    expect(backoffDelayMs(5, 100, 5000, top)).toBe(3199);
    expect(backoffDelayMs(6, 100, 5000, top)).toBe(4999);
    expect(backoffDelayMs(1000, 100, 5000, top)).toBe(4999);
    expect(backoffDelayMs(3, 100, 5000, () => 0)).toBe(0);
    expect(backoffDelayMs(0, 100, 5000, () => 0.5)).toBe(50);
  });
});
