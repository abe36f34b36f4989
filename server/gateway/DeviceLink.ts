/**
 * One authenticated edge adapter, as the node sees it: the device's side of the control
 * path. The DeviceGateway makes one per connected device; the TeleopRoom hosting the
 * device binds itself as the link's handler and drives the device through it.
 *
 * Outbound, in priority order:
 * - e-stop and reset go straight onto the socket, ahead of anything queued;
 * - lease announcements and heartbeats likewise (they are tiny and order-sensitive);
 * - commands go straight out while the socket keeps up, and wait in a small bounded
 *   queue while it is backpressured. A queued command never waits past its deadline:
 *   it is dropped with an EXPIRED ack instead.
 *
 * Inbound: acks are matched to pending commands by the envelope's correlation id, and
 * carry the measured room→adapter→room round trip (a monotonic clock, to the
 * sub-millisecond). An ack that matches nothing is the gateway's to answer (UNMATCHED_ACK). Telemetry, the device's own e-stops
 * and profile changes go to the handler.
 *
 * Every command and action sent through the link is answered exactly once, by the
 * adapter or by the link itself (origin ROOM): UNKNOWN for one sent and never answered
 * (the link closed first, or no ack came within its deadline and the grace: it may have
 * been applied), DEVICE_OFFLINE or EXPIRED for one never sent, so the operator's
 * latency window and the room's audit summary see how each one ended.
 *
 * The link also keeps the device's round-trip statistics (from acks) and an estimate of
 * how far the adapter's clock conversion is off (its `received_at_ms` against the send
 * time plus half the round trip), so a badly synced adapter shows up in logs and metrics.
 *
 * @example
 *   const link = gateway.link("excavator-1");
 *   link?.bind({ onTelemetry: (t) => fanOut(t), onDeviceEStop: (e) => latch(e), onProfile, onClosed });
 *   link?.sendCommand(command, (ack) => replyToOperator(ack));
 */
import { tsunagi, encodeEnvelope, TRUSTED, type IEnvelope } from "../../proto/index.ts";

type CommandAck = tsunagi.v1.CommandAck;

/** What a link needs from its socket. The gateway wraps a uWS WebSocket in one. */
export interface LinkSocket {
  /** Queues bytes on the socket; false when the socket is closed. */
  send(bytes: Uint8Array): boolean;
  /** Bytes written but not yet flushed to the network. */
  bufferedAmount(): number;
  close(code: number, reason: string): void;
}

/** The room that drives the device. Every callback is optional. */
export interface DeviceLinkHandler {
  onProfile?(profile: tsunagi.v1.DeviceProfile): void;
  /** The gateway refused the device's new profile: the link holds none until a valid one arrives. */
  onProfileRefused?(problem: string): void;
  onTelemetry?(telemetry: tsunagi.v1.Telemetry): void;
  /** The device stopped itself (physical button, driver fault). */
  onDeviceEStop?(estop: tsunagi.v1.EStop): void;
  /** The adapter answered with a coded Error (a reset refused: ESTOP_LOCAL). */
  onDeviceError?(error: tsunagi.v1.Error): void;
  /** The adapter disconnected or was replaced; the link is dead. */
  onClosed?(reason: string): void;
}

export interface DeviceLinkOptions {
  deviceId: string;
  adapterVersion: string;
  driver: string;
  /** The adapter proved itself with a client certificate (the certificate listener), not on the main gateway listener. */
  viaCertificate?: boolean;
  socket: LinkSocket;
  /** Server clock. Default Date.now. */
  now?: () => number;
  /** Monotonic clock with sub-millisecond resolution, for round trips. Default performance.now. */
  monotonicNow?: () => number;
  /** Above this many buffered bytes, commands queue instead of going out. Default 64 KiB. */
  backpressureBytes?: number;
  /** Commands that may wait behind backpressure; more drop the oldest (EXPIRED). Default 16. */
  maxQueuedCommands?: number;
  /** Acks awaited at once; more give up on the oldest (acked UNKNOWN by the link). Default 256. */
  maxPendingAcks?: number;
  /** An ack not back within max(deadline, now) + this is given up on: counted, and the command acked UNKNOWN by the link. Default 2000. */
  ackGraceMs?: number;
}

