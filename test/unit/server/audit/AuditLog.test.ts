/** The audit log against the real Redis on 127.0.0.1:6379, under unique keys. */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { AuditLog, InMemoryAuditLog, auditStreamKey, canonicalJson, entryHash, GENESIS } from "../../../../server/audit/AuditLog.ts";
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
