/**
 * What a teleop room writes to its audit log (DESIGN.md: leases, e-stops, handoffs and
 * commands go to an append-only, hash-chained log): the records of leases, e-stops,
 * resets, actions and devices coming and going, and for commands one summary per lease
 * and second (counts per ack status, the seq range, the time span) rather than an entry
 * per command, which at 50 Hz per device would be most of the log.
 *
 * Only what was sent under a lease its sender was granted is audited. Anyone else's
 * refused attempts are in the metrics, so a participant cycling made-up lease ids cannot
 * force an audit write per command.
 *
 * @example
 *   const audit = new CommandAudit({ sink: context.audit(roomId), now: Date.now,
 *     every: (ms, task) => timers.every(ms, task), onAppendFailed: (error, type) => log(error, type) });
 *   audit.granted("ex-1", grant.leaseId, grant.sessionId);
 *   audit.countCommand("ex-1", client.sessionId, ack);    // summarised, flushed once a second
 *   audit.record("lease.estopped", { deviceId: "ex-1", by, reason });
 */
import { ackOriginName, ackStatusName, type tsunagi } from "../../proto/index.ts";
import type { AuditSink } from "../../server/audit/AuditSink.ts";

/**
 * How long an answer that acknowledges an audited event (a lease change, an e-stop, a
 * reset, an action's result) waits for its entry to be stored beyond this node, ms:
 * past it, the sender is told the event took effect here but is not stored yet.
 */
export const AUDIT_STORED_WAIT_MS = 3000;

/** How often command summaries are written, ms. */
export const SUMMARY_MS = 1000;
/** Recent grants remembered per device, so late acks still count under who sent them. */
export const MAX_GRANTS_REMEMBERED = 8;

/** Commands of one lease since the last summary. */
interface CommandSummary {
  leaseId: string;
  sessionId: string;
  /** Acks by status (CommandAck.Status), named when the summary is written. */
  counts: Map<number, number>;
  firstSeq: number;
  lastSeq: number;
  /** Server clock of the first and the last ack counted, ms. */
  from: number;
  to: number;
}

/** What the audit needs from its room. */
export interface CommandAuditHost {
  /** The room's audit log (the node's audit sink). */
  sink: Pick<AuditSink, "append" | "flushed">;
  /** Server clock, ms. */
  now(): number;
  /** Runs `task` every `periodMs` until the room closes. */
  every(periodMs: number, task: () => void): void;
  /** An append failed (Redis unreachable): count it and log it; the room goes on. */
  onAppendFailed(error: unknown, type: string): void;
}

/** Who sent an action, for its audit record. */
export interface Sender {
  sessionId: string;
  subject: string | undefined;
}

export class CommandAudit {
  /** The sink, the clock and the room's timers. */
  private readonly host: CommandAuditHost;
  /** The open summary of each device, by device id. */
  private readonly summaries = new Map<string, CommandSummary>();
  /** Per device: the session each recent lease was granted to, by lease id, oldest first. */
  private readonly grants = new Map<string, Map<string, string>>();

  constructor(host: CommandAuditHost) {
    this.host = host;
    host.every(SUMMARY_MS, () => this.flush());
  }

  /**
   * Resolves once every record so far is stored beyond this node (the audit Redis, and
   * the replica region's); rejects when that takes longer than AUDIT_STORED_WAIT_MS. What
   * acknowledges an audited event waits for it: an acknowledged entry survives the node.
   */
  async stored(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the audit log did not store its entries within ${AUDIT_STORED_WAIT_MS} ms`)), AUDIT_STORED_WAIT_MS);
    });
    try {
      await Promise.race([this.host.sink.flushed(), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Appends one record; a failure goes to the host, never to the caller. */
  record(type: string, data: Record<string, unknown>): void {
    this.host.sink.append(type, data).catch((error: unknown) => this.host.onAppendFailed(error, type));
  }

  /** A lease was granted to `sessionId`: what comes under it is theirs to audit. */
  granted(deviceId: string, leaseId: string, sessionId: string): void {
    let grants = this.grants.get(deviceId);
    if (!grants) this.grants.set(deviceId, (grants = new Map()));
    grants.set(leaseId, sessionId);
    if (grants.size > MAX_GRANTS_REMEMBERED) grants.delete(grants.keys().next().value as string);
  }

  /** Whether `leaseId` was (recently) granted to `sessionId` on the device. */
  wasGranted(deviceId: string, leaseId: string, sessionId: string): boolean {
    return leaseId !== "" && this.grants.get(deviceId)?.get(leaseId) === sessionId;
  }

  /** Adds a command's outcome to its lease's summary; a new lease closes the previous lease's summary first. */
  countCommand(deviceId: string, sessionId: string, ack: tsunagi.v1.CommandAck): void {
    const leaseId = ack.leaseId;
    let summary = this.summaries.get(deviceId);
    // The open summary's lease and session passed wasGranted() when it opened.
    const sameLease = summary !== undefined && summary.leaseId === leaseId && summary.sessionId === sessionId;
    if (!sameLease && !this.wasGranted(deviceId, leaseId, sessionId)) return;
    if (summary && !sameLease) { this.flushDevice(deviceId); summary = undefined; }
    const now = this.host.now();
    const seq = Number(ack.seq);
    if (!summary) {
      summary = { leaseId, sessionId, counts: new Map(), firstSeq: seq, lastSeq: seq, from: now, to: now };
      this.summaries.set(deviceId, summary);
    }
    summary.counts.set(ack.status, (summary.counts.get(ack.status) ?? 0) + 1);
    summary.firstSeq = Math.min(summary.firstSeq, seq);
    summary.lastSeq = Math.max(summary.lastSeq, seq);
    summary.to = now;
  }

  /** An action's outcome, recorded when it was sent under a lease its sender was granted. */
  recordAction(action: tsunagi.v1.DeviceAction, result: tsunagi.v1.ActionResult, sender: Sender): void {
    if (!this.wasGranted(action.deviceId, action.leaseId, sender.sessionId)) return;
    this.record("action", {
      deviceId: action.deviceId, action: action.action.slice(0, 32), value: action.value, leaseId: action.leaseId,
      sessionId: sender.sessionId, subject: sender.subject, status: ackStatusName(result.status), origin: ackOriginName(result.origin),
      detail: result.detail.slice(0, 200),
    });
  }

  /** Writes the device's open summary now (its lease ended, so the next one starts clean). */
  flushDevice(deviceId: string): void {
    const summary = this.summaries.get(deviceId);
    if (!summary) return;
    this.summaries.delete(deviceId);
    const counts: Record<string, number> = {};
    for (const [status, count] of summary.counts) counts[ackStatusName(status)] = count;
    this.record("commands.summary", { deviceId, ...summary, counts });
  }

  /** Writes every open summary (each second, and when the room closes). */
  flush(): void {
    for (const deviceId of [...this.summaries.keys()]) this.flushDevice(deviceId);
  }
}

export { ackStatusName as statusName, ackOriginName as originName };
