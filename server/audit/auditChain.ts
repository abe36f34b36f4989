/**
 * The audit log's hash chain, with no storage: the entry shape, its hash, and the one
 * check that walks a chain (the Redis stream, an archive file, the in-memory log and the
 * node's journal all go through it).
 *
 * Each entry carries `seq`, `prev` (the previous entry's hash) and `hash` =
 * SHA-256(prev, seq, type, at, canonical JSON of data). Editing, reordering or removing
 * an entry breaks the chain.
 *
 * @example
 *   const chain = new ChainCheck({ seq: 0, hash: GENESIS });
 *   for (const entry of entries) { const problem = chain.next(entry); if (problem) throw new Error(problem); }
 */
import { createHash } from "node:crypto";

export interface AuditEntry {
  /** Redis stream id ("" while the entry is only in the node's journal). */
  id: string;
  seq: number;
  type: string;
  /** Wall-clock time of the event, ms since the epoch. */
  at: number;
  data: Record<string, unknown>;
  prev: string;
  hash: string;
}

/** A point of the chain: the seq and hash of an entry (seq 0 and GENESIS before the first). */
export interface ChainPoint {
  seq: number;
  hash: string;
}

/** The `prev` of the first entry. */
export const GENESIS = "0".repeat(64);

/** Where the chain starts: before entry 1. */
export const ORIGIN: ChainPoint = Object.freeze({ seq: 0, hash: GENESIS });

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

/** The entry that follows `after`, hashed. */
export function chainEntry(after: ChainPoint, type: string, data: Record<string, unknown>, at: number): AuditEntry {
  const seq = after.seq + 1;
  // Stored as it will read back, so the hash is computed over what verify will see.
  const stored = JSON.parse(canonicalJson(data)) as Record<string, unknown>;
  return { id: "", seq, type, at, data: stored, prev: after.hash, hash: entryHash(after.hash, seq, type, at, stored) };
}

const TYPE_PATTERN = /^[a-z][a-z0-9_.-]{0,63}$/;

/** Throws a TypeError for an event type that is not lowercase words joined by '.', '-' or '_'. */
export function checkAuditType(type: string): void {
  if (!TYPE_PATTERN.test(type)) throw new TypeError(`audit type "${type}" must be lowercase words joined by '.', '-' or '_'`);
}

/** Walks a chain entry by entry from a known point; next() names the first entry that does not fit. */
export class ChainCheck {
  /** The last point that checked out. */
  point: ChainPoint;
  /** Entries checked so far. */
  count = 0;

  constructor(from: ChainPoint) {
    this.point = { ...from };
  }

  /** Undefined when `entry` follows the chain; otherwise why it does not. */
  next(entry: AuditEntry): string | undefined {
    const expected = this.point.seq + 1;
    const name = entry.id ? `entry ${entry.id}` : `entry ${entry.seq}`;
    if (entry.seq !== expected) {
      if (this.count === 0 && entry.seq > expected) {
        return `the chain lost its past: it begins at seq ${entry.seq}, entries ${expected} to ${entry.seq - 1} are missing`;
      }
      return `${name} has seq ${entry.seq}, expected ${expected}`;
    }
    if (entry.prev !== this.point.hash) return `${name} does not link to the previous entry`;
    if (entryHash(entry.prev, entry.seq, entry.type, entry.at, entry.data) !== entry.hash) {
      return `${name} (seq ${entry.seq}, ${entry.type}) was altered: its hash does not match its content`;
    }
    this.point = { seq: entry.seq, hash: entry.hash };
    this.count++;
    return undefined;
  }
}
