/**
 * OperatorControls against a real Colyseus server hosting a scripted TeleopRoom
 * (test/fixtures/fakes/ScriptedTeleopRoom.ts): the SDK's real sockets, envelopes and timers, the room's
 * side of the operator channel scripted. Every wait is bounded; nothing asserts speed.
 */
import "../../../client-sdk/node.ts";
import { describe, it, expect, beforeAll, afterAll, afterEach, vi } from "vitest";
import { TsunagiClient } from "../../../client-sdk/TsunagiClient.ts";
import type { RoomSession } from "../../../client-sdk/RoomSession.ts";
import { clampAxisValue, axisBounds } from "../../../proto/deviceProfile.ts";
import { OperatorControls, type DemotedEvent, type OperatorControlsOptions } from "../../../client-sdk/OperatorControls.ts";
import { gamepadToAxes } from "../../../client-sdk/gamepad.ts";
import { TsunagiError } from "../../../client-sdk/errors.ts";
import { ErrorCode, tsunagi } from "../../../proto/index.ts";
import { ScriptedTeleopRoom, startScriptedServer, type ScriptedRoomOptions } from "../../fixtures/fakes/ScriptedTeleopRoom.ts";
import { excavatorProfile, droneProfile } from "../../fixtures/fakes/deviceProfiles.ts";

const Status = tsunagi.v1.CommandAck.Status;
const velocity = tsunagi.v1.AxisMode.AXIS_MODE_VELOCITY;
const WAIT = { timeout: 5000, interval: 5 };

let server: Awaited<ReturnType<typeof startScriptedServer>>;
let client: TsunagiClient;
const sessions: RoomSession[] = [];
const controlsMade: OperatorControls[] = [];

beforeAll(async () => {
  server = await startScriptedServer();
  client = new TsunagiClient({ url: server.url });
});
afterAll(async () => {
  await server?.stop();
});
afterEach(async () => {
  for (const controls of controlsMade.splice(0)) controls.dispose();
  await Promise.all(sessions.splice(0).map((session) => session.leave()));
});

/** Creates a scripted room and joins it; returns the session and the room. */
async function openRoom(options: Partial<ScriptedRoomOptions> = {}, role = "operator") {
  const session = await client.create("teleop-script", { profiles: [excavatorProfile("ex-1")], ...options, role });
  sessions.push(session);
  const room = ScriptedTeleopRoom.byId.get(session.roomId)!;
  expect(room).toBeDefined();
  return { session, room };
}

/** Another participant in the same room. */
async function joinAs(roomId: string, role: string) {
  const session = await client.joinById(roomId, { role });
  sessions.push(session);
  return session;
}

/** Controls for a device, once the room's greeting (profile and lease) arrived. */
async function controlsFor(session: RoomSession, options: Partial<OperatorControlsOptions> = {}) {
  const controls = new OperatorControls(session, { deviceId: "ex-1", ...options });
  controlsMade.push(controls);
  await vi.waitFor(() => expect(controls.profile && controls.lease).toBeTruthy(), WAIT);
  return controls;
}

const commandsOf = (room: ScriptedTeleopRoom, sessionId: string) =>
  room.sent("controlCommand", sessionId).map((r) => ({ ...r, command: r.envelope.controlCommand as tsunagi.v1.ControlCommand }));
const heartbeatsOf = (room: ScriptedTeleopRoom, sessionId: string) =>
  room.sent("heartbeat", sessionId).map((r) => ({ ...r, heartbeat: r.envelope.heartbeat as tsunagi.v1.Heartbeat }));
/** Resolves once the room has answered a request: everything sent before has arrived (one ordered socket). */
const barrier = (session: RoomSession) => session.request({ clockSyncPing: { t0Ms: 1 } });
/** A command's axes as { index: value } (an omitted value is 0 on the wire). */
const valuesOf = (command: tsunagi.v1.ControlCommand) =>
  Object.fromEntries(command.axes.map((axis) => [Number(axis.index), axis.value ?? 0]));

