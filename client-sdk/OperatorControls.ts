/**
 * Drives one device of a TeleopRoom: takes and gives up the control lease, sends the
 * operator's setpoint at a fixed rate with server-clock times and a deadline, keeps the
 * lease and the adapter's watchdog fed with heartbeats while the loop is stopped,
 * raises e-stops, and measures what the acks say about latency (teleop.proto,
 * "Operator channel").
 *
 * How it behaves:
 * - Values are clamped to the device profile before sending (velocity ±max_rate,
 *   position [min, max], torque ±max_effort): the room refuses out-of-range commands
 *   whole, so the SDK never sends one.
 * - Every command is a complete setpoint. Velocity and torque axes default to 0;
 *   position axes are left out (they hold their last target) until set.
 * - Stopping never relies on silence: stop() sends a neutral command and repeats it
 *   until the device acks one APPLIED, then keeps the lease alive with heartbeats.
 * - Losing the lease (released, preempted, e-stopped, demoted, watchdog...) returns the
 *   setpoint to neutral, so a lease acquired later never resumes an old motion.
 * - While the session reconnects nothing is sent (the SDK would deliver it late); the
 *   room ends the lease of a dropped operator, so acquire again after "reconnected".
 *
 * @example
 *   const session = await client.joinOrCreate("teleop", { roomId: "site-1" });
 *   const controls = new OperatorControls(session, { deviceId: "excavator-1", rateHz: 50 });
 *   controls.on("ack", (ack) => ack.status !== tsunagi.v1.CommandAck.Status.APPLIED && warn(ack.detail));
 *   await controls.acquire();                  // throws TsunagiError LEASE_HELD, ESTOPPED, ...
 *   controls.start();                          // 50 commands/s while holding the lease
 *   controls.setAxes({ boom: 0.3, swing: -0.1 });
 *   controls.neutral();                        // velocity axes to 0
 *   controls.stop();                           // stop command, then heartbeats
 *   console.log(controls.latency());           // { ackRttP50Ms: 18.2, oneWayP50Ms: 7.9, ... }
 *   await controls.estop("operator pressed e-stop");
 *   controls.dispose();
 */
import { DEFAULT_WATCHDOG_WINDOW_MS, ErrorCode, tsunagi, type Envelope, type IEnvelope } from "../proto/index.ts";
import { TsunagiError, fromServerError } from "./errors.ts";
import type { RoomSession } from "./RoomSession.ts";
import { SafeEmitter } from "../common/SafeEmitter.ts";
import { ServerClock, monotonicNow } from "./ServerClock.ts";
import { clampAxisValue, watchdogWindowMs } from "../proto/deviceProfile.ts";
import { DEVICE_ID_PATTERN } from "../proto/ids.ts";

export type DeviceProfile = tsunagi.v1.DeviceProfile;
export type LeaseState = tsunagi.v1.LeaseState;
export type CommandAck = tsunagi.v1.CommandAck;
export type Telemetry = tsunagi.v1.Telemetry;
export type EStop = tsunagi.v1.EStop;
export type Reset = tsunagi.v1.Reset;
export type ActionResult = tsunagi.v1.ActionResult;
/** An axis as the profile describes it; plain objects are accepted too. */
export type AxisProfileLike = tsunagi.v1.IAxisProfile;
/** Axis values by axis name (AxisProfile.name), in the axis's units. */
export type AxisValues = Readonly<Record<string, number>>;

const AxisMode = tsunagi.v1.AxisMode;
const AckStatus = tsunagi.v1.CommandAck.Status;
const AckOrigin = tsunagi.v1.CommandAck.Origin;
const LeaseAction = tsunagi.v1.LeaseRequest.Action;

export { DEFAULT_WATCHDOG_WINDOW_MS };
/** LeaseState.ttl_ms assumed when unknown (the server's default lease TTL). */
export const DEFAULT_LEASE_TTL_MS = 1000;
/** Deadline after issue when the profile gives no latency budget, ms. */
export const DEFAULT_DEADLINE_MS = 100;
/** Commands whose send time is kept for matching their acks; older ones are forgotten. */
const MAX_UNACKED = 1024;

