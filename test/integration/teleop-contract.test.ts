/**
 * The teleop contract's edges against a real region node (real Redis): what the room and
 * the gateway answer that the happy path never shows. A real adapter runs the simulated
 * excavator; a RawDevice speaks the device channel by hand, so it can send what a real
 * adapter never would (a wrong correlation id, a profile of another class). The node's
 * flood limits are low (120 frames/s a client, 100 a device) so the flood tests stay small.
 */
import "../../server/polyfills.ts";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import type { RoomSession } from "../../client-sdk/RoomSession.ts";
import { ErrorCode, encodeEnvelope, tsunagi, type Envelope } from "../../proto/index.ts";
import { STOP_FRAMES_PER_SECOND } from "../../common/FloodWindow.ts";
import { startNode, startRedis, waitFor, type NodeProcess, type RedisProcess } from "../fixtures/processes.ts";
import { EnvelopeLog, enrollDevices, joinTeleop, keepLeaseAlive, startAdapter, type AdapterProcess } from "../fixtures/teleop.ts";
import { RawDevice } from "../fixtures/fakes/RawDevice.ts";
import { droneProfile, excavatorProfile } from "../fixtures/fakes/deviceProfiles.ts";

const { Status } = tsunagi.v1.CommandAck;
const Action = tsunagi.v1.LeaseRequest.Action;
// A redis-server of this file's own: nothing another file runs beside it can flush its keys.
let ownRedis: RedisProcess | undefined;
let redisUrl: string;
const clusterName = `contract-${randomUUID().slice(0, 8)}`;
const ROOM = "site-contract";
const EXCAVATOR = "ex-c1";
const RAW = "raw-1";
const FLOOD_LIMIT = 120;
const DEVICE_FLOOD_LIMIT = 100;
const DEFAULT_BUDGET_MS = 120;

let node: NodeProcess;
let excavator: AdapterProcess;
let raw: RawDevice;
let supervisor: RoomSession;
let supervisorLog: EnvelopeLog;
const sessions: RoomSession[] = [];
const stops: Array<() => void> = [];

async function join(role: "operator" | "visitor" | "supervisor"): Promise<{ session: RoomSession; log: EnvelopeLog }> {
  const session = await joinTeleop(node, ROOM, role);
  sessions.push(session);
  return { session, log: new EnvelopeLog(session) };
}

/** An operator holding RAW's lease, kept alive by heartbeats until the test ends. */
async function holdRawLease() {
  const { session, log } = await join("operator");
  const reply = await session.request({ leaseRequest: { deviceId: RAW, action: Action.ACQUIRE } });
  const leaseId = reply.leaseState!.leaseId!;
  stops.push(keepLeaseAlive(session, { deviceId: RAW, clock: { now: Date.now } }, leaseId));
  return { session, log, leaseId };
}

function command(leaseId: string, seq: number): tsunagi.v1.IControlCommand {
  const now = Date.now();
  return { deviceId: RAW, leaseId, seq, issuedAtMs: now, deadlineMs: now + 100, axes: [{ name: "boom", value: 0.1 }] };
}

/**
 * Sends commands of `leaseId` from `seq` on until the raw device receives one, each with
 * fresh timestamps, and resolves with it: on a busy machine one may arrive past its
 * deadline (EXPIRED at the room, as it must be), so a single send could wait in vain.
 */
async function commandForwarded(session: RoomSession, leaseId: string, seq: number): Promise<Envelope> {
  const deadline = Date.now() + 20_000;
  // What the room answered meanwhile, to say why none got through if none does.
  const answers: string[] = [];
  const stop = session.onEnvelope((envelope) => {
    if (envelope.body === "commandAck") answers.push(Status[envelope.commandAck!.status!] ?? String(envelope.commandAck!.status));
    if (envelope.body === "leaseState" && envelope.leaseState!.endedLeaseId === leaseId) answers.push(`lease ended: ${envelope.leaseState!.cause}`);
  });
  try {
    for (;; seq++) {
      const from = raw.received.length;
      session.sendEnvelope({ correlationId: 0, controlCommand: command(leaseId, seq) });
      try {
        return await raw.next((e) => e.body === "controlCommand", 1000, "a forwarded command", from);
      } catch (error) {
        if (Date.now() > deadline) throw new Error(`${(error as Error).message}; the room answered: ${[...new Set(answers)].join(", ") || "nothing"}`);
      }
    }
  } finally {
    stop();
  }
}

