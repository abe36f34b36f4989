/**
 * Bench child: the operator side of the control bench, one operator per device.
 *
 * Node path: each operator is a stock @colyseus/sdk client that creates its device's
 * TeleopRoom through matchmaking, acquires the control lease (LeaseRequest ACQUIRE, then
 * the LeaseState naming it holder) and answers the room's latency probes (Ping → Pong,
 * same correlation id), as an operator console must. A lost lease is counted by cause
 * and acquired again, as a console would. Relay path: a raw `ws` socket to the relay,
 * and no lease (the relay has none).
 *
 * Then, on both paths alike, each sends a ControlCommand `hz` times a second (seq 1, 2,
 * 3… per lease, issued_at_ms = wallClockMs, deadline issued + latency budget) and counts
 * the acks of the commands it sent in the measurement window. Then come e-stop rounds,
 * under load: `estop` has each operator in turn, staggered over estopSpreadMs, stop
 * commanding and send one EStop for its device while the others go on commanding;
 * `recover` has each send a Reset (the bench's operators are supervisors), take its
 * lease again and resume, ready for the next round.
 *
 * Argument: OperatorLoadConfig. Ready (every operator joined, holding its lease and
 * sending). Calls: startWindow, stopWindow → OperatorWindow, estop → EStopsSent,
 * recover (resolves when every operator commands again).
 */
import "../../server/polyfills.ts";
import { setTimeout as sleep } from "node:timers/promises";
import { Client } from "@colyseus/sdk";
import { WebSocket } from "ws";
import { decodeEnvelope, encodeEnvelope, ENVELOPE_MESSAGE_TYPE, errorCodeName, tsunagi, type Envelope, type IEnvelope } from "../../proto/index.ts";
import {
  axisName, axisValueFor, latencyBudgetMs, roomIdOf,
  type EStopsSent, type OperatorLoadConfig, type OperatorWindow,
} from "./control-protocol.ts";
import { LoopDelayWindow, wallClockMs } from "./measure.ts";
import { countInto, withTimeout } from "./tasks.ts";
import { serveParent } from "./parent-channel.ts";

const config = JSON.parse(process.argv[2] ?? "null") as OperatorLoadConfig;

/** How long joining and the first lease may take, per operator. */
const setupTimeoutMs = 30_000;
/** After the window, how long acks of its last commands may still arrive. */
const ackGraceMs = 500;
/** E-stops are spread over this long, as operators pressing them independently would. */
const estopSpreadMs = 1000;
/** Pause before acquiring a lost lease again, and between refused attempts. */
const reacquireDelayMs = 200;
/** Rooms created at once while setting up. */
const setupConcurrency = 10;

const LeaseAction = tsunagi.v1.LeaseRequest.Action;
const AckStatus = tsunagi.v1.CommandAck.Status;
const AckOrigin = tsunagi.v1.CommandAck.Origin;

/** Window state, shared by all operators of this process. */
let measuring = false;
let windowStartMs = 0;
let windowMs = 0;
let sent = 0;
let ticksWithoutLease = 0;
let applied = 0;
let refused: Record<string, number> = {};
let clientsLost = 0;
const leasesLost: Record<string, number> = {};
const errors: Record<string, number> = {};
const loopDelay = new LoopDelayWindow();

function countError(code: number, message: string, who: string): void {
  const name = errorCodeName(code);
  if (errors[name] === undefined) process.stderr.write(`${who}: error [${code} ${name}] ${message}\n`);
  countInto(errors, name);
}

class BenchOperator {
  private send!: (bytes: Uint8Array) => void;
  private sessionId = "";
  private leaseId = "";
  private seq = 0;
  private nextCorrelationId = 1;
  /** Correlation id of the LeaseRequest awaiting its answer, 0 when none. */
  private leaseRequestId = 0;
  private leaseWaiter?: { resolve(): void; reject(error: Error): void };
  private reacquireTimer?: NodeJS.Timeout;
  /** Sent commands awaiting their ack, by `leaseId#seq`: whether each was sent in the window. */
  pending = new Map<string, boolean>();
  private stopped = false;
  /** Between its e-stop and the lease taken after the reset: sends nothing. */
  private paused = false;
  /** recover(): resolved once commanding again. */
  private resumeWaiter?: () => void;

  constructor(readonly deviceId: string, private readonly index: number) {}

  /** Joins, takes the lease and starts commanding at once: a held lease left silent is revoked (watchdog). */
  async connect(): Promise<void> {
    if (config.path === "node") await this.joinRoom();
    else await this.connectRelay();
    this.drive();
  }

