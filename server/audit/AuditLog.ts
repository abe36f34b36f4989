/**
 * Append-only, hash-chained audit log in a Redis Stream: lease changes, e-stops,
 * resets, handoffs and command summaries of one teleoperation room.
 *
 * Each entry carries `seq`, `prev` (the previous entry's hash) and `hash` =
 * SHA-256(prev, seq, type, at, canonical JSON of data). Editing, reordering or removing
 * an entry breaks the chain; removing entries from the end is caught by the head record
 * (`<stream>:head`), written in the same atomic step as each append. Anyone who can
 * rewrite the whole stream and its head can still forge history: anchor exported head
 * hashes outside Redis where that matters.
 *
 * @example
 *   const audit = new AuditLog(redis, "tsunagi:audit:site-42");
 *   await audit.append("lease.granted", { deviceId: "ex-1", sessionId: "abc", leaseId: "L1" });
 *   const report = await audit.verify(); // { ok: true, entries: 1 }
 */
import { createHash } from "node:crypto";
import type { Redis } from "ioredis";

export interface AuditEntry {
  /** Redis stream id. */
  id: string;
  seq: number;
  type: string;
  /** Wall-clock time of the event, ms since the epoch. */
  at: number;
  data: Record<string, unknown>;
  prev: string;
  hash: string;
}

export type VerifyReport =
  | { ok: true; entries: number; headHash: string }
  | { ok: false; entries: number; brokenAt: number; reason: string };

/** Where the audit log of a room lives in the cluster Redis. */
export function auditStreamKey(clusterName: string, roomId: string): string {
  return `${clusterName}:audit:${roomId}`;
}

/** The `prev` of the first entry. */
export const GENESIS = "0".repeat(64);

// Appends only if the chain head is still the one the caller hashed against; otherwise
// returns the current head so the caller can re-hash and retry (two writers never fork it).
const APPEND_SCRIPT = `
local head = redis.call('HMGET', KEYS[2], 'seq', 'hash')
local seq = tonumber(head[1] or '0')
local hash = head[2] or ARGV[1]
if seq ~= tonumber(ARGV[2]) or hash ~= ARGV[3] then
  return {0, tostring(seq), hash}
end
local id = redis.call('XADD', KEYS[1], '*', 'seq', ARGV[4], 'type', ARGV[5], 'at', ARGV[6], 'data', ARGV[7], 'prev', ARGV[3], 'hash', ARGV[8])
redis.call('HSET', KEYS[2], 'seq', ARGV[4], 'hash', ARGV[8])
return {1, id}
`;