/** One sent command awaiting its ack. */
interface PendingAck {
  command: tsunagi.v1.IControlCommand;
  /** Server clock when sent, ms (for the adapter's clock error). */
  sentAt: number;
  /** Monotonic clock when sent, ms (for the round trip, to the sub-millisecond). */
  sentAtMonotonic: number;
  giveUpAt: number;
  onAck: (ack: CommandAck) => void;
}

/** One DeviceAction awaiting its ActionResult. */
interface PendingAction {
  action: tsunagi.v1.IDeviceAction;
  giveUpAt: number;
  onResult: (result: tsunagi.v1.ActionResult) => void;
}

/** One command waiting behind backpressure. */
interface QueuedCommand {
  envelope: IEnvelope;
  command: tsunagi.v1.IControlCommand;
  onAck: (ack: CommandAck) => void;
}

/** Round-trip statistics of the link, from command acks. */
export interface LinkStats {
  /** Exponentially weighted mean room→adapter→room round trip, ms (0 until the first ack). */
  rttMs: number;
  /** The last ack's round trip, ms. */
  lastRttMs: number;
  /** Mean error of the adapter's server-clock estimate, ms (its received_at vs ours). */
  clockErrorMs: number;
  acks: number;
  /** Acks that never came (given up after their deadline and grace, or beyond maxPendingAcks). */
  ackTimeouts: number;
  /** Commands dropped in the backpressure queue because their deadline passed. */
  expiredInQueue: number;
  pendingAcks: number;
}

const RTT_WEIGHT = 0.2;

export class DeviceLink {
  readonly deviceId: string;
  readonly adapterVersion: string;
  readonly driver: string;
  /** Attached through the certificate listener: a redirect sends it to the other node's. */
  readonly viaCertificate: boolean;
  /** The device's profile, once it sent a valid one. */
  profile: tsunagi.v1.DeviceProfile | undefined;

  private readonly socket: LinkSocket;
  private readonly now: () => number;
  /** Round trips are measured on this: monotonic, sub-millisecond (the server clock ticks in whole ms). */
  private readonly monotonicNow: () => number;
  private readonly backpressureBytes: number;
  private readonly maxQueuedCommands: number;
  private readonly maxPendingAcks: number;
  private readonly ackGraceMs: number;
  /** The room driving the device, if any. */
  private handler: DeviceLinkHandler | undefined;
  /** Sent commands by envelope correlation id, oldest first. */
  private readonly pending = new Map<number, PendingAck>();
  /** Sent actions by envelope correlation id, oldest first. */
  private readonly pendingActions = new Map<number, PendingAction>();
  /** Commands held back by backpressure, oldest first. */
  private queue: QueuedCommand[] = [];
  /** Correlation ids of outbound requests; never 0. */
  private nextCorrelationId = 1;
  private closedWith: string | undefined;
  private readonly statsData: LinkStats = { rttMs: 0, lastRttMs: 0, clockErrorMs: 0, acks: 0, ackTimeouts: 0, expiredInQueue: 0, pendingAcks: 0 };

  constructor(options: DeviceLinkOptions) {
    this.deviceId = options.deviceId;
    this.adapterVersion = options.adapterVersion;
    this.driver = options.driver;
    this.viaCertificate = options.viaCertificate ?? false;
    this.socket = options.socket;
    this.now = options.now ?? Date.now;
    this.monotonicNow = options.monotonicNow ?? (() => performance.now());
    this.backpressureBytes = options.backpressureBytes ?? 64 * 1024;
    this.maxQueuedCommands = options.maxQueuedCommands ?? 16;
    this.maxPendingAcks = options.maxPendingAcks ?? 256;
    this.ackGraceMs = options.ackGraceMs ?? 2000;
  }

  get online(): boolean {
    return this.closedWith === undefined;
  }

  get stats(): Readonly<LinkStats> {
    this.statsData.pendingAcks = this.pending.size;
    return this.statsData;
  }

  /** Makes `handler` the one room driving this device (replacing any other); returns the unbind. */
  bind(handler: DeviceLinkHandler): () => void {
    this.handler = handler;
    if (this.profile) handler.onProfile?.(this.profile);
    return () => { if (this.handler === handler) this.handler = undefined; };
  }

  get bound(): boolean {
    return this.handler !== undefined;
  }

  // --- outbound ----------------------------------------------------------------------

