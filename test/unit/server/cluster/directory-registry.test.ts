/**
 * The registry and directory contracts, run against every implementation: in-memory
 * (embedded mode), Redis (the real server on 127.0.0.1:6379, under a unique prefix) and
 * etcd (a one-member cluster started for this file, under a unique prefix).
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { claimRequest, deviceOwner, nodeInfo } from "../../../fixtures/directoryEntries.ts";
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { InMemoryNodeRegistry, RedisNodeRegistry, type NodeRegistry } from "../../../../server/cluster/NodeRegistry.ts";
import { InMemoryRoomDirectory, RedisRoomDirectory, TransferError, compareTokens, type RoomDirectory } from "../../../../server/cluster/RoomDirectory.ts";
import type { DirectoryChange } from "../../../../server/cluster/types.ts";
import { EtcdSession } from "../../../../server/cluster/etcd/EtcdSession.ts";
import { EtcdNodeRegistry } from "../../../../server/cluster/etcd/EtcdNodeRegistry.ts";
import { EtcdRoomDirectory } from "../../../../server/cluster/etcd/EtcdRoomDirectory.ts";
import { waitFor } from "../../../fixtures/processes.ts";
import { testRedisUrl } from "../../../fixtures/redis.ts";
import { startEtcd, type EtcdCluster } from "../../../fixtures/etcd.ts";



let redis: Redis;
let etcd: EtcdCluster;
beforeAll(async () => {
  redis = new Redis(testRedisUrl(), { maxRetriesPerRequest: 1 });
  etcd = await startEtcd({ members: 1 });
}, 30_000);
afterAll(async () => {
  redis.disconnect();
  await etcd?.stop();
});

/**
 * One implementation's registry and directory. `leased`: a node's claims hang on its
 * lease (etcd), so removing the node takes them at once and a sweep finds nothing left.
 */
interface Implementation { registry: NodeRegistry; directory: RoomDirectory; cleanup: () => Promise<void>; leased?: boolean }

const implementations: Array<[string, () => Implementation]> = [
  ["in-memory", () => {
    const registry = new InMemoryNodeRegistry();
    const directory = new InMemoryRoomDirectory(async (id) => (await registry.get(id)) !== undefined);
    return { registry, directory, cleanup: async () => {} };
  }],
  ["redis", () => {
    const prefix = `test-${randomUUID()}:`;
    return {
      registry: new RedisNodeRegistry(redis, prefix),
      directory: new RedisRoomDirectory(redis, prefix),
      cleanup: async () => {
        const keys = await redis.keys(`${prefix}*`);
        if (keys.length) await redis.del(...keys);
      },
    };
  }],
  ["etcd", () => {
    const prefix = `test/${randomUUID()}`;
    const session = new EtcdSession({ endpoints: etcd.endpoints, callTimeoutMs: 3000, defaultTtlMs: 10_000, prefix });
    return {
      registry: new EtcdNodeRegistry(session),
      directory: new EtcdRoomDirectory(session, 3000),
      leased: true,
      cleanup: async () => {
        await session.client.delete().prefix(`${prefix}/`).exec();
        await session.close();
      },
    };
  }],
];

