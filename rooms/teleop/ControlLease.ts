/**
 * The control lease of ONE device: who may drive it right now. A pure state machine
 * with no timers: time comes in as `now` (or from the injected clock), and the owner
 * (the TeleopRoom) calls `expire(now)` from its tick, or lets the next call notice.
 *
 *   free --acquire / preempt--> held --release / holderDisconnected / expire--> free
 *   held --transfer (by the holder) / preempt (by a supervisor)--> held by another
 *   any --estop--> latched (the lease ends; nothing is granted) --reset (supervisor)--> free
 *
 * Invariants:
 * - At most one holder, ever.
 * - Every grant (acquire, transfer, preempt) carries a fresh leaseId. Renewing keeps the
 *   id; ending a lease kills its id for good, so commands and heartbeats carrying it are
 *   refused from then on.
 * - After an e-stop nothing is granted until a supervisor resets, and a reset grants
 *   nothing: motion needs a fresh acquire.
 *
 * Every operation answers with a typed result: a success, or `{ status: "refused",
 * reason }` with a LeaseRefusalReason. Bad arguments (an empty session id, a time that is
 * not a number) are caller bugs and throw TypeError. Events fire after the state has
 * changed; a listener that throws is reported to `onListenerError` and cannot disturb
 * the lease or the listeners after it.
 *
 * @example
 *   const lease = new ControlLease({ deviceId: "ex-1", ttlMs: 1000 });
 *   lease.on("expired", ({ lease: ended }) => stopDevice(ended.deviceId));
 *   const result = lease.acquire(client.sessionId, "operator", now);
 *   if (result.status === "granted") send(client, { leaseId: result.lease.leaseId });
 *   else send(client, { refused: result.reason });
 *   // for each command: lease.renew(client.sessionId, command.leaseId, now)
 */
import { randomUUID } from "node:crypto";
import type { Role } from "../../server/auth/tokens.ts";
import { SafeEmitter } from "../../common/SafeEmitter.ts";
import { refused, type EStopLatch, type EStopResult, type CheckResult, type GrantResult, type LeaseEndCause, type LeaseGrant, type LeaseRefused, type ReleaseResult, type RenewResult, type ResetResult } from "./LeaseResults.ts";

export {
  leaseRefusalReasons, leaseErrorCode,
  type LeaseRefusalReason, type LeaseGrant, type LeaseEndCause, type LeaseRefused, type GrantResult, type ReleaseResult,
  type RenewResult, type CheckResult, type EStopResult, type ResetResult, type EStopLatch,
} from "./LeaseResults.ts";

/** Roles that may hold a lease. Everyone else (visitors, hosts, devices, admins) only watches. */
export const controllingRoles: readonly Role[] = ["operator", "supervisor"];

/** Events, each fired once after the change it reports. */
export interface ControlLeaseEvents {
  /** A free lease was granted (acquire, or preempt of a free lease). */
  granted: { lease: LeaseGrant };
  /** The holder let go, disconnected, or the lease was closed: the device must stop. */
  released: { lease: LeaseGrant; cause: "released" | "disconnected" | "revoked" | "closed" };
  /** The holder sent no heartbeat within the TTL: the device must stop. */
  expired: { lease: LeaseGrant; at: number };
  /** A supervisor took the lease from its holder. */
  preempted: { previous: LeaseGrant; lease: LeaseGrant };
  /** The holder handed the lease to another session. */
  transferred: { previous: LeaseGrant; lease: LeaseGrant };
  /** The holder keeps control under a fresh lease id: its device saw the previous one end (the room moved between nodes). */
  rekeyed: { previous: LeaseGrant; lease: LeaseGrant };
  /** An e-stop latched; `endedLease` is the lease it ended, if one was held. */
  estopped: { latch: EStopLatch; endedLease?: LeaseGrant };
  /** A supervisor cleared the e-stop; a fresh acquire is needed for motion. */
  reset: { by: string; at: number };
}
export type ControlLeaseEventName = keyof ControlLeaseEvents;
export type ControlLeaseListener<E extends ControlLeaseEventName> = (event: ControlLeaseEvents[E]) => void;
/** One listener type per event, for the emitter. */
type ControlLeaseListeners = { [E in ControlLeaseEventName]: ControlLeaseListener<E> };