describe("OperatorControls: state from the room", () => {
  it("knows the device's profile and lease from the room's greeting, even when created after it", async () => {
    const { session } = await openRoom();
    await vi.waitFor(() => expect(session.deviceSnapshot("ex-1").lease).toBeDefined(), WAIT);
    const controls = new OperatorControls(session, { deviceId: "ex-1" });
    controlsMade.push(controls);
    expect(controls.profile?.axes.map((a) => a.name)).toEqual(["swing", "boom", "arm", "bucket", "left-track", "right-track"]);
    expect(controls.lease).toMatchObject({ deviceId: "ex-1", leaseId: "", ttlMs: 1000 });
    expect(controls.holding).toBe(false);
    expect(controls.axes).toEqual({ swing: 0, boom: 0, arm: 0, bucket: 0, "left-track": 0, "right-track": 0 });
  });

  it("refuses bad options with TypeError", async () => {
    const { session } = await openRoom();
    expect(() => new OperatorControls(session, { deviceId: "no spaces" })).toThrow(TypeError);
    expect(() => new OperatorControls(session, { deviceId: "ex-1", rateHz: 0 })).toThrow(TypeError);
    expect(() => new OperatorControls(session, { deviceId: "ex-1", rateHz: 5000 })).toThrow(TypeError);
  });
});

describe("OperatorControls: setpoint", () => {
  it("clamps values to the profile's bounds and sends them, by index, as a complete setpoint", async () => {
    const { session, room } = await openRoom();
    const controls = await controlsFor(session);
    expect(controls.setAxes({ boom: 3, swing: -5, "left-track": 0.5 })).toEqual({ boom: 0.4, swing: -1, "left-track": 0.5 });
    await controls.acquire();
    controls.start();
    const commands = await vi.waitFor(() => {
      const sent = commandsOf(room, session.sessionId);
      expect(sent.length).toBeGreaterThan(0);
      return sent;
    }, WAIT);
    expect(valuesOf(commands[0].command)).toEqual({ 0: -1, 1: 0.4, 2: 0, 3: 0, 4: 0.5, 5: 0 });
    expect(commands[0].command.axes.map((axis) => (axis as tsunagi.v1.AxisValue).axis)).toEqual(Array(6).fill("index"));
  });

  it("throws TypeError for unknown axes, bad values and extra indexes, and changes nothing", async () => {
    const { session } = await openRoom();
    const controls = await controlsFor(session);
    controls.setAxes({ boom: 0.1 });
    expect(() => controls.setAxes({ boom: 0.2, bogus: 1 })).toThrow(TypeError);
    expect(() => controls.setAxes({ boom: 0.2, bogus: 1 })).toThrow(/no axis "bogus"/);
    expect(() => controls.setAxes({ boom: Number.NaN })).toThrow(TypeError);
    expect(() => controls.setAxes({ boom: "0.2" as unknown as number })).toThrow(TypeError);
    expect(() => controls.setAxesByIndex([0, 0, 0, 0, 0, 0, 0])).toThrow(TypeError);
    expect(controls.axes.boom).toBe(0.1);
    expect(controls.setAxesByIndex([undefined, 9, null, -9])).toEqual({ boom: 0.4, bucket: -1 });
    controls.neutral();
    expect(controls.axes).toEqual({ swing: 0, boom: 0, arm: 0, bucket: 0, "left-track": 0, "right-track": 0 });

    const unknown = new OperatorControls(session, { deviceId: "not-in-room" });
    controlsMade.push(unknown);
    expect(() => unknown.setAxes({ boom: 0.1 })).toThrow(TypeError);
  });

  it("leaves position axes out until set, and clamps them to [min, max]", () => {
    const position = { name: "stick", mode: tsunagi.v1.AxisMode.AXIS_MODE_POSITION, min: -0.5, max: 2 };
    expect(clampAxisValue(position, 3)).toBe(2);
    expect(clampAxisValue(position, -1)).toBe(-0.5);
    expect(clampAxisValue({ name: "t", mode: tsunagi.v1.AxisMode.AXIS_MODE_TORQUE, maxEffort: 50 }, -80)).toBe(-50);
    expect(clampAxisValue({ name: "v", mode: velocity, maxRate: 1 }, -0)).toBe(0);
    expect(() => axisBounds({ name: "x", mode: tsunagi.v1.AxisMode.AXIS_MODE_UNSPECIFIED })).toThrow(TypeError);
    expect(() => axisBounds({ name: "p", mode: tsunagi.v1.AxisMode.AXIS_MODE_POSITION, min: 0 })).toThrow(TypeError);
  });

  it("returns to neutral when the profile's axes change", async () => {
    const { session, room } = await openRoom();
    const controls = await controlsFor(session);
    controls.setAxes({ boom: 0.3 });
    const profiles: string[] = [];
    controls.on("profile", (profile) => profiles.push(profile.driver));
    room.setProfile(excavatorProfile("ex-1", { driver: "same-axes" }));
    await vi.waitFor(() => expect(profiles).toEqual(["same-axes"]), WAIT);
    expect(controls.axes.boom).toBe(0.3);
    const slower = excavatorProfile("ex-1", { driver: "slower" });
    slower.axes![1] = { ...slower.axes![1], maxRate: 0.2 };
    room.setProfile(slower);
    await vi.waitFor(() => expect(profiles).toEqual(["same-axes", "slower"]), WAIT);
    expect(controls.axes.boom).toBe(0);
    expect(controls.setAxes({ boom: 1 })).toEqual({ boom: 0.2 });
  });
});

