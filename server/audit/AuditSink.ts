/**
 * Where a room's audit goes, as the rooms see it (AuditSink), what verify() reports, and
 * the sink of an embedded node without Redis: the same hash chain kept in process memory
 * (InMemoryAuditLog). The Redis-backed log, with its journal and replica, is AuditLog.ts.
 *
 * @example
 *   const sink: AuditSink = new InMemoryAuditLog(auditStreamKey("tsunagi", "site-42"));
 *   await sink.append("lease.granted", { deviceId: "ex-1", leaseId: "L1" });
 *   (await sink.verify()).ok;   // true
 */
import { ChainCheck, ORIGIN, chainEntry, checkAuditType, type AuditEntry, type ChainPoint } from "./auditChain.ts";

export type VerifyReport =
  | { ok: true; entries: number; headSeq: number; headHash: string; checkpoint?: ChainPoint }
  | { ok: false; entries: number; brokenAt: number; reason: string };

/** What a TeleopRoom writes its audit to: the Redis log, or the in-memory one in embedded mode. */
export interface AuditSink {
  readonly streamKey: string;
  append(type: string, data: Record<string, unknown>, at?: number): Promise<AuditEntry>;
  export(): Promise<AuditEntry[]>;
  verify(): Promise<VerifyReport>;
  /** Resolves once every entry appended so far is stored where it outlives this node. */
  flushed(): Promise<void>;
}

/**
 * The same hash chain kept in process memory, for an embedded node without Redis (the
 * demo). It dies with the process: production audit belongs in Redis. Bounded: beyond
 * `maxEntries` the oldest tenth is dropped (a demo left running for weeks must not grow
 * without limit); verify() then checks the chain from the oldest entry kept.
 */
export class InMemoryAuditLog implements AuditSink {
  private entries: AuditEntry[] = [];
  /** Where the kept entries begin: before entry 1, or the last entry dropped. */
  private start: ChainPoint = ORIGIN;

  constructor(readonly streamKey: string, private readonly maxEntries = 100_000) {}

  async append(type: string, data: Record<string, unknown>, at = Date.now()): Promise<AuditEntry> {
    checkAuditType(type);
    const last = this.entries.at(-1);
    const entry = chainEntry(last ?? this.start, type, data, at);
    entry.id = `${at}-${entry.seq}`;
    this.entries.push(entry);
    if (this.entries.length > this.maxEntries) {
      const drop = Math.max(1, Math.floor(this.maxEntries / 10));
      const lastDropped = this.entries[drop - 1];
      this.start = { seq: lastDropped.seq, hash: lastDropped.hash };
      this.entries = this.entries.slice(drop);
    }
    return structuredClone(entry);
  }

  async export(): Promise<AuditEntry[]> {
    return this.entries.map((entry) => ({ ...entry }));
  }

  /** Held in this process only: stored as soon as appended (an embedded node has nowhere else). */
  async flushed(): Promise<void> {}

  async verify(): Promise<VerifyReport> {
    const check = new ChainCheck(this.start);
    for (const entry of this.entries) {
      const problem = check.next(entry);
      if (problem) return { ok: false, entries: this.entries.length, brokenAt: check.count, reason: problem };
    }
    return { ok: true, entries: this.entries.length, headSeq: check.point.seq, headHash: check.point.hash };
  }
}
