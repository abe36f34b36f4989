/** The audit log against the real Redis on 127.0.0.1:6379, under unique keys. */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { archiveLog, verifyArchives } from "../../../../server/audit/AuditArchive.ts";
import { AuditLog, auditStreamKey, canonicalJson, entryHash, GENESIS } from "../../../../server/audit/AuditLog.ts";
import { InMemoryAuditLog } from "../../../../server/audit/AuditSink.ts";
import { runScript } from "../../../fixtures/processes.ts";
import { rewriteAuditEntry } from "../../../fixtures/audit.ts";
import { testRedisUrl } from "../../../fixtures/redis.ts";

let redis: Redis;
const keys: string[] = [];
function freshLog(clusterName = `audit-test-${randomUUID().slice(0, 8)}`, room = "site-42") {
  const key = auditStreamKey(clusterName, room);
  keys.push(key, `${key}:head`);
  return { log: new AuditLog(redis, key), clusterName, room, key };
}
beforeAll(() => { redis = new Redis(testRedisUrl(), { maxRetriesPerRequest: 1 }); });
afterAll(async () => {
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
});

function rewriteEntry(key: string, index: number, edit: (fields: Record<string, string>) => void) {
  return rewriteAuditEntry(redis, key, index, edit);
}

function runCli(args: string[]) {
  return runScript("cli/audit.ts", [...args, "--redis-url", testRedisUrl()]);
}

describe("canonicalJson", () => {
  it("does not depend on key order and drops undefined", () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: undefined } })).toBe('{"a":{"d":[1,{"y":2,"z":1}]},"b":1}');
  });
});

describe("AuditLog", () => {
  it("chains entries in order and verifies", async () => {
    const { log } = freshLog();
    const first = await log.append("lease.granted", { deviceId: "ex-1", sessionId: "op-a", leaseId: "L1" }, 1000);
    const second = await log.append("estop.raised", { deviceId: "ex-1", by: "op-a" }, 2000);
    await log.flushed();
    expect(first.prev).toBe(GENESIS);
    expect(second.prev).toBe(first.hash);
    expect(second.hash).toBe(entryHash(first.hash, 2, "estop.raised", 2000, { deviceId: "ex-1", by: "op-a" }));
    const entries = await log.export();
    expect(entries.map((e) => [e.seq, e.type])).toEqual([[1, "lease.granted"], [2, "estop.raised"]]);
    expect(await log.verify()).toMatchObject({ ok: true, entries: 2, headHash: second.hash });
  });

  it("keeps one chain when many appends race, from two writers", async () => {
    const { log, key } = freshLog();
    const other = new AuditLog(redis, key);
    await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? log : other).append("command.summary", { n: i })));
    await Promise.all([log.flushed(), other.flushed()]);
    const report = await log.verify();
    expect(report).toMatchObject({ ok: true, entries: 50 });
  });

  it("verifies a live log: entries appended while it reads are no tampering", async () => {
    const { log, key } = freshLog();
    const reader = new AuditLog(redis, key);
    await log.append("room.opened", {});
    await log.flushed();
    let appending = true;
    const writer = (async () => {
      for (let n = 0; appending; n++) { await log.append("commands.summary", { n }); await log.flushed(); }
    })();
    try {
      const reports = [];
      for (let i = 0; i < 40; i++) reports.push(await reader.verify());
      expect(reports.filter((report) => !report.ok)).toEqual([]);
    } finally {
      appending = false;
      await writer;
    }
  });

  it("detects an edited entry", async () => {
    const { log, key } = freshLog();
    for (let i = 0; i < 5; i++) await log.append("lease.renewed", { i });
    await log.flushed();
    await rewriteEntry(key, 2, (f) => { f.data = JSON.stringify({ i: 99 }); });
    const report = await log.verify();
    expect(report.ok).toBe(false);
    expect(report).toMatchObject({ brokenAt: 2 });
    expect((report as { reason: string }).reason).toMatch(/altered/);
  });

  it("detects deleted entries, in the middle and at the end", async () => {
    const middle = freshLog();
    for (let i = 0; i < 4; i++) await middle.log.append("lease.renewed", { i });
    await middle.log.flushed();
    const ids = (await redis.xrange(middle.key, "-", "+")).map(([id]) => id);
    await redis.xdel(middle.key, ids[1]);
    expect((await middle.log.verify()).ok).toBe(false);

    const end = freshLog();
    for (let i = 0; i < 4; i++) await end.log.append("lease.renewed", { i });
    await end.log.flushed();
    const last = (await redis.xrevrange(end.key, "+", "-", "COUNT", 1))[0][0];
    await redis.xdel(end.key, last);
    const report = await end.log.verify();
    expect(report.ok).toBe(false);
    expect((report as { reason: string }).reason).toMatch(/removed/);
  });

  it("refuses malformed event types", () => {
    const { log } = freshLog();
    expect(() => log.append("Lease Granted!", {})).toThrow(/lowercase/);
  });

  it("exports as JSON Lines and verifies from the command line (exit 0 intact, 3 tampered, 2 usage)", async () => {
    const { log, clusterName, room, key } = freshLog();
    await log.append("lease.granted", { leaseId: "L1" });
    await log.append("lease.released", { leaseId: "L1" });
    await log.flushed();
    const exported = await runCli(["export", "--room", room, "--cluster-name", clusterName]);
    expect(exported.code).toBe(0);
    const lines = exported.stdout.trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.map((l) => l.type)).toEqual(["lease.granted", "lease.released"]);

    expect((await runCli(["verify", "--room", room, "--cluster-name", clusterName])).code).toBe(0);
    await rewriteEntry(key, 0, (f) => { f.type = "lease.preempted"; });
    const tampered = await runCli(["verify", "--room", room, "--cluster-name", clusterName]);
    expect(tampered.code).toBe(3);
    expect(tampered.stderr).toContain("TAMPERED at entry 0");

    expect((await runCli(["verify"])).code).toBe(2);
    // The Redis named twice, or a Sentinel without its master name: bad usage, said before any connection.
    const twice = await runCli(["verify", "--room", room, "--redis-sentinels", "127.0.0.1:26379", "--redis-master-name", "m"]);
    expect(twice.code).toBe(2);
    expect(twice.stderr).toMatch(/--redis-url or --redis-sentinels with --redis-master-name, not both/);
    const nameless = await runScript("cli/audit.ts", ["verify", "--room", room, "--redis-sentinels", "127.0.0.1:26379"]);
    expect(nameless.code).toBe(2);
    expect(nameless.stderr).toMatch(/--redis-sentinels and --redis-master-name go together/);
  });
});

