/**
 * The audit log across Redis outages and restarts, against a redis-server of its own
 * (restarted by the tests): entries wait in the journal, reach Redis when it is back,
 * and a Redis that lost entries gets them again from the journal.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { AuditLog, type AuditProblem } from "../../../../server/audit/AuditLog.ts";
import { FileAuditJournal, MemoryAuditJournal } from "../../../../server/audit/AuditJournal.ts";
import { AuditLogs, readAnchor } from "../../../../server/audit/AuditLogs.ts";
import { verifyArchives } from "../../../../server/audit/AuditArchive.ts";
import { createLogger } from "../../../../server/observability/logging.ts";
import { startRedis, waitFor, type RedisProcess } from "../../../fixtures/processes.ts";
import { testRedisUrl } from "../../../fixtures/redis.ts";

const logger = createLogger({ level: "silent", format: "json", regionId: "test", nodeId: "test" });
let server: RedisProcess;
let redis: Redis;
let dir: string;

beforeAll(async () => {
  server = await startRedis();
  // As the node's cluster client: retries forever, a command fails after 2 reconnection attempts.
  redis = new Redis(server.url, { maxRetriesPerRequest: 2, retryStrategy: () => 50 });
  redis.on("error", () => {});
  dir = mkdtempSync(path.join(tmpdir(), "tsunagi-audit-"));
}, 30_000);
afterAll(async () => {
  redis.disconnect();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Stops Redis, runs `whileDown`, starts it again empty. */
function restartEmpty(whileDown?: () => Promise<void>) {
  return server.restart({ signal: "SIGKILL", whileDown });
}