async function metric(name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${node.httpUrl}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.split(" ").pop()) : 0;
}

/**
 * Waits until the session's flood window has passed: a ping with a correlation id gets its
 * pong. Replies come in order, so everything the room answered before has arrived too.
 */
async function floodWindowPassed(session: RoomSession): Promise<void> {
  await waitFor(() => session.request({ ping: { clientTimeMs: 0 } }, 500).then(() => true, () => false), 15_000, "a ping answered after the flood window");
}

/** Frames per window allowed to a burst sent over `elapsedMs`: a window is a second from its first frame. */
function windowsSpanned(elapsedMs: number): number {
  return Math.ceil(elapsedMs / 1000) + 1;
}

const errorsWith = (log: EnvelopeLog, code: number, minCorrelationId: number) =>
  log.envelopes.filter((e) => e.body === "error" && e.error!.code === code && Number(e.correlationId) >= minCorrelationId);

beforeAll(async () => {
  ownRedis = await startRedis();
  redisUrl = ownRedis.url;
  const secrets = await enrollDevices(redisUrl, clusterName, [[EXCAVATOR, "excavator"], [RAW, "excavator"]]);
  node = await startNode({ regionId: "jp-tokyo", redisUrl, clusterName,
    extraArgs: ["--limits-max-messages-per-second", String(FLOOD_LIMIT), "--gateway-max-messages-per-second", String(DEVICE_FLOOD_LIMIT),
      "--teleop-default-latency-budget-ms", String(DEFAULT_BUDGET_MS)] });
  excavator = await startAdapter({ deviceId: EXCAVATOR, driver: "sim-excavator", nodes: [node.httpUrl], secret: secrets[EXCAVATOR] });
  await excavator.waitForStatus((s) => s.state === "online", 20_000, `${EXCAVATOR} online`);
  raw = await RawDevice.connect(node.gatewayUrl, RAW, secrets[RAW]!);
  raw.send({ correlationId: 0, deviceProfile: excavatorProfile(RAW, { latencyBudgetMs: 0 }) });
  supervisor = await joinTeleop(node, ROOM, "supervisor", { devices: [EXCAVATOR, RAW], sub: "contract-supervisor" });
  supervisorLog = new EnvelopeLog(supervisor);
  await waitFor(() => supervisor.deviceSnapshot(EXCAVATOR).lease?.online && supervisor.deviceSnapshot(RAW).profile, 10_000, "both devices online in the room");
});

afterEach(async () => {
  for (const stop of stops.splice(0)) stop();
  await Promise.allSettled(sessions.splice(0).map((session) => session.leave()));
  for (const deviceId of [EXCAVATOR, RAW]) {
    if (supervisor.deviceSnapshot(deviceId).lease?.estopped) await supervisor.request({ reset: { deviceId, reason: "test cleanup" } }).catch(() => {});
  }
});

afterAll(async () => {
  await supervisor?.leave().catch(() => {});
  await raw?.close();
  await excavator?.stop();
  await node?.stop();
  await ownRedis?.stop();
});