describe.each(implementations)("%s registry and directory", (_name, make) => {
  it("lists live nodes by region and forgets a node once its TTL passes", async () => {
    const { registry, cleanup } = make();
    try {
      await registry.heartbeat(nodeInfo("a", "jp-tokyo"), 300);
      await registry.heartbeat(nodeInfo("b", "jp-osaka"), 10_000);
      expect((await registry.list()).map((n) => n.nodeId).sort()).toEqual(["a", "b"]);
      expect((await registry.list("jp-osaka")).map((n) => n.nodeId)).toEqual(["b"]);
      await waitFor(async () => (await registry.get("a")) === undefined, 3000, "node a to expire");
      expect((await registry.list()).map((n) => n.nodeId)).toEqual(["b"]);
      await registry.remove("b");
      expect(await registry.list()).toEqual([]);
    } finally { await cleanup(); }
  });

  it("grants a room to exactly one of many concurrent claimants", async () => {
    const { registry, directory, cleanup } = make();
    try {
      const nodes = Array.from({ length: 20 }, (_, i) => `n${i}`);
      for (const id of nodes) await registry.heartbeat(nodeInfo(id), 10_000);
      const results = await Promise.all(nodes.map((id) => directory.claim(claimRequest("room-1", id))));
      const winners = results.filter((r) => r.claimed);
      expect(winners).toHaveLength(1);
      const owner = (await directory.get("room-1"))!.nodeId;
      for (const result of results) if (!result.claimed) expect(result.owner.nodeId).toBe(owner);
    } finally { await cleanup(); }
  });

  it("lets a live node's claim stand and a dead node's claim be taken over", async () => {
    const { registry, directory, cleanup } = make();
    try {
      await registry.heartbeat(nodeInfo("alive"), 10_000);
      const first = await directory.claim(claimRequest("r", "alive"));
      expect(first).toEqual({ claimed: true, token: expect.stringMatching(/^\d+$/) });
      expect((await directory.claim(claimRequest("r", "other"))).claimed).toBe(false);
      await registry.remove("alive");
      const second = await directory.claim(claimRequest("r", "other"));
      expect(second.claimed).toBe(true);
      // The newer owner's token is higher: the old one's writes are refused from now on.
      expect(compareTokens((second as { token: string }).token, (first as { token: string }).token)).toBeGreaterThan(0);
      expect(await directory.get("r")).toMatchObject({ nodeId: "other", token: (second as { token: string }).token });
    } finally { await cleanup(); }
  });

  it("binds a device to exactly one room of many claiming it from live nodes", async () => {
    const { registry, directory, cleanup } = make();
    try {
      const nodes = Array.from({ length: 10 }, (_, i) => `n${i}`);
      for (const id of nodes) await registry.heartbeat(nodeInfo(id), 10_000);
      const results = await Promise.all(nodes.map((id) => directory.claimDevice("ex-1", deviceOwner(`site-${id}`, id))));
      expect(results.filter((r) => r.claimed)).toHaveLength(1);
      const owner = (await directory.deviceOwner("ex-1"))!;
      expect(owner).toEqual(deviceOwner(owner.roomId, owner.nodeId));
      for (const result of results) if (!result.claimed) expect(result.owner).toEqual(owner);
    } finally { await cleanup(); }
  });

  it("lets a device claim stand while its node lives; its own room, its own node and anyone after the node is gone take it", async () => {
    const { registry, directory, cleanup } = make();
    try {
      await registry.heartbeat(nodeInfo("a"), 10_000);
      await registry.heartbeat(nodeInfo("b"), 10_000);
      expect(await directory.claimDevice("ex-2", deviceOwner("site-a", "a"))).toEqual({ claimed: true });
      expect(await directory.claimDevice("ex-2", deviceOwner("site-b", "b"))).toEqual({ claimed: false, owner: deviceOwner("site-a", "a") });
      expect(await directory.claimDevice("ex-2", deviceOwner("site-a", "a"))).toEqual({ claimed: true });
      // Node a arbitrates among its own rooms (and a restarted node reuses its id).
      expect(await directory.claimDevice("ex-2", deviceOwner("site-a2", "a"))).toEqual({ claimed: true });
      await registry.remove("a");
      expect(await directory.claimDevice("ex-2", deviceOwner("site-b", "b"))).toEqual({ claimed: true });
      expect((await directory.deviceOwner("ex-2"))?.roomId).toBe("site-b");
    } finally { await cleanup(); }
  });

  it("releases a device only for the room that holds it", async () => {
    const { registry, directory, cleanup } = make();
    try {
      await registry.heartbeat(nodeInfo("a"), 10_000);
      await directory.claimDevice("ex-3", deviceOwner("site-a", "a"));
      await directory.releaseDevice("ex-3", "someone-else");
      expect((await directory.deviceOwner("ex-3"))?.roomId).toBe("site-a");
      await directory.releaseDevice("ex-3", "site-a");
      expect(await directory.deviceOwner("ex-3")).toBeUndefined();
      expect(await directory.claimDevice("ex-3", deviceOwner("site-b", "b"))).toEqual({ claimed: true });
    } finally { await cleanup(); }
  });

  it("sweeps the rooms and device claims of nodes gone from the registry, and keeps live nodes'", async () => {
    const { registry, directory, cleanup, leased } = make();
    try {
      await registry.heartbeat(nodeInfo("live"), 10_000);
      await registry.heartbeat(nodeInfo("gone"), 10_000);
      await directory.claim(claimRequest("room-live", "live"));
      await directory.claim(claimRequest("room-gone", "gone"));
      await directory.claimDevice("ex-live", deviceOwner("room-live", "live"));
      await directory.claimDevice("ex-gone", deviceOwner("room-gone", "gone"));
      await registry.remove("gone");
      // Old code: the dead node's entries stayed until someone claimed the same ids. With
      // leases (etcd), removing the node revoked its lease, which took them at once.
      expect(await directory.sweep()).toEqual(leased ? { rooms: 0, devices: 0 } : { rooms: 1, devices: 1 });
      expect((await directory.list()).map((e) => e.roomId)).toEqual(["room-live"]);
      expect(await directory.deviceOwner("ex-gone")).toBeUndefined();
      expect(await directory.deviceOwner("ex-live")).toMatchObject({ roomId: "room-live" });
      expect(await directory.sweep()).toEqual({ rooms: 0, devices: 0 });
    } finally { await cleanup(); }
  });

  it("transfers a room only from its current token (a handoff's Switch), with a higher token", async () => {
    const { registry, directory, cleanup } = make();
    try {
      await registry.heartbeat(nodeInfo("source"), 10_000);
      await registry.heartbeat(nodeInfo("target"), 10_000);
      await registry.heartbeat(nodeInfo("late"), 10_000);
      const claim = await directory.claim(claimRequest("r", "source"));
      if (!claim.claimed) throw new Error("not claimed");
      const moved = await directory.transfer({ ...claimRequest("r", "target"), regionId: "jp-osaka" }, claim.token);
      if (!moved.claimed) throw new Error("not transferred");
      expect(compareTokens(moved.token, claim.token)).toBeGreaterThan(0);
      expect(await directory.get("r")).toMatchObject({ nodeId: "target", regionId: "jp-osaka", token: moved.token });
      // A second transfer from the old token (a retried or competing handoff) finds the new owner.
      expect(await directory.transfer(claimRequest("r", "late"), claim.token)).toMatchObject({ claimed: false, owner: { nodeId: "target" } });
      // The source's stale writes change nothing.
      await directory.update({ ...claimRequest("r", "source"), ccu: 50, token: claim.token });
      await directory.release("r", claim.token);
      expect(await directory.get("r")).toMatchObject({ nodeId: "target", ccu: 0 });
      await directory.release("r", moved.token);
      await expect(directory.transfer(claimRequest("r", "late"), moved.token)).rejects.toBeInstanceOf(TransferError);
    } finally { await cleanup(); }
  });

  it("updates and releases only for the owner, and tells watchers", async () => {
    const { registry, directory, cleanup } = make();
    const changes: DirectoryChange[] = [];
    const unwatch = await directory.watch((c) => changes.push(c));
    try {
      await registry.heartbeat(nodeInfo("owner"), 10_000);
      const claim = await directory.claim(claimRequest("r", "owner"));
      if (!claim.claimed) throw new Error("not claimed");
      const stale = String(BigInt(claim.token) - 1n);
      await directory.update({ ...claimRequest("r", "intruder"), ccu: 99, token: stale });
      expect((await directory.get("r"))!.ccu).toBe(0);
      await directory.update({ ...claimRequest("r", "owner"), ccu: 3, token: claim.token });
      expect((await directory.get("r"))!.ccu).toBe(3);
      await directory.release("r", stale);
      expect(await directory.get("r")).toBeDefined();
      await directory.release("r", claim.token);
      expect(await directory.get("r")).toBeUndefined();
      expect(await directory.list()).toEqual([]);
      await waitFor(() => changes.length >= 3, 2000, "three directory changes");
      expect(changes.map((c) => c.kind)).toEqual(["upsert", "upsert", "remove"]);
    } finally {
      await unwatch();
      await directory.close();
      await cleanup();
    }
  });
});

