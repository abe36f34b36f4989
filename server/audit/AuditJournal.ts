/**
 * The node's local journal of audit entries: an append-only file (JSON Lines) an entry is
 * written to before it counts as appended, so neither a Redis outage nor a SIGKILL of the
 * node loses it. The node pushes entries to Redis from here, in order, and notes which
 * are in Redis (`acked`). It keeps the entries of the streams it writes since their last
 * checkpoint, so a Redis that comes back empty, or rolled back to an older snapshot, gets
 * them again (AuditLog restores them), and it replays what was never pushed when the
 * node starts again (with the same node id).
 *
 * A write is a write(2) to the file: it survives the process being killed; like Redis'
 * `appendfsync everysec`, the file is fsynced at most once a second (sync()), so a power
 * loss may cost the last second.
 *
 * Lines:
 *   {"s": stream, "e": entry}   an entry (a later line with the same seq replaces it: re-chained)
 *   {"s": stream, "a": seq}     every entry of the stream up to seq is in Redis
 *
 * @example
 *   const journal = new FileAuditJournal(".tsunagi/audit/tokyo-1.journal");
 *   journal.write("tsunagi:audit:site-42", entry);
 *   journal.acked("tsunagi:audit:site-42", entry.seq);
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync, existsSync } from "node:fs";
import path from "node:path";
import type { AuditEntry } from "./auditChain.ts";

/** One stream's entries in the journal, by seq, and the last seq Redis holds. */
export interface JournalStream {
  entries: Map<number, AuditEntry>;
  acked: number;
}

type JournalLine = { s: string; e: AuditEntry } | { s: string; a: number };

export interface AuditJournal {
  /** Records an entry; throws when it could not (the entry is then not appended). */
  write(stream: string, entry: AuditEntry): void;
  /** Every entry of `stream` up to `seq` is in Redis. */
  acked(stream: string, seq: number): void;
  /** What the journal holds, by stream. */
  read(): Map<string, JournalStream>;
  /** Rewrites the journal keeping, per stream, the entries above the seq `keepAbove` answers (undefined: drop the stream); answers the bytes kept. */
  compact(keepAbove: (stream: string, held: JournalStream) => number | undefined): number;
  /** Flushes the file to disk. */
  sync(): void;
  /** Bytes written since the last compaction, a hint for when to compact. */
  readonly written: number;
  close(): void;
}

/** Folds journal lines into streams: the latest line for a seq wins, acks only grow. */
export function foldJournal(lines: Iterable<JournalLine>): Map<string, JournalStream> {
  const streams = new Map<string, JournalStream>();
  for (const line of lines) {
    let stream = streams.get(line.s);
    if (!stream) streams.set(line.s, (stream = { entries: new Map(), acked: 0 }));
    if ("e" in line) stream.entries.set(line.e.seq, { ...line.e, id: "" });
    else stream.acked = Math.max(stream.acked, line.a);
  }
  return streams;
}

function keptLines(streams: Map<string, JournalStream>, keepAbove: (stream: string, held: JournalStream) => number | undefined): JournalLine[] {
  const lines: JournalLine[] = [];
  for (const [s, held] of streams) {
    const above = keepAbove(s, held);
    if (above === undefined) continue;
    for (const seq of [...held.entries.keys()].sort((a, b) => a - b)) if (seq > above) lines.push({ s, e: held.entries.get(seq)! });
    if (held.acked > 0) lines.push({ s, a: held.acked });
  }
  return lines;
}

/** The journal in a file: one per node. */
export class FileAuditJournal implements AuditJournal {
  /** The open file, appended to. */
  private fd: number;
  written = 0;

  constructor(readonly file: string) {
    mkdirSync(path.dirname(file), { recursive: true });
    this.fd = openSync(file, "a");
  }

  write(stream: string, entry: AuditEntry): void {
    const { id: _id, ...stored } = entry;
    this.append(JSON.stringify({ s: stream, e: stored }));
  }

  acked(stream: string, seq: number): void {
    this.append(JSON.stringify({ s: stream, a: seq }));
  }

  read(): Map<string, JournalStream> {
    return foldJournal(this.lines());
  }

  compact(keepAbove: (stream: string, held: JournalStream) => number | undefined): number {
    const lines = keptLines(this.read(), keepAbove);
    const temporary = `${this.file}.compacting`;
    const fd = openSync(temporary, "w");
    const text = lines.length ? lines.map((line) => JSON.stringify(line)).join("\n") + "\n" : "";
    try {
      if (text) writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, this.file);
    closeSync(this.fd);
    this.fd = openSync(this.file, "a");
    this.written = 0;
    return Buffer.byteLength(text);
  }

  sync(): void {
    fsyncSync(this.fd);
  }

  close(): void {
    try { fsyncSync(this.fd); } finally { closeSync(this.fd); }
  }

  private append(line: string) {
    const bytes = Buffer.from(line + "\n");
    writeSync(this.fd, bytes);
    this.written += bytes.length;
  }

  private *lines(): Generator<JournalLine> {
    if (!existsSync(this.file)) return;
    const text = readFileSync(this.file, "utf8");
    for (const raw of text.split("\n")) {
      if (!raw) continue;
      try {
        yield JSON.parse(raw) as JournalLine;
      } catch {
        // A line torn by a crash mid-write (the last one): what it held was never acknowledged.
      }
    }
  }
}

/** The journal in memory, for tests and tools: it dies with the process. */
export class MemoryAuditJournal implements AuditJournal {
  /** Every line, oldest first. */
  private lines: JournalLine[] = [];
  written = 0;

  write(stream: string, entry: AuditEntry): void {
    this.lines.push({ s: stream, e: structuredClone(entry) });
    this.written++;
  }
  acked(stream: string, seq: number): void {
    this.lines.push({ s: stream, a: seq });
    this.written++;
  }
  read(): Map<string, JournalStream> {
    return foldJournal(this.lines);
  }
  compact(keepAbove: (stream: string, held: JournalStream) => number | undefined): number {
    this.lines = keptLines(this.read(), keepAbove);
    this.written = 0;
    return this.lines.length;
  }
  sync(): void {}
  close(): void {}
}
