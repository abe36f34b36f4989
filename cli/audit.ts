/**
 * `npm run audit -- <export|verify|archive> --room ROOM_ID [--redis-url URL | --redis-sentinels HOST:PORT,... --redis-master-name NAME] [--cluster-name NAME]`
 *
 * export: prints the room's audit log as JSON Lines (one entry a line) on stdout, read
 *   from Redis a page at a time.
 * verify: recomputes the hash chain, from the checkpoint when the log was archived and
 *   trimmed. `--anchor FILE` (a node's `<nodeId>.anchors.json`) also checks the log still
 *   holds the head anchored there: a Redis restarted from an older snapshot rolls the
 *   stream and its head back together, which only an anchor outside Redis shows.
 *   `--archive DIR` also verifies the archive files up to the checkpoint.
 *   Exit 0 when intact, 3 when tampered, rolled back or a chain that lost its past, 2 on bad usage.
 * archive: writes the entries before the last `--keep N` to a file in `--dir DIR` (JSON
 *   Lines ending with the checkpoint hash), then trims them from Redis behind a checkpoint.
 */
import { AuditLog, auditStreamKey } from "../server/audit/AuditLog.ts";
import { archiveLog, verifyArchives } from "../server/audit/AuditArchive.ts";
import { readAnchor } from "../server/audit/AuditLogs.ts";
import { CLUSTER_REDIS_USAGE, RedisFlagsError, clusterRedisAddress, clusterRedisFlags, openClusterRedis, parseCliArgs, runCli, usageError } from "./env.ts";

const USAGE = [
  `usage: npm run audit -- export --room ROOM_ID ${CLUSTER_REDIS_USAGE}`,
  `       npm run audit -- verify --room ROOM_ID [--anchor FILE] [--archive DIR] ${CLUSTER_REDIS_USAGE}`,
  `       npm run audit -- archive --room ROOM_ID --dir DIR [--keep N] ${CLUSTER_REDIS_USAGE}`,
].join("\n");

/** Exit code of verify for a log that is not intact. */
const EXIT_TAMPERED = 3;

async function main(): Promise<number> {
  const parsed = parseCliArgs({
    room: { type: "string" }, anchor: { type: "string" }, archive: { type: "string" }, dir: { type: "string" }, keep: { type: "string" },
    ...clusterRedisFlags(),
  });
  if (parsed instanceof Error) return usage(parsed.message);
  const [command] = parsed.positionals;
  const { room, anchor: anchorFile, dir } = parsed.values;
  if (command !== "export" && command !== "verify" && command !== "archive") return usage(`unknown command "${command ?? ""}"`);
  if (!room) return usage("--room is required");
  if (command === "archive" && !dir) return usage("archive needs --dir DIR");
  const keep = Number(parsed.values.keep ?? 10_000);
  if (!Number.isInteger(keep) || keep < 0) return usage("--keep must be a whole number of entries");

  let address: string;
  try {
    address = clusterRedisAddress(parsed.values);
  } catch (error) {
    if (error instanceof RedisFlagsError) return usage(error.message);
    throw error;
  }
  const redis = openClusterRedis(address);
  try {
    await redis.connect();
    const streamKey = auditStreamKey(parsed.values["cluster-name"]!, room);
    const log = new AuditLog(redis, streamKey);
    if (command === "export") {
      for await (const page of log.pages()) process.stdout.write(page.map((entry) => JSON.stringify(entry) + "\n").join(""));
      return 0;
    }
    if (command === "archive") {
      const [seqText] = await redis.hmget(log.headKey, "seq");
      const file = await archiveLog(redis, log, dir!, Number(seqText ?? 0) - keep);
      process.stderr.write(file ? `audit log of ${room}: archived to ${file}\n` : `audit log of ${room}: nothing to archive\n`);
      return 0;
    }
    const anchor = anchorFile ? readAnchor(anchorFile, streamKey) : undefined;
    if (anchorFile && !anchor) process.stderr.write(`audit log of ${room}: ${anchorFile} holds no anchor for it; verifying without\n`);
    const report = await log.verify({ anchor });
    if (!report.ok) {
      process.stderr.write(`audit log of ${room}: TAMPERED at entry ${report.brokenAt} of ${report.entries}: ${report.reason}\n`);
      return EXIT_TAMPERED;
    }
    if (parsed.values.archive) {
      const archived = verifyArchives(parsed.values.archive, streamKey);
      const checkpoint = report.checkpoint ?? { seq: 0 };
      if (!archived.ok) {
        process.stderr.write(`audit log of ${room}: archive TAMPERED in ${archived.file}: ${archived.reason}\n`);
        return EXIT_TAMPERED;
      }
      if (archived.checkpoint.seq !== checkpoint.seq || (report.checkpoint && archived.checkpoint.hash !== report.checkpoint.hash)) {
        process.stderr.write(`audit log of ${room}: TAMPERED: the archive ends at seq ${archived.checkpoint.seq}, the stream's checkpoint is seq ${checkpoint.seq}\n`);
        return EXIT_TAMPERED;
      }
    }
    const since = report.checkpoint ? ` after the checkpoint at seq ${report.checkpoint.seq}` : "";
    process.stderr.write(`audit log of ${room}: intact, ${report.entries} entries${since}, head ${report.headHash}${anchor ? `, anchored seq ${anchor.seq} present` : ""}\n`);
    return 0;
  } finally {
    redis.disconnect();
  }
}

function usage(problem: string): number {
  return usageError("audit", USAGE, problem);
}

runCli("audit", main);
