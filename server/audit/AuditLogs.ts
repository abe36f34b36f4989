/**
 * The audit logs a node writes, in Redis mode: one AuditLog per room, one journal file
 * for all of them (AuditJournal), and the chores on a timer (`audit.anchorMs`):
 *
 * - anchor: each log's head (seq and hash) is written to `<dir>/<nodeId>.anchors.json`
 *   and logged, outside Redis, so `npm run audit -- verify --anchor FILE` catches a
 *   Redis that rolled the stream and its head back together;
 * - archive: a stream longer than `audit.maxEntries` has its oldest half archived to
 *   `<dir>/archive/` and trimmed, behind a checkpoint (AuditArchive.ts);
 * - compact: the journal keeps what Redis may still need again (entries after each live
 *   stream's checkpoint, and anything not yet in Redis), the rest is dropped.
 *
 * At start it replays the journal: entries a previous run of this node (same node id)
 * journaled but never got into Redis are pushed, in order.
 *
 * @example
 *   const logs = new AuditLogs({ redis, clusterName: "tsunagi", nodeId: "tokyo-1", dir: ".tsunagi/audit", anchorMs: 60_000, maxEntries: 100_000, logger, metrics });
 *   logs.replay();
 *   const log = logs.log("site-42");
 *   redis.on("ready", () => logs.kick());
 */
import { existsSync, readFileSync, renameSync, writeFileSync, mkdirSync } from "node:fs";
import path from "node:path";
import type { Redis } from "ioredis";
import type { Logger } from "../observability/logging.ts";
import type { NodeMetrics } from "../observability/metrics.ts";
import { AuditLog, auditStreamKey, type AuditProblem } from "./AuditLog.ts";
import { FileAuditJournal, type AuditJournal } from "./AuditJournal.ts";
import { archiveLog } from "./AuditArchive.ts";
import type { ChainPoint } from "./auditChain.ts";

/** A log idle this long with nothing pending is forgotten (its journal entries go at the next compaction). */
export const IDLE_LOG_MS = 60 * 60_000;
/** The journal is compacted once this much (or as much as the last compaction kept, if more) was written to it since. */
export const COMPACT_AFTER_BYTES = 1024 * 1024;
/** "Redis unreachable" is logged at most this often. */
const UNREACHABLE_LOG_MS = 10_000;

/** The anchor file: each stream's head as this node last saw it. */
export interface AnchorFile {
  nodeId: string;
  writtenAt: number;
  streams: Record<string, ChainPoint & { at: number }>;
}

/** Reads an anchor file; the anchor of `streamKey`, if it names it. */
export function readAnchor(file: string, streamKey: string): (ChainPoint & { at: number }) | undefined {
  const anchors = JSON.parse(readFileSync(file, "utf8")) as AnchorFile;
  return anchors.streams?.[streamKey];
}

export interface AuditLogsOptions {
  redis: Redis;
  /** Another region's Redis keeping a copy of every stream (AuditLog's `replica`). */
  replica?: Redis;
  clusterName: string;
  nodeId: string;
  /** Journal, anchors and archive live here. */
  dir: string;
  anchorMs: number;
  maxEntries: number;
  logger: Logger;
  metrics?: NodeMetrics;
  /** The journal; default: `<dir>/<nodeId>.journal.jsonl`. */
  journal?: AuditJournal;
}

export class AuditLogs {
  private readonly options: AuditLogsOptions;
  readonly journal: AuditJournal;
  /** Live logs by stream key. */
  private readonly logs = new Map<string, AuditLog>();
  /** Heads of streams with no live log (from the journal, or of a log forgotten while idle), by stream key. */
  private readonly journalHeads = new Map<string, ChainPoint>();
  /** Each live stream's checkpoint as last read, by stream key (the journal keeps what is above). */
  private readonly checkpoints = new Map<string, number>();
  /** Anchor, archive and compaction timer; the journal's fsync timer. */
  private readonly choresTimer: NodeJS.Timeout;
  private readonly syncTimer: NodeJS.Timeout;
  /** Bytes written to the journal after which it is compacted again: what compaction leaves grows it at most 2×. */
  private compactAfter = COMPACT_AFTER_BYTES;
  /** Journal bytes at the last fsync. */
  private syncedBytes = 0;
  /** When "unreachable" was last logged. */
  private unreachableLoggedAt = 0;
  /** The chores in flight, so close() waits for them. */
  private chores?: Promise<void>;
  readonly anchorFile: string;
  readonly archiveDir: string;

