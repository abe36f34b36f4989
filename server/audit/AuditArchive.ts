/**
 * Archive, then trim: the oldest entries of an audit stream are written to a file (JSON
 * Lines, fsynced) before they leave Redis, and the stream keeps a checkpoint (the seq
 * and hash of the last entry archived) so the rest still verifies from there. The
 * archive files of a stream chain together from entry 1 up to the checkpoint, so the
 * whole history verifies across the trims (verifyArchives()).
 *
 * A file, `<stream with ':' as '_'>.<first seq>-<last seq>.jsonl`, holds one entry per
 * line and ends with `{"checkpoint":{"seq":…,"hash":…}}`, the point the stream trims to.
 *
 * @example
 *   const file = await archiveLog(redis, log, "/var/lib/tsunagi/audit-archive", 50_000);
 *   const report = await verifyArchives("/var/lib/tsunagi/audit-archive", log.streamKey);
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, writeSync } from "node:fs";
import path from "node:path";
import type { Redis } from "ioredis";
import { ChainCheck, ORIGIN, type AuditEntry, type ChainPoint } from "./auditChain.ts";
import type { AuditLog } from "./AuditLog.ts";

// Moves the checkpoint forward and trims what is before it, unless someone archived meanwhile.
const TRIM_SCRIPT = `
local current = tonumber(redis.call('HGET', KEYS[2], 'seq') or '0')
if current ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[2], 'seq', ARGV[2], 'hash', ARGV[3])
redis.call('XTRIM', KEYS[1], 'MINID', ARGV[4])
return 1
`;

/** The file name prefix of a stream's archives. */
export function archivePrefix(streamKey: string): string {
  return streamKey.replace(/[^A-Za-z0-9_.-]/g, "_");
}

/** The stream id just after `id` (XTRIM MINID keeps ids at or above it). */
function nextStreamId(id: string): string {
  const [ms, sequence] = id.split("-");
  return `${ms}-${BigInt(sequence ?? "0") + 1n}`;
}

/**
 * Archives the entries after the current checkpoint up to seq `upTo` into `dir`, then
 * trims them from the stream; resolves with the file, or undefined when there was
 * nothing to archive. Throws when the chain being archived does not verify (archiving
 * must not launder a broken chain) or when another archive moved the checkpoint meanwhile.
 */
export async function archiveLog(redis: Redis, log: AuditLog, dir: string, upTo: number): Promise<string | undefined> {
  const from = (await log.checkpoint()) ?? ORIGIN;
  if (upTo <= from.seq) return undefined;
  const check = new ChainCheck(from);
  const lines: string[] = [];
  let last: AuditEntry | undefined;
  outer: for await (const page of log.pages()) {
    for (const entry of page) {
      if (entry.seq > upTo) break outer;
      const problem = check.next(entry);
      if (problem) throw new Error(`audit log ${log.streamKey}: not archived, the chain does not verify: ${problem}`);
      lines.push(JSON.stringify(entry));
      last = entry;
    }
  }
  if (!last) return undefined;
  const checkpoint: ChainPoint = { seq: last.seq, hash: last.hash };
  lines.push(JSON.stringify({ checkpoint }));
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${archivePrefix(log.streamKey)}.${from.seq + 1}-${last.seq}.jsonl`);
  const temporary = `${file}.writing`;
  const fd = openSync(temporary, "w");
  try {
    writeSync(fd, lines.join("\n") + "\n");
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, file);
  const trimmed = await redis.eval(TRIM_SCRIPT, 2, log.streamKey, log.checkpointKey, String(from.seq), String(checkpoint.seq), checkpoint.hash, nextStreamId(last.id));
  if (trimmed !== 1) throw new Error(`audit log ${log.streamKey}: another archive moved the checkpoint meanwhile; ${file} duplicates part of it`);
  return file;
}

export type ArchiveReport =
  | { ok: true; files: number; entries: number; checkpoint: ChainPoint }
  | { ok: false; file: string; reason: string };

/** Verifies a stream's archive files in `dir` as one chain from entry 1; `checkpoint` is where it must end. */
export function verifyArchives(dir: string, streamKey: string): ArchiveReport {
  const prefix = `${archivePrefix(streamKey)}.`;
  const files = readdirSync(dir)
    .filter((name) => name.startsWith(prefix) && /^\d+-\d+\.jsonl$/.test(name.slice(prefix.length)))
    .sort((a, b) => Number(a.slice(prefix.length).split("-")[0]) - Number(b.slice(prefix.length).split("-")[0]));
  const check = new ChainCheck(ORIGIN);
  for (const name of files) {
    const lines = readFileSync(path.join(dir, name), "utf8").split("\n").filter(Boolean).map((line) => JSON.parse(line));
    const end = lines.pop() as { checkpoint?: ChainPoint } | undefined;
    for (const entry of lines as AuditEntry[]) {
      const problem = check.next(entry);
      if (problem) return { ok: false, file: name, reason: problem };
    }
    if (!end?.checkpoint || end.checkpoint.seq !== check.point.seq || end.checkpoint.hash !== check.point.hash) {
      return { ok: false, file: name, reason: "its closing checkpoint does not match its last entry" };
    }
  }
  return { ok: true, files: files.length, entries: check.count, checkpoint: check.point };
}