describe("AuditLog across Redis outages", () => {
  it("an entry appended while Redis is down counts at once and reaches Redis when it is back", async () => {
    const log = new AuditLog(redis, "t1:audit:site", { journal: new MemoryAuditJournal(), retryMs: 50 });
    await log.append("room.opened", { devices: ["ex-1"] });
    await log.flushed();
    let during: Promise<unknown> | undefined;
    await server.restart({
      signal: "SIGKILL",
      whileDown: async () => {
        // Old code: the append failed with the connection, and the entry was gone.
        during = log.append("lease.granted", { deviceId: "ex-1", leaseId: "L1" });
        await expect(during).resolves.toMatchObject({ seq: 2 });
      },
    });
    await log.flushed();
    const report = await log.verify();
    // Redis came back empty: entry 1 was restored from the journal, entry 2 pushed after it.
    expect(report).toMatchObject({ ok: true, entries: 2 });
    expect((await log.export()).map((entry) => entry.type)).toEqual(["room.opened", "lease.granted"]);
  }, 30_000);

  it("a Redis that restarted empty gets the log's past again from the journal, and the restore is reported", async () => {
    const problems: AuditProblem[] = [];
    const log = new AuditLog(redis, "t2:audit:site", { journal: new MemoryAuditJournal(), retryMs: 50, onProblem: (p) => problems.push(p) });
    for (let i = 0; i < 7; i++) await log.append("commands.summary", { i });
    await log.flushed();
    await restartEmpty();
    await log.append("room.closed", {});
    await log.flushed();
    // Old code: a fresh chain of 1 entry, which verified.
    expect(await log.verify()).toMatchObject({ ok: true, entries: 8 });
    expect(problems.filter((p) => p.kind === "restored")).toHaveLength(1);
  }, 30_000);

  it("a Redis back without the log's last entries (restarted, or a replica promoted before it had them) gets them again at the reconnect, with no append after it", async () => {
    const problems: AuditProblem[] = [];
    const log = new AuditLog(redis, "t2b:audit:site", { journal: new MemoryAuditJournal(), retryMs: 50, onProblem: (p) => problems.push(p) });
    for (let i = 0; i < 3; i++) await log.append("lease.estopped", { i });
    await log.flushed();
    await restartEmpty();
    await redis.ping();
    // Nothing appended since: only the reconnect can notice. Old code: the three entries stayed missing until the next append.
    log.reconnected();
    await waitFor(async () => (await log.verify()).entries === 3, 10_000, "the entries written again");
    expect(await log.verify()).toMatchObject({ ok: true, entries: 3, headSeq: 3 });
    expect(problems.filter((p) => p.kind === "restored")).toHaveLength(1);
    // A log whose entries Redis holds leaves them be.
    log.reconnected();
    await log.flushed();
    expect(await log.verify()).toMatchObject({ ok: true, entries: 3 });
    expect(problems.filter((p) => p.kind === "restored")).toHaveLength(1);
  }, 30_000);

  it("entries Redis lost that the journal does not hold are reported lost, and verify shows the chain lost its past", async () => {
    const problems: AuditProblem[] = [];
    const first = new AuditLog(redis, "t3:audit:site", { journal: new MemoryAuditJournal(), retryMs: 50 });
    for (let i = 0; i < 3; i++) await first.append("commands.summary", { i });
    await first.flushed();
    // The node restarted with its journal compacted: it knows the head, not the entries.
    const log = new AuditLog(redis, "t3:audit:site", { journal: new MemoryAuditJournal(), retryMs: 50, startAfter: first.headPoint, onProblem: (p) => problems.push(p) });
    await restartEmpty();
    await log.append("room.closed", {});
    await log.flushed();
    expect(problems.map((p) => p.kind)).toContain("lost");
    const report = await log.verify();
    expect(report.ok).toBe(false);
    expect((report as { reason: string }).reason).toMatch(/lost its past/);
  }, 30_000);

  it("a node killed with entries only in its journal pushes them when it starts again", async () => {
    const journalDir = path.join(dir, "replay");
    // The node's first Redis takes entry 1, then goes away for good: 2 to 5 stay in the journal file.
    const gone = await startRedis();
    const goneClient = new Redis(gone.url, { maxRetriesPerRequest: 0, retryStrategy: () => 50 });
    goneClient.on("error", () => {});
    const before = new AuditLogs({ redis: goneClient, clusterName: "t4", nodeId: "node-a", dir: journalDir, anchorMs: 60_000, maxEntries: 1000, logger });
    const log = before.log("site");
    await log.append("room.opened", {});
    await log.flushed();
    await gone.stop();
    for (let i = 0; i < 4; i++) await log.append("commands.summary", { i });
    expect(log.pendingCount).toBe(4);
    // SIGKILL: no close(), the journal file is all that is left.
    log.close();
    goneClient.disconnect();

    // Started again against a Redis without this stream: entry 1 is restored from the journal, 2 to 5 pushed.
    const after = new AuditLogs({ redis, clusterName: "t4", nodeId: "node-a", dir: journalDir, anchorMs: 60_000, maxEntries: 1000, logger });
    after.replay();
    const again = after.log("site");
    await again.flushed();
    expect(await again.verify()).toMatchObject({ ok: true, entries: 5 });
    expect((await again.export()).map((entry) => entry.type)).toEqual(["room.opened", ...Array(4).fill("commands.summary")]);
    // The chain goes on from the replayed head.
    await again.append("room.opened", {});
    await again.flushed();
    expect(await again.verify()).toMatchObject({ ok: true, entries: 6 });
    await after.close();
  }, 30_000);

  it("the journal file keeps only what Redis may need again after a compaction", async () => {
    const file = path.join(dir, "compact.journal.jsonl");
    const journal = new FileAuditJournal(file);
    const log = new AuditLog(redis, "t5:audit:site", { journal });
    for (let i = 0; i < 4; i++) await log.append("commands.summary", { i });
    await log.flushed();
    journal.compact((stream) => (stream === "t5:audit:site" ? 2 : undefined));
    const held = journal.read().get("t5:audit:site")!;
    expect([...held.entries.keys()]).toEqual([3, 4]);
    expect(held.acked).toBe(4);
    journal.close();
  });

  it("the node's chores anchor each head to a file and archive a stream past maxEntries", async () => {
    const choresDir = path.join(dir, "chores");
    const logs = new AuditLogs({ redis, clusterName: "t6", nodeId: "node-c", dir: choresDir, anchorMs: 3_600_000, maxEntries: 10, logger });
    const log = logs.log("site");
    for (let i = 0; i < 15; i++) void log.append("commands.summary", { i });
    await log.flushed();
    await logs.runChores();
    expect(readAnchor(logs.anchorFile, log.streamKey)).toMatchObject({ seq: 15, hash: log.headPoint!.hash });
    // 15 entries > 10: the oldest, up to 15 - 10/2, are archived and trimmed.
    expect(await log.checkpoint()).toMatchObject({ seq: 10 });
    expect(verifyArchives(logs.archiveDir, log.streamKey)).toMatchObject({ ok: true, entries: 10 });
    expect(await log.verify({ anchor: readAnchor(logs.anchorFile, log.streamKey) })).toMatchObject({ ok: true, entries: 5 });
    await logs.close();
  });
});

