/**
 * Append-only, hash-chained audit log in a Redis Stream: lease changes, e-stops,
 * resets, handoffs and command summaries of one teleoperation room (the chain itself is
 * in auditChain.ts).
 *
 * An entry is chained and written to the node's journal (AuditJournal) before it counts
 * as appended; the log then pushes its entries to Redis in order, retrying until Redis
 * takes them. Redis keeps the head record (`<stream>:head`, the last seq and hash),
 * written in the same atomic step as each entry, and after an archive a checkpoint
 * (`<stream>:checkpoint`, the seq and hash of the last entry archived and trimmed away).
 *
 * When Redis has fewer entries than the log pushed (it restarted empty, or from an older
 * snapshot), the log writes the missing ones again from its journal and reports it
 * ("restored"); when the journal does not have them it reports the loss ("lost") and the
 * chain goes on, so verify() shows the gap. Another writer's entries in between (two
 * nodes briefly writing one room) re-chain this log's unpushed entries after them.
 *
 * With a replica (another region's Redis; AuditReplica), each entry goes there too, and
 * flushed() waits for it while it is in reach (a replica found lost, or one that restarted
 * empty, is caught up from the primary when it is back, and holds up no one meanwhile): a
 * region lost with its Redis loses no flushed entry (the node restoring the room
 * elsewhere, whose Redis the replica is, goes on from the replica's head).
 *
 * Reads are paged (pages()), so export and verify never load a long log in one call.
 *
 * @example
 *   const audit = new AuditLog(redis, "tsunagi:audit:site-42", { journal });
 *   await audit.append("lease.granted", { deviceId: "ex-1", sessionId: "abc", leaseId: "L1" });
 *   await audit.flushed();                    // in Redis
 *   const report = await audit.verify();      // { ok: true, entries: 1, ... }
 */
import type { Redis } from "ioredis";
import { AuditReplica } from "./AuditReplica.ts";
import { ChainCheck, GENESIS, ORIGIN, chainEntry, checkAuditType, type AuditEntry, type ChainPoint } from "./auditChain.ts";
import { MemoryAuditJournal, type AuditJournal } from "./AuditJournal.ts";
import type { VerifyReport } from "./AuditSink.ts";

export { GENESIS, canonicalJson, entryHash, type AuditEntry, type ChainPoint } from "./auditChain.ts";

/** Something the log had to repair or could not: the node logs it and counts it. */
export interface AuditProblem {
  kind: "restored" | "lost" | "rechained" | "unreachable";
  stream: string;
  message: string;
  error?: unknown;
}

export interface AuditLogOptions {
  /** Where entries are written before they count; default: memory (dies with the process). */
  journal?: AuditJournal;
  /** The head this node last wrote to this stream (from its journal); default: read from Redis. */
  startAfter?: ChainPoint;
  /** Told of restores, losses, re-chains and Redis being unreachable. */
  onProblem?(problem: AuditProblem): void;
  /** First retry delay when Redis is unreachable, ms (doubling up to 5 s). */
  retryMs?: number;
  /**
   * A Redis in another region that keeps a copy of the stream (failover.replicaRedisUrl):
   * each entry the primary holds is copied there, in order, and flushed() waits for both
   * (for the replica, while its connection stands),
   * so losing the region loses no flushed entry. The primary never waits for the replica
   * (a replica region out of reach holds nothing up); what it misses past `maxEntries`
   * entries, or lost in a restart, is caught up from the primary as far as the primary
   * holds it (AuditReplica). `maxEntries` also bounds its stream (≈, MAXLEN ~).
   */
  replica?: { redis: Redis; maxEntries: number };
}

/** Where the audit log of a room lives in the cluster Redis. */
export function auditStreamKey(clusterName: string, roomId: string): string {
  return `${clusterName}:audit:${roomId}`;
}

/** Entries per read from Redis. */
export const PAGE_SIZE = 1000;