/** JSON with object keys sorted, so the hash does not depend on key order. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const entries = Object.keys(value as object).sort()
    .filter((key) => (value as Record<string, unknown>)[key] !== undefined)
    .map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`);
  return `{${entries.join(",")}}`;
}

export function entryHash(prev: string, seq: number, type: string, at: number, data: unknown): string {
  return createHash("sha256").update(`${prev}\n${seq}\n${type}\n${at}\n${canonicalJson(data)}`).digest("hex");
}

export class AuditLog {
  /** Key of the head record: the last entry's seq and hash. */
  private readonly headKey: string;
  /** Appends run one at a time so this writer never races itself. */
  private tail: Promise<unknown> = Promise.resolve();

  constructor(private readonly redis: Redis, readonly streamKey: string) {
    this.headKey = `${streamKey}:head`;
  }

  /** Appends an event; resolves with the stored entry once it is in Redis. */
  append(type: string, data: Record<string, unknown>, at = Date.now()): Promise<AuditEntry> {
    if (!/^[a-z][a-z0-9_.-]{0,63}$/.test(type)) throw new TypeError(`audit type "${type}" must be lowercase words joined by '.', '-' or '_'`);
    const run = this.tail.then(() => this.appendNow(type, data, at));
    this.tail = run.catch(() => {});
    return run;
  }

  private async appendNow(type: string, data: Record<string, unknown>, at: number): Promise<AuditEntry> {
    const json = canonicalJson(data);
    // One node writes a room's log, so contention is rare (a handoff overlap); retry with jitter.
    for (let attempt = 0; attempt < 100; attempt++) {
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(50, attempt * 2)));
      const [seqText, headHash] = await this.redis.hmget(this.headKey, "seq", "hash");
      const lastSeq = Number(seqText ?? 0);
      const prev = headHash ?? GENESIS;
      const seq = lastSeq + 1;
      const hash = entryHash(prev, seq, type, at, data);
      const result = await this.redis.eval(APPEND_SCRIPT, 2, this.streamKey, this.headKey,
        GENESIS, String(lastSeq), prev, String(seq), type, String(at), json, hash) as [number, string];
      if (result[0] === 1) return { id: result[1], seq, type, at, data, prev, hash };
      // Another writer appended in between: hash against the new head and try again.
    }
    throw new Error(`audit log ${this.streamKey}: could not append after 100 attempts (contended head)`);
  }

  /** Every entry, oldest first. */
  async export(): Promise<AuditEntry[]> {
    const raw = await this.redis.xrange(this.streamKey, "-", "+");
    return raw.map(([id, fields]) => {
      const f: Record<string, string> = {};
      for (let i = 0; i < fields.length; i += 2) f[fields[i]] = fields[i + 1];
      let data: Record<string, unknown>;
      try { data = JSON.parse(f.data ?? "null"); } catch { data = { unparseable: f.data }; }
      return { id, seq: Number(f.seq), type: f.type, at: Number(f.at), data, prev: f.prev, hash: f.hash };
    });
  }

  /** Recomputes the chain; reports the first entry that does not fit. */
  async verify(): Promise<VerifyReport> {
    const entries = await this.export();
    let prev = GENESIS;
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i];
      if (entry.seq !== i + 1) return { ok: false, entries: entries.length, brokenAt: i, reason: `entry ${entry.id} has seq ${entry.seq}, expected ${i + 1}` };
      if (entry.prev !== prev) return { ok: false, entries: entries.length, brokenAt: i, reason: `entry ${entry.id} does not link to the previous entry` };
      if (entryHash(entry.prev, entry.seq, entry.type, entry.at, entry.data) !== entry.hash) {
        return { ok: false, entries: entries.length, brokenAt: i, reason: `entry ${entry.id} (seq ${entry.seq}, ${entry.type}) was altered: its hash does not match its content` };
      }
      prev = entry.hash;
    }
    const [seqText, headHash] = await this.redis.hmget(this.headKey, "seq", "hash");
    const headSeq = Number(seqText ?? 0);
    if (headSeq !== entries.length || (headHash ?? GENESIS) !== prev) {
      return { ok: false, entries: entries.length, brokenAt: entries.length, reason: `head says ${headSeq} entries ending in ${headHash?.slice(0, 12)}, the stream holds ${entries.length}: entries were removed or added outside the log` };
    }
    return { ok: true, entries: entries.length, headHash: prev };
  }
}

/** What a TeleopRoom writes its audit to: the Redis log, or the in-memory one in embedded mode. */
export interface AuditSink {
  readonly streamKey: string;
  append(type: string, data: Record<string, unknown>, at?: number): Promise<AuditEntry>;
  export(): Promise<AuditEntry[]>;
  verify(): Promise<VerifyReport>;
}

/**
 * The same hash chain kept in process memory, for an embedded node without Redis (the
 * demo). It dies with the process: production audit belongs in Redis. Bounded: beyond
 * `maxEntries` the oldest tenth is dropped (a demo left running for weeks must not grow
 * without limit); verify() then checks the chain from the oldest entry kept.
 */
export class InMemoryAuditLog implements AuditSink {
  private entries: AuditEntry[] = [];
  /** Entries dropped from the front so far. */
  private dropped = 0;

  constructor(readonly streamKey: string, private readonly maxEntries = 100_000) {}

  async append(type: string, data: Record<string, unknown>, at = Date.now()): Promise<AuditEntry> {
    const last = this.entries[this.entries.length - 1];
    const seq = (last?.seq ?? 0) + 1;
    const prev = last?.hash ?? GENESIS;
    const stored = JSON.parse(canonicalJson(data)) as Record<string, unknown>;
    const entry: AuditEntry = { id: `${at}-${seq}`, seq, type, at, data: stored, prev, hash: entryHash(prev, seq, type, at, stored) };
    this.entries.push(entry);
    if (this.entries.length > this.maxEntries) {
      const drop = Math.max(1, Math.floor(this.maxEntries / 10));
      this.entries = this.entries.slice(drop);
      this.dropped += drop;
    }
    return entry;
  }

  async export(): Promise<AuditEntry[]> {
    return this.entries.map((entry) => ({ ...entry }));
  }

  async verify(): Promise<VerifyReport> {
    let prev = this.dropped === 0 ? GENESIS : (this.entries[0]?.prev ?? GENESIS);
    for (const [i, entry] of this.entries.entries()) {
      if (entry.prev !== prev || entryHash(entry.prev, entry.seq, entry.type, entry.at, entry.data) !== entry.hash) {
        return { ok: false, entries: this.entries.length, brokenAt: i, reason: `entry ${entry.seq} does not fit the chain` };
      }
      prev = entry.hash;
    }
    return { ok: true, entries: this.entries.length, headHash: prev };
  }
}
