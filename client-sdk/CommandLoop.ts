/**
 * The operator's fixed-rate sender for one device: while started and holding the lease,
 * a ControlCommand with the current setpoint every 1/rateHz; while holding, never silent
 * longer than the heartbeat period, so neither the adapter's watchdog nor the lease runs
 * out (teleop.proto, "Operator channel").
 *
 * Its rules:
 * - Sequence numbers are per lease: a new lease starts commands and heartbeats again at 1.
 * - Commands carry server-clock times and a deadline of the profile's latency budget
 *   (DEFAULT_DEADLINE_MS when the profile leaves it 0).
 * - Commands count as heartbeats; a Heartbeat goes out only after a silent period of
 *   min(watchdog window / 2, lease TTL / 4).
 * - stop() sends a neutral command at once and repeats it, instead of a heartbeat, until
 *   an ack APPLIED confirms it: a lost stop command cannot leave the machine moving. The
 *   repeats are neutral whatever the setpoint became since.
 * - The `input` hook is read at every tick, so each command carries a fresh reading; a
 *   throw sends neutral for that tick and is reported.
 * - It keeps no queue: each tick sends the setpoint of that moment or nothing, and what
 *   could not go out is never sent later. An e-stop, a request of its own, therefore
 *   never waits behind a pending command.
 *
 * @example
 *   const loop = new CommandLoop({ deviceId: "excavator-1", rateHz: 50, setpoint }, host);
 *   loop.start();          // commands flow whenever host.heldLease() answers a lease
 *   loop.reconcile();      // after the lease or the profile changed
 *   loop.stop();           // a stop command, repeated until applied, then heartbeats
 */
import { ErrorCode, tsunagi, type IEnvelope } from "../proto/index.ts";
import { watchdogWindowMs } from "../proto/deviceProfile.ts";
import { TsunagiError } from "./errors.ts";
import type { AxisSetpoint, AxisValues, Setpoint } from "./Setpoint.ts";

type DeviceProfile = tsunagi.v1.DeviceProfile;
type LeaseState = tsunagi.v1.LeaseState;

const AckStatus = tsunagi.v1.CommandAck.Status;

/** LeaseState.ttl_ms assumed when unknown (the server's default lease TTL). */
export const DEFAULT_LEASE_TTL_MS = 1000;
/** Deadline after issue when the profile gives no latency budget, ms. */
export const DEFAULT_DEADLINE_MS = 100;
/** The shortest heartbeat period, ms, whatever the profile says: a floor on the timer rate. */
const MIN_HEARTBEAT_PERIOD_MS = 5;
/** A check this close to the heartbeat period counts as due: timers fire a little early or late. */
const HEARTBEAT_SLACK_MS = 2;

/** What the loop needs from its owner. */
export interface CommandLoopHost {
  /** The client's monotonic clock, ms: when things went out. */
  now(): number;
  /** The server clock's estimate of now, ms: the times commands and heartbeats carry. */
  serverNow(): number;
  /** The device's newest profile: the latency budget and the watchdog window. */
  profile(): DeviceProfile | undefined;
  /** The lease this session holds and may send under, or undefined (not ours, or the controls are done). */
  heldLease(): LeaseState | undefined;
  /** Puts an envelope on the wire; false when nothing went out (the host says why, if it is worth saying). */
  send(envelope: IEnvelope): boolean;
  /** A command went out at `atMs` (client clock), for matching its ack. */
  commandSent(leaseId: string, seq: number, atMs: number): void;
  /** The input hook threw; that tick went out neutral. */
  inputFailed(error: TsunagiError): void;
}

export interface CommandLoopOptions {
  /** The device commands are for. */
  deviceId: string;
  /** Commands per second while started and holding. */
  rateHz: number;
  /** The setpoint commands carry; the loop writes the input hook's values into it. */
  setpoint: Setpoint;
  /** Called at every tick: the complete setpoint by name, or undefined to keep the current one. */
  input?: () => AxisValues | undefined;
}

export class CommandLoop {
  /** Commands per second while started and holding. */
  readonly rateHz: number;
  /** The device commands are for. */
  private readonly deviceId: string;
  /** The setpoint commands carry. */
  private readonly setpoint: Setpoint;
  /** The application's per-tick input, if any. */
  private readonly input?: () => AxisValues | undefined;
  /** Clocks, lease, profile and the wire. */
  private readonly host: CommandLoopHost;
  /** Whether start() was called (and stop() not since). */
  private running = false;
  /** The fixed-rate timer, while started and holding. */
  private commandTimer?: ReturnType<typeof setInterval>;
  /** The next heartbeat check, while holding. */
  private heartbeatTimer?: ReturnType<typeof setTimeout>;
  /** The lease the sequence counters below belong to. */
  private seqLeaseId = "";
  /** Last ControlCommand.seq sent under seqLeaseId. */
  private commandSeq = 0;
  /** Last Heartbeat.seq sent under seqLeaseId. */
  private heartbeatSeq = 0;
  /** Client clock of the last command or heartbeat sent, ms. */
  private lastSentAt = -Infinity;
  /** Non-zero while stop()'s neutral command awaits an APPLIED ack: its seq. */
  private stopSeq = 0;

  constructor(options: CommandLoopOptions, host: CommandLoopHost) {
    this.deviceId = options.deviceId;
    this.rateHz = options.rateHz;
    this.setpoint = options.setpoint;
    this.input = options.input;
    this.host = host;
  }

  /** True between start() and stop() (or halt()). Commands flow only while also holding. */
  get started(): boolean {
    return this.running;
  }

