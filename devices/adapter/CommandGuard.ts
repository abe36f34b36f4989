/**
 * The adapter-side safety state of ONE device, and the checks every ControlCommand
 * passes before it may reach the hardware (control.proto, ControlCommand, in its order):
 *
 *   ESTOPPED       an e-stop is latched
 *   NO_LEASE       lease_id is not the lease the room last announced, or that lease is dead
 *   EXPIRED        now > min(deadline_ms, issued_at_ms + latency budget); deadline 0 = expired
 *   STALE          seq at or below the last seq applied under this lease
 *   OUT_OF_BOUNDS  a value not finite or outside its axis's bounds; an unknown, repeated
 *                  or ambiguous axis (name and index both, or neither)
 *   APPLIED        otherwise; the seq is recorded (and reported as last applied, unless
 *                  the device then refuses the setpoint: setpointRefused)
 *
 * A pure class with no timers or I/O: the SafetyController feeds it the room's lease
 * announcements, e-stops, resets and watchdog trips, and asks it about each command and
 * heartbeat. Lease rules:
 * - The room announces the current lease (LeaseState); "" means none.
 * - A lease that ended is dead for good: a later announcement of it is ignored. A lease
 *   ends when another is announced, when "" is announced, and when an e-stop, a reset
 *   or a watchdog trip kills it.
 * - A fresh lease clears the watchdog latch, never the e-stop latch: only reset() does,
 *   and the lease current at the reset dies with it, so motion needs a lease granted
 *   after the reset.
 *
 * @example
 *   const guard = new CommandGuard();
 *   guard.announceLease("lease-7");                        // from LeaseState
 *   const verdict = guard.check(command, clock.serverNow(), 50, profile);
 *   if (verdict.status === CommandStatus.APPLIED) apply(verdict.setpoint);
 *   ack(verdict.status, verdict.detail);
 *   guard.estop();                                         // EStop: the lease dies, commands are ESTOPPED
 */
import { tsunagi } from "../../proto/index.ts";
import { actionProblem, deadlineProblem, resolveAxisValues, type SetpointEntry } from "../../proto/deviceProfile.ts";

export const CommandStatus = tsunagi.v1.CommandAck.Status;
export type CommandStatus = tsunagi.v1.CommandAck.Status;

export type { SetpointEntry };

/** The guard's answer about one command. */
export interface GuardVerdict {
  status: CommandStatus;
  /** Human-readable reason for a refusal ("" when applied); goes into CommandAck.detail. */
  detail: string;
  /** APPLIED only: every profile axis with its commanded value, in profile order. */
  setpoint?: SetpointEntry[];
}

/** What an announcement did. */
export type LeaseAnnouncement =
  /** "" announced: no lease is current now (whether one was or not). */
  | "cleared"
  /** The current lease announced again: nothing changed. */
  | "unchanged"
  /** A fresh lease is current; the previous one (if any) is dead and the watchdog latch cleared. */
  | "granted"
  /** A dead lease announced: ignored, and the current lease (if any) stays. */
  | "dead";

export interface CommandGuardOptions {
  /** Dead lease ids remembered; the oldest are forgotten beyond this. Default 4096. */
  maxDeadLeases?: number;
}

/** Heartbeat fields the guard needs. */
export interface HeartbeatLike {
  leaseId?: string | null;
  seq?: number | null;
  sentAtMs?: number | null;
}

export class CommandGuard {
  /** The lease the room last announced, unless it died since; undefined when none. */
  private current: string | undefined;
  /**
   * Lease ids that ended and why, oldest first (a Map keeps insertion order). Lease ids
   * are never reused, so this only guards against late or replayed announcements; it is
   * bounded, forgetting the oldest.
   */
  private readonly dead = new Map<string, DeathCause>();
  /** Bound on `dead`. */
  private readonly maxDeadLeases: number;
  /** The highest seq applied under the current lease; 0 before the first. */
  private appliedSeq = 0;
  /** The highest heartbeat seq accepted under the current lease; 0 before the first. */
  private heartbeatSeq = 0;
  /** The lease and seq of the last applied command, for telemetry; cleared by reset(). */
  private lastAppliedCommand: { leaseId: string; seq: number } | undefined;
  /** `lastAppliedCommand` before the last APPLIED check: what setpointRefused() restores. */
  private appliedBeforeLastCheck: { leaseId: string; seq: number } | undefined;
  /** An e-stop is latched: everything is refused ESTOPPED until reset(). */
  private estopLatched = false;
  /** The watchdog tripped and no fresh lease has been announced since. */
  private watchdogLatched = false;