  /**
   * Forwards a command; `onAck` receives the adapter's ack (with device_round_trip_ms
   * filled in), or an EXPIRED ack if the command died in the backpressure queue. An
   * offline link answers DEVICE_OFFLINE at once.
   */
  sendCommand(command: tsunagi.v1.IControlCommand, onAck: (ack: CommandAck) => void): void {
    if (!this.online) {
      onAck(roomAck(command, tsunagi.v1.CommandAck.Status.DEVICE_OFFLINE, `device ${this.deviceId} is offline`));
      return;
    }
    const envelope: IEnvelope = { correlationId: this.correlationId(), controlCommand: command };
    if (this.queue.length > 0 || this.socket.bufferedAmount() > this.backpressureBytes) {
      this.queue.push({ envelope, command, onAck });
      if (this.queue.length > this.maxQueuedCommands) {
        const dropped = this.queue.shift()!;
        this.statsData.expiredInQueue++;
        dropped.onAck(roomAck(dropped.command, tsunagi.v1.CommandAck.Status.EXPIRED, "dropped: the device link is backpressured and newer commands superseded it"));
      }
      return;
    }
    this.transmit(envelope, command, onAck);
  }

  /**
   * Forwards a DeviceAction; `onResult` gets the adapter's ActionResult, or one decided
   * here: DEVICE_OFFLINE when the link is down, UNKNOWN when it goes down first or no
   * answer came within the deadline and grace (whether it was performed is then unknown).
   * Actions are rare and never wait behind command backpressure.
   */
  sendAction(action: tsunagi.v1.IDeviceAction, onResult: (result: tsunagi.v1.ActionResult) => void): void {
    if (!this.online) { onResult(roomActionResult(action, tsunagi.v1.CommandAck.Status.DEVICE_OFFLINE, `device ${this.deviceId} is offline`)); return; }
    const correlationId = this.correlationId();
    const now = this.now();
    this.pendingActions.set(correlationId, { action, giveUpAt: Math.max(Number(action.deadlineMs ?? 0), now) + this.ackGraceMs, onResult });
    if (!this.write({ correlationId, deviceAction: action })) {
      this.pendingActions.delete(correlationId);
      onResult(roomActionResult(action, tsunagi.v1.CommandAck.Status.DEVICE_OFFLINE, `device ${this.deviceId} is offline`));
    }
  }

  /** E-stop: out at once, ahead of any queued command (which it makes moot anyway). */
  sendEStop(estop: tsunagi.v1.IEStop): boolean {
    const sent = this.write({ correlationId: 0, estop });
    this.dropQueued(tsunagi.v1.CommandAck.Status.ESTOPPED, "e-stop raised before the command went out");
    return sent;
  }

  sendReset(reset: tsunagi.v1.IReset): boolean {
    return this.write({ correlationId: 0, reset });
  }

  /** Tells the adapter which lease it may accept commands under (empty: none; stop). */
  sendLeaseState(state: tsunagi.v1.ILeaseState): boolean {
    if (!state.leaseId) this.dropQueued(tsunagi.v1.CommandAck.Status.NO_LEASE, "the lease ended before the command went out");
    return this.write({ correlationId: 0, leaseState: state });
  }

  /** Tells the adapter where to send the device's camera (port 0: stop). */
  sendCameraTarget(target: tsunagi.v1.ICameraTarget): boolean {
    return this.write({ correlationId: 0, cameraTarget: target });
  }

  sendHeartbeat(heartbeat: tsunagi.v1.IHeartbeat): boolean {
    return this.write({ correlationId: 0, heartbeat });
  }

  /** Writes any envelope (the gateway's replies: pongs, errors). */
  write(envelope: IEnvelope): boolean {
    if (!this.online) return false;
    return this.socket.send(encodeEnvelope(envelope, TRUSTED));
  }

  /** The socket drained: send what waited, dropping what expired meanwhile. */
  drain(): void {
    const now = this.now();
    while (this.queue.length > 0 && this.socket.bufferedAmount() <= this.backpressureBytes) {
      const next = this.queue.shift()!;
      if (now > effectiveDeadline(next.command)) {
        this.statsData.expiredInQueue++;
        next.onAck(roomAck(next.command, tsunagi.v1.CommandAck.Status.EXPIRED, "expired while the device link was backpressured"));
        continue;
      }
      this.transmit(next.envelope, next.command, next.onAck);
    }
  }