describe("the device channel", () => {
  it("the welcome carries the latency budget in force when the profile leaves it at 0", () => {
    expect(raw.welcome.defaultLatencyBudgetMs).toBe(DEFAULT_BUDGET_MS);
  });

  it("answers an ack whose correlation id no command awaits with UNMATCHED_ACK, counted; commands sent with correlation id 0 are still acked", async () => {
    const { session, log, leaseId } = await holdRawLease();
    const before = await metric("tsunagi_errors_total", 'code="UNMATCHED_ACK"');
    const from = raw.received.length;
    const forwarded = await commandForwarded(session, leaseId, 1);
    const correlationId = Number(forwarded.correlationId);
    expect(correlationId).toBeGreaterThan(0); // the gateway numbers what it forwards
    const seq = Number(forwarded.controlCommand!.seq);
    const ack = { deviceId: RAW, leaseId, seq, status: Status.APPLIED };

    raw.send({ correlationId: correlationId + 1000, commandAck: ack });
    const refusal = await raw.next((e) => e.body === "error" && Number(e.correlationId) === correlationId + 1000, 5000, "the refusal of the unmatched ack", from);
    expect(refusal.error!.code).toBe(ErrorCode.UNMATCHED_ACK);
    expect(await metric("tsunagi_errors_total", 'code="UNMATCHED_ACK"')).toBe(before + 1);

    const acksFrom = log.length;
    raw.send({ correlationId, commandAck: ack });
    const answered = await log.next((e) => e.body === "commandAck" && e.commandAck!.status === Status.APPLIED, 5000, "the operator's ack", acksFrom);
    expect(answered.commandAck).toMatchObject({ seq, status: Status.APPLIED, origin: tsunagi.v1.CommandAck.Origin.ADAPTER });
  });

  it("refuses a profile whose class is not the enrolled one (FORBIDDEN): the lease ends and the device cannot be driven until a valid profile", async () => {
    const { session, log, leaseId } = await holdRawLease();
    const from = raw.received.length;
    raw.send({ correlationId: 77, deviceProfile: droneProfile(RAW) });
    const refusal = await raw.next((e) => e.body === "error" && Number(e.correlationId) === 77, 5000, "the profile's refusal", from);
    expect(refusal.error).toMatchObject({ code: ErrorCode.FORBIDDEN, message: expect.stringContaining("enrolled as (excavator)") });
    const ended = await log.next((e) => e.body === "leaseState" && e.leaseState!.endedLeaseId === leaseId, 5000, "the lease ended");
    expect(ended.leaseState!.cause).toBe("profile-refused");

    const again = (await session.request({ leaseRequest: { deviceId: RAW, action: Action.ACQUIRE } })).leaseState!.leaseId!;
    stops.push(keepLeaseAlive(session, { deviceId: RAW, clock: { now: Date.now } }, again));
    const acks = log.length;
    session.sendEnvelope({ correlationId: 0, controlCommand: command(again, 1) });
    const refused = await log.next((e) => e.body === "commandAck", 5000, "the room's ack", acks);
    expect(refused.commandAck).toMatchObject({ status: Status.DEVICE_OFFLINE, origin: tsunagi.v1.CommandAck.Origin.ROOM });

    raw.send({ correlationId: 0, deviceProfile: excavatorProfile(RAW, { latencyBudgetMs: 0 }) });
    await log.next((e) => e.body === "deviceProfile" && e.deviceProfile!.deviceId === RAW, 5000, "the valid profile announced");
    await commandForwarded(session, again, 2);
  });
});

describe("replies the contract names", () => {
  it("an e-stop naming a device the room does not have stops every device, then answers DEVICE_UNKNOWN", async () => {
    const { session, log } = await join("operator");
    const from = raw.received.length;
    await expect(session.request({ estop: { deviceId: "ex-nope", reason: "wrong id typed" } })).rejects.toMatchObject({ code: ErrorCode.DEVICE_UNKNOWN });
    await raw.next((e) => e.body === "estop", 5000, "the e-stop", from);
    await excavator.waitForStatus((s) => s.safety.estopped, 5000, "the excavator e-stopped");
    // the refusal does not say what stopped: the sender gets the notices too
    await log.next((e) => e.body === "estop" && e.estop!.deviceId === EXCAVATOR, 5000, "the excavator's notice");
    await log.next((e) => e.body === "estop" && e.estop!.deviceId === RAW, 5000, "the raw device's notice");
  });

  it("the sender of an EStop or a Reset gets one answer, its reply; a RELEASE's reply names the lease it ended and why", async () => {
    const { session, log } = await join("operator");
    const observer = await join("visitor");
    const reply = await session.request({ estop: { deviceId: RAW, reason: "one answer" } });
    expect(reply.estop).toMatchObject({ deviceId: RAW, reason: "one answer" });
    await observer.log.next((e) => e.body === "estop" && e.estop!.reason === "one answer", 5000, "the observer's notice");
    expect(log.envelopes.filter((e) => e.body === "estop")).toHaveLength(0);

    const resetReply = await supervisor.request({ reset: { deviceId: RAW, reason: "cleared once" } });
    expect(resetReply.reset).toMatchObject({ deviceId: RAW, reason: "cleared once" });
    await observer.log.next((e) => e.body === "reset" && e.reset!.reason === "cleared once", 5000, "the observer's reset notice");
    expect(supervisorLog.envelopes.filter((e) => e.body === "reset" && e.reset!.reason === "cleared once")).toHaveLength(0);

    const granted = (await session.request({ leaseRequest: { deviceId: RAW, action: Action.ACQUIRE } })).leaseState!;
    const released = (await session.request({ leaseRequest: { deviceId: RAW, action: Action.RELEASE } })).leaseState!;
    expect(released).toMatchObject({ deviceId: RAW, leaseId: "", endedLeaseId: granted.leaseId, cause: "released" });
  });
});

