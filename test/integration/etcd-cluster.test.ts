/**
 * Two regions whose nodes keep the cluster's registry and directory in etcd, each region
 * with its own Redis and no cluster Redis: they see each other, a room placed in one is
 * found through the other's matchmaker, and a node killed with SIGKILL takes its entry
 * and its rooms out of the directory when its lease expires.
 */
import "../../server/polyfills.ts";
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import { Client } from "@colyseus/sdk";
import { startNode, startRedis, waitFor, type NodeProcess, type RedisProcess } from "../fixtures/processes.ts";
import { startEtcd, type EtcdCluster } from "../fixtures/etcd.ts";
import { testToken } from "../fixtures/tokens.ts";
import { addressOf, liveNodes, matchmake } from "../fixtures/cluster.ts";
import { EtcdSession, clusterPrefix } from "../../server/cluster/etcd/EtcdSession.ts";
import { EtcdRoomDirectory } from "../../server/cluster/etcd/EtcdRoomDirectory.ts";
import type { DirectoryChange } from "../../server/cluster/types.ts";

const clusterName = `etcd-${randomUUID().slice(0, 8)}`;
let etcd: EtcdCluster;
let tokyoRedis: RedisProcess;
let osakaRedis: RedisProcess;
let tokyo: NodeProcess;
let osaka: NodeProcess;
/** The directory as this test reads it, straight from etcd. */
let session: EtcdSession;
let directory: EtcdRoomDirectory;

/** A node of `regionId` on its own Redis, with the cluster in etcd: 250 ms heartbeats, a 1-second lease. */
function etcdNode(regionId: string, nodeId: string, redis: RedisProcess) {
  return startNode({
    regionId, nodeId, redisUrl: redis.url, clusterName,
    extraArgs: ["--etcd-endpoints", etcd.endpoints.join(","), "--regions-file", "deploy/regions.json", "--cluster-heartbeat-ms", "250", "--cluster-node-ttl-ms", "1000"],
  });
}

beforeAll(async () => {
  [etcd, tokyoRedis, osakaRedis] = await Promise.all([startEtcd({ members: 1 }), startRedis(), startRedis()]);
  [tokyo, osaka] = await Promise.all([etcdNode("jp-tokyo", "tokyo-e1", tokyoRedis), etcdNode("jp-osaka", "osaka-e1", osakaRedis)]);
  session = new EtcdSession({ endpoints: etcd.endpoints, callTimeoutMs: 3000, defaultTtlMs: 10_000, prefix: clusterPrefix(clusterName) });
  directory = new EtcdRoomDirectory(session, 3000);
}, 60_000);
afterAll(async () => {
  await Promise.all([tokyo?.stop(), osaka?.stop()]);
  await session?.close();
  await Promise.all([tokyoRedis?.stop(), osakaRedis?.stop(), etcd?.stop()]);
});

describe("two regions on etcd", () => {
  it("lists each other's nodes, forwards a join to the region that hosts the room, and drops a SIGKILLed node's rooms with its lease", { timeout: 60_000 }, async () => {
    await waitFor(async () => (await liveNodes(tokyo)).sort().join() === "osaka-e1,tokyo-e1", 10_000, "both nodes in Tokyo's /regions");
    expect((await liveNodes(osaka)).sort()).toEqual(["osaka-e1", "tokyo-e1"]);

    const placed = await matchmake(tokyo, "create", "session", { roomId: "near-osaka", rttHints: { "jp-tokyo": 20, "jp-osaka": 4 } });
    expect(placed.status).toBe(200);
    expect(placed.body.publicAddress).toBe(addressOf(osaka));
    expect(await directory.get("session__near-osaka")).toMatchObject({ nodeId: "osaka-e1", regionId: "jp-osaka", token: expect.stringMatching(/^\d+$/) });

    // A visitor near Tokyo joins through Tokyo and is sent to Osaka.
    const client = new Client(tokyo.httpUrl);
    client.auth.token = await testToken(clusterName, "visitor");
    const room = await client.joinById("session__near-osaka");
    expect(new URL(room.connection.url!).host).toBe(addressOf(osaka));
    await room.leave();
    const duplicate = await matchmake(tokyo, "create", "session", { roomId: "near-osaka" });
    expect(duplicate.status).toBe(409);

    const changes: Array<{ change: DirectoryChange; at: number }> = [];
    const unwatch = await directory.watch((change) => changes.push({ change, at: performance.now() }));
    try {
      await osaka.kill();
      const killedAt = performance.now();
      const removed = await waitFor(() => changes.find(({ change }) => change.kind === "remove" && change.roomId === "session__near-osaka"), 10_000, "Osaka's room to leave the directory");
      console.log(`etcd, SIGKILL of a node (TTL 1 s, heartbeat 250 ms): its room left the directory ${Math.round(removed.at - killedAt)} ms after the kill`);
      await waitFor(async () => (await liveNodes(tokyo)).join() === "tokyo-e1", 5000, "Osaka gone from Tokyo's /regions");
      expect(await directory.get("session__near-osaka")).toBeUndefined();
    } finally {
      await unwatch();
    }
  });
});