// Appends `entry` if the head is the entry before it; answers 2 when the entry is the head
// already (a push repeated after a lost reply), else 0 with the head. FORCE appends after
// any head: the journal lacked what Redis lost, and the chain must still go on.
const PUSH_SCRIPT = `
local head = redis.call('HMGET', KEYS[2], 'seq', 'hash')
local seq = tonumber(head[1] or '0')
local hash = head[2] or ARGV[8]
if seq == tonumber(ARGV[1]) and hash == ARGV[6] then return {2, ''} end
if ARGV[7] ~= '1' and (seq ~= tonumber(ARGV[1]) - 1 or hash ~= ARGV[5]) then
  return {0, tostring(seq), hash}
end
local id = redis.call('XADD', KEYS[1], '*', 'seq', ARGV[1], 'type', ARGV[2], 'at', ARGV[3], 'data', ARGV[4], 'prev', ARGV[5], 'hash', ARGV[6])
redis.call('HSET', KEYS[2], 'seq', ARGV[1], 'hash', ARGV[6])
return {1, id}
`;

/** An entry as Redis stores it: flat field list. */
function parseEntry(id: string, fields: string[]): AuditEntry {
  const f: Record<string, string> = {};
  for (let i = 0; i < fields.length; i += 2) f[fields[i]] = fields[i + 1];
  let data: Record<string, unknown>;
  try { data = JSON.parse(f.data ?? "null"); } catch { data = { unparseable: f.data }; }
  return { id, seq: Number(f.seq), type: f.type, at: Number(f.at), data, prev: f.prev, hash: f.hash };
}

export class AuditLog {
  /** Key of the head record: the last entry's seq and hash. */
  readonly headKey: string;
  /** Key of the checkpoint: the last entry archived and trimmed from the stream. */
  readonly checkpointKey: string;
  /** Where entries wait until Redis holds them. */
  private readonly journal: AuditJournal;
  private readonly options: AuditLogOptions;
  /** The last entry chained here (journaled), once known. */
  private head?: ChainPoint;
  /** Journaled entries not yet in Redis, oldest first. */
  private pending: AuditEntry[] = [];
  /** Appends run one at a time, so the chain never races itself. */
  private tail: Promise<unknown> = Promise.resolve();
  /** The push loop in flight, if any. */
  private pushing?: Promise<void>;
  /** Retry timer while Redis is unreachable, and its next delay. */
  private retryTimer?: NodeJS.Timeout;
  private retryDelayMs: number;
  /** Entries appended (or adopted) by this log so far. They move, in order, from `pending` to the replica's queue to stored. */
  private appended = 0;
  /** Callers of flushed(), each told once the first `through` entries appended are stored. */
  private waiters: Array<{ through: number; resolve: () => void }> = [];
  /** The copy in the replica region's Redis, if any. */
  private readonly replica?: AuditReplica;
  /** When the log last appended, ms (the node forgets idle logs). */
  lastUsedAt = Date.now();
  private closed = false;

  constructor(private readonly redis: Redis, readonly streamKey: string, options: AuditLogOptions = {}) {
    this.headKey = `${streamKey}:head`;
    this.checkpointKey = `${streamKey}:checkpoint`;
    this.options = options;
    if (options.replica) {
      this.replica = new AuditReplica({
        ...options.replica, streamKey, headKey: this.headKey, retryMs: options.retryMs ?? 200,
        primary: (after, before) => this.entriesBetween(after, before),
        problem: (kind, message, error) => this.problem({ kind, stream: streamKey, message, error }),
        settled: () => this.settleWaiters(),
        closed: () => this.closed,
      });
    }
    this.journal = options.journal ?? new MemoryAuditJournal();
    this.head = options.startAfter && { ...options.startAfter };
    this.retryDelayMs = options.retryMs ?? 200;
  }

  /** The last entry chained here, if any yet. */
  get headPoint(): ChainPoint | undefined {
    return this.head && { ...this.head };
  }

  /** Entries journaled but not yet in Redis. */
  get pendingCount(): number {
    return this.pending.length;
  }

  /**
   * Appends an event: resolves with the entry once it is in the journal (it then reaches
   * Redis as soon as Redis takes it; flushed() waits for that). Throws a TypeError at once
   * for a malformed type.
   */
  append(type: string, data: Record<string, unknown>, at = Date.now()): Promise<AuditEntry> {
    checkAuditType(type);
    const run = this.tail.then(() => this.appendNow(type, data, at));
    this.tail = run.catch(() => {});
    return run;
  }

  /** Entries journaled but not yet in Redis: takes them over (the node replays its journal at start). */
  adopt(entries: readonly AuditEntry[]): void {
    for (const entry of entries) this.pending.push({ ...entry, id: "" });
    this.appended += entries.length;
    const last = entries.at(-1);
    if (last && (!this.head || last.seq > this.head.seq)) this.head = { seq: last.seq, hash: last.hash };
    this.kick();
  }

