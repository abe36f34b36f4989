/**
 * The region's Redis under Sentinel (a primary, a replica, three sentinels: the
 * fixture), and its primary killed in the middle of a teleop session and an expo hall,
 * on a region of two nodes that reach it through the sentinels (`--redis-sentinels`,
 * `--redis-master-name`). The sentinels promote the replica, and:
 * - both nodes follow it (they say so, and count it), and keep serving: the teleop room
 *   keeps its lease state and device, the hall its visitors, and a newcomer is matched
 *   to the hall on the other node after the switch (presence and listings are back);
 * - no node takes the other for dead when the registry comes back without their entries
 *   (no second copy of a room);
 * - every audited event acknowledged to the operator across the switch is in the log, once,
 *   and `npm run audit -- verify`, through the sentinels, passes;
 * - every request is answered, with its result or a coded error, never left hanging.
 * It prints the time without service: the sentinels' promotion, the first acknowledged
 * audited event and the first matchmaking after the kill.
 */
import "../../server/polyfills.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { OperatorControls } from "../../client-sdk/OperatorControls.ts";
import type { RoomSession } from "../../client-sdk/RoomSession.ts";
import type { ExpoSession } from "../../client-sdk/ExpoSession.ts";
import { roomIdOf } from "../../proto/ids.ts";
import { openRedis } from "../../server/redisAddress.ts";
import { AuditLog, auditStreamKey } from "../../server/audit/AuditLog.ts";
import { runScript, startNode, testSecret, waitFor, type NodeProcess } from "../fixtures/processes.ts";
import { enrollDevices, joinTeleop, startAdapter, type AdapterProcess } from "../fixtures/teleop.ts";
import { joinExpo, leaveAll, openHall, smallHall, waitForNeighbours } from "../fixtures/expo.ts";
import { MASTER_NAME, startSentinelSet, type SentinelSet } from "../fixtures/redisSentinel.ts";

const SITE = "site-sentinel";
const EXCAVATOR = "ex-sentinel";
const HALL = "hall-sentinel";
/** A request not answered within this long counts as hanging. */
const HANG_MS = 15_000;

const clusterName = `sentinel-${randomUUID().slice(0, 8)}`;
let set: SentinelSet;
let client: Redis;
let nodes: NodeProcess[] = [];
let excavator: AdapterProcess | undefined;
const sessions: RoomSession[] = [];

beforeAll(async () => {
  set = await startSentinelSet({ downAfterMs: 1000 });
  client = openRedis(set.address, { maxRetriesPerRequest: 1 });
  client.on("error", () => {});
  // Node a is given the sentinels and the master name; node b the same as one redis-sentinel:// URL.
  const sentinels = set.sentinelPorts.map((port) => `127.0.0.1:${port}`).join(",");
  nodes = await Promise.all([
    startNode({
      clusterName, nodeId: `${clusterName}-a`, regionId: "jp-tokyo", extraArgs: ["--redis-sentinels", sentinels, "--redis-master-name", MASTER_NAME],
      // Redis mode through its sentinels: the cluster secret from the environment, as the fixture does for a URL.
      env: { TSUNAGI_AUTH_SECRET: testSecret },
    }),
    startNode({ clusterName, nodeId: `${clusterName}-b`, regionId: "jp-tokyo", redisUrl: set.address }),
  ]);
}, 90_000);

afterAll(async () => {
  await leaveAll();
  await Promise.allSettled(sessions.map((session) => session.leave(false)));
  await excavator?.stop();
  await Promise.allSettled(nodes.map((node) => node.stop()));
  client?.disconnect();
  await set?.stop();
}, 60_000);

