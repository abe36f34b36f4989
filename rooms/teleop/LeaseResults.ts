/**
 * What a ControlLease answers: its grants, its refusals (each reason, and the coded error
 * a room tells its sender), the latched e-stop, and each operation's typed result. Shared
 * by the lease, the room and the tests; ControlLease.ts re-exports it.
 *
 * @example
 *   const result = lease.acquire(sessionId, "operator", now);
 *   if (result.status === "refused") reject(client, leaseErrorCode(result), result.message);
 */
import { ErrorCode } from "../../proto/index.ts";
import type { Role } from "../../server/auth/tokens.ts";

/** Why an operation was refused. Shared with the room, which maps them to coded errors and acks. */
export const leaseRefusalReasons = [
  /** acquire: another session holds the lease. */
  "HELD_BY_OTHER",
  /** release, transfer, renew, check: the session does not hold this lease. */
  "NOT_HOLDER",
  /** preempt, reset: only a supervisor may. */
  "NOT_SUPERVISOR",
  /** acquire, transfer: this role may not hold a lease. */
  "ROLE_NOT_ALLOWED",
  /** acquire, transfer, preempt, renew, check: an e-stop is latched. */
  "ESTOPPED",
  /** reset: there is no latched e-stop to reset. */
  "NOT_ESTOPPED",
  /** renew, check: the session's lease with this id expired (no heartbeat within the TTL). */
  "EXPIRED",
  /** renew, check: the session's lease with this id ended (released, transferred, preempted, disconnected, e-stopped). */
  "LEASE_ENDED",
  /** renew, check: no lease with this id is known (never granted, or ended long ago). */
  "UNKNOWN_LEASE",
  /** transfer: to the holder itself. */
  "INVALID_TARGET",
  /** anything after close(). */
  "CLOSED",
] as const;
export type LeaseRefusalReason = (typeof leaseRefusalReasons)[number];

/** One grant of the lease. Immutable: renewing or ending a lease hands out a new object. */
export interface LeaseGrant {
  readonly deviceId: string;
  /** Fresh per grant; commands and heartbeats carry it. */
  readonly leaseId: string;
  readonly sessionId: string;
  readonly role: Role;
  readonly grantedAt: number;
  /** The lease lapses at this time unless renewed before (exclusive: at `expiresAt` it has expired). */
  readonly expiresAt: number;
}

/** How a lease ended. */
export type LeaseEndCause = "released" | "disconnected" | "expired" | "preempted" | "transferred" | "estopped" | "revoked" | "closed" | "moved";

export interface LeaseRefused {
  readonly status: "refused";
  readonly reason: LeaseRefusalReason;
  /** For people and logs; never parse it. */
  readonly message: string;
  /** HELD_BY_OTHER: who holds it, so the operator's screen can say so. */
  readonly holderSessionId?: string;
}

/** acquire, preempt, transfer. `fresh` is false when the session already held the lease (renewed, same leaseId). */
export type GrantResult =
  | { readonly status: "granted"; readonly lease: LeaseGrant; readonly fresh: boolean; readonly previous?: LeaseGrant }
  | LeaseRefused;
/** release, holderDisconnected. */
export type ReleaseResult = { readonly status: "released"; readonly lease: LeaseGrant } | LeaseRefused;
/** renew. */
export type RenewResult = { readonly status: "renewed"; readonly lease: LeaseGrant } | LeaseRefused;
/** check. */
export type CheckResult = { readonly status: "valid"; readonly lease: LeaseGrant } | LeaseRefused;
/** estop: always latches; `alreadyLatched` when it was latched before. */
export type EStopResult =
  | { readonly status: "estopped"; readonly alreadyLatched: boolean; readonly endedLease?: LeaseGrant }
  | LeaseRefused;
/** reset. */
export type ResetResult = { readonly status: "reset" } | LeaseRefused;

/** The latched e-stop. */
export interface EStopLatch {
  readonly by: string;
  readonly reason: string;
  readonly at: number;
}

/** The coded error (proto ErrorCode) a room answers a refused lease operation with. */
export function leaseErrorCode(refused: LeaseRefused): ErrorCode {
  switch (refused.reason) {
    case "HELD_BY_OTHER": return ErrorCode.LEASE_HELD;
    case "NOT_HOLDER": case "EXPIRED": case "LEASE_ENDED": case "UNKNOWN_LEASE": return ErrorCode.LEASE_NOT_HELD;
    case "ESTOPPED": return ErrorCode.ESTOPPED;
    case "NOT_SUPERVISOR": case "ROLE_NOT_ALLOWED": return ErrorCode.FORBIDDEN;
    case "INVALID_TARGET": case "NOT_ESTOPPED": return ErrorCode.WRONG_TYPE;
    case "CLOSED": return ErrorCode.NODE_DRAINING;
  }
}

export function refused(reason: LeaseRefusalReason, message: string): LeaseRefused {
  return { status: "refused", reason, message };
}