describe("OperatorControls: the fixed-rate loop", () => {
  it("sends commands with server-clock times, the budget as deadline, and seq from 1", async () => {
    const skew = 60_000;
    const { session, room } = await openRoom({ clockSkewMs: skew });
    const controls = await controlsFor(session, { rateHz: 50 });
    await controls.acquire();
    expect(controls.clock.synced).toBe(true);
    expect(Math.abs(controls.clock.offsetMs - skew)).toBeLessThan(1000);
    controls.setAxes({ swing: 0.2 });
    controls.start();
    const commands = await vi.waitFor(() => {
      const sent = commandsOf(room, session.sessionId);
      expect(sent.length).toBeGreaterThanOrEqual(5);
      return sent;
    }, WAIT);
    commands.forEach(({ command, at }, i) => {
      expect(command.leaseId).toBe(controls.lease!.leaseId);
      expect(Number(command.seq)).toBe(i + 1);
      // on the room's clock (a minute ahead of ours), not on the local one
      expect(Math.abs(command.issuedAtMs - at)).toBeLessThan(1000);
      expect(command.deadlineMs - command.issuedAtMs).toBeCloseTo(50, 6); // profile.latency_budget_ms
    });
    controls.stop();
  });

  it("uses a 100 ms deadline when the profile gives no latency budget", async () => {
    const { session, room } = await openRoom({ profiles: [excavatorProfile("ex-1", { latencyBudgetMs: 0 })] });
    const controls = await controlsFor(session);
    await controls.acquire();
    controls.start();
    const [first] = await vi.waitFor(() => {
      const sent = commandsOf(room, session.sessionId);
      expect(sent.length).toBeGreaterThan(0);
      return sent;
    }, WAIT);
    expect(first.command.deadlineMs - first.command.issuedAtMs).toBeCloseTo(100, 6);
  });

  it("numbers commands per lease: a new lease starts again at 1", async () => {
    const { session, room } = await openRoom();
    const controls = await controlsFor(session, { rateHz: 100 });
    const first = await controls.acquire();
    controls.start();
    await vi.waitFor(() => expect(commandsOf(room, session.sessionId).length).toBeGreaterThanOrEqual(3), WAIT);
    await controls.release();
    expect(controls.holding).toBe(false);
    const second = await controls.acquire();
    expect(second.leaseId).not.toBe(first.leaseId);
    await vi.waitFor(() => expect(commandsOf(room, session.sessionId).filter((c) => c.command.leaseId === second.leaseId).length).toBeGreaterThanOrEqual(3), WAIT);
    for (const leaseId of [first.leaseId, second.leaseId]) {
      const seqs = commandsOf(room, session.sessionId).filter((c) => c.command.leaseId === leaseId).map((c) => Number(c.command.seq));
      expect(seqs.slice(0, 3)).toEqual([1, 2, 3]);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    }
  });

  it("keeps the lease and the watchdog fed with heartbeats while holding but stopped", async () => {
    const skew = 30_000;
    const { session, room } = await openRoom({ clockSkewMs: skew });
    const controls = await controlsFor(session);
    const lease = await controls.acquire();
    const heartbeats = await vi.waitFor(() => {
      const sent = heartbeatsOf(room, session.sessionId);
      expect(sent.length).toBeGreaterThanOrEqual(3);
      return sent;
    }, WAIT);
    expect(heartbeats.map((h) => Number(h.heartbeat.seq)).slice(0, 3)).toEqual([1, 2, 3]);
    for (const { heartbeat, at } of heartbeats) {
      expect(heartbeat).toMatchObject({ deviceId: "ex-1", leaseId: lease.leaseId });
      expect(Math.abs(heartbeat.sentAtMs - at)).toBeLessThan(1000);
    }
    expect(commandsOf(room, session.sessionId)).toEqual([]);
    // released: nothing more goes out
    await controls.release();
    const count = heartbeatsOf(room, session.sessionId).length;
    await new Promise((r) => setTimeout(r, 250));
    await barrier(session);
    expect(heartbeatsOf(room, session.sessionId).length).toBe(count);
  });

  it("stop() sends neutral until the device applies it, then heartbeats", async () => {
    const { session, room } = await openRoom();
    const controls = await controlsFor(session);
    await controls.acquire();
    controls.setAxes({ boom: 0.3 });
    controls.start();
    await vi.waitFor(() => expect(commandsOf(room, session.sessionId).length).toBeGreaterThan(0), WAIT);
    room.acking = false; // the stop command goes unacknowledged at first
    controls.stop();
    expect(controls.axes.boom).toBe(0);
    controls.setAxes({ boom: 0.3 }); // the application moves a stick while stopped: the stop still carries no motion
    const isNeutral = (command: tsunagi.v1.ControlCommand) => Object.values(valuesOf(command)).every((v) => v === 0);
    // repeated at the heartbeat period while unconfirmed
    await vi.waitFor(() => expect(commandsOf(room, session.sessionId).filter((c) => isNeutral(c.command)).length).toBeGreaterThanOrEqual(3), WAIT);
    const commands = commandsOf(room, session.sessionId);
    const firstStop = commands.findIndex((c) => isNeutral(c.command));
    expect(commands.slice(firstStop).every((c) => isNeutral(c.command))).toBe(true);
    expect(commands.slice(0, firstStop).every((c) => valuesOf(c.command)[1] === 0.3)).toBe(true);
    const heartbeatsBefore = heartbeatsOf(room, session.sessionId).length;
    room.acking = true;
    await vi.waitFor(() => expect(heartbeatsOf(room, session.sessionId).length).toBeGreaterThan(heartbeatsBefore), WAIT);
    const commandsNow = commandsOf(room, session.sessionId).length;
    await vi.waitFor(() => expect(heartbeatsOf(room, session.sessionId).length).toBeGreaterThan(heartbeatsBefore + 2), WAIT);
    await barrier(session);
    expect(commandsOf(room, session.sessionId).length).toBe(commandsNow);
  });

  it("reads the input option at every tick; a throwing input sends neutral and reports an error", async () => {
    const { session, room } = await openRoom();
    let input: () => Record<string, number> | undefined = () => ({ boom: 0.2 });
    const controls = await controlsFor(session, { input: () => input() });
    const errors: TsunagiError[] = [];
    controls.on("error", (error) => errors.push(error));
    await controls.acquire();
    controls.start();
    await vi.waitFor(() => expect(commandsOf(room, session.sessionId).at(-1)?.command && valuesOf(commandsOf(room, session.sessionId).at(-1)!.command)[1]).toBe(0.2), WAIT);
    input = () => { throw new Error("pad glitch"); };
    await vi.waitFor(() => expect(errors.length).toBeGreaterThan(0), WAIT);
    await vi.waitFor(() => expect(valuesOf(commandsOf(room, session.sessionId).at(-1)!.command)[1]).toBe(0), WAIT);
    expect(errors[0].message).toMatch(/pad glitch/);
  });
});