export interface ControlLeaseOptions {
  deviceId: string;
  /** How long a lease lives without renewal, ms. Default 1000: heartbeats every ≤ 250 ms leave room for three lost. */
  ttlMs?: number;
  /** Milliseconds; used when a method is called without `now`. Default Date.now. */
  clock?: () => number;
  /** Makes lease ids. Must never repeat an id, across restarts too. Default randomUUID. */
  newLeaseId?: () => string;
  /** How many ended lease ids to remember, for precise refusal reasons (older ones get UNKNOWN_LEASE; refused all the same). Default 256. */
  endedLeaseMemory?: number;
  /** Receives listener failures, wrapped with the original as `cause`. Default: console.error. */
  onListenerError?: (error: Error, event: ControlLeaseEventName) => void;
}

export const DEFAULT_LEASE_TTL_MS = 1000;
export const DEFAULT_ENDED_LEASE_MEMORY = 256;

export class ControlLease {
  readonly deviceId: string;
  readonly ttlMs: number;
  /** Time source for calls without `now`. */
  private readonly clock: () => number;
  /** Lease id factory (fresh per grant). */
  private readonly newLeaseId: () => string;
  /** Cap on endedLeases. */
  private readonly endedLeaseMemory: number;
  /** Where listener exceptions go. */
  private readonly onListenerError: (error: Error, event: ControlLeaseEventName) => void;
  /** The current grant; undefined when free. The single holder, by construction. */
  private current: LeaseGrant | undefined;
  /** The latched e-stop, if any. */
  private latch: EStopLatch | undefined;
  /** Recently ended leases by id (insertion order = end order), to tell EXPIRED / LEASE_ENDED from UNKNOWN_LEASE. */
  private readonly endedLeases = new Map<string, { grant: LeaseGrant; cause: LeaseEndCause }>();
  /** Latest time seen; time never runs backwards inside the lease. */
  private lastNow = -Infinity;
  /** Listeners per event; one that throws goes to onListenerError, wrapped with the device. */
  private readonly listeners: SafeEmitter<ControlLeaseListeners>;
  /** Set by close(); every call after it is refused CLOSED. */
  private isClosed = false;

  constructor(options: ControlLeaseOptions) {
    if (typeof options?.deviceId !== "string" || options.deviceId === "") throw new TypeError("deviceId must be a non-empty string");
    const ttlMs = options.ttlMs ?? DEFAULT_LEASE_TTL_MS;
    if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new TypeError(`ttlMs must be a positive number of ms, got ${ttlMs}`);
    const memory = options.endedLeaseMemory ?? DEFAULT_ENDED_LEASE_MEMORY;
    if (!Number.isInteger(memory) || memory < 0) throw new TypeError(`endedLeaseMemory must be a non-negative integer, got ${memory}`);
    this.deviceId = options.deviceId;
    this.ttlMs = ttlMs;
    this.clock = options.clock ?? Date.now;
    this.newLeaseId = options.newLeaseId ?? randomUUID;
    this.endedLeaseMemory = memory;
    this.onListenerError = options.onListenerError ?? ((error) => console.error(error));
    this.listeners = new SafeEmitter((thrown, source) => {
      const error = new Error(`ControlLease ${this.deviceId}: a ${source} threw: ${thrown instanceof Error ? thrown.message : String(thrown)}`, { cause: thrown });
      this.onListenerError(error, source.slice(1, source.lastIndexOf('"')) as ControlLeaseEventName);
    });
  }

  /** The current grant, as of the last call (call expire(now) first for "as of now"). */
  get holder(): LeaseGrant | undefined {
    return this.current;
  }

  /** When the current lease lapses, for the owner's timer; undefined when free. */
  get expiresAt(): number | undefined {
    return this.current?.expiresAt;
  }

  /** The latched e-stop, or undefined. */
  get estopLatch(): EStopLatch | undefined {
    return this.latch;
  }