/** Runs `request`; its outcome, or "hang" when it has none within HANG_MS. */
async function answered<T>(request: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; code: number | undefined } | "hang"> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<"hang">((resolve) => { timer = setTimeout(() => resolve("hang"), HANG_MS); });
  try {
    return await Promise.race([
      request.then((value) => ({ ok: true as const, value }), (error: { code?: number }) => ({ ok: false as const, code: error?.code })),
      hang,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

describe("the region Redis fails over under Sentinel", () => {
  it("the nodes follow the promoted replica and keep serving; rooms keep their state; the audit log loses no acknowledged entry; clients get answers or coded errors, never a hang", { timeout: 180_000 }, async () => {
    const [a, b] = nodes;
    // --- a teleop session on node a, an expo hall on node b --------------------------------------
    const secrets = await enrollDevices(set.address, clusterName, [[EXCAVATOR, "excavator"]]);
    excavator = await startAdapter({ deviceId: EXCAVATOR, driver: "sim-excavator", nodes: [a.httpUrl], secret: secrets[EXCAVATOR] });
    await excavator.waitForStatus((s) => s.state === "online", 20_000, "the excavator online");
    const supervisor = await joinTeleop(a, SITE, "supervisor", { devices: [EXCAVATOR], sub: "sentinel-supervisor" });
    sessions.push(supervisor);
    const operator = await joinTeleop(a, SITE, "operator", { sub: "sentinel-operator" });
    sessions.push(operator);
    const controls = new OperatorControls(operator, { deviceId: EXCAVATOR });
    await waitFor(() => controls.profile && controls.lease?.online, 15_000, "the excavator online in the room");
    const opened = await openHall(b, smallHall(HALL));
    expect(opened.status, JSON.stringify(opened.body)).toBe(201);
    const visitors: ExpoSession[] = [await joinExpo(b, HALL), await joinExpo(b, HALL)];
    await waitForNeighbours(visitors[0], [visitors[1].visitorId], "the two visitors in view", 10_000);

    // --- the operator takes and gives back the lease, over and over, across the switch ----------
    const acknowledged: { granted: string[]; released: string[] } = { granted: [], released: [] };
    const outcomes: { at: number; ok: boolean; code?: number }[] = [];
    const hangs: string[] = [];
    let cycling = true;
    const cycles = (async () => {
      while (cycling) {
        const grant = await answered(controls.acquire());
        if (grant === "hang") { hangs.push("acquire"); break; }
        outcomes.push({ at: Date.now(), ok: grant.ok, code: grant.ok ? undefined : grant.code });
        if (grant.ok) acknowledged.granted.push(grant.value.leaseId);
        const leaseId = controls.lease?.leaseId;
        if (controls.holding && leaseId) {
          const release = await answered(controls.release());
          if (release === "hang") { hangs.push("release"); break; }
          outcomes.push({ at: Date.now(), ok: release.ok, code: release.ok ? undefined : release.code });
          if (release.ok) acknowledged.released.push(leaseId);
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    await waitFor(() => acknowledged.released.length >= 3, 20_000, "lease cycles acknowledged before the switch");

    // --- kill the primary ----------------------------------------------------------------------
    const killed = await set.killPrimary();
    // The rooms go on without Redis: a visitor's move reaches the other.
    // (A step beside the spawn point, where the other stands: well inside each other's view.)
    const step = visitors[0].move(53, 5, 0);
    await waitFor(() => (visitors[1].neighbours.get(visitors[0].visitorId)?.seq ?? -1) >= step, 10_000, "the move seen in the hall while Redis is away");
    const promotion = await set.promoted(killed);
    for (const node of nodes) {
      await waitFor(() => node.output().includes("reachable again on a new primary"), 20_000, `node ${node.nodeId} following the new primary`).catch((error: Error) => {
        const said = node.output().split("\n").filter((line) => !/"level":(20|30)/.test(line)).slice(-30).join("\n");
        throw new Error(`${error.message} (the primary was ${killed.port}, is ${promotion.port}; the node's exit code: ${node.child.exitCode}); the end of its log:\n${said}`);
      });
    }

    // --- after the switch: matchmaking through node a to the hall on node b --------------------
    const newcomer = await waitFor(async () => {
      const joined = await answered(joinExpo(a, HALL));
      if (joined === "hang") throw new Error("a join through node a hung after the switch");
      return joined.ok && joined.value;
    }, 20_000, "a newcomer matched to the hall after the switch", 200);
    const firstMatchAfterMs = Date.now() - killed.at;
    await waitForNeighbours(visitors[0], [visitors[1].visitorId, newcomer.visitorId], "the first visitor seeing the newcomer", 10_000);
    await waitForNeighbours(newcomer, [visitors[0].visitorId, visitors[1].visitorId], "the newcomer seeing both", 10_000);

    const releasedBefore = acknowledged.released.length;
    await waitFor(() => acknowledged.released.length >= releasedBefore + 3, 30_000, "lease cycles acknowledged after the switch");
    cycling = false;
    await cycles;
    expect(hangs).toEqual([]);
    // Answers during the switch are results or coded errors.
    for (const outcome of outcomes) if (!outcome.ok) expect(outcome.code, JSON.stringify(outcome)).toBeTypeOf("number");
    const firstAckAfter = outcomes.find((outcome) => outcome.ok && outcome.at > killed.at)!;

    // --- both nodes alive, neither took the other's rooms ------------------------------------------
    for (const node of nodes) {
      expect(node.child.exitCode).toBeNull();
      expect(node.output()).not.toContain("Unhandled error event");
      expect(node.output()).not.toMatch(/restored here after|could not be restored here/);
    }
    const room = await waitFor(async () => (await client.get(`${clusterName}:room:${roomIdOf("teleop", SITE)}`)) ?? undefined, 10_000, "the teleop room's directory entry");
    expect(JSON.parse(room)).toMatchObject({ nodeId: a.nodeId });
    expect((await excavator.status()).state).toBe("online");
    expect(supervisor.deviceSnapshot(EXCAVATOR).lease?.online).toBe(true);
    const metrics = await (await fetch(`${a.httpUrl}/metrics`)).text();
    expect(metrics).toMatch(/tsunagi_redis_connection_events_total\{connection="(region|cluster)",event="failover"\} [1-9]/);

    // --- the audit log: every acknowledged lease event, once; the chain verifies --------------------
    const log = new AuditLog(client, auditStreamKey(clusterName, SITE));
    const entries = await waitFor(async () => {
      const all = await log.export();
      const granted = new Set(all.filter((e) => e.type === "lease.granted").map((e) => String(e.data.leaseId)));
      return acknowledged.granted.every((id) => granted.has(id)) && all;
    }, 15_000, "every acknowledged grant in the audit log");
    const count = (type: string, leaseId: string) => entries.filter((e) => e.type === type && e.data.leaseId === leaseId).length;
    for (const leaseId of acknowledged.granted) expect(count("lease.granted", leaseId), `grant ${leaseId}`).toBe(1);
    for (const leaseId of acknowledged.released) expect(count("lease.released", leaseId), `release ${leaseId}`).toBe(1);
    expect(entries.map((e) => e.seq)).toEqual(entries.map((_, i) => i + 1));
    const verify = await runScript("cli/audit.ts", [
      "verify", "--room", SITE, "--cluster-name", clusterName,
      "--redis-sentinels", set.sentinelPorts.map((port) => `127.0.0.1:${port}`).join(","), "--redis-master-name", MASTER_NAME,
    ]);
    expect(verify.code, verify.stderr + verify.stdout).toBe(0);

    console.log(JSON.stringify({
      redisFailover: {
        promotedAfterMs: promotion.afterMs,
        firstAcknowledgedAuditEventAfterMs: firstAckAfter.at - killed.at,
        firstMatchmakingAfterMs: firstMatchAfterMs,
        codedErrorsDuringSwitch: outcomes.filter((outcome) => !outcome.ok).map((outcome) => outcome.code),
        acknowledged: { granted: acknowledged.granted.length, released: acknowledged.released.length },
      },
    }));
    controls.dispose();
  });
});
