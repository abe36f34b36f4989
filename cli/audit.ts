/**
 * `npm run audit -- <export|verify> --room ROOM_ID [--redis-url URL] [--cluster-name NAME]`
 *
 * export: prints the room's audit log as JSON Lines (one entry a line) on stdout.
 * verify: recomputes the hash chain; exit 0 when intact, 3 when tampered, 2 on bad usage.
 */
import { Redis } from "ioredis";
import { AuditLog, auditStreamKey } from "../server/audit/AuditLog.ts";
import { clusterRedisFlags, parseCliArgs, runCli, usageError } from "./env.ts";

const USAGE = "usage: npm run audit -- <export|verify> --room ROOM_ID [--redis-url URL] [--cluster-name NAME]";

async function main(): Promise<number> {
  const parsed = parseCliArgs({ room: { type: "string" }, ...clusterRedisFlags() });
  if (parsed instanceof Error) return usage(parsed.message);
  const [command] = parsed.positionals;
  const room = parsed.values.room;
  if (command !== "export" && command !== "verify") return usage(`unknown command "${command ?? ""}"`);
  if (!room) return usage("--room is required");

  const redis = new Redis(parsed.values["redis-url"]!, { maxRetriesPerRequest: 1, lazyConnect: true });
  try {
    await redis.connect();
    const log = new AuditLog(redis, auditStreamKey(parsed.values["cluster-name"]!, room));
    if (command === "export") {
      for (const entry of await log.export()) process.stdout.write(JSON.stringify(entry) + "\n");
      return 0;
    }
    const report = await log.verify();
    if (report.ok) {
      process.stderr.write(`audit log of ${room}: intact, ${report.entries} entries, head ${report.headHash}\n`);
      return 0;
    }
    process.stderr.write(`audit log of ${room}: TAMPERED at entry ${report.brokenAt} of ${report.entries}: ${report.reason}\n`);
    return 3;
  } finally {
    redis.disconnect();
  }
}

function usage(problem: string): number {
  return usageError("audit", USAGE, problem);
}

runCli("audit", main);