export interface OperatorControlsOptions {
  /** The device to drive, as enrolled ("excavator-1"). */
  deviceId: string;
  /** Commands per second while started and holding the lease. Default 50; at most 1000. */
  rateHz?: number;
  /** The client's monotonic clock, ms (ack round trips, clock sync). Default performance.timeOrigin + performance.now(). */
  now?: () => number;
  /**
   * Called at every tick of the fixed-rate loop, just before the command is built:
   * return the complete setpoint by axis name (unnamed axes go neutral), or undefined
   * to keep the current one. Read the gamepad here, so every command carries fresh
   * input. A throw sends neutral for that tick and is reported as an "error" event.
   */
  input?: () => AxisValues | undefined;
  /** Acks kept for latency(). Default 500. */
  latencyWindow?: number;
  /** Clock resample period, ms. Default 5000. Applies when this creates the session's clock. */
  clockSyncIntervalMs?: number;
  /** Bound on lease, e-stop and reset requests, ms. Default: the session's request timeout. */
  requestTimeoutMs?: number;
  /** Where exceptions thrown by listeners go. Default: console.error. */
  onListenerError?: (error: unknown, source: string) => void;
}

/** What the acks of the last `latencyWindow` commands say. Percentiles are undefined without samples. */
export interface LatencyStats {
  /** Acks in the window. */
  samples: number;
  /** Operator-measured round trip, command sent → its ack arrived (local clock), ms. */
  ackRttP50Ms?: number;
  ackRttP99Ms?: number;
  /** Room → adapter → room round trip the room measured (CommandAck.device_round_trip_ms), median, ms. */
  deviceRoundTripP50Ms?: number;
  /** Operator → device latency the adapter measured across synced clocks (CommandAck.one_way_latency_ms), ms. */
  oneWayP50Ms?: number;
  oneWayP99Ms?: number;
  /** Status name of the newest ack ("APPLIED", "EXPIRED", ...). */
  lastAckStatus?: string;
  /** Acks in the window by status name. */
  acksByStatus: Record<string, number>;
}

/** Extra facts about an ack, measured here. */
export interface AckInfo {
  /** Command sent → ack arrived, on the local clock, ms; undefined for an ack of a command this instance did not send. */
  rttMs?: number;
}

/** The room ended our lease because the round trip exceeded the device's latency budget. */
export interface DemotedEvent {
  deviceId: string;
  /** The lease that was ended. */
  endedLeaseId: string;
  /** The room's explanation (from the LATENCY_BUDGET_EXCEEDED error), if it arrived. */
  message?: string;
  /** The LeaseState that announced it. */
  lease: LeaseState;
}

export interface OperatorControlsEvents {
  /** Telemetry of this device, at the room's fan-out rate. */
  telemetry: (telemetry: Telemetry) => void;
  /** The ack of a command for this device. */
  ack: (ack: CommandAck, info: AckInfo) => void;
  /** The device's lease or e-stop state changed (also after acquire() and friends). */
  lease: (lease: LeaseState) => void;
  /** An e-stop that covers this device (its own, or `all`), from anyone. */
  estop: (estop: EStop) => void;
  /** A supervisor cleared this device's e-stop. Motion needs a fresh lease. */
  reset: (reset: Reset) => void;
  /** The device's profile arrived or changed. */
  profile: (profile: DeviceProfile) => void;
  /** Our lease on this device was ended for exceeding its latency budget. */
  demoted: (event: DemotedEvent) => void;
  /**
   * A coded error from the room that answers no request (correlation id 0: a refused
   * heartbeat, rate limiting, the demotion notice; the room does not say which device
   * it concerns, so every OperatorControls of the session reports it), or a send that
   * failed in the loop.
   */
  error: (error: TsunagiError) => void;
}

/** One ack, for latency(). */
interface AckRecord {
  status: string;
  rttMs?: number;
  deviceRoundTripMs?: number;
  oneWayMs?: number;
}

/** A decoded profile's axes: class instances (with defaults), whatever the generated field type says. */
function axesOf(profile: DeviceProfile | undefined): tsunagi.v1.AxisProfile[] {
  return (profile?.axes ?? []) as tsunagi.v1.AxisProfile[];
}

/** The neutral setpoint of a profile: velocity and torque axes 0, position axes unset (hold). */
function neutralSetpoint(profile: DeviceProfile | undefined): (number | undefined)[] {
  return axesOf(profile).map((axis) => (axis.mode === AxisMode.AXIS_MODE_VELOCITY || axis.mode === AxisMode.AXIS_MODE_TORQUE ? 0 : undefined));
}

/** What makes two profiles' axes the same for commanding: names, order, modes, bounds. */
function axesKey(profile: DeviceProfile): string {
  return JSON.stringify(axesOf(profile).map((a) => [a.name, a.mode, a.min ?? null, a.max ?? null, a.maxRate, a.maxEffort ?? null]));
}