  /**
   * Resolves once every entry appended so far is in Redis (and in the replica's, with
   * one). Entries appended after the call are not waited for: a busy log never holds up
   * an earlier caller.
   */
  async flushed(): Promise<void> {
    await this.tail;
    const through = this.appended;
    if (this.storedThrough(through)) return;
    await new Promise<void>((resolve) => { this.waiters.push({ through, resolve }); });
  }

  /** Pushes now (Redis is reachable again), instead of at the next retry. */
  kick(): void {
    if (this.closed || this.pushing || this.pending.length === 0) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.pushing = this.push().finally(() => { this.pushing = undefined; });
  }

  /**
   * Redis is reachable again, after an outage, a restart or a failover to a replica that
   * had not yet received the last entries: pushes what is pending, and when nothing is,
   * checks that Redis still holds the chain up to this log's head, writing again from
   * the journal what it lost (no later append is needed to notice).
   */
  reconnected(): void {
    if (this.pending.length > 0 || this.pushing) { this.kick(); return; }
    const run = this.tail.then(() => this.recheck());
    this.tail = run.catch(() => {});
  }

  private async recheck(): Promise<void> {
    const head = this.head;
    if (this.closed || !head || this.pending.length > 0 || this.pushing) return;
    let redisHead: ChainPoint;
    try {
      redisHead = await this.readRedisHead();
    } catch (error) {
      this.problem({ kind: "unreachable", stream: this.streamKey, message: "checking the head after a reconnect failed", error });
      return;
    }
    // Another writer went on past this log (the room moved on): not this log's to repair.
    if (redisHead.seq >= head.seq) return;
    const missing = this.fromJournal(redisHead, head.seq);
    if (!missing) {
      this.problem({ kind: "lost", stream: this.streamKey, message: `Redis holds the chain only up to seq ${redisHead.seq}, and this node's journal does not hold entries ${redisHead.seq + 1} to ${head.seq}: verify reports the gap once the chain goes on` });
      return;
    }
    this.problem({ kind: "restored", stream: this.streamKey, message: `Redis came back holding the chain only up to seq ${redisHead.seq} (restarted, or a replica promoted before it had them): entries ${redisHead.seq + 1} to ${head.seq} written again from the journal` });
    this.pending.push(...missing.map((entry) => ({ ...entry, id: "" })));
    this.kick();
  }