  constructor(options: AuditLogsOptions) {
    this.options = options;
    this.journal = options.journal ?? new FileAuditJournal(path.join(options.dir, `${options.nodeId}.journal.jsonl`));
    this.anchorFile = path.join(options.dir, `${options.nodeId}.anchors.json`);
    this.archiveDir = path.join(options.dir, "archive");
    this.choresTimer = setInterval(() => { this.chores ??= this.runChores().finally(() => { this.chores = undefined; }); }, options.anchorMs);
    this.choresTimer.unref();
    this.syncTimer = setInterval(() => this.sync(), 1000);
    this.syncTimer.unref();
  }

  /** Pushes what a previous run of this node journaled and never got into Redis. */
  replay(): void {
    for (const [stream, held] of this.journal.read()) {
      const seqs = [...held.entries.keys()].sort((a, b) => a - b);
      const last = held.entries.get(seqs[seqs.length - 1]);
      if (!last) continue;
      this.journalHeads.set(stream, { seq: last.seq, hash: last.hash });
      const unpushed = seqs.filter((seq) => seq > held.acked).map((seq) => held.entries.get(seq)!);
      if (unpushed.length === 0) continue;
      this.options.logger.warn({ stream, entries: unpushed.length }, `audit: ${unpushed.length} entries of ${stream} from the journal were not in Redis; pushing them`);
      this.open(stream).adopt(unpushed);
    }
  }

  /** The log of a room. */
  log(roomId: string): AuditLog {
    return this.open(auditStreamKey(this.options.clusterName, roomId));
  }

  /** Redis is reachable again: every log pushes now, and one with nothing to push checks Redis still holds its chain. */
  kick(): void {
    for (const log of this.logs.values()) log.reconnected();
  }

  /** Anchors, archives and compacts now (the timer does it every `anchorMs`). */
  async runChores(): Promise<void> {
    this.anchor();
    for (const log of this.logs.values()) await this.archiveIfLong(log);
    this.forgetIdle();
    if (this.journal.written >= this.compactAfter) this.compact();
  }

  /** Writes every live log's head to the anchor file (kept with the streams it named before), and logs them. */
  anchor(): void {
    const now = Date.now();
    let anchors: AnchorFile = { nodeId: this.options.nodeId, writtenAt: now, streams: {} };
    try {
      if (existsSync(this.anchorFile)) anchors = { ...JSON.parse(readFileSync(this.anchorFile, "utf8")), writtenAt: now };
    } catch (error) {
      this.options.logger.error({ err: error, file: this.anchorFile }, "audit: the anchor file is unreadable; writing a new one");
    }
    const heads: Record<string, ChainPoint> = {};
    for (const [stream, log] of this.logs) {
      const head = log.headPoint;
      if (!head || head.seq === 0) continue;
      anchors.streams[stream] = { ...head, at: now };
      heads[stream] = head;
    }
    if (Object.keys(heads).length === 0) return;
    try {
      mkdirSync(path.dirname(this.anchorFile), { recursive: true });
      writeFileSync(`${this.anchorFile}.writing`, JSON.stringify(anchors, null, 1));
      renameSync(`${this.anchorFile}.writing`, this.anchorFile);
      this.options.logger.info({ anchors: heads }, "audit anchors");
    } catch (error) {
      this.options.logger.error({ err: error, file: this.anchorFile }, "audit: writing the anchor file failed");
    }
  }