describe("OperatorControls: lease requests", () => {
  it("rejects a refused acquire with the room's code", async () => {
    const { session, room } = await openRoom();
    const holder = await controlsFor(session);
    await holder.acquire();
    const other = await controlsFor(await joinAs(session.roomId, "operator"));
    const held = await other.acquire().catch((e) => e);
    expect(held).toBeInstanceOf(TsunagiError);
    expect(held).toMatchObject({ code: ErrorCode.LEASE_HELD, codeName: "LEASE_HELD" });
    expect(other.holding).toBe(false);
    const visitor = await controlsFor(await joinAs(session.roomId, "visitor"));
    await expect(visitor.acquire()).rejects.toMatchObject({ code: ErrorCode.FORBIDDEN });
    await expect(other.release()).rejects.toMatchObject({ code: ErrorCode.LEASE_NOT_HELD });
    await expect(other.preempt()).rejects.toMatchObject({ code: ErrorCode.FORBIDDEN });
    expect(room.lease("ex-1")?.holder).toBe(session.sessionId);
  });

  it("transfers and preempts, and every participant follows the lease", async () => {
    const { session } = await openRoom();
    const a = await controlsFor(session);
    const bSession = await joinAs(session.roomId, "operator");
    const b = await controlsFor(bSession);
    const supervisor = await controlsFor(await joinAs(session.roomId, "supervisor"));
    await a.acquire();
    await vi.waitFor(() => expect(b.lease?.holderSessionId).toBe(session.sessionId), WAIT);
    const causes: string[] = [];
    a.on("lease", (lease) => causes.push(lease.cause));
    await a.transfer(bSession.sessionId);
    await vi.waitFor(() => expect(b.holding).toBe(true), WAIT);
    expect(a.holding).toBe(false);
    await supervisor.preempt();
    expect(supervisor.holding).toBe(true);
    await vi.waitFor(() => expect(b.holding).toBe(false), WAIT);
    await vi.waitFor(() => expect(causes).toEqual(["transferred", "preempted"]), WAIT);
    await expect(a.transfer("")).rejects.toBeInstanceOf(TypeError);
  });

  it("dispose() while holding stops the device and releases the lease", async () => {
    const { session, room } = await openRoom();
    const controls = await controlsFor(session);
    await controls.acquire();
    controls.setAxes({ swing: 0.5 });
    controls.start();
    await vi.waitFor(() => expect(commandsOf(room, session.sessionId).length).toBeGreaterThan(0), WAIT);
    controls.dispose();
    await vi.waitFor(() => expect(room.lease("ex-1")).toBeUndefined(), WAIT);
    const last = commandsOf(room, session.sessionId).at(-1)!.command;
    expect(Object.values(valuesOf(last)).every((v) => v === 0)).toBe(true);
    await expect(controls.acquire()).rejects.toBeInstanceOf(TsunagiError);
    expect(() => controls.start()).toThrow(TsunagiError);
  });
});