/** Whether two LeaseStates describe the same lease (a reply repeating a broadcast). */
function sameLease(a: LeaseState, b: LeaseState): boolean {
  return a.leaseId === b.leaseId && a.holderSessionId === b.holderSessionId && a.holderRole === b.holderRole
    && a.expiresAtMs === b.expiresAtMs && a.ttlMs === b.ttlMs && a.estopped === b.estopped && a.online === b.online
    && (b.cause === "" || a.cause === b.cause);
}

/** Nearest-rank percentile of ascending `sorted`; undefined when empty. */
function percentile(sorted: readonly number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

function statusName(status: number): string {
  return AckStatus[status] ?? String(status);
}

export class OperatorControls {
  /** The session whose room hosts the device. */
  readonly session: RoomSession;
  /** The device these controls drive. */
  readonly deviceId: string;
  /** Commands per second while started and holding the lease. */
  readonly rateHz: number;
  /** The session's server clock estimate (shared by every OperatorControls of the session). */
  readonly clock: ServerClock;
  /** The client's monotonic clock, ms. */
  private readonly now: () => number;
  /** The application's per-tick input, if any. */
  private readonly input?: () => AxisValues | undefined;
  /** How many acks latency() looks at. */
  private readonly latencyWindow: number;
  /** Bound on requests, ms (undefined: the session's default). */
  private readonly requestTimeoutMs?: number;
  /** telemetry / ack / lease / ... to the application's listeners. */
  private readonly events: SafeEmitter<OperatorControlsEvents>;
  /** The newest DeviceProfile of the device. */
  private currentProfile?: DeviceProfile;
  /** The newest LeaseState of the device. */
  private currentLease?: LeaseState;
  /** The newest Telemetry of the device. */
  private currentTelemetry?: Telemetry;
  /** Axis index by name, for the current profile. */
  private indexByName = new Map<string, number>();
  /** The setpoint by axis index; undefined leaves the axis out of commands (a position axis holds). */
  private setpoint: (number | undefined)[] = [];
  /** Whether start() was called (and stop() not since). */
  private running = false;
  /** The fixed-rate loop, while started and holding. */
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
  /** Send times of unacked commands by "leaseId/seq", oldest first, bounded. */
  private readonly sentAt = new Map<string, number>();
  /** The last `latencyWindow` acks, oldest first. */
  private readonly acks: AckRecord[] = [];
  /** The room's demotion notice, until the LeaseState that ends our lease arrives. */
  private demotionMessage?: string;
  /** Session subscriptions to undo on dispose(). */
  private readonly unsubscribe: Array<() => void> = [];
  /** Set by dispose(). */
  private disposed = false;

  constructor(session: RoomSession, options: OperatorControlsOptions) {
    const { deviceId } = options ?? ({} as OperatorControlsOptions);
    if (typeof deviceId !== "string" || !DEVICE_ID_PATTERN.test(deviceId)) throw new TypeError(`OperatorControls deviceId must match ${DEVICE_ID_PATTERN}, got ${JSON.stringify(deviceId)}`);
    const rateHz = options.rateHz ?? 50;
    if (typeof rateHz !== "number" || !(rateHz > 0 && rateHz <= 1000)) throw new TypeError(`OperatorControls rateHz must be in (0, 1000], got ${String(options.rateHz)}`);
    const latencyWindow = options.latencyWindow ?? 500;
    if (!Number.isInteger(latencyWindow) || latencyWindow < 1) throw new TypeError(`OperatorControls latencyWindow must be a positive integer, got ${String(options.latencyWindow)}`);
    if (session.closed) throw new TsunagiError(ErrorCode.ERROR_CODE_UNSPECIFIED, "the session has left the room", { retryable: false });

    this.session = session;
    this.deviceId = deviceId;
    this.rateHz = rateHz;
    this.now = options.now ?? monotonicNow;
    this.input = options.input;
    this.latencyWindow = latencyWindow;
    this.requestTimeoutMs = options.requestTimeoutMs;
    const onListenerError = options.onListenerError ?? ((error, source) => console.error(`tsunagi: OperatorControls ${source} threw`, error));
    this.events = new SafeEmitter<OperatorControlsEvents>(onListenerError);
    this.clock = ServerClock.shared(session, { now: this.now, intervalMs: options.clockSyncIntervalMs });

    // What the room sent before these controls existed (its greeting on join).
    const known = session.deviceSnapshot(deviceId);
    if (known.profile) this.applyProfile(known.profile, false);
    if (known.lease) this.applyLease(known.lease, false);

    this.unsubscribe.push(
      session.onEnvelope((envelope) => this.receive(envelope)),
      session.on("leave", () => this.halt()),
    );
  }

  // --- state -------------------------------------------------------------------------

  /** The device's latest profile, or undefined before the room sent one. */
  get profile(): DeviceProfile | undefined { return this.currentProfile; }
  /** The device's latest lease state, or undefined before the room sent one. */
  get lease(): LeaseState | undefined { return this.currentLease; }
  /** The device's latest telemetry, or undefined. */
  get telemetry(): Telemetry | undefined { return this.currentTelemetry; }
  /** True while this session holds the device's lease. */
  get holding(): boolean {
    const lease = this.currentLease;
    return !!lease && lease.leaseId !== "" && lease.holderSessionId === this.session.sessionId && !this.session.closed;
  }
  /** True between start() and stop(). Commands flow only while also holding. */
  get started(): boolean { return this.running; }
  /** The current setpoint by axis name (axes left out of commands are absent). */
  get axes(): Record<string, number> {
    const values: Record<string, number> = {};
    axesOf(this.currentProfile).forEach((axis, index) => {
      const value = this.setpoint[index];
      if (value !== undefined) values[axis.name] = value;
    });
    return values;
  }

  /** Adds a listener; returns the function that removes it. */
  on<K extends keyof OperatorControlsEvents>(event: K, listener: OperatorControlsEvents[K]): () => void {
    return this.events.on(event, listener);
  }

  // --- lease -------------------------------------------------------------------------

  /**
   * Takes the device's free lease (the holder asking again keeps it, renewed). Waits
   * for the first clock sample first, so the commands that follow carry server times.
   * Resolves with the LeaseState; rejects with TsunagiError: LEASE_HELD, ESTOPPED,
   * FORBIDDEN, DEVICE_UNKNOWN, LATENCY_BUDGET_EXCEEDED (demoted: wait), ...
   */
  async acquire(): Promise<LeaseState> {
    this.assertUsable();
    await this.clock.ready(this.requestTimeoutMs ?? 5000);
    return this.leaseRequest(LeaseAction.ACQUIRE);
  }

  /** Gives the lease up; the device stops. LEASE_NOT_HELD when we do not hold it. */
  release(): Promise<LeaseState> {
    return this.leaseRequest(LeaseAction.RELEASE);
  }

  /** Takes the lease from whoever holds it (supervisors only: FORBIDDEN otherwise). */
  async preempt(): Promise<LeaseState> {
    this.assertUsable();
    await this.clock.ready(this.requestTimeoutMs ?? 5000);
    return this.leaseRequest(LeaseAction.PREEMPT);
  }

  /** Hands our lease to another session in the room (its Colyseus session id). */
  transfer(toSessionId: string): Promise<LeaseState> {
    if (typeof toSessionId !== "string" || toSessionId === "") return Promise.reject(new TypeError("transfer() needs the target's session id"));
    return this.leaseRequest(LeaseAction.TRANSFER, toSessionId);
  }

  // --- setpoint ----------------------------------------------------------------------

  /**
   * Sets axes by name, keeping the others; values are clamped to the profile's bounds.
   * Returns the values as they will be sent. Throws TypeError (and changes nothing) for
   * an unknown name, a value that is not a finite number, an axis that cannot be
   * commanded, or before the device's profile arrived.
   */
  setAxes(values: AxisValues): Record<string, number> {
    const axes = axesOf(this.requireProfile());
    if (values === null || typeof values !== "object") throw new TypeError("setAxes() takes an object of axis values by name");
    const updates: Array<[number, number]> = [];
    const applied: Record<string, number> = {};
    for (const [name, value] of Object.entries(values)) {
      const index = this.indexByName.get(name);
      if (index === undefined) {
        throw new TypeError(`device ${this.deviceId} has no axis "${name}" (axes: ${axes.map((a) => a.name).join(", ")})`);
      }
      const clamped = clampAxisValue(axes[index], value);
      updates.push([index, clamped]);
      applied[name] = clamped;
    }
    for (const [index, value] of updates) this.setpoint[index] = value;
    return applied;
  }

  /**
   * Sets axes by position in the profile (values[i] for axis i); undefined or null
   * entries leave that axis as it is. Clamped like setAxes(); TypeError for an index
   * beyond the profile's axes.
   */
  setAxesByIndex(values: ReadonlyArray<number | null | undefined>): Record<string, number> {
    const axes = axesOf(this.requireProfile());
    if (!Array.isArray(values)) throw new TypeError("setAxesByIndex() takes an array of values");
    if (values.length > axes.length) throw new TypeError(`device ${this.deviceId} has ${axes.length} axes, got ${values.length} values`);
    const byName: Record<string, number> = {};
    values.forEach((value, index) => { if (value !== undefined && value !== null) byName[axes[index].name] = value; });
    return this.setAxes(byName);
  }

  /** Back to neutral: velocity and torque axes 0, position axes left out (they hold). */
  neutral(): void {
    this.setpoint = neutralSetpoint(this.currentProfile);
  }

  // --- the loop ----------------------------------------------------------------------

  /**
   * Starts the fixed-rate loop: while holding the lease, a ControlCommand with the
   * current setpoint every 1/rateHz. Safe to call before acquiring; the loop runs
   * whenever the lease is ours.
   */
  start(): void {
    this.assertUsable();
    if (this.running) return;
    this.running = true;
    this.stopSeq = 0;
    this.reconcile();
  }

  /**
   * Stops the loop: the setpoint goes neutral and a stop command is sent at once, then
   * repeated at the heartbeat period until the device acks one APPLIED; after that
   * heartbeats keep the lease and the watchdog fed until the lease ends.
   */
  stop(): void {
    if (!this.running) return;
    this.running = false;
    this.neutral();
    this.reconcile();
    if (this.holding) this.stopSeq = this.sendCommand(neutralSetpoint(this.currentProfile)) ?? 0;
  }

  // --- actions -----------------------------------------------------------------------

  /** The discrete manoeuvres the device offers (its profile's actions); empty before the profile arrives. */
  get actions(): tsunagi.v1.ActionProfile[] {
    return (this.currentProfile?.actions ?? []) as tsunagi.v1.ActionProfile[];
  }

  /**
   * Asks the device for one of its actions: a drone's `perform("arm")`,
   * `perform("takeoff", 5)` (metres), `perform("hold")`, `perform("land")`. Needs the
   * lease, like a command. Resolves with the ActionResult: status APPLIED when the device
   * accepted the manoeuvre, otherwise why not (ESTOPPED, NO_LEASE, EXPIRED, OUT_OF_BOUNDS,
   * or STATUS_UNSPECIFIED with the device's own reason, such as a take-off while
   * disarmed). Throws TypeError for an action the profile does not offer, and rejects with
   * TsunagiError LEASE_NOT_HELD without the lease, or when no answer came in time.
   */
  async perform(action: string, value = 0): Promise<ActionResult> {
    this.assertUsable();
    const profile = this.requireProfile();
    if (!this.actions.some((candidate) => candidate.name === action)) {
      const offered = this.actions.map((candidate) => candidate.name).join(", ");
      throw new TypeError(`device ${this.deviceId} offers no action "${String(action).slice(0, 32)}"${offered ? ` (actions: ${offered})` : " (it has none)"}`);
    }
    if (typeof value !== "number" || !Number.isFinite(value)) throw new TypeError(`perform() value must be a finite number, got ${String(value)}`);
    const lease = this.currentLease;
    if (!lease || !this.holding) throw new TsunagiError(ErrorCode.LEASE_NOT_HELD, `perform("${action}") needs the lease of ${this.deviceId}: acquire() first`, { retryable: false });
    await this.clock.ready(this.requestTimeoutMs ?? 5000);
    const issuedAtMs = this.clock.now();
    const deadlineMs = issuedAtMs + (profile.latencyBudgetMs || DEFAULT_DEADLINE_MS);
    const reply = await this.session.request({ deviceAction: { deviceId: this.deviceId, leaseId: lease.leaseId, action, value, issuedAtMs, deadlineMs } }, this.requestTimeoutMs);
    if (reply.body !== "actionResult") throw new TsunagiError(ErrorCode.WRONG_TYPE, `expected an ActionResult in reply, got ${String(reply.body)}`);
    return reply.actionResult as ActionResult;
  }

  // --- e-stop ------------------------------------------------------------------------

  /**
   * Raises an e-stop for this device. The setpoint goes neutral at once. Resolves with
   * the room's confirmation; rejects with TsunagiError FORBIDDEN for an observer. Never
   * refused locally: it is sent even after dispose(), as long as the session is open.
   */
  estop(reason: string = "operator e-stop"): Promise<EStop> {
    this.neutral();
    return this.estopRequest({ deviceId: this.deviceId, reason, raisedAtMs: this.clock.now() });
  }

  /** Raises an e-stop for every device in the room. */
  estopAll(reason: string = "operator e-stop (all devices)"): Promise<EStop> {
    this.neutral();
    return this.estopRequest({ all: true, reason, raisedAtMs: this.clock.now() });
  }

  /**
   * Clears the device's latched e-stop (supervisors only: FORBIDDEN otherwise). The
   * device stays stopped; motion needs a fresh lease (acquire()).
   */
  async reset(reason: string = ""): Promise<Reset> {
    const reply = await this.session.request({ reset: { deviceId: this.deviceId, reason } }, this.requestTimeoutMs);
    if (reply.body !== "reset") throw new TsunagiError(ErrorCode.WRONG_TYPE, `expected a Reset in reply, got ${String(reply.body)}`);
    return reply.reset as Reset;
  }

  // --- latency -----------------------------------------------------------------------

  /** Latency statistics over the acks of the last `latencyWindow` commands. */
  latency(): LatencyStats {
    const sorted = (pick: (record: AckRecord) => number | undefined) =>
      this.acks.map(pick).filter((v): v is number => v !== undefined).sort((a, b) => a - b);
    const rtt = sorted((r) => r.rttMs);
    const device = sorted((r) => r.deviceRoundTripMs);
    const oneWay = sorted((r) => r.oneWayMs);
    const acksByStatus: Record<string, number> = {};
    for (const record of this.acks) acksByStatus[record.status] = (acksByStatus[record.status] ?? 0) + 1;
    return {
      samples: this.acks.length,
      ackRttP50Ms: percentile(rtt, 0.5),
      ackRttP99Ms: percentile(rtt, 0.99),
      deviceRoundTripP50Ms: percentile(device, 0.5),
      oneWayP50Ms: percentile(oneWay, 0.5),
      oneWayP99Ms: percentile(oneWay, 0.99),
      lastAckStatus: this.acks.at(-1)?.status,
      acksByStatus,
    };
  }

  // --- lifecycle ---------------------------------------------------------------------

  /**
   * Stops everything this instance does. If it holds the lease, it sends a stop command
   * and releases the lease first (fire-and-forget), so the device stops at once rather
   * than when its watchdog notices the silence. Idempotent.
   */
  dispose(): void {
    if (this.disposed) return;
    if (this.holding && !this.session.reconnecting) {
      this.running = false;
      this.neutral();
      this.sendCommand();
      this.session.request({ leaseRequest: { deviceId: this.deviceId, action: LeaseAction.RELEASE } }, this.requestTimeoutMs).catch(() => {});
    }
    this.disposed = true;
    this.halt();
    for (const off of this.unsubscribe) off();
    this.unsubscribe.length = 0;
    this.clock.release();
    this.events.removeAll();
  }

  // --- from the room -----------------------------------------------------------------

  private receive(envelope: Envelope) {
    // Decoded bodies are instances of the generated classes (every field present), even
    // though the Envelope's member types are the optional-field shapes.
    switch (envelope.body) {
      case "deviceProfile": {
        const profile = envelope.deviceProfile as DeviceProfile;
        if (profile.deviceId === this.deviceId) this.applyProfile(profile, true);
        break;
      }
      case "leaseState": {
        const lease = envelope.leaseState as LeaseState;
        if (lease.deviceId === this.deviceId) this.applyLease(lease, true);
        break;
      }
      case "commandAck": {
        const ack = envelope.commandAck as CommandAck;
        if (ack.deviceId === this.deviceId) this.applyAck(ack);
        break;
      }
      case "telemetry": {
        const telemetry = envelope.telemetry as Telemetry;
        if (telemetry.deviceId === this.deviceId) {
          this.currentTelemetry = telemetry;
          this.events.emit("telemetry", telemetry);
        }
        break;
      }
      case "estop": {
        const estop = envelope.estop as EStop;
        if (estop.deviceId === this.deviceId || estop.all || !estop.deviceId) {
          this.neutral();
          this.events.emit("estop", estop);
        }
        break;
      }
      case "reset": {
        const reset = envelope.reset as Reset;
        if (reset.deviceId === this.deviceId) this.events.emit("reset", reset);
        break;
      }
      case "error":
        if (!envelope.correlationId) {
          const { code, message, retryable } = envelope.error;
          const error = new TsunagiError(code ?? ErrorCode.INTERNAL, message || "error from the room", { retryable: retryable ?? undefined });
          if (error.code === ErrorCode.LATENCY_BUDGET_EXCEEDED) this.demotionMessage = error.message;
          this.events.emit("error", error);
        }
        break;
    }
  }

  private applyProfile(profile: DeviceProfile, emit: boolean) {
    const changed = !this.currentProfile || axesKey(this.currentProfile) !== axesKey(profile);
    this.currentProfile = profile;
    if (changed) {
      // New axes or bounds: what was set may mean something else now; start from neutral.
      this.indexByName = new Map(axesOf(profile).map((axis, index) => [axis.name, index]));
      this.setpoint = neutralSetpoint(profile);
    }
    this.reconcile();
    if (emit) this.events.emit("profile", profile);
  }

  private applyLease(lease: LeaseState, emit: boolean) {
    const previous = this.currentLease;
    if (previous && sameLease(previous, lease)) return; // a reply repeating the broadcast
    const wasHolding = this.holding;
    this.currentLease = lease;
    if (lease.leaseId !== this.seqLeaseId) this.resetSequences(lease.leaseId);
    if (wasHolding && !this.holding) this.neutral();
    const demoted = lease.cause === "latency-budget" && !!previous && previous.holderSessionId === this.session.sessionId
      && previous.leaseId !== "" && lease.endedLeaseId === previous.leaseId;
    this.reconcile();
    if (!emit) return;
    this.events.emit("lease", lease);
    if (demoted) {
      this.events.emit("demoted", { deviceId: this.deviceId, endedLeaseId: lease.endedLeaseId, message: this.demotionMessage, lease });
      this.demotionMessage = undefined;
    }
  }

  private applyAck(ack: CommandAck) {
    const key = `${ack.leaseId}/${ack.seq}`;
    const sentAt = this.sentAt.get(key);
    if (sentAt !== undefined) this.sentAt.delete(key);
    const rttMs = sentAt === undefined ? undefined : this.now() - sentAt;
    const fromAdapter = ack.origin === AckOrigin.ADAPTER;
    this.acks.push({
      status: statusName(ack.status),
      rttMs,
      deviceRoundTripMs: ack.deviceRoundTripMs > 0 ? ack.deviceRoundTripMs : undefined,
      oneWayMs: fromAdapter || ack.oneWayLatencyMs !== 0 ? ack.oneWayLatencyMs : undefined,
    });
    if (this.acks.length > this.latencyWindow) this.acks.shift();
    if (this.stopSeq && ack.status === AckStatus.APPLIED && ack.leaseId === this.seqLeaseId && ack.seq >= this.stopSeq) this.stopSeq = 0;
    this.events.emit("ack", ack, { rttMs });
  }

  // --- sending -----------------------------------------------------------------------

  /** Starts or stops the timers to match the state: commands while started and holding; heartbeats while holding. */
  private reconcile() {
    const holding = this.holding && !this.disposed;
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

  /** Stops the timers (session ended, or disposed). */
  private halt() {
    this.running = false;
    if (this.commandTimer) clearInterval(this.commandTimer);
    if (this.heartbeatTimer) clearTimeout(this.heartbeatTimer);
    this.commandTimer = undefined;
    this.heartbeatTimer = undefined;
  }

  /** One tick of the fixed-rate loop. */
  private tick() {
    if (!this.holding || this.disposed) return;
    if (this.input) {
      try {
        const values = this.input();
        if (values !== undefined) {
          this.neutral();
          this.setAxes(values);
        }
      } catch (error) {
        this.neutral();
        this.events.emit("error", error instanceof TsunagiError ? error : new TsunagiError(ErrorCode.WRONG_TYPE, `input() failed: ${(error as Error)?.message ?? String(error)}`, { cause: error }));
      }
    }
    this.sendCommand();
  }

  /**
   * Min(watchdog window / 2, lease TTL / 4): the longest the controls stay silent while
   * holding, so neither the adapter's watchdog nor the lease runs out.
   */
  private heartbeatPeriodMs(): number {
    const watchdog = watchdogWindowMs(this.currentProfile);
    const ttl = this.currentLease?.ttlMs || DEFAULT_LEASE_TTL_MS;
    return Math.max(5, Math.min(watchdog / 2, ttl / 4));
  }

  /** Sends a heartbeat (or stop()'s unconfirmed stop command) when nothing else went out for a period. */
  private heartbeatDue() {
    this.heartbeatTimer = undefined;
    if (!this.holding || this.disposed) return;
    const period = this.heartbeatPeriodMs();
    const idle = this.now() - this.lastSentAt;
    if (idle >= period - 2) {
      // stop()'s command again, neutral whatever setAxes() did since: a stop must never carry motion.
      if (this.stopSeq && !this.running) this.sendCommand(neutralSetpoint(this.currentProfile));
      else this.sendHeartbeat();
      this.heartbeatTimer = setTimeout(() => this.heartbeatDue(), period);
    } else {
      this.heartbeatTimer = setTimeout(() => this.heartbeatDue(), period - idle);
    }
  }

  /** Sends `setpoint` (the current one by default); returns its seq, or undefined when nothing was sent. */
  private sendCommand(setpoint: ReadonlyArray<number | undefined> = this.setpoint): number | undefined {
    const lease = this.currentLease;
    if (!lease || !this.holding || this.session.reconnecting) return undefined;
    if (lease.leaseId !== this.seqLeaseId) this.resetSequences(lease.leaseId);
    const seq = this.commandSeq + 1;
    const issuedAtMs = this.clock.now();
    const budgetMs = this.currentProfile?.latencyBudgetMs || DEFAULT_DEADLINE_MS;
    const axes: tsunagi.v1.IAxisValue[] = [];
    setpoint.forEach((value, index) => { if (value !== undefined) axes.push({ index, value }); });
    if (!this.send({ correlationId: 0, controlCommand: { deviceId: this.deviceId, leaseId: lease.leaseId, seq, issuedAtMs, deadlineMs: issuedAtMs + budgetMs, axes } })) return undefined;
    this.commandSeq = seq;
    this.lastSentAt = this.now();
    this.sentAt.set(`${lease.leaseId}/${seq}`, this.lastSentAt);
    if (this.sentAt.size > MAX_UNACKED) this.sentAt.delete(this.sentAt.keys().next().value!);
    return seq;
  }

  private sendHeartbeat() {
    const lease = this.currentLease;
    if (!lease || !this.holding || this.session.reconnecting) return;
    if (lease.leaseId !== this.seqLeaseId) this.resetSequences(lease.leaseId);
    const seq = this.heartbeatSeq + 1;
    if (!this.send({ correlationId: 0, heartbeat: { deviceId: this.deviceId, leaseId: lease.leaseId, seq, sentAtMs: this.clock.now() } })) return;
    this.heartbeatSeq = seq;
    this.lastSentAt = this.now();
  }

  /** Sends an envelope; a failure (the session ended) becomes an "error" event. */
  private send(envelope: IEnvelope): boolean {
    try {
      this.session.sendEnvelope(envelope);
      return true;
    } catch (error) {
      if (this.session.closed) this.halt();
      this.events.emit("error", fromServerError(error));
      return false;
    }
  }

  /** Sequence counters are per lease (teleop.proto): a new lease starts again at 1. */
  private resetSequences(leaseId: string) {
    this.seqLeaseId = leaseId;
    this.commandSeq = 0;
    this.heartbeatSeq = 0;
    this.stopSeq = 0;
  }

  // --- requests ----------------------------------------------------------------------

  private async leaseRequest(action: tsunagi.v1.LeaseRequest.Action, toSessionId?: string): Promise<LeaseState> {
    this.assertUsable();
    const reply = await this.session.request({ leaseRequest: { deviceId: this.deviceId, action, toSessionId: toSessionId ?? "" } }, this.requestTimeoutMs);
    const lease = reply.body === "leaseState" ? reply.leaseState as LeaseState : undefined;
    if (!lease || lease.deviceId !== this.deviceId) {
      throw new TsunagiError(ErrorCode.WRONG_TYPE, `expected the LeaseState of ${this.deviceId} in reply, got ${String(reply.body)}`);
    }
    if (!this.disposed) this.applyLease(lease, true);
    return lease;
  }

  private async estopRequest(estop: tsunagi.v1.IEStop): Promise<EStop> {
    const reply = await this.session.request({ estop }, this.requestTimeoutMs);
    if (reply.body !== "estop") throw new TsunagiError(ErrorCode.WRONG_TYPE, `expected an EStop in reply, got ${String(reply.body)}`);
    return reply.estop as EStop;
  }

  private requireProfile(): DeviceProfile {
    if (!this.currentProfile) throw new TypeError(`no DeviceProfile for ${this.deviceId} yet: its axes are unknown`);
    return this.currentProfile;
  }

  private assertUsable() {
    if (this.disposed) throw new TsunagiError(ErrorCode.ERROR_CODE_UNSPECIFIED, `OperatorControls for ${this.deviceId} were disposed`, { retryable: false });
    if (this.session.closed) throw new TsunagiError(ErrorCode.ERROR_CODE_UNSPECIFIED, "the session has left the room", { retryable: false });
  }
}