  /** Gives up on acks past their time; the gateway calls this from a timer. */
  sweep(now = this.now()): void {
    const givenUp: PendingAck[] = [];
    for (const [id, pending] of this.pending) {
      if (pending.giveUpAt > now) break; // insertion order ≈ give-up order
      this.pending.delete(id);
      givenUp.push(pending);
    }
    for (const pending of givenUp) this.giveUp(pending, `no ack from the device within its deadline and ${this.ackGraceMs} ms: whether it applied the command is unknown; check its telemetry`);
    // Expired commands leave the queue now, even while the socket stays backpressured
    // (drain() only runs while it is not): each gets its EXPIRED ack at its deadline.
    if (this.queue.some((queued) => now > effectiveDeadline(queued.command))) {
      const waiting = this.queue.splice(0);
      for (const queued of waiting) {
        if (now > effectiveDeadline(queued.command)) {
          this.statsData.expiredInQueue++;
          queued.onAck(roomAck(queued.command, tsunagi.v1.CommandAck.Status.EXPIRED, "expired while the device link was backpressured"));
        } else {
          this.queue.push(queued);
        }
      }
      this.drain();
    }
    for (const [id, pending] of this.pendingActions) {
      if (pending.giveUpAt > now) continue;
      this.pendingActions.delete(id);
      pending.onResult(roomActionResult(pending.action, tsunagi.v1.CommandAck.Status.UNKNOWN,
        "no answer from the device in time: whether it performed the action is unknown; check its telemetry"));
    }
  }

  // --- inbound (called by the gateway) -----------------------------------------------

  /** An ack from the adapter. Returns false for an ack nobody waits for (late or forged). */
  receiveAck(correlationId: number, ack: tsunagi.v1.CommandAck): boolean {
    const pending = this.pending.get(correlationId);
    if (!pending) return false;
    this.pending.delete(correlationId);
    const roundTrip = this.monotonicNow() - pending.sentAtMonotonic;
    const stats = this.statsData;
    stats.acks++;
    stats.lastRttMs = roundTrip;
    stats.rttMs = stats.acks === 1 ? roundTrip : stats.rttMs + RTT_WEIGHT * (roundTrip - stats.rttMs);
    if (ack.receivedAtMs > 0) {
      const error = ack.receivedAtMs - (pending.sentAt + roundTrip / 2);
      stats.clockErrorMs = stats.acks === 1 ? error : stats.clockErrorMs + RTT_WEIGHT * (error - stats.clockErrorMs);
    }
    ack.deviceRoundTripMs = roundTrip;
    ack.origin = tsunagi.v1.CommandAck.Origin.ADAPTER;
    pending.onAck(ack);
    return true;
  }

  /** An ActionResult from the adapter. Returns false for one nobody waits for. */
  receiveActionResult(correlationId: number, result: tsunagi.v1.ActionResult): boolean {
    const pending = this.pendingActions.get(correlationId);
    if (!pending) return false;
    this.pendingActions.delete(correlationId);
    result.origin = tsunagi.v1.CommandAck.Origin.ADAPTER;
    pending.onResult(result);
    return true;
  }

  receiveProfile(profile: tsunagi.v1.DeviceProfile): void {
    this.profile = profile;
    this.handler?.onProfile?.(profile);
  }

  /**
   * The gateway refused the device's new profile: any earlier one is forgotten too (the
   * adapter now enforces the one it sent, so commands must not be checked against the
   * old), and the room hears of it. Until a valid profile arrives the device is online but
   * cannot be driven.
   */
  refuseProfile(problem: string): void {
    this.profile = undefined;
    this.handler?.onProfileRefused?.(problem);
  }

  receiveTelemetry(telemetry: tsunagi.v1.Telemetry): void {
    this.handler?.onTelemetry?.(telemetry);
  }

  receiveEStop(estop: tsunagi.v1.EStop): void {
    this.handler?.onDeviceEStop?.(estop);
  }

  /** A coded Error from the adapter, for the room to relay (a refused reset). */
  receiveError(error: tsunagi.v1.Error): void {
    this.handler?.onDeviceError?.(error);
  }