describe("OperatorControls: acks and latency", () => {
  it("computes latency statistics from the acks and reports each ack", async () => {
    const { session, room } = await openRoom();
    const controls = await controlsFor(session, { rateHz: 100, latencyWindow: 20 });
    const acks: Array<{ status: number; rttMs?: number }> = [];
    controls.on("ack", (ack, { rttMs }) => acks.push({ status: ack.status, rttMs }));
    expect(controls.latency()).toEqual({
      samples: 0, ackRttP50Ms: undefined, ackRttP99Ms: undefined, deviceRoundTripP50Ms: undefined,
      oneWayP50Ms: undefined, oneWayP99Ms: undefined, lastAckStatus: undefined, acksByStatus: {},
    });
    await controls.acquire();
    controls.start();
    await vi.waitFor(() => expect(controls.latency().samples).toBe(20), WAIT);
    const applied = controls.latency();
    expect(applied.deviceRoundTripP50Ms).toBe(4);
    expect(applied.ackRttP50Ms).toBeGreaterThanOrEqual(0);
    expect(applied.ackRttP99Ms).toBeGreaterThanOrEqual(applied.ackRttP50Ms!);
    expect(applied.oneWayP50Ms).toEqual(expect.any(Number));
    expect(applied.oneWayP99Ms).toBeGreaterThanOrEqual(applied.oneWayP50Ms!);
    expect(applied).toMatchObject({ lastAckStatus: "APPLIED", acksByStatus: { APPLIED: 20 } });
    expect(acks.every((ack) => ack.status === Status.APPLIED && typeof ack.rttMs === "number")).toBe(true);

    room.ackStatus = Status.EXPIRED; // refused by the room: no device round trip, no one-way figure
    await vi.waitFor(() => expect(controls.latency().acksByStatus.EXPIRED).toBe(20), WAIT);
    const expired = controls.latency();
    expect(expired).toMatchObject({ samples: 20, lastAckStatus: "EXPIRED", deviceRoundTripP50Ms: undefined, oneWayP50Ms: undefined });
    expect(expired.ackRttP50Ms).toEqual(expect.any(Number));
  });
});