describe("InMemoryAuditLog (embedded mode)", () => {
  it("keeps the chain, bounded: beyond maxEntries the oldest go, and the rest still verifies", async () => {
    const log = new InMemoryAuditLog("local:audit:demo", 10);
    for (let i = 0; i < 25; i++) await log.append("commands.summary", { i });
    const kept = await log.export();
    expect(kept.length).toBeLessThanOrEqual(10);
    expect(kept.at(-1)!.seq).toBe(25);
    expect(kept[0].prev).not.toBe(GENESIS);
    expect(await log.verify()).toMatchObject({ ok: true, entries: kept.length });
  });
});

describe("AuditLog: paged reads, archive and trim, anchors", () => {
  it("reads a long log a page at a time, and verify walks every page", async () => {
    const { log } = freshLog();
    for (let i = 0; i < 25; i++) void log.append("commands.summary", { i });
    await log.flushed();
    const pages: number[] = [];
    for await (const page of log.pages(10)) pages.push(page.length);
    expect(pages).toEqual([10, 10, 5]);
    expect((await log.export()).map((entry) => entry.seq)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    expect(await log.verify()).toMatchObject({ ok: true, entries: 25, headSeq: 25 });
  });

  it("archives the oldest entries to a file, trims them, and the rest verifies from the checkpoint", async () => {
    const { log, key } = freshLog();
    keys.push(`${key}:checkpoint`);
    for (let i = 0; i < 30; i++) void log.append("commands.summary", { i });
    await log.flushed();
    const dir = mkdtempSync(path.join(tmpdir(), "tsunagi-archive-"));
    try {
      const file = await archiveLog(redis, log, dir, 20);
      expect(file).toBeDefined();
      expect(await redis.xlen(key)).toBe(10);
      const lines = readFileSync(file!, "utf8").trim().split("\n").map((line) => JSON.parse(line));
      expect(lines).toHaveLength(21);
      expect(lines.at(-1).checkpoint).toEqual({ seq: 20, hash: lines[19].hash });
      // Old code: a trimmed stream began at seq 21 and failed verification.
      expect(await log.verify()).toMatchObject({ ok: true, entries: 10, headSeq: 30, checkpoint: { seq: 20 } });
      // A second archive continues the chain of files.
      await log.append("room.closed", {});
      await log.flushed();
      await archiveLog(redis, log, dir, 25);
      expect(verifyArchives(dir, key)).toMatchObject({ ok: true, files: 2, entries: 25, checkpoint: { seq: 25 } });
      expect(await log.verify()).toMatchObject({ ok: true, entries: 6, headSeq: 31 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a log rolled back with its head (an older Redis snapshot) verifies alone, and fails against its anchor", async () => {
    const { log, key } = freshLog();
    for (let i = 0; i < 5; i++) await log.append("commands.summary", { i });
    await log.flushed();
    const anchor = log.headPoint!;
    // What restarting Redis from a snapshot taken two entries ago does: stream and head together.
    const entries = await log.export();
    await redis.xdel(key, entries[3].id, entries[4].id);
    await redis.hset(`${key}:head`, "seq", 3, "hash", entries[2].hash);
    expect(await log.verify()).toMatchObject({ ok: true, entries: 3 });
    const report = await log.verify({ anchor });
    expect(report.ok).toBe(false);
    expect((report as { reason: string }).reason).toMatch(/rolled back/);
  });

  it("verify --anchor and archive from the command line", async () => {
    const { log, clusterName, room, key } = freshLog();
    keys.push(`${key}:checkpoint`);
    for (let i = 0; i < 6; i++) await log.append("commands.summary", { i });
    await log.flushed();
    const dir = mkdtempSync(path.join(tmpdir(), "tsunagi-anchor-"));
    try {
      const anchorFile = path.join(dir, "node.anchors.json");
      writeFileSync(anchorFile, JSON.stringify({ nodeId: "node", writtenAt: 1, streams: { [key]: { ...log.headPoint, at: 1 } } }));
      const archived = await runCli(["archive", "--room", room, "--cluster-name", clusterName, "--dir", dir, "--keep", "2"]);
      expect(archived.code).toBe(0);
      expect(await redis.xlen(key)).toBe(2);
      const intact = await runCli(["verify", "--room", room, "--cluster-name", clusterName, "--anchor", anchorFile, "--archive", dir]);
      expect(intact.stderr).toContain("intact");
      expect(intact.code).toBe(0);
      const entries = await log.export();
      await redis.xdel(key, entries[1].id);
      await redis.hset(`${key}:head`, "seq", 5, "hash", entries[0].hash);
      const rolledBack = await runCli(["verify", "--room", room, "--cluster-name", clusterName, "--anchor", anchorFile]);
      expect(rolledBack.code).toBe(3);
      expect(rolledBack.stderr).toMatch(/rolled back/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