  get estopped(): boolean {
    return this.latch !== undefined;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Subscribes; returns the unsubscribe function. */
  on<E extends ControlLeaseEventName>(event: E, listener: ControlLeaseListener<E>): () => void {
    return this.listeners.on(event, listener as ControlLeaseListeners[E]);
  }

  off<E extends ControlLeaseEventName>(event: E, listener: ControlLeaseListener<E>): void {
    this.listeners.off(event, listener as ControlLeaseListeners[E]);
  }

  /**
   * Takes the lease if it is free. The holder asking again keeps its lease (renewed,
   * same id, `fresh: false`), so a retried request is harmless.
   */
  acquire(sessionId: string, role: Role, now = this.clock()): GrantResult {
    checkSession(sessionId);
    const at = this.advance(now);
    if (this.isClosed) return this.closedRefusal();
    this.expire(at);
    if (!controllingRoles.includes(role)) return refused("ROLE_NOT_ALLOWED", `role "${role}" may not control a device; ${controllingRoles.join(" or ")} may`);
    if (this.latch) return this.estoppedRefusal();
    const holder = this.current;
    if (holder?.sessionId === sessionId) return { status: "granted", lease: this.extend(holder, at), fresh: false };
    if (holder) return { ...refused("HELD_BY_OTHER", `device ${this.deviceId} is controlled by another session`), holderSessionId: holder.sessionId };
    const lease = this.grant(sessionId, role, at);
    this.emit("granted", { lease });
    return { status: "granted", lease, fresh: true };
  }

  /**
   * The room takes the lease away from whoever holds it, for a reason of its own (the
   * device went offline, its watchdog tripped, the holder's link exceeds the latency
   * budget). Refused NOT_HOLDER when nobody holds it.
   */
  revoke(now = this.clock()): ReleaseResult {
    const at = this.advance(now);
    if (this.isClosed) return this.closedRefusal();
    this.expire(at);
    const holder = this.current;
    if (!holder) return refused("NOT_HOLDER", `nobody holds the lease of device ${this.deviceId}`);
    this.end(holder, "revoked");
    this.emit("released", { lease: holder, cause: "revoked" });
    return { status: "released", lease: holder };
  }

  /** The holder lets go. */
  release(sessionId: string, now = this.clock()): ReleaseResult {
    return this.letGo(sessionId, "released", now);
  }

  /** The holder's connection dropped: the lease ends at once (reconnecting needs a fresh acquire). */
  holderDisconnected(sessionId: string, now = this.clock()): ReleaseResult {
    return this.letGo(sessionId, "disconnected", now);
  }

  /** The holder hands the lease to another session, which gets a fresh lease id. */
  transfer(fromSessionId: string, toSessionId: string, toRole: Role, now = this.clock()): GrantResult {
    checkSession(fromSessionId);
    checkSession(toSessionId);
    const at = this.advance(now);
    if (this.isClosed) return this.closedRefusal();
    this.expire(at);
    if (this.latch) return this.estoppedRefusal();
    const previous = this.current;
    if (previous?.sessionId !== fromSessionId) return refused("NOT_HOLDER", `session does not hold the lease of device ${this.deviceId}`);
    if (!controllingRoles.includes(toRole)) return refused("ROLE_NOT_ALLOWED", `role "${toRole}" may not control a device; ${controllingRoles.join(" or ")} may`);
    if (toSessionId === fromSessionId) return refused("INVALID_TARGET", "cannot transfer the lease to its holder");
    this.end(previous, "transferred");
    const lease = this.grant(toSessionId, toRole, at);
    this.emit("transferred", { previous, lease });
    return { status: "granted", lease, fresh: true, previous };
  }

  /**
   * The holder keeps control under a fresh lease id, with a fresh TTL: the device's
   * adapter ended the previous one when its link closed (it never accepts an ended lease
   * again), as when the room moved to another node. Refused NOT_HOLDER when nobody
   * holds the lease, ESTOPPED while an e-stop is latched.
   */
  rekey(now = this.clock()): GrantResult {
    const at = this.advance(now);
    if (this.isClosed) return this.closedRefusal();
    if (this.latch) return this.estoppedRefusal();
    const previous = this.current;
    if (!previous) return refused("NOT_HOLDER", `nobody holds the lease of device ${this.deviceId}`);
    this.end(previous, "moved");
    const lease = this.grant(previous.sessionId, previous.role, at);
    this.emit("rekeyed", { previous, lease });
    return { status: "granted", lease, fresh: true, previous };
  }

  /**
   * A supervisor takes the lease, from whoever holds it. On a free lease this is an
   * acquire; by the holder itself, a renewal.
   */
  preempt(sessionId: string, role: Role, now = this.clock()): GrantResult {
    checkSession(sessionId);
    const at = this.advance(now);
    if (this.isClosed) return this.closedRefusal();
    this.expire(at);
    if (role !== "supervisor") return refused("NOT_SUPERVISOR", "only a supervisor may preempt a lease");
    if (this.latch) return this.estoppedRefusal();
    const previous = this.current;
    if (previous?.sessionId === sessionId) return { status: "granted", lease: this.extend(previous, at), fresh: false };
    if (!previous) {
      const lease = this.grant(sessionId, role, at);
      this.emit("granted", { lease });
      return { status: "granted", lease, fresh: true };
    }
    this.end(previous, "preempted");
    const lease = this.grant(sessionId, role, at);
    this.emit("preempted", { previous, lease });
    return { status: "granted", lease, fresh: true, previous };
  }

  /** A heartbeat (or a command) from the holder: the lease lives another ttlMs from `now`. */
  renew(sessionId: string, leaseId: string, now = this.clock()): RenewResult {
    const checked = this.check(sessionId, leaseId, now);
    if (checked.status === "refused") return checked;
    return { status: "renewed", lease: this.extend(checked.lease, this.lastNow) };
  }

  /**
   * Whether a command from `sessionId` carrying `leaseId` may pass, without renewing.
   * Refusals: ESTOPPED, NOT_HOLDER (another session's lease), EXPIRED or LEASE_ENDED
   * (the session's own, ended lease), UNKNOWN_LEASE.
   */
  check(sessionId: string, leaseId: string, now = this.clock()): CheckResult {
    checkSession(sessionId);
    if (typeof leaseId !== "string") throw new TypeError("leaseId must be a string");
    const at = this.advance(now);
    if (this.isClosed) return this.closedRefusal();
    this.expire(at);
    if (this.latch) return this.estoppedRefusal();
    const current = this.current;
    if (current?.leaseId === leaseId) {
      return current.sessionId === sessionId
        ? { status: "valid", lease: current }
        : refused("NOT_HOLDER", `lease ${leaseId} belongs to another session`);
    }
    const ended = this.endedLeases.get(leaseId);
    if (!ended) return refused("UNKNOWN_LEASE", `no current or recent lease ${leaseId} on device ${this.deviceId}`);
    if (ended.grant.sessionId !== sessionId) return refused("NOT_HOLDER", `lease ${leaseId} belongs to another session`);
    return ended.cause === "expired"
      ? refused("EXPIRED", `lease ${leaseId} expired: no heartbeat within ${this.ttlMs} ms`)
      : refused("LEASE_ENDED", `lease ${leaseId} ended (${ended.cause})`);
  }

  /**
   * Ends the current lease if it lapsed by `now`; returns the expired grant. The owner
   * calls it from its tick (or a timer set for `expiresAt`); every other method does too.
   */
  expire(now = this.clock()): LeaseGrant | undefined {
    const at = this.advance(now);
    const holder = this.current;
    if (!holder || at < holder.expiresAt) return undefined;
    this.end(holder, "expired");
    this.emit("expired", { lease: holder, at });
    return holder;
  }

  /**
   * Latches an e-stop and ends the current lease. Never refused (but after close()):
   * anyone the room lets raise it, raises it. A second e-stop keeps the first latch.
   */
  estop(by: string, reason: string, now = this.clock()): EStopResult {
    const at = this.advance(now);
    if (this.isClosed) return this.closedRefusal();
    this.expire(at);
    if (this.latch) return { status: "estopped", alreadyLatched: true };
    const latch: EStopLatch = { by: String(by), reason: String(reason), at };
    this.latch = latch;
    const endedLease = this.current;
    if (endedLease) this.end(endedLease, "estopped");
    this.emit("estopped", endedLease ? { latch, endedLease } : { latch });
    return endedLease ? { status: "estopped", alreadyLatched: false, endedLease } : { status: "estopped", alreadyLatched: false };
  }

  /** A supervisor clears the e-stop. Grants nothing: the next holder must acquire afresh. */
  reset(sessionId: string, role: Role, now = this.clock()): ResetResult {
    checkSession(sessionId);
    const at = this.advance(now);
    if (this.isClosed) return this.closedRefusal();
    this.expire(at);
    if (role !== "supervisor") return refused("NOT_SUPERVISOR", "only a supervisor may reset an e-stop");
    if (!this.latch) return refused("NOT_ESTOPPED", `device ${this.deviceId} is not e-stopped`);
    this.latch = undefined;
    this.emit("reset", { by: sessionId, at });
    return { status: "reset" };
  }

  /**
   * Ends the lease for good (the room is closing or handing off: leases are never
   * restored elsewhere). Fires `released` with cause "closed", then drops all listeners.
   */
  close(now = this.clock()): void {
    if (this.isClosed) return;
    const at = this.advance(now);
    this.expire(at);
    this.isClosed = true;
    const holder = this.current;
    if (holder) {
      this.end(holder, "closed");
      this.emit("released", { lease: holder, cause: "closed" });
    }
    this.listeners.removeAll();
  }

  // --- internals -------------------------------------------------------------------

  private letGo(sessionId: string, cause: "released" | "disconnected", now: number): ReleaseResult {
    checkSession(sessionId);
    const at = this.advance(now);
    if (this.isClosed) return this.closedRefusal();
    this.expire(at);
    const holder = this.current;
    if (holder?.sessionId !== sessionId) return refused("NOT_HOLDER", `session does not hold the lease of device ${this.deviceId}`);
    this.end(holder, cause);
    this.emit("released", { lease: holder, cause });
    return { status: "released", lease: holder };
  }

  /** Checks `now` and keeps time monotonic: a clock that steps back cannot revive or stretch a lease. */
  private advance(now: number): number {
    if (typeof now !== "number" || Number.isNaN(now)) throw new TypeError(`now must be a number of ms, got ${String(now)}`);
    if (now > this.lastNow) this.lastNow = now;
    return this.lastNow;
  }

  private grant(sessionId: string, role: Role, at: number): LeaseGrant {
    const leaseId = this.newLeaseId();
    if (leaseId === this.current?.leaseId || this.endedLeases.has(leaseId)) {
      throw new Error(`ControlLease ${this.deviceId}: newLeaseId() repeated lease id ${leaseId}`);
    }
    this.current = Object.freeze({ deviceId: this.deviceId, leaseId, sessionId, role, grantedAt: at, expiresAt: at + this.ttlMs });
    return this.current;
  }

  private extend(holder: LeaseGrant, at: number): LeaseGrant {
    this.current = Object.freeze({ ...holder, expiresAt: Math.max(holder.expiresAt, at + this.ttlMs) });
    return this.current;
  }

  private end(grant: LeaseGrant, cause: LeaseEndCause): void {
    if (this.current === grant) this.current = undefined;
    if (this.endedLeaseMemory === 0) return;
    this.endedLeases.set(grant.leaseId, { grant, cause });
    if (this.endedLeases.size > this.endedLeaseMemory) {
      this.endedLeases.delete(this.endedLeases.keys().next().value as string);
    }
  }

  private emit<E extends ControlLeaseEventName>(event: E, payload: ControlLeaseEvents[E]): void {
    this.listeners.emit(event, ...([payload] as Parameters<ControlLeaseListeners[E]>));
  }

  private estoppedRefusal(): LeaseRefused {
    return refused("ESTOPPED", `device ${this.deviceId} is e-stopped (by ${this.latch?.by}: ${this.latch?.reason}); a supervisor must reset it`);
  }

  private closedRefusal(): LeaseRefused {
    return refused("CLOSED", `the lease of device ${this.deviceId} is closed`);
  }
}

function checkSession(sessionId: string): void {
  if (typeof sessionId !== "string" || sessionId === "") throw new TypeError("sessionId must be a non-empty string");
}