describe("OperatorControls: the room's probes", () => {
  it("the session answers the room's Ping once, echoing it, however many controls it has", async () => {
    const { session, room } = await openRoom({ profiles: [excavatorProfile("ex-1"), droneProfile("drone-1")] });
    await controlsFor(session);
    await controlsFor(session, { deviceId: "drone-1" });
    const correlationId = room.ping(session.sessionId);
    await vi.waitFor(() => expect(room.pongs.has(correlationId)).toBe(true), WAIT);
    await new Promise((r) => setTimeout(r, 50));
    await barrier(session);
    const pongs = room.sent("pong", session.sessionId);
    expect(pongs.map((p) => p.envelope.correlationId)).toEqual([correlationId]);
    const { pong } = pongs[0].envelope;
    const sentPing = room.pongs.get(correlationId)!;
    expect(pong!.clientTimeMs).toBeLessThanOrEqual(sentPing.at);
    expect(pong!.clientTimeMs).toBeGreaterThan(sentPing.at - 5000);
    expect(pong!.serverTimeMs).toBeGreaterThan(0);
  });

  it("reports a demotion: the error, then the lost lease; the loop stops", async () => {
    const { session, room } = await openRoom();
    const controls = await controlsFor(session);
    const demoted: DemotedEvent[] = [];
    const errors: TsunagiError[] = [];
    controls.on("demoted", (event) => demoted.push(event));
    controls.on("error", (error) => errors.push(error));
    const lease = await controls.acquire();
    controls.setAxes({ boom: 0.3 });
    controls.start();
    await vi.waitFor(() => expect(commandsOf(room, session.sessionId).length).toBeGreaterThan(0), WAIT);
    room.demote("ex-1");
    await vi.waitFor(() => expect(demoted.length).toBe(1), WAIT);
    expect(demoted[0]).toMatchObject({ deviceId: "ex-1", endedLeaseId: lease.leaseId, message: expect.stringMatching(/demoted/) });
    expect(errors.map((e) => e.code)).toEqual([ErrorCode.LATENCY_BUDGET_EXCEEDED]);
    expect(controls.holding).toBe(false);
    expect(controls.axes.boom).toBe(0);
    await barrier(session); // commands already on their way when the lease ended
    const sent = commandsOf(room, session.sessionId).length;
    await new Promise((r) => setTimeout(r, 100));
    await barrier(session);
    expect(commandsOf(room, session.sessionId).length).toBe(sent);
  });

  it("hands on telemetry of its own device only", async () => {
    const { session, room } = await openRoom({ profiles: [excavatorProfile("ex-1"), droneProfile("drone-1")] });
    const controls = await controlsFor(session);
    const seen: string[] = [];
    controls.on("telemetry", (telemetry) => seen.push(`${telemetry.deviceId}:${telemetry.joints[0]?.name}`));
    room.telemetry({ deviceId: "drone-1", joints: [{ name: "vx" }] });
    room.telemetry({ deviceId: "ex-1", joints: [{ name: "swing", position: 0.1 }] });
    await vi.waitFor(() => expect(seen).toEqual(["ex-1:swing"]), WAIT);
    expect(controls.telemetry?.joints[0]).toMatchObject({ name: "swing", position: 0.1 });
  });
});