  /** Stops the timers, anchors once more and waits up to `waitMs` for pending entries to reach Redis (the rest stays journaled). */
  async close(waitMs = 2000): Promise<void> {
    clearInterval(this.choresTimer);
    clearInterval(this.syncTimer);
    await this.chores;
    this.anchor();
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => { timer = setTimeout(resolve, waitMs); });
    await Promise.race([Promise.all([...this.logs.values()].map((log) => log.flushed())), bound]);
    clearTimeout(timer);
    for (const log of this.logs.values()) log.close();
    this.journal.close();
  }

  private open(stream: string): AuditLog {
    let log = this.logs.get(stream);
    if (!log) {
      const replica = this.options.replica;
      log = new AuditLog(this.options.redis, stream, {
        journal: this.journal, startAfter: this.journalHeads.get(stream), onProblem: (problem) => this.problem(problem),
        ...(replica && { replica: { redis: replica, maxEntries: this.options.maxEntries } }),
      });
      this.journalHeads.delete(stream);
      this.logs.set(stream, log);
    }
    return log;
  }

  private problem(problem: AuditProblem) {
    const { logger, metrics } = this.options;
    metrics?.errors.inc({ code: `AUDIT_${problem.kind.toUpperCase()}`, source: "audit" });
    if (problem.kind === "unreachable") {
      if (Date.now() - this.unreachableLoggedAt < UNREACHABLE_LOG_MS) return;
      this.unreachableLoggedAt = Date.now();
      logger.warn({ err: problem.error, stream: problem.stream }, `audit: Redis unreachable: ${problem.message}`);
      return;
    }
    const level = problem.kind === "rechained" ? "warn" : "error";
    logger[level]({ stream: problem.stream, kind: problem.kind }, `audit log ${problem.stream}: ${problem.message}`);
  }

  private async archiveIfLong(log: AuditLog): Promise<void> {
    try {
      const checkpoint = (await log.checkpoint())?.seq ?? 0;
      this.checkpoints.set(log.streamKey, checkpoint);
      const head = log.headPoint;
      if (!head || log.pendingCount > 0 || head.seq - checkpoint <= this.options.maxEntries) return;
      const upTo = head.seq - Math.floor(this.options.maxEntries / 2);
      const file = await archiveLog(this.options.redis, log, this.archiveDir, upTo);
      if (!file) return;
      this.checkpoints.set(log.streamKey, upTo);
      this.options.logger.info({ stream: log.streamKey, file, checkpoint: upTo }, `audit log ${log.streamKey}: entries up to ${upTo} archived to ${file} and trimmed`);
    } catch (error) {
      this.options.metrics?.errors.inc({ code: "AUDIT_ARCHIVE_FAILED", source: "audit" });
      this.options.logger.error({ err: error, stream: log.streamKey }, `audit log ${log.streamKey}: archiving failed; the stream keeps its entries`);
    }
  }

  private forgetIdle() {
    const now = Date.now();
    for (const [stream, log] of this.logs) {
      if (log.pendingCount > 0 || now - log.lastUsedAt < IDLE_LOG_MS) continue;
      // The head stays known, so the log goes on from it even while Redis is away.
      const head = log.headPoint;
      if (head) this.journalHeads.set(stream, head);
      log.close();
      this.logs.delete(stream);
      this.checkpoints.delete(stream);
    }
  }

  /** Keeps what Redis may need again: live streams above their checkpoint, and anything not yet pushed. */
  compact(): void {
    try {
      const kept = this.journal.compact((stream, held) => {
        if (this.logs.has(stream)) return this.checkpoints.get(stream) ?? 0;
        let last = 0;
        for (const seq of held.entries.keys()) last = Math.max(last, seq);
        return held.acked >= last ? undefined : held.acked;
      });
      this.compactAfter = Math.max(COMPACT_AFTER_BYTES, kept);
      this.syncedBytes = 0;
    } catch (error) {
      this.options.logger.error({ err: error }, "audit: compacting the journal failed; it goes on growing until the next try");
    }
  }

  private sync() {
    if (this.journal.written === this.syncedBytes) return;
    try {
      this.journal.sync();
      this.syncedBytes = this.journal.written;
    } catch (error) {
      this.options.logger.error({ err: error }, "audit: fsync of the journal failed");
    }
  }
}