  /**
   * The socket is gone. Everything still awaiting an answer gets one now (origin ROOM):
   * UNKNOWN for the sent commands and actions (they may have been applied), then
   * DEVICE_OFFLINE for the queued commands, never sent; then the handler hears of the close.
   */
  closed(reason: string): void {
    if (this.closedWith !== undefined) return;
    this.closedWith = reason;
    const commands = [...this.pending.values()];
    this.pending.clear();
    for (const pending of commands) pending.onAck(roomAck(pending.command, tsunagi.v1.CommandAck.Status.UNKNOWN, `device ${this.deviceId} disconnected before acking (${reason}): whether it applied the command is unknown; check its telemetry`));
    const actions = [...this.pendingActions.values()];
    this.pendingActions.clear();
    for (const pending of actions) pending.onResult(roomActionResult(pending.action, tsunagi.v1.CommandAck.Status.UNKNOWN, `device ${this.deviceId} disconnected before answering (${reason}): whether it performed the action is unknown; check its telemetry`));
    this.dropQueued(tsunagi.v1.CommandAck.Status.DEVICE_OFFLINE, `device ${this.deviceId} disconnected: ${reason}`);
    const handler = this.handler;
    this.handler = undefined;
    handler?.onClosed?.(reason);
  }

  /** Closes the socket from our side (replaced, draining, revoked). */
  disconnect(code: number, reason: string): void {
    if (!this.online) return;
    try { this.socket.close(code, reason); } catch { /* already closed */ }
    this.closed(reason);
  }

  // --- internals ---------------------------------------------------------------------

  private transmit(envelope: IEnvelope, command: tsunagi.v1.IControlCommand, onAck: (ack: CommandAck) => void): void {
    const now = this.now();
    const correlationId = envelope.correlationId as number;
    this.pending.set(correlationId, { command, sentAt: now, sentAtMonotonic: this.monotonicNow(), giveUpAt: Math.max(effectiveDeadline(command), now) + this.ackGraceMs, onAck });
    if (this.pending.size > this.maxPendingAcks) {
      const [oldestId, oldest] = this.pending.entries().next().value as [number, PendingAck];
      this.pending.delete(oldestId);
      this.giveUp(oldest, `no ack from the device while ${this.maxPendingAcks} newer commands were sent: whether it applied the command is unknown`);
    }
    if (!this.socket.send(encodeEnvelope(envelope, TRUSTED))) {
      this.pending.delete(correlationId);
      onAck(roomAck(command, tsunagi.v1.CommandAck.Status.DEVICE_OFFLINE, `device ${this.deviceId} is offline`));
    }
  }

  /** A sent command whose ack will not be awaited any longer: counted, and acked UNKNOWN by the link. */
  private giveUp(pending: PendingAck, detail: string): void {
    this.statsData.ackTimeouts++;
    pending.onAck(roomAck(pending.command, tsunagi.v1.CommandAck.Status.UNKNOWN, detail));
  }

  private dropQueued(status: tsunagi.v1.CommandAck.Status, detail: string): void {
    if (this.queue.length === 0) return;
    const dropped = this.queue;
    this.queue = [];
    for (const queued of dropped) queued.onAck(roomAck(queued.command, status, detail));
  }

  private correlationId(): number {
    const id = this.nextCorrelationId;
    this.nextCorrelationId = id >= Number.MAX_SAFE_INTEGER ? 1 : id + 1;
    return id;
  }
}

/** The deadline a receiver honours: control.proto's min(deadline, issued + budget) is the room's job; here, the deadline. */
function effectiveDeadline(command: tsunagi.v1.IControlCommand): number {
  return Number(command.deadlineMs ?? 0);
}

/** An ack decided on the room's side of the link (the command never reached the device). */
export function roomAck(command: tsunagi.v1.IControlCommand, status: tsunagi.v1.CommandAck.Status, detail: string): CommandAck {
  return tsunagi.v1.CommandAck.create({
    deviceId: command.deviceId ?? "",
    leaseId: command.leaseId ?? "",
    seq: command.seq ?? 0,
    status,
    origin: tsunagi.v1.CommandAck.Origin.ROOM,
    detail,
    issuedAtMs: command.issuedAtMs ?? 0,
  });
}

/** An ActionResult decided on the room's side of the link (the action never reached the device, or its answer never came). */
export function roomActionResult(action: tsunagi.v1.IDeviceAction, status: tsunagi.v1.CommandAck.Status, detail: string): tsunagi.v1.ActionResult {
  return tsunagi.v1.ActionResult.create({
    deviceId: action.deviceId ?? "", action: action.action ?? "", status, origin: tsunagi.v1.CommandAck.Origin.ROOM, detail,
  });
}