describe("OperatorControls: e-stop and reset", () => {
  it("refuses an observer's e-stop with FORBIDDEN", async () => {
    const { session, room } = await openRoom();
    const visitor = await controlsFor(await joinAs(session.roomId, "visitor"));
    const error = await visitor.estop("I saw something").catch((e) => e);
    expect(error).toBeInstanceOf(TsunagiError);
    expect(error.code).toBe(ErrorCode.FORBIDDEN);
    expect(room.sent("estop")).toHaveLength(1);
  });

  it("an operator's e-stop stops the device for everyone; only a supervisor resets it", async () => {
    const { session, room } = await openRoom({ clockSkewMs: 20_000 });
    const operator = await controlsFor(session);
    const observer = await controlsFor(await joinAs(session.roomId, "visitor"));
    const supervisor = await controlsFor(await joinAs(session.roomId, "supervisor"));
    const notices: string[] = [];
    observer.on("estop", (estop) => notices.push(`estop ${estop.deviceId}: ${estop.reason}`));
    observer.on("reset", (reset) => notices.push(`reset ${reset.deviceId}`));
    // the senders get their replies in place of the notices: the events fire for them too, once
    const ownNotices: string[] = [];
    operator.on("estop", (estop) => ownNotices.push(`operator estop ${estop.deviceId}`));
    supervisor.on("reset", (reset) => ownNotices.push(`supervisor reset ${reset.deviceId}`));
    await operator.acquire();
    operator.setAxes({ boom: 0.3 });
    operator.start();

    const confirmed = await operator.estop("operator pressed e-stop");
    expect(confirmed).toMatchObject({ deviceId: "ex-1", reason: "operator pressed e-stop", raisedBy: session.sessionId });
    const raised = room.sent("estop", session.sessionId)[0];
    expect(Math.abs((raised.envelope.estop as tsunagi.v1.EStop).raisedAtMs - raised.at)).toBeLessThan(1000); // server clock
    await vi.waitFor(() => expect(operator.lease?.estopped).toBe(true), WAIT);
    expect(operator.holding).toBe(false);
    expect(operator.axes.boom).toBe(0);
    await expect(operator.acquire()).rejects.toMatchObject({ code: ErrorCode.ESTOPPED });

    await expect(operator.reset("looks fine")).rejects.toMatchObject({ code: ErrorCode.FORBIDDEN });
    const reset = await supervisor.reset("area clear");
    expect(reset).toMatchObject({ deviceId: "ex-1", reason: "area clear" });
    await vi.waitFor(() => expect(notices).toEqual(["estop ex-1: operator pressed e-stop", "reset ex-1"]), WAIT);
    expect(ownNotices).toEqual(["operator estop ex-1", "supervisor reset ex-1"]);
    await vi.waitFor(() => expect(operator.lease?.estopped).toBe(false), WAIT);
    await operator.acquire(); // motion needs a fresh lease
    expect(operator.holding).toBe(true);
  });

  it("puts the e-stop on the wire at once, never behind the loop's commands", async () => {
    const { session } = await openRoom();
    const controls = await controlsFor(session, { rateHz: 1 });
    await controls.acquire();
    controls.start();
    const sent = vi.spyOn(session, "sendEnvelope");
    const confirmed = controls.estop("now");
    expect(sent.mock.calls.map(([envelope]) => Object.keys(envelope).find((key) => key !== "correlationId"))).toEqual(["estop"]);
    await confirmed;
  });

  it("estopAll() stops every device of the room", async () => {
    const { session } = await openRoom({ profiles: [excavatorProfile("ex-1"), droneProfile("drone-1")] });
    const excavator = await controlsFor(session);
    const drone = await controlsFor(session, { deviceId: "drone-1" });
    const seen: string[] = [];
    excavator.on("estop", (estop) => seen.push(`excavator sees all=${estop.all}`));
    drone.on("estop", (estop) => seen.push(`drone sees all=${estop.all}`));
    const confirmed = await excavator.estopAll();
    expect(confirmed.all).toBe(true);
    // the one reply covers every device: each controls of the sender's session hears of it once
    expect(seen).toEqual(["excavator sees all=true", "drone sees all=true"]);
    await vi.waitFor(() => expect([excavator.lease?.estopped, drone.lease?.estopped]).toEqual([true, true]), WAIT);
  });
});

describe("OperatorControls with a gamepad", () => {
  it("drives the device from gamepadToAxes through the input option", async () => {
    const { session, room } = await openRoom();
    const pad = { axes: [0, 0, 0, 1], buttons: [] as boolean[] }; // right stick pulled back: boom up
    const controls = await controlsFor(session, { input: () => controls.profile && gamepadToAxes(pad, controls.profile) });
    await controls.acquire();
    controls.start();
    await vi.waitFor(() => expect(valuesOf(commandsOf(room, session.sessionId).at(-1)!.command)[1]).toBeCloseTo(0.4, 9), WAIT);
    pad.axes = [0, 0, 0, 0.05]; // inside the deadzone
    await vi.waitFor(() => expect(valuesOf(commandsOf(room, session.sessionId).at(-1)!.command)[1]).toBe(0), WAIT);
  });
});
