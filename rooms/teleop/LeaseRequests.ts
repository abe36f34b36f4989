/**
 * A participant's LeaseRequest (teleop.proto) decided against a device's ControlLease:
 * acquire, release, transfer to another participant, or a supervisor's preempt. A
 * demoted operator (LatencyBudget) may neither take a lease nor be handed one until the
 * demotion ends. A refusal comes back as the coded error the room answers with.
 *
 * @example
 *   const outcome = answerLeaseRequest(slot.lease, request, sender, target, Date.now());
 *   if ("refused" in outcome) reject(client, outcome.refused.code, outcome.refused.message);
 *   else reply(client, { leaseState: slot.leaseState() });
 */
import { ErrorCode, tsunagi } from "../../proto/index.ts";
import type { Role } from "../../server/auth/tokens.ts";
import { leaseErrorCode, type ControlLease, type GrantResult, type ReleaseResult } from "./ControlLease.ts";

const Action = tsunagi.v1.LeaseRequest.Action;

/** A participant in a lease request, as the lease rules see them. */
export interface LeaseParty {
  sessionId: string;
  role: Role;
  /** How long they stay demoted for exceeding a latency budget, ms (0: not demoted). */
  demotedMs: number;
}

export type LeaseRequestOutcome =
  | { readonly done: GrantResult | ReleaseResult }
  | { readonly refused: { readonly code: ErrorCode; readonly message: string } };

/**
 * Applies `request` from `sender` to the lease. `target` is the participant named by a
 * TRANSFER (undefined when nobody in the room has that session id).
 */
export function answerLeaseRequest(lease: ControlLease, request: tsunagi.v1.LeaseRequest, sender: LeaseParty,
  target: LeaseParty | undefined, now: number): LeaseRequestOutcome {
  if ((request.action === Action.ACQUIRE || request.action === Action.PREEMPT) && sender.demotedMs > 0) {
    return refused(ErrorCode.LATENCY_BUDGET_EXCEEDED, `demoted for exceeding a device's latency budget; retry in ${Math.ceil(sender.demotedMs / 1000)} s`);
  }
  let result: GrantResult | ReleaseResult;
  switch (request.action) {
    case Action.ACQUIRE: result = lease.acquire(sender.sessionId, sender.role, now); break;
    case Action.RELEASE: result = lease.release(sender.sessionId, now); break;
    case Action.PREEMPT: result = lease.preempt(sender.sessionId, sender.role, now); break;
    case Action.TRANSFER:
      if (!target) return refused(ErrorCode.WRONG_TYPE, `transfer target "${request.toSessionId.slice(0, 64)}" is not in this room`);
      if (target.demotedMs > 0) return refused(ErrorCode.LATENCY_BUDGET_EXCEEDED, "the transfer target is demoted for exceeding the latency budget");
      result = lease.transfer(sender.sessionId, target.sessionId, target.role, now);
      break;
    default:
      return refused(ErrorCode.WRONG_TYPE, "LeaseRequest.action must be ACQUIRE, RELEASE, TRANSFER or PREEMPT");
  }
  return result.status === "refused" ? refused(leaseErrorCode(result), result.message) : { done: result };
}

function refused(code: ErrorCode, message: string): LeaseRequestOutcome {
  return { refused: { code, message } };
}
