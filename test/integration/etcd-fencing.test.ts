/**
 * A node that loses its etcd quorum stops taking inputs for its rooms: it cannot
 * confirm its lease, so the room may be another node's by now (a partition must never
 * leave two live copies taking inputs). Its clients get NOT_ROOM_OWNER, coded; an e-stop
 * still goes through; once the quorum is back the node renews, and the room goes on.
 */
import "../../server/polyfills.ts";
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { randomUUID } from "node:crypto";
import { startNode, startRedis, waitFor, type NodeProcess, type RedisProcess } from "../fixtures/processes.ts";
import { startEtcd, type EtcdCluster } from "../fixtures/etcd.ts";
import { testToken } from "../fixtures/tokens.ts";
import { TsunagiClient, type RoomSession } from "../../client-sdk/index.ts";
import { ErrorCode } from "../../proto/index.ts";

const clusterName = `fence-${randomUUID().slice(0, 8)}`;
let etcd: EtcdCluster;
let redis: RedisProcess;
let node: NodeProcess;

beforeAll(async () => {
  [etcd, redis] = await Promise.all([startEtcd({ members: 3 }), startRedis()]);
  node = await startNode({
    regionId: "jp-tokyo", nodeId: "tokyo-f1", redisUrl: redis.url, clusterName,
    extraArgs: ["--etcd-endpoints", etcd.endpoints.join(","), "--cluster-heartbeat-ms", "250", "--cluster-node-ttl-ms", "1000", "--etcd-call-timeout-ms", "500"],
  });
}, 60_000);
afterAll(async () => {
  await node?.stop();
  await Promise.all([redis?.stop(), etcd?.stop()]);
});

describe("a node without its etcd quorum", () => {
  it("refuses its rooms' inputs (NOT_ROOM_OWNER) until the quorum is back", { timeout: 90_000 }, async () => {
    const client = new TsunagiClient({ url: node.httpUrl, token: await testToken(clusterName, "host", "fenced") });
    const session: RoomSession = await client.joinOrCreate("session", { roomId: "fenced-1" });
    expect((await session.request({ ping: { clientTimeMs: 1 } })).body).toBe("pong");

    // Two of three members gone: no quorum, no keep-alive confirmed.
    await Promise.all([etcd.members[1].kill(), etcd.members[2].kill()]);
    const refused = await waitFor(async () => {
      try {
        await session.request({ ping: { clientTimeMs: 2 } }, 2000);
        return false;
      } catch (error) {
        return (error as { code?: number }).code === ErrorCode.NOT_ROOM_OWNER && error;
      }
    }, 20_000, "the room refusing inputs without the quorum");
    expect((refused as Error).message).toMatch(/cannot confirm it still holds room/);
    expect(session.closed).toBe(false);

    // The quorum is back: the node renews its lease (a fresh one), reclaims the room, and takes inputs again.
    await Promise.all([etcd.members[1].restart(), etcd.members[2].restart()]);
    await etcd.waitHealthy(20_000);
    await waitFor(async () => {
      try { return (await session.request({ ping: { clientTimeMs: 3 } }, 2000)).body === "pong"; } catch { return false; }
    }, 30_000, "the room taking inputs again");
    const metrics = await (await fetch(`${node.httpUrl}/metrics`)).text();
    expect(metrics).toMatch(/tsunagi_errors_total\{code="NOT_ROOM_OWNER",source="session"\} [1-9]/);
    await session.leave();
  });
});