  constructor(options: CommandGuardOptions = {}) {
    this.maxDeadLeases = options.maxDeadLeases ?? 4096;
    if (!Number.isInteger(this.maxDeadLeases) || this.maxDeadLeases < 1) {
      throw new TypeError(`maxDeadLeases must be a positive integer, got ${String(options.maxDeadLeases)}`);
    }
  }

  /** The lease commands are accepted under; undefined when none. */
  get currentLease(): string | undefined {
    return this.current;
  }

  get estopped(): boolean {
    return this.estopLatched;
  }

  get watchdogTripped(): boolean {
    return this.watchdogLatched;
  }

  /** The lease and seq of the last applied command since start or reset; undefined when none. */
  get lastApplied(): { leaseId: string; seq: number } | undefined {
    return this.lastAppliedCommand && { ...this.lastAppliedCommand };
  }

  /** Whether `leaseId` has ended here (and will never be accepted again). */
  isDead(leaseId: string): boolean {
    return this.dead.has(leaseId);
  }

  /** The room's LeaseState: `leaseId` is the current lease ("" for none). */
  announceLease(leaseId: string): LeaseAnnouncement {
    if (typeof leaseId !== "string") throw new TypeError(`announceLease needs a string lease id ("" for none), got ${typeof leaseId}`);
    if (leaseId === "") {
      this.killCurrent("ended");
      return "cleared";
    }
    if (leaseId === this.current) return "unchanged";
    if (this.dead.has(leaseId)) return "dead";
    this.killCurrent("ended");
    this.current = leaseId;
    this.watchdogLatched = false;
    return "granted";
  }

  /** Latches an e-stop (idempotent). The current lease dies. */
  estop(): void {
    this.estopLatched = true;
    this.killCurrent("estop");
  }

  /**
   * Clears the e-stop latch. No lease is current afterwards, and the one that was dies:
   * motion needs a lease the room grants after the reset. Clears the last-applied record.
   */
  reset(): void {
    this.estopLatched = false;
    this.killCurrent("reset");
    this.lastAppliedCommand = undefined;
  }

  /** The watchdog tripped: the current lease dies and the latch holds until a fresh lease. Returns the lease killed. */
  tripWatchdog(): string | undefined {
    const killed = this.current;
    this.watchdogLatched = true;
    this.killCurrent("watchdog");
    return killed;
  }

  /**
   * Checks a command in the contract's order (see the file comment). `nowServerMs` is the
   * adapter's server-clock estimate; `budgetMs` the device's latency budget (0: none
   * known here, so the deadline alone counts); `profile` the profile the adapter
   * published, against which axes are resolved. On APPLIED the seq is recorded.
   */
  check(command: tsunagi.v1.IControlCommand, nowServerMs: number, budgetMs: number, profile: tsunagi.v1.IDeviceProfile): GuardVerdict {
    if (typeof nowServerMs !== "number" || !Number.isFinite(nowServerMs)) {
      throw new TypeError(`check needs the server time as a finite number of ms, got ${String(nowServerMs)}`);
    }
    if (typeof budgetMs !== "number" || Number.isNaN(budgetMs) || budgetMs < 0) {
      throw new TypeError(`check needs a latency budget >= 0 ms (0: none), got ${String(budgetMs)}`);
    }
    if (this.estopLatched) return refused(CommandStatus.ESTOPPED, "an e-stop is latched on the device; a supervisor must reset it");

    const leaseId = typeof command.leaseId === "string" ? command.leaseId : "";
    if (this.current === undefined || leaseId !== this.current) return refused(CommandStatus.NO_LEASE, this.noLeaseDetail(leaseId));

    const expired = deadlineProblem(command, nowServerMs, budgetMs);
    if (expired) return refused(CommandStatus.EXPIRED, expired);

    const seq = Number(command.seq ?? 0);
    if (!(seq > this.appliedSeq)) return refused(CommandStatus.STALE, `seq ${seq} is not above ${this.appliedSeq}, the last applied under lease ${leaseId}`);

    const resolved = resolveAxisValues(command.axes, profile);
    if (typeof resolved === "string") return refused(CommandStatus.OUT_OF_BOUNDS, resolved);

    this.appliedSeq = seq;
    this.appliedBeforeLastCheck = this.lastAppliedCommand;
    this.lastAppliedCommand = { leaseId, seq };
    return { status: CommandStatus.APPLIED, detail: "", setpoint: resolved };
  }

