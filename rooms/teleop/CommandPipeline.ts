/**
 * The room's admission of a ControlCommand or a DeviceAction, every check in one place
 * and in the contract's order (control.proto, ControlCommand and DeviceAction):
 *
 *   ESTOPPED → NO_LEASE (renewing the lease when held) → the holder's rate allowance →
 *   EXPIRED → STALE (commands only) → DEVICE_OFFLINE → OUT_OF_BOUNDS
 *
 * The allowance comes after the lease on purpose: a sender refused NO_LEASE spends none
 * of it, so nobody but the holder can starve the holder's commands (its stop included).
 * Over the allowance, the request is dropped with no ack; the room tells the holder with
 * a coded RATE_LIMITED error at most once a second.
 *
 * The pipeline answers a verdict and records what admission means for the device (the
 * seq consumed, the holder alive); it sends nothing. The adapter checks everything again.
 *
 * @example
 *   const pipeline = new CommandPipeline({ now: Date.now, budgetMs: (profile) => profile?.latencyBudgetMs || 150 });
 *   const verdict = pipeline.admitCommand(slot, client.sessionId, command);
 *   if (verdict.verdict === "admitted") { command.deadlineMs = verdict.deadlineMs; verdict.link.sendCommand(command, onAck); }
 *   else if (verdict.verdict === "refused") ack(roomAck(command, verdict.status, verdict.detail));
 */
import { actionProblem, axesProblem, deadlineProblem, effectiveDeadlineMs } from "../../proto/deviceProfile.ts";
import { tsunagi } from "../../proto/index.ts";
import type { DeviceSlot, SlotLink } from "./DeviceSlot.ts";

const Status = tsunagi.v1.CommandAck.Status;
type Status = tsunagi.v1.CommandAck.Status;

/** What the pipeline decided about one command or action. */
export type Verdict =
  /** Send it, with `deadlineMs` as the deadline in force, through `link`. */
  | { readonly verdict: "admitted"; readonly deadlineMs: number; readonly link: SlotLink }
  /** Ack it with this status (origin ROOM); it never reaches the device. */
  | { readonly verdict: "refused"; readonly status: Status; readonly detail: string }
  /** Drop it: the holder is over the device's allowance. `report`: tell the holder now (once a second). */
  | { readonly verdict: "rate-limited"; readonly report: boolean; readonly detail: string };

/** What the pipeline needs from its room. */
export interface CommandPipelineHost {
  /** Server clock, ms. */
  now(): number;
  /** The device's latency budget, ms: its profile's, or the server's for its class. */
  budgetMs(profile: tsunagi.v1.IDeviceProfile | undefined): number;
}

/** The parts of a command or action that admission reads. */
interface Request {
  leaseId: string;
  issuedAtMs: number;
  deadlineMs: number;
}

export class CommandPipeline {
  /** The room's clock and budget rule. */
  private readonly host: CommandPipelineHost;

  constructor(host: CommandPipelineHost) {
    this.host = host;
  }

  /** A ControlCommand from `sessionId`. Admitted, it has consumed its seq and fed the watchdog mirror. */
  admitCommand(slot: DeviceSlot, sessionId: string, command: tsunagi.v1.ControlCommand): Verdict {
    const seq = Number(command.seq);
    const verdict = this.admit(slot, sessionId, command, seq, (profile) => axesProblem(command.axes, profile));
    if (verdict.verdict === "admitted") slot.lastSeq = seq;
    return verdict;
  }

  /** A DeviceAction from `sessionId`: the command's checks but the seq, then the profile's actions and value ranges. */
  admitAction(slot: DeviceSlot, sessionId: string, action: tsunagi.v1.DeviceAction): Verdict {
    return this.admit(slot, sessionId, action, undefined, (profile) => actionProblem(action, profile));
  }

  /** The checks, in the contract's order; `seq` undefined skips STALE (actions have none). */
  private admit(slot: DeviceSlot, sessionId: string, request: Request, seq: number | undefined,
    boundsProblem: (profile: tsunagi.v1.DeviceProfile) => string | undefined): Verdict {
    const now = this.host.now();
    if (slot.lease.estopped) return refused(Status.ESTOPPED, `device ${slot.deviceId} is e-stopped; a supervisor must reset it`);
    const renewed = slot.lease.renew(sessionId, request.leaseId, now);
    if (renewed.status === "refused") return refused(Status.NO_LEASE, renewed.message);
    if (!slot.takeToken()) {
      return { verdict: "rate-limited", report: slot.reportRateLimit(now), detail: `requests to ${slot.deviceId} above its rate; excess dropped` };
    }
    const link = slot.link;
    const profile = link?.profile;
    const budgetMs = this.host.budgetMs(profile);
    const expired = deadlineProblem(request, now, budgetMs);
    if (expired) return refused(Status.EXPIRED, expired);
    if (seq !== undefined && seq <= slot.lastSeq) return refused(Status.STALE, `seq ${seq} is not above ${slot.lastSeq}, the last forwarded under this lease`);
    if (!link || !profile) return refused(Status.DEVICE_OFFLINE, `device ${slot.deviceId} is offline`);
    const problem = boundsProblem(profile);
    if (problem) return refused(Status.OUT_OF_BOUNDS, problem);
    // Only what the adapter will apply feeds its watchdog, so only that feeds the room's mirror of it.
    slot.lastRenewAt = now;
    return { verdict: "admitted", deadlineMs: effectiveDeadlineMs(request, now, budgetMs), link };
  }
}

function refused(status: Status, detail: string): Verdict {
  return { verdict: "refused", status, detail };
}
