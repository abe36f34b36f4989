/**
 * The operator's view of one device's control lease: the newest LeaseState, whether this
 * session holds it, and whether a lease that ended was ours and ended for the latency
 * budget (a demotion).
 *
 * The room announces a demotion twice: an Error LATENCY_BUDGET_EXCEEDED (correlation id
 * 0, naming no device), then the LeaseState with cause "latency-budget" that ends the
 * lease. The tracker keeps the notice's message until that LeaseState arrives, so the
 * demotion is reported once, with the room's explanation.
 *
 * @example
 *   const tracker = new LeaseTracker("excavator-1", { sessionId: () => session.sessionId, sessionClosed: () => session.closed });
 *   const update = tracker.update(leaseState);   // undefined when it repeats the current one
 *   if (update?.wasHolding && !tracker.holding) stopMoving();
 *   if (update?.demoted) warn(update.demoted.message);
 */
import type { tsunagi } from "../proto/index.ts";

type LeaseState = tsunagi.v1.LeaseState;

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

/** What a new LeaseState changed for this session. */
export interface LeaseUpdate {
  /** Whether this session held the lease before it. */
  wasHolding: boolean;
  /** Set when it ended our lease for the latency budget. */
  demoted?: DemotedEvent;
}

/** Who "we" are. */
export interface LeaseTrackerHost {
  /** This session's id: a lease held by it is ours. */
  sessionId(): string;
  /** Whether the session has ended: then nothing is ours. */
  sessionClosed(): boolean;
}

/** Whether two LeaseStates describe the same lease (a reply repeating a broadcast). */
function sameLease(a: LeaseState, b: LeaseState): boolean {
  return a.leaseId === b.leaseId && a.holderSessionId === b.holderSessionId && a.holderRole === b.holderRole
    && a.expiresAtMs === b.expiresAtMs && a.ttlMs === b.ttlMs && a.estopped === b.estopped && a.online === b.online
    && (b.cause === "" || a.cause === b.cause);
}

export class LeaseTracker {
  /** The device whose lease this follows. */
  readonly deviceId: string;
  /** Who "we" are. */
  private readonly host: LeaseTrackerHost;
  /** The newest LeaseState of the device. */
  private current?: LeaseState;
  /** The room's demotion notice, until the LeaseState that ends our lease arrives. */
  private demotionMessage?: string;

  constructor(deviceId: string, host: LeaseTrackerHost) {
    this.deviceId = deviceId;
    this.host = host;
  }

  /** The device's newest LeaseState, or undefined before the room sent one. */
  get lease(): LeaseState | undefined {
    return this.current;
  }

  /** True while this session holds the device's lease. */
  get holding(): boolean {
    const lease = this.current;
    return !!lease && lease.leaseId !== "" && lease.holderSessionId === this.host.sessionId() && !this.host.sessionClosed();
  }

  /** The room's LATENCY_BUDGET_EXCEEDED notice: its message goes with the demotion that follows. */
  demotionNotice(message: string): void {
    this.demotionMessage = message;
  }

  /** Takes the device's newest LeaseState; undefined when it repeats the current one. */
  update(lease: LeaseState): LeaseUpdate | undefined {
    const previous = this.current;
    if (previous && sameLease(previous, lease)) return undefined;
    const wasHolding = this.holding;
    this.current = lease;
    const endedOurs = !!previous && previous.holderSessionId === this.host.sessionId() && previous.leaseId !== "" && lease.endedLeaseId === previous.leaseId;
    if (lease.cause !== "latency-budget" || !endedOurs) return { wasHolding };
    const demoted = { deviceId: this.deviceId, endedLeaseId: lease.endedLeaseId, message: this.demotionMessage, lease };
    this.demotionMessage = undefined;
    return { wasHolding, demoted };
  }
}