  /**
   * The device refused the setpoint of the command check() just passed (`leaseId`,
   * `seq`): it is not reported as applied any more. Its seq stays used, so a replay of
   * it is still STALE. Does nothing unless that command is the last applied.
   */
  setpointRefused(leaseId: string, seq: number): void {
    const last = this.lastAppliedCommand;
    if (last?.leaseId !== leaseId || last.seq !== seq) return;
    this.lastAppliedCommand = this.appliedBeforeLastCheck;
  }

  /**
   * Checks a DeviceAction like a command (ESTOPPED, NO_LEASE, EXPIRED), then against the
   * profile's actions: OUT_OF_BOUNDS for an action it does not offer, or a value that is
   * not finite or outside [min, max] for an action that takes one. Actions carry no seq:
   * each is a request/reply of its own, and repeating one (land, land) is harmless.
   */
  checkAction(action: tsunagi.v1.IDeviceAction, nowServerMs: number, budgetMs: number, profile: tsunagi.v1.IDeviceProfile): GuardVerdict {
    if (this.estopLatched) return refused(CommandStatus.ESTOPPED, "an e-stop is latched on the device; a supervisor must reset it");
    const leaseId = typeof action.leaseId === "string" ? action.leaseId : "";
    if (this.current === undefined || leaseId !== this.current) return refused(CommandStatus.NO_LEASE, this.noLeaseDetail(leaseId));
    const expired = deadlineProblem(action, nowServerMs, budgetMs);
    if (expired) return refused(CommandStatus.EXPIRED, expired);
    const problem = actionProblem(action, profile);
    if (problem) return refused(CommandStatus.OUT_OF_BOUNDS, problem);
    return { status: CommandStatus.APPLIED, detail: "" };
  }

  /**
   * Whether a Heartbeat counts (it then feeds the watchdog): under the current lease, seq
   * above the last accepted one, and sent within `windowMs` of `nowServerMs` (a delayed
   * heartbeat proves nothing; one from further ahead than that means a broken clock).
   */
  acceptHeartbeat(heartbeat: HeartbeatLike, nowServerMs: number, windowMs: number): boolean {
    if (this.estopLatched || this.current === undefined || heartbeat.leaseId !== this.current) return false;
    const seq = Number(heartbeat.seq ?? 0);
    if (!(seq > this.heartbeatSeq)) return false;
    const ageMs = nowServerMs - Number(heartbeat.sentAtMs ?? 0);
    if (!(ageMs <= windowMs && ageMs >= -windowMs)) return false;
    this.heartbeatSeq = seq;
    return true;
  }

  /** Ends the current lease, if any: it joins the dead and its sequence state goes. */
  private killCurrent(cause: DeathCause): void {
    if (this.current !== undefined) {
      this.dead.set(this.current, cause);
      if (this.dead.size > this.maxDeadLeases) this.dead.delete(this.dead.keys().next().value as string);
    }
    this.current = undefined;
    this.appliedSeq = 0;
    this.heartbeatSeq = 0;
  }

  private noLeaseDetail(leaseId: string): string {
    const shown = JSON.stringify(leaseId.slice(0, 64));
    if (leaseId === "") return "the command carries no lease_id";
    const cause = this.dead.get(leaseId);
    if (cause) return `lease ${shown} has ended (${deathDescriptions[cause]}); acquire a fresh lease`;
    return this.current === undefined ? `no lease is current on the device (command under ${shown})` : `lease ${shown} is not the device's current lease`;
  }
}

/** Why a lease died here. */
type DeathCause = "ended" | "estop" | "reset" | "watchdog";

const deathDescriptions: Record<DeathCause, string> = {
  ended: "the room announced another lease or none",
  estop: "an e-stop ended it",
  reset: "it predates the e-stop reset",
  watchdog: "the adapter's watchdog tripped",
};

function refused(status: CommandStatus, detail: string): GuardVerdict {
  return { status, detail };
}