describe("flood limits", () => {
  it("an EStop's first tags in front of another body do not pass the flood limit", async () => {
    const { session, log } = await join("operator");
    const emptyEStop = encodeEnvelope({ estop: {} });
    const started = Date.now();
    for (let i = 0; i < 400; i++) session.room.sendBytes("pb", Uint8Array.from([...emptyEStop, ...encodeEnvelope({ ping: { clientTimeMs: i } })]));
    const elapsed = Date.now() - started;
    await floodWindowPassed(session);
    const pongs = log.envelopes.filter((e: Envelope) => e.body === "pong" && !e.correlationId).length;
    expect(pongs).toBeGreaterThan(0);
    expect(pongs).toBeLessThanOrEqual(FLOOD_LIMIT * windowsSpanned(elapsed));
  });

  it("a real EStop over the limit still passes from an operator, within its own small budget", async () => {
    const { session, log } = await join("operator");
    const started = Date.now();
    for (let i = 0; i < FLOOD_LIMIT + 30; i++) session.sendEnvelope({ correlationId: 0, ping: { clientTimeMs: i } });
    for (let i = 0; i < 30; i++) session.sendEnvelope({ correlationId: 1000 + i, estop: { deviceId: RAW, reason: `flood ${i}` } });
    const elapsed = Date.now() - started;
    await floodWindowPassed(session);
    const passed = log.envelopes.filter((e) => e.body === "estop" && Number(e.correlationId) >= 1000).length;
    expect(passed).toBeGreaterThan(0);
    expect(passed).toBeLessThanOrEqual(STOP_FRAMES_PER_SECOND * windowsSpanned(elapsed));
  });

  it("on the device channel too: an EStop's first tags do not pass the limit, a device's real e-stops pass within their own budget", async () => {
    const from = raw.received.length;
    const notices = supervisorLog.length;
    const emptyEStop = encodeEnvelope({ estop: {} });
    const started = Date.now();
    for (let i = 0; i < 400; i++) raw.sendBytes(Uint8Array.from([...emptyEStop, ...encodeEnvelope({ ping: { clientTimeMs: i } })]));
    for (let i = 0; i < 30; i++) raw.send({ correlationId: 0, estop: { deviceId: RAW, reason: `device flood ${i}` } });
    const elapsed = Date.now() - started;
    let probe = 9000;
    await waitFor(() => {
      const id = ++probe;
      raw.send({ correlationId: id, ping: { clientTimeMs: 0 } });
      return raw.next((e) => e.body === "pong" && Number(e.correlationId) === id, 500, "a pong", from).then(() => true, () => false);
    }, 15_000, "the device's flood window passed");
    const pongs = raw.received.slice(from).filter((e) => e.body === "pong" && !e.correlationId).length;
    expect(pongs).toBeGreaterThan(0);
    expect(pongs).toBeLessThanOrEqual(DEVICE_FLOOD_LIMIT * windowsSpanned(elapsed));
    await supervisorLog.next((e) => e.body === "estop" && e.estop!.raisedBy === `device:${RAW}`, 5000, "a device e-stop latched in the room", notices);
    const passed = supervisorLog.envelopes.slice(notices).filter((e) => e.body === "estop" && e.estop!.raisedBy === `device:${RAW}`).length;
    expect(passed).toBeLessThanOrEqual(STOP_FRAMES_PER_SECOND * windowsSpanned(elapsed));
  });

  it("a visitor's e-stops get no pass over the limit, and 500 refused frames give a bounded number of log lines", async () => {
    const { session, log } = await join("visitor");
    const linesBefore = node.output().split("\n").length;
    for (let i = 0; i < 500; i++) session.sendEnvelope({ correlationId: 1000 + i, estop: { all: true, reason: `visitor ${i}` } });
    await floodWindowPassed(session);
    const forbidden = errorsWith(log, ErrorCode.FORBIDDEN, 1000).length;
    expect(forbidden).toBeGreaterThan(0); // within the limit the room refuses them
    expect(forbidden).toBeLessThan(500); // over it they are dropped, not passed to the room
    expect((await excavator.status()).safety.estopped).toBe(false);
    const lines = node.output().split("\n").slice(linesBefore - 1).filter((line) => line.includes(session.sessionId));
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.length).toBeLessThanOrEqual(6); // one a second per code (FORBIDDEN, RATE_LIMITED), not one per frame
  });
});