  /** Starts the fixed-rate commands; they flow whenever the lease is held. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.stopSeq = 0;
    this.reconcile();
  }

  /** Stops the commands: a neutral command at once, repeated until applied, then heartbeats while holding. */
  stop(): void {
    if (!this.running) return;
    this.running = false;
    this.setpoint.neutral();
    this.reconcile();
    this.stopSeq = this.sendStop() ?? 0;
  }

  /** Sends one neutral command now; answers its seq, or undefined when nothing went out. */
  sendStop(): number | undefined {
    return this.sendCommand(this.setpoint.neutralValues());
  }

  /** Stops the timers and the commands for good (the session ended, or the controls were disposed). */
  halt(): void {
    this.running = false;
    if (this.commandTimer) clearInterval(this.commandTimer);
    if (this.heartbeatTimer) clearTimeout(this.heartbeatTimer);
    this.commandTimer = undefined;
    this.heartbeatTimer = undefined;
  }

  /** The device's lease is now `leaseId`: sequence counters are per lease, so a new one starts again at 1. */
  leaseChanged(leaseId: string): void {
    if (leaseId === this.seqLeaseId) return;
    this.seqLeaseId = leaseId;
    this.commandSeq = 0;
    this.heartbeatSeq = 0;
    this.stopSeq = 0;
  }

  /** An ack of this device: an APPLIED ack at or after stop()'s command confirms the stop. */
  acked(ack: tsunagi.v1.CommandAck): void {
    if (this.stopSeq && ack.status === AckStatus.APPLIED && ack.leaseId === this.seqLeaseId && ack.seq >= this.stopSeq) this.stopSeq = 0;
  }

  /** Starts or stops the timers to match the state: commands while started and holding; heartbeats while holding. */
  reconcile(): void {
    const holding = this.host.heldLease() !== undefined;
    const commanding = holding && this.running;
    if (commanding && !this.commandTimer) {
      this.commandTimer = setInterval(() => this.tick(), 1000 / this.rateHz);
      this.tick();
    } else if (!commanding && this.commandTimer) {
      clearInterval(this.commandTimer);
      this.commandTimer = undefined;
    }
    if (holding && !this.heartbeatTimer) {
      this.heartbeatTimer = setTimeout(() => this.heartbeatDue(), this.heartbeatPeriodMs());
    } else if (!holding && this.heartbeatTimer) {
      clearTimeout(this.heartbeatTimer);
      this.heartbeatTimer = undefined;
    }
  }

  /** One tick of the fixed-rate loop: the input of this moment, then the command. */
  private tick() {
    if (!this.host.heldLease()) return;
    this.readInput();
    this.sendCommand(this.setpoint.values);
  }

  private readInput() {
    if (!this.input) return;
    try {
      const values = this.input();
      if (values === undefined) return;
      this.setpoint.neutral();
      this.setpoint.set(values);
    } catch (error) {
      this.setpoint.neutral();
      this.host.inputFailed(error instanceof TsunagiError ? error : new TsunagiError(ErrorCode.WRONG_TYPE, `input() failed: ${(error as Error)?.message ?? String(error)}`, { cause: error }));
    }
  }

  /** Min(watchdog window / 2, lease TTL / 4): the longest the loop stays silent while holding. */
  private heartbeatPeriodMs(): number {
    const watchdog = watchdogWindowMs(this.host.profile());
    const ttl = this.host.heldLease()?.ttlMs || DEFAULT_LEASE_TTL_MS;
    return Math.max(MIN_HEARTBEAT_PERIOD_MS, Math.min(watchdog / 2, ttl / 4));
  }

  /** Sends a heartbeat (or stop()'s unconfirmed stop command) when nothing else went out for a period. */
  private heartbeatDue() {
    this.heartbeatTimer = undefined;
    if (!this.host.heldLease()) return;
    const period = this.heartbeatPeriodMs();
    const idle = this.host.now() - this.lastSentAt;
    if (idle >= period - HEARTBEAT_SLACK_MS) {
      if (this.stopSeq && !this.running) this.sendStop();
      else this.sendHeartbeat();
      this.heartbeatTimer = setTimeout(() => this.heartbeatDue(), period);
    } else {
      this.heartbeatTimer = setTimeout(() => this.heartbeatDue(), period - idle);
    }
  }

  /** Sends `setpoint` under the held lease; answers its seq, or undefined when nothing was sent. */
  private sendCommand(setpoint: AxisSetpoint): number | undefined {
    const lease = this.host.heldLease();
    if (!lease) return undefined;
    this.leaseChanged(lease.leaseId);
    const seq = this.commandSeq + 1;
    const issuedAtMs = this.host.serverNow();
    const budgetMs = this.host.profile()?.latencyBudgetMs || DEFAULT_DEADLINE_MS;
    const axes: tsunagi.v1.IAxisValue[] = [];
    setpoint.forEach((value, index) => { if (value !== undefined) axes.push({ index, value }); });
    const controlCommand = { deviceId: this.deviceId, leaseId: lease.leaseId, seq, issuedAtMs, deadlineMs: issuedAtMs + budgetMs, axes };
    if (!this.host.send({ correlationId: 0, controlCommand })) return undefined;
    this.commandSeq = seq;
    this.lastSentAt = this.host.now();
    this.host.commandSent(lease.leaseId, seq, this.lastSentAt);
    return seq;
  }

  private sendHeartbeat() {
    const lease = this.host.heldLease();
    if (!lease) return;
    this.leaseChanged(lease.leaseId);
    const seq = this.heartbeatSeq + 1;
    if (!this.host.send({ correlationId: 0, heartbeat: { deviceId: this.deviceId, leaseId: lease.leaseId, seq, sentAtMs: this.host.serverNow() } })) return;
    this.heartbeatSeq = seq;
    this.lastSentAt = this.host.now();
  }
}