describe("AuditLog with a replica in another region", () => {
  it("counts an entry pushed only once the replica holds it too; a replica whose connection is lost holds up no one and, back empty, is caught up from the primary; a log on the replica's Redis goes on from its head", async () => {
    const primary = new Redis(testRedisUrl(), { maxRetriesPerRequest: 1 });
    const stream = `rep-${Date.now()}:audit:site`;
    try {
      const problems: AuditProblem[] = [];
      const log = new AuditLog(primary, stream, { journal: new MemoryAuditJournal(), retryMs: 50, replica: { redis, maxEntries: 1000 }, onProblem: (p) => problems.push(p) });
      await log.append("room.opened", { devices: ["ex-1"] });
      await log.append("lease.granted", { deviceId: "ex-1", leaseId: "L1" });
      await log.flushed();
      expect((await new AuditLog(redis, stream).export()).map((e) => [e.seq, e.type])).toEqual([[1, "room.opened"], [2, "lease.granted"]]);

      // The replica's region is lost: the entries reach the primary, and flushed() waits for the primary only (the replica holds nothing up).
      await server.restart({
        signal: "SIGKILL",
        whileDown: async () => {
          await waitFor(() => redis.status !== "ready", 5000, "the replica's connection to be lost");
          await log.append("lease.revoked", { deviceId: "ex-1", leaseId: "L1", cause: "failover" });
          await log.flushed();
          expect((await log.export()).length).toBe(3);
          await log.append("commands.summary", { deviceId: "ex-1", commands: 3 });
          await log.flushed();
          expect((await log.export()).length).toBe(4);
          expect(log.pendingCount).toBe(0);
        },
      });
      // Back: flushed() waits for the replica again, which is caught up.
      await waitFor(() => redis.status === "ready", 5000, "the replica's connection back");
      await log.flushed();
      // It came back empty (no persistence here): what it held before is copied again from the primary, first.
      const copy = await waitFor(async () => { const all = await new AuditLog(redis, stream).export(); return all.length === 4 && all; }, 5000, "the replica caught up");
      expect(copy.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
      expect(copy).toEqual(await log.export().then((all) => all.map((e) => ({ ...e, id: expect.any(String) }))));
      expect(problems.some((p) => p.kind === "restored" && /up to seq 0: entries 1 to 2/.test(p.message)), JSON.stringify(problems)).toBe(true);
      expect((await new AuditLog(redis, stream).verify()).ok).toBe(true);

      // The primary's region is lost: the node that restores the room writes its log to the replica's Redis, after its head.
      const goingOn = new AuditLog(redis, stream, { journal: new MemoryAuditJournal() });
      const next = await goingOn.append("room.failed-over", { leasesEnded: [] });
      await goingOn.flushed();
      expect(next).toMatchObject({ seq: 5, prev: copy.at(-1)!.hash });
    } finally {
      await primary.del(stream, `${stream}:head`);
      primary.disconnect();
    }
  }, 30_000);
  it("a replica that starts on a stream with a past copies it from the primary first, and goes on after what the primary no longer holds, saying so", async () => {
    const primary = new Redis(testRedisUrl(), { maxRetriesPerRequest: 1 });
    const stream = `rep-past-${Date.now()}:audit:site`;
    try {
      const before = new AuditLog(primary, stream, { journal: new MemoryAuditJournal() });
      for (const n of [1, 2, 3]) await before.append("commands.summary", { commands: n });
      await before.flushed();
      // The oldest entry left the primary (archived and trimmed).
      await primary.xdel(stream, (await before.export())[0]!.id);
      const problems: AuditProblem[] = [];
      const log = new AuditLog(primary, stream, { journal: new MemoryAuditJournal(), retryMs: 50, replica: { redis, maxEntries: 1000 }, onProblem: (p) => problems.push(p) });
      await log.append("lease.granted", { deviceId: "ex-1", leaseId: "L9" });
      const copy = await waitFor(async () => { const all = await new AuditLog(redis, stream).export(); return all.length === 3 && all; }, 5000, "the replica caught up");
      expect(copy.map((e) => e.seq)).toEqual([2, 3, 4]);
      expect(problems.map((p) => p.kind)).toEqual(expect.arrayContaining(["lost", "restored"]));
      expect(problems.find((p) => p.kind === "lost")!.message).toMatch(/lacks entries 1 to 1, which the primary no longer holds/);
      // Entries appended from here go straight after its head.
      await log.append("lease.released", { deviceId: "ex-1", leaseId: "L9" });
      await log.flushed();
      expect((await new AuditLog(redis, stream).export()).map((e) => e.seq)).toEqual([2, 3, 4, 5]);
    } finally {
      await primary.del(stream, `${stream}:head`);
      await redis.del(stream, `${stream}:head`);
      primary.disconnect();
    }
  }, 30_000);
});