  /** Stops retrying; what is pending stays in the journal for the next start. */
  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
  }

  private async appendNow(type: string, data: Record<string, unknown>, at: number): Promise<AuditEntry> {
    if (!this.head) this.head = await this.redisHead();
    const entry = chainEntry(this.head, type, data, at);
    this.journal.write(this.streamKey, entry);
    this.head = { seq: entry.seq, hash: entry.hash };
    this.pending.push(entry);
    this.appended++;
    this.lastUsedAt = Date.now();
    this.kick();
    return structuredClone(entry);
  }

  /** The head record as Redis holds it: the genesis point for a stream it does not have. */
  private async readRedisHead(): Promise<ChainPoint> {
    const [seqText, hash] = await this.redis.hmget(this.headKey, "seq", "hash");
    return { seq: Number(seqText ?? 0), hash: hash ?? GENESIS };
  }

  /** Redis' head; waits out an outage (the first append of a log needs to know where the chain stands). */
  private async redisHead(): Promise<ChainPoint> {
    for (let delay = this.retryDelayMs; ; delay = Math.min(delay * 2, 5000)) {
      try {
        return await this.readRedisHead();
      } catch (error) {
        this.problem({ kind: "unreachable", stream: this.streamKey, message: "reading the head failed; retrying", error });
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  private async push(): Promise<void> {
    let acked = 0;
    try {
      while (this.pending.length > 0 && !this.closed) {
        const entry = this.pending[0];
        const result = await this.pushOne(entry, false);
        if (result[0] !== 0) {
          if (result[0] === 1) entry.id = String(result[1]);
          this.toReplica(entry);
          this.pending.shift();
          this.settleWaiters();
          acked = entry.seq;
          continue;
        }
        await this.mismatch(entry, { seq: Number(result[1]), hash: String(result[2]) });
      }
      this.retryDelayMs = this.options.retryMs ?? 200;
    } catch (error) {
      this.problem({ kind: "unreachable", stream: this.streamKey, message: `${this.pending.length} entries wait in the journal for Redis`, error });
      if (!this.closed) {
        this.retryTimer = setTimeout(() => { this.retryTimer = undefined; this.kick(); }, this.retryDelayMs);
        this.retryTimer.unref();
        this.retryDelayMs = Math.min(this.retryDelayMs * 2, 5000);
      }
    } finally {
      if (acked) this.journal.acked(this.streamKey, acked);
      this.settleWaiters();
    }
  }

  /**
   * Whether the first `count` entries appended are stored: entries leave the queues in
   * the order they were appended (a re-chained entry keeps its place, its seq changes),
   * so those waiting are the last ones.
   */
  private storedThrough(count: number): boolean {
    // A replica out of reach or catching up is not waited for (AuditReplica.unstored): the entries are in the primary, and go to the replica when it is back.
    return this.appended - this.pending.length - (this.replica?.unstored() ?? 0) >= count;
  }

  /** Resolves the flushed() calls whose entries are all stored. */
  private settleWaiters() {
    if (this.waiters.length === 0) return;
    this.waiters = this.waiters.filter((waiter) => {
      if (!this.storedThrough(waiter.through)) return true;
      waiter.resolve();
      return false;
    });
  }

  /** An entry the primary holds: to the replica too. */
  private toReplica(entry: AuditEntry) {
    this.replica?.add(entry);
  }

  /** The entries Redis holds with `after` < seq < `before`, oldest first (a replica catching up). */
  private async entriesBetween(after: number, before: number): Promise<AuditEntry[]> {
    const found: AuditEntry[] = [];
    for await (const page of this.pages()) {
      for (const entry of page) {
        if (entry.seq >= before) return found; // in seq order: nothing further is wanted
        if (entry.seq > after) found.push(entry);
      }
    }
    return found;
  }

  private pushOne(entry: AuditEntry, force: boolean): Promise<[number, string | number, string?]> {
    return this.redis.eval(PUSH_SCRIPT, 2, this.streamKey, this.headKey,
      String(entry.seq), entry.type, String(entry.at), JSON.stringify(entry.data), entry.prev, entry.hash, force ? "1" : "0", GENESIS,
    ) as Promise<[number, string | number, string?]>;
  }

  /** Redis' head is not the entry before `entry`: Redis lost entries, or another writer went on. */
  private async mismatch(entry: AuditEntry, redisHead: ChainPoint): Promise<void> {
    if (redisHead.seq < entry.seq - 1) {
      const missing = this.fromJournal(redisHead, entry.seq - 1);
      if (missing) {
        this.problem({ kind: "restored", stream: this.streamKey, message: `Redis held the chain only up to seq ${redisHead.seq} (restarted empty or from an older snapshot): entries ${redisHead.seq + 1} to ${entry.seq - 1} written again from the journal` });
        this.pending.unshift(...missing);
        return;
      }
      this.problem({ kind: "lost", stream: this.streamKey, message: `Redis lost entries ${redisHead.seq + 1} to ${entry.seq - 1} (restarted empty or from an older snapshot) and this node's journal does not hold them: the chain goes on from seq ${entry.seq}, and verify reports the gap` });
      const result = await this.pushOne(entry, true);
      if (result[0] === 1) entry.id = String(result[1]);
      this.toReplica(entry);
      this.pending.shift();
      this.journal.acked(this.streamKey, entry.seq);
      return;
    }
    // Another writer appended in between: chain what is pending after its entries.
    this.problem({ kind: "rechained", stream: this.streamKey, message: `another writer reached seq ${redisHead.seq}: ${this.pending.length} pending entries re-chained after it` });
    let point = redisHead;
    this.pending = this.pending.map((old) => {
      const rechained = chainEntry(point, old.type, old.data, old.at);
      this.journal.write(this.streamKey, rechained);
      point = { seq: rechained.seq, hash: rechained.hash };
      return rechained;
    });
    this.head = point;
  }

  /** The journal's entries after `from` up to seq `to`, if it holds all of them and they follow `from`. */
  private fromJournal(from: ChainPoint, to: number): AuditEntry[] | undefined {
    const held = this.journal.read().get(this.streamKey);
    if (!held) return undefined;
    const check = new ChainCheck(from);
    const entries: AuditEntry[] = [];
    for (let seq = from.seq + 1; seq <= to; seq++) {
      const entry = held.entries.get(seq);
      if (!entry || check.next(entry) !== undefined) return undefined;
      entries.push(entry);
    }
    return entries;
  }

  private problem(problem: AuditProblem) {
    try { this.options.onProblem?.(problem); } catch { /* a faulty listener must not stop the log */ }
  }

  // --- reading -------------------------------------------------------------------------

  /** The entries Redis holds, oldest first, `pageSize` at a time. */
  async *pages(pageSize = PAGE_SIZE): AsyncGenerator<AuditEntry[]> {
    let start = "-";
    for (;;) {
      const raw = await this.redis.xrange(this.streamKey, start, "+", "COUNT", pageSize);
      if (raw.length === 0) return;
      yield raw.map(([id, fields]) => parseEntry(id, fields));
      if (raw.length < pageSize) return;
      start = `(${raw[raw.length - 1][0]}`;
    }
  }

  /** Every entry Redis holds, oldest first (in one array: for tests and short logs; tools use pages()). */
  async export(): Promise<AuditEntry[]> {
    const all: AuditEntry[] = [];
    for await (const page of this.pages()) all.push(...page);
    return all;
  }

  /** The checkpoint of the last archive, or undefined when nothing was trimmed. */
  async checkpoint(): Promise<ChainPoint | undefined> {
    const [seqText, hash] = await this.redis.hmget(this.checkpointKey, "seq", "hash");
    return seqText && hash ? { seq: Number(seqText), hash } : undefined;
  }

  /**
   * Recomputes the chain page by page, from the checkpoint when the log was trimmed;
   * reports the first entry that does not fit, a chain that lost its past, a head that
   * does not match, and, given an anchor (a head recorded outside Redis), a rollback.
   */
  async verify(options: { anchor?: ChainPoint } = {}): Promise<VerifyReport> {
    const checkpoint = await this.checkpoint();
    const check = new ChainCheck(checkpoint ?? ORIGIN);
    let anchorSeen = options.anchor !== undefined && options.anchor.seq <= check.point.seq;
    if (anchorSeen && options.anchor!.seq === check.point.seq && options.anchor!.hash !== check.point.hash) {
      return { ok: false, entries: 0, brokenAt: 0, reason: `the checkpoint (seq ${check.point.seq}) does not match the anchor: history was rewritten` };
    }
    // A live log goes on while it is read: it is verified up to the head read first (the head
    // is written with each entry, atomically); what is appended after that is newer than the
    // point verified, and left for the next verify.
    const [seqText, headHash] = await this.redis.hmget(this.headKey, "seq", "hash");
    const headSeq = Number(seqText ?? 0);
    reading: for await (const page of this.pages()) {
      for (const entry of page) {
        if (check.point.seq >= headSeq && entry.seq > headSeq) break reading;
        const problem = check.next(entry);
        if (problem) return { ok: false, entries: check.count, brokenAt: check.count, reason: problem };
        if (options.anchor && entry.seq === options.anchor.seq) {
          if (entry.hash !== options.anchor.hash) return { ok: false, entries: check.count, brokenAt: check.count - 1, reason: `entry ${entry.seq} is not the one anchored (${options.anchor.hash.slice(0, 12)}): history was rewritten` };
          anchorSeen = true;
        }
      }
    }
    if (headSeq !== check.point.seq || (headHash ?? GENESIS) !== check.point.hash) {
      return { ok: false, entries: check.count, brokenAt: check.count, reason: `head says ${headSeq} entries ending in ${headHash?.slice(0, 12)}, the stream ends at seq ${check.point.seq}: entries were removed or added outside the log` };
    }
    if (options.anchor && !anchorSeen) {
      return { ok: false, entries: check.count, brokenAt: check.count, reason: `rolled back: the anchor names seq ${options.anchor.seq}, the log ends at seq ${check.point.seq} (Redis restarted from an older state, or entries were removed with the head)` };
    }
    return { ok: true, entries: check.count, headSeq: check.point.seq, headHash: check.point.hash, ...(checkpoint ? { checkpoint } : {}) };
  }
}