describe("Redis directory after a Redis restart", () => {
  it("claims again the rooms and devices it holds, and reports what another live node took meanwhile", async () => {
    const prefix = `test-${randomUUID()}:`;
    const registry = new RedisNodeRegistry(redis, prefix);
    const directory = new RedisRoomDirectory(redis, prefix);
    const other = new RedisRoomDirectory(redis, prefix);
    const wipe = async () => {
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length) await redis.del(...keys);
    };
    try {
      await registry.heartbeat(nodeInfo("a"), 10_000);
      await directory.claim(claimRequest("room-1", "a"));
      await directory.claim(claimRequest("room-2", "a"));
      await directory.claimDevice("ex-1", deviceOwner("room-1", "a"));
      await directory.claimDevice("ex-2", deviceOwner("room-2", "a"));
      await directory.release("room-2", (await directory.get("room-2"))!.token);
      await directory.releaseDevice("ex-2", "room-2");
      const token = (await directory.get("room-1"))!.token;
      // Redis came back empty; before node a claims again, node b opens room-1's device elsewhere.
      await wipe();
      await registry.heartbeat(nodeInfo("a"), 10_000);
      await registry.heartbeat(nodeInfo("b"), 10_000);
      await other.claimDevice("ex-1", deviceOwner("room-9", "b"));
      const report = await directory.reassert();
      expect(report).toMatchObject({ rooms: 1, reclaimed: [{ roomId: "room-1", token }], devices: 0, lostRooms: [], lostDevices: [{ deviceId: "ex-1", owner: { roomId: "room-9" } }] });
      // Back with the token the room holds, and the fence counter past it.
      expect(await directory.get("room-1")).toMatchObject({ nodeId: "a", token });
      expect(await directory.get("room-2")).toBeUndefined();
      const fresh = await other.claim(claimRequest("room-3", "b"));
      expect(compareTokens((fresh as { token: string }).token, token)).toBeGreaterThan(0);
      // A second node cannot open room-1 now.
      expect(await other.claim(claimRequest("room-1", "b"))).toMatchObject({ claimed: false });
    } finally {
      await wipe();
      await directory.close();
      await other.close();
    }
  });
});

