/**
 * The copy of one audit stream in the replica region's Redis (AuditLogOptions.replica):
 * every entry the primary holds, in order, so a region lost with its Redis loses no
 * flushed entry. The primary never waits for it: AuditLog hands each entry over once the
 * primary holds it (add), and this copies them, up to REPLICA_BATCH per call, retrying
 * with backoff while the replica is out of reach.
 *
 * A replica behind the entry it is sent (its Redis restarted empty, it missed entries
 * past its bound while out of reach, or replication began on a stream that had entries
 * already) is caught up from the primary first: the copy holds the whole chain the
 * primary does. What the primary no longer holds (archived and trimmed) is reported lost,
 * and the copy goes on after the gap. While it catches up, or is out of reach, no one
 * waits for it (unstored() is 0): an entry acknowledged then is in the primary.
 *
 * @example
 *   const replica = new AuditReplica({ redis, maxEntries: 10_000, streamKey, headKey, primary, problem, settled, closed });
 *   replica.add(entry);            // the primary holds it
 *   replica.unstored();            // entries a flushed() must still wait for
 */
import type { Redis } from "ioredis";
import { connectionLost } from "../redisConnection.ts";
import type { AuditEntry } from "./auditChain.ts";

/** Entries per call to the replica's Redis. */
export const REPLICA_BATCH = 100;

// Appends entries after whatever the head is, each unless it is the head already (a push
// repeated after a lost reply). ARGV[1]: the stream's approximate bound (the replica is
// never archived: the primary is); ARGV[2]: a seq whose gap before it is known and
// accepted ('0': none); then 6 per entry: seq, type, at, data, prev, hash. Stops at an
// entry the head is more than one behind (answers {3, head seq, appended}); else {1, appended}.
const REPLICA_SCRIPT = `
local head = redis.call('HMGET', KEYS[2], 'seq', 'hash')
local seq = tonumber(head[1] or '0')
local hash = head[2]
local appended = 0
for i = 3, #ARGV, 6 do
  local entrySeq = tonumber(ARGV[i])
  if not (seq == entrySeq and hash == ARGV[i + 5]) then
    if seq < entrySeq - 1 and ARGV[i] ~= ARGV[2] then return {3, tostring(seq), appended} end
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'seq', ARGV[i], 'type', ARGV[i + 1], 'at', ARGV[i + 2], 'data', ARGV[i + 3], 'prev', ARGV[i + 4], 'hash', ARGV[i + 5])
    seq = entrySeq
    hash = ARGV[i + 5]
    redis.call('HSET', KEYS[2], 'seq', ARGV[i], 'hash', ARGV[i + 5])
  end
  appended = appended + 1
end
return {1, '', appended}
`;

export interface AuditReplicaOptions {
  redis: Redis;
  /** Entries the copy keeps (≈), and the most that wait for it while it is out of reach. */
  maxEntries: number;
  streamKey: string;
  headKey: string;
  /** First retry delay, ms (doubling up to 5 s). */
  retryMs: number;
  /** The primary's entries with `after` < seq < `before`, oldest first (what it still holds). */
  primary(after: number, before: number): Promise<AuditEntry[]>;
  problem(kind: "lost" | "restored" | "unreachable", message: string, error?: unknown): void;
  /** Called whenever unstored() may have dropped (AuditLog settles its flushed() waiters). */
  settled(): void;
  closed(): boolean;
}

export class AuditReplica {
  /** Entries the primary holds and the copy does not yet, oldest first. */
  private pending: AuditEntry[] = [];
  /** How many at the front of `pending` are a catch-up from the primary (no one waits for them). */
  private catchingUp = 0;
  /** A seq whose gap before it is known (the primary no longer holds those entries): appended after the gap. */
  private gapAcceptedAt = 0;
  /** The last copy failed and none has succeeded since: out of reach. */
  private failing = false;
  private pushing?: Promise<void>;

  constructor(private readonly options: AuditReplicaOptions) {}

  /** An entry the primary holds (in order; the oldest dropped, and said so, past maxEntries). */
  add(entry: AuditEntry) {
    this.pending.push(entry);
    const over = this.pending.length - this.catchingUp - this.options.maxEntries;
    if (over > 0) {
      const dropped = this.pending.splice(this.catchingUp, over);
      this.options.problem("lost", `the replica was out of reach for ${this.options.maxEntries} entries: entries ${dropped[0]!.seq} to ${dropped.at(-1)!.seq} are caught up from the primary when it is back, as far as the primary holds them`);
    }
    this.pushing ??= this.push().finally(() => { this.pushing = undefined; });
  }

  /** Entries a flushed() must still wait for: none while the copy is out of reach or catching up. */
  unstored(): number {
    if (this.failing || this.catchingUp > 0 || connectionLost(this.options.redis)) return 0;
    return this.pending.length;
  }

  private async push(): Promise<void> {
    const { options } = this;
    for (let delay = options.retryMs; this.pending.length > 0 && !options.closed();) {
      const batch = this.pending.slice(0, REPLICA_BATCH);
      try {
        const args = batch.flatMap((e) => [String(e.seq), e.type, String(e.at), JSON.stringify(e.data), e.prev, e.hash]);
        const [outcome, headSeq, appended] = await options.redis.eval(REPLICA_SCRIPT, 2, options.streamKey, options.headKey,
          String(options.maxEntries), String(this.gapAcceptedAt), ...args) as [number, string, number];
        this.taken(appended);
        if (outcome === 3) await this.catchUp(Number(headSeq));
        this.failing = false;
        delay = options.retryMs;
      } catch (error) {
        options.problem("unreachable", `${this.pending.length} entries wait for the replica's Redis`, error);
        this.failing = true;
        options.settled(); // a replica found out of reach holds up no flushed()
        await new Promise((resolve) => setTimeout(resolve, delay).unref());
        delay = Math.min(delay * 2, 5000);
      }
      options.settled();
    }
  }

  /** The first `count` pending entries are in the copy. */
  private taken(count: number) {
    this.pending.splice(0, count);
    this.catchingUp = Math.max(0, this.catchingUp - count);
  }

  /** The copy's head is `headSeq`, more than one behind the next entry: the entries in between come from the primary first. */
  private async catchUp(headSeq: number) {
    const next = this.pending[0]!;
    const missing = await this.options.primary(headSeq, next.seq);
    const from = missing[0]?.seq ?? next.seq;
    if (from > headSeq + 1) {
      this.gapAcceptedAt = from;
      this.options.problem("lost", `the replica lacks entries ${headSeq + 1} to ${from - 1}, which the primary no longer holds: its copy goes on from seq ${from}`);
    }
    if (missing.length) this.options.problem("restored", `the replica held the chain only up to seq ${headSeq}: entries ${from} to ${next.seq - 1} copied again from the primary`);
    this.pending.unshift(...missing);
    this.catchingUp += missing.length;
  }
}