  /** Node path: creates the device's room, then takes its lease. */
  private async joinRoom() {
    const client = new Client(config.url);
    client.auth.token = config.token!;
    const room = await client.create("teleop", { roomId: roomIdOf(this.index), devices: [this.deviceId] });
    this.sessionId = room.sessionId;
    this.send = (bytes) => room.sendBytes(ENVELOPE_MESSAGE_TYPE, bytes);
    room.onMessage(ENVELOPE_MESSAGE_TYPE, (bytes: Uint8Array) => this.receive(bytes));
    room.onError((code: number, message?: string) => countError(code, message ?? "", this.deviceId));
    const lost = (what: string) => (code?: number) => {
      if (this.stopped) return;
      clientsLost++;
      process.stderr.write(`${this.deviceId}: operator connection ${what} (code ${code})\n`);
    };
    room.onDrop(lost("dropped"));
    room.onLeave(lost("left"));
    await new Promise<void>((resolve, reject) => {
      this.leaseWaiter = { resolve, reject };
      this.requestLease();
    });
  }

  /** Relay path: no lease to take; the relay forwards whatever comes. */
  private async connectRelay() {
    const socket = new WebSocket(`${config.url}?id=${encodeURIComponent(this.deviceId)}`, { perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => {
      socket.once("open", resolve);
      socket.once("error", reject);
    });
    socket.on("message", (data: Buffer) => this.receive(data));
    socket.on("close", (code) => { if (!this.stopped) { clientsLost++; process.stderr.write(`${this.deviceId}: relay connection closed (${code})\n`); } });
    this.send = (bytes) => socket.send(bytes);
    this.leaseId = "relay";
  }

  private requestLease() {
    this.leaseRequestId = this.nextCorrelationId++;
    this.write({ correlationId: this.leaseRequestId, leaseRequest: { deviceId: this.deviceId, action: LeaseAction.ACQUIRE } });
  }

  /** Sends commands on an absolute schedule, offset by `index` so operators spread over one period. */
  private drive(): void {
    const periodMs = 1000 / config.hz;
    // Scheduled against absolute due times: setInterval drifts, sending ~1% under the rate.
    let nextSendAtMs = performance.now() + (this.index * periodMs) / config.deviceIds.length;
    const sendOnSchedule = () => {
      if (this.stopped) return;
      if (this.leaseId && !this.paused) this.sendCommand();
      else if (measuring) ticksWithoutLease++;
      nextSendAtMs += periodMs;
      setTimeout(sendOnSchedule, nextSendAtMs - performance.now());
    };
    setTimeout(sendOnSchedule, nextSendAtMs - performance.now());
  }

  private sendCommand() {
    const seq = ++this.seq;
    const issuedAtMs = wallClockMs();
    this.pending.set(`${this.leaseId}#${seq}`, measuring);
    if (measuring) sent++;
    this.write({
      correlationId: this.nextCorrelationId++,
      controlCommand: {
        deviceId: this.deviceId, leaseId: this.leaseId, seq, issuedAtMs, deadlineMs: issuedAtMs + latencyBudgetMs,
        axes: [{ name: axisName, value: axisValueFor(seq) }],
      },
    });
  }

  /** Stops commanding and raises an e-stop for the device; returns its send time. */
  estop(): number {
    this.paused = true;
    clearTimeout(this.reacquireTimer);
    const raisedAtMs = wallClockMs();
    this.write({ correlationId: this.nextCorrelationId++, estop: { deviceId: this.deviceId, reason: "control bench e-stop", raisedAtMs } });
    return raisedAtMs;
  }

  /** After an e-stop: reset it, take the lease again and resume commanding. */
  recover(): Promise<void> {
    if (!this.paused) return Promise.resolve();
    const resumed = new Promise<void>((resolve) => { this.resumeWaiter = resolve; });
    if (config.path === "relay") {
      this.resume();
      return resumed;
    }
    // Same socket, so the room handles the reset before the lease request.
    this.write({ correlationId: this.nextCorrelationId++, reset: { deviceId: this.deviceId, reason: "control bench: next e-stop round" } });
    this.requestLease();
    return resumed;
  }

  private resume() {
    this.paused = false;
    this.resumeWaiter?.();
    this.resumeWaiter = undefined;
  }

  private receive(bytes: Uint8Array) {
    let envelope: Envelope;
    try {
      envelope = decodeEnvelope(bytes);
    } catch (error) {
      countError((error as { code?: number }).code ?? 0, (error as Error).message, `${this.deviceId} (undecodable envelope)`);
      return;
    }
    switch (envelope.body) {
      case "commandAck": this.acked(envelope.commandAck!); return;
      case "ping":
        // The room's latency-budget probe: unanswered probes count as strikes.
        this.write({ correlationId: envelope.correlationId, pong: { clientTimeMs: envelope.ping!.clientTimeMs, serverTimeMs: wallClockMs() } });
        return;
      case "leaseState": this.leaseChanged(envelope.leaseState!); return;
      case "error": {
        // Coded errors are counted from room.onError (the room sends both); here only the lease request's answer matters.
        if (this.leaseRequestId !== 0 && Number(envelope.correlationId) === this.leaseRequestId) this.leaseRefused(envelope.error!);
        return;
      }
      default:
        // Telemetry, DeviceProfile, EStop notices: an operator's screen, not this bench.
        return;
    }
  }

  private acked(ack: tsunagi.v1.ICommandAck) {
    const key = `${ack.leaseId}#${Number(ack.seq)}`;
    const inWindow = this.pending.get(key);
    if (inWindow === undefined) return; // sent before the window's bookkeeping began, or a duplicate
    this.pending.delete(key);
    if (!inWindow) return;
    if (ack.status === AckStatus.APPLIED && ack.origin === AckOrigin.ADAPTER) applied++;
    else countInto(refused, `${AckStatus[ack.status ?? 0] ?? ack.status} (${AckOrigin[ack.origin ?? 0] ?? ack.origin})`);
  }

  private leaseChanged(state: tsunagi.v1.ILeaseState) {
    if (state.deviceId !== this.deviceId) return;
    if (state.leaseId && state.holderSessionId === this.sessionId) {
      if (state.leaseId !== this.leaseId) { this.leaseId = state.leaseId; this.seq = 0; }
      this.leaseRequestId = 0;
      this.leaseWaiter?.resolve();
      this.leaseWaiter = undefined;
      if (this.paused) this.resume();
      return;
    }
    if (!this.leaseId || state.leaseId === this.leaseId) return;
    this.leaseId = "";
    if (this.stopped || this.paused) return; // our own e-stop ended it
    countInto(leasesLost, state.cause || "no cause given");
    process.stderr.write(`${this.deviceId}: lease lost (${state.cause || "no cause given"}); acquiring it again\n`);
    this.scheduleReacquire();
  }

  private leaseRefused(error: tsunagi.v1.IError) {
    this.leaseRequestId = 0;
    if (this.leaseWaiter) {
      this.leaseWaiter.reject(new Error(`${this.deviceId}: lease refused [${error.code} ${errorCodeName(error.code ?? 0)}] ${error.message}`));
      this.leaseWaiter = undefined;
      return;
    }
    this.scheduleReacquire();
  }

  private scheduleReacquire() {
    if (this.stopped || this.paused) return;
    clearTimeout(this.reacquireTimer);
    this.reacquireTimer = setTimeout(() => { if (!this.stopped && !this.leaseId) this.requestLease(); }, reacquireDelayMs);
  }

  private write(envelope: IEnvelope) {
    try { this.send(encodeEnvelope(envelope)); } catch { /* closing: counted as a lost connection */ }
  }
}

function startWindow(): void {
  sent = 0;
  ticksWithoutLease = 0;
  applied = 0;
  refused = {};
  // Acks of commands from before the window are not counted, whenever they come.
  for (const operator of operators) operator.pending.clear();
  windowStartMs = performance.now();
  loopDelay.start();
  measuring = true;
}

async function stopWindow(): Promise<OperatorWindow> {
  measuring = false;
  windowMs = performance.now() - windowStartMs;
  const eventLoopDelayP99Ms = loopDelay.stopP99Ms();
  // Commanding goes on, so the last commands of the window are answered under the same load.
  await sleep(ackGraceMs);
  let unanswered = 0;
  for (const operator of operators) {
    for (const inWindow of operator.pending.values()) if (inWindow) unanswered++;
  }
  return { windowMs, sent, ticksWithoutLease, applied, refused, unanswered, leasesLost, errors, eventLoopDelayP99Ms, clientsLost };
}

async function estop(): Promise<EStopsSent> {
  const sentAt: EStopsSent = {};
  const gapMs = estopSpreadMs / operators.length;
  for (const operator of operators) {
    sentAt[operator.deviceId] = operator.estop();
    await sleep(gapMs);
  }
  return sentAt;
}

async function recover(): Promise<void> {
  await withTimeout(Promise.all(operators.map((operator) => operator.recover())), setupTimeoutMs, "recovering from the e-stop round");
}

async function setUp(): Promise<BenchOperator[]> {
  const all = config.deviceIds.map((deviceId, index) => new BenchOperator(deviceId, index));
  for (let start = 0; start < all.length; start += setupConcurrency) {
    const batch = all.slice(start, start + setupConcurrency);
    await Promise.all(batch.map((operator) => withTimeout(operator.connect(), setupTimeoutMs, `${operator.deviceId}: operator set-up`)));
  }
  return all;
}


const operators = await setUp();
serveParent({ startWindow, stopWindow, estop, recover });