describe("etcd directory after its node's lease was lost", () => {
  it("confirms nothing on the fresh lease alone: the node's rooms are its own again once reassert() put them back", async () => {
    const prefix = `test/${randomUUID()}`;
    const session = new EtcdSession({ endpoints: etcd.endpoints, callTimeoutMs: 3000, defaultTtlMs: 10_000, prefix });
    const registry = new EtcdNodeRegistry(session);
    const directory = new EtcdRoomDirectory(session, 3000);
    try {
      await registry.heartbeat(nodeInfo("a"), 10_000);
      await directory.claim(claimRequest("room-1", "a"));
      expect(directory.validUntil("a")).toBeGreaterThan(performance.now());
      // etcd refuses a write on the lease: lost. The next heartbeat is granted a fresh one.
      const lease = session.lease("a");
      lease.invalid(lease.current()!);
      expect(directory.validUntil("a")).toBe(0);
      await registry.heartbeat(nodeInfo("a"), 10_000);
      expect(session.validUntil("a")).toBeGreaterThan(performance.now());
      // The room may have gone with the old lease, and another node may hold it by now.
      expect(directory.validUntil("a")).toBe(0);
      const report = await directory.reassert();
      expect(report).toMatchObject({ rooms: 1, lostRooms: [] });
      expect(directory.validUntil("a")).toBe(session.validUntil("a"));
    } finally {
      await directory.close();
      await session.client.delete().prefix(`${prefix}/`).exec();
      await session.close();
    }
  });
});
