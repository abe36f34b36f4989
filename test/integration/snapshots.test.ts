/**
 * Failover's snapshots: a room writes its snapshot every failover.snapshotMs to its
 * region's Redis and to the replica region's, under its fencing token; a write older
 * than the one stored is refused (a newer owner wrote it), on either store, and the copy
 * that wrote it closes.
 */
import "../../server/polyfills.ts";
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { startNode, startRedis, waitFor, type NodeProcess, type RedisProcess } from "../fixtures/processes.ts";
import { testToken } from "../fixtures/tokens.ts";
import { DelayProxy } from "../fixtures/delay-proxy.ts";
import { RedisSnapshotStore, ReplicatedSnapshotStore, newerToken } from "../../server/handoff/SnapshotStore.ts";
import { TsunagiClient } from "../../client-sdk/index.ts";
import type { RoomSnapshot } from "../../server/handoff/types.ts";

const clusterName = `snap-${randomUUID().slice(0, 8)}`;
let region: RedisProcess;
let replica: RedisProcess;
let node: NodeProcess;
const clients: Redis[] = [];

beforeAll(async () => {
  [region, replica] = await Promise.all([startRedis(), startRedis()]);
  node = await startNode({ regionId: "jp-tokyo", nodeId: "tokyo-s1", redisUrl: region.url, clusterName, extraArgs: ["--failover-snapshot-ms", "100", "--failover-replica-redis-url", replica.url] });
}, 60_000);
afterAll(async () => {
  await node?.stop();
  for (const client of clients) client.disconnect();
  await Promise.all([region?.stop(), replica?.stop()]);
});

function store(url: string) {
  const client = new Redis(url, { maxRetriesPerRequest: 1 });
  client.on("error", () => { /* a store whose Redis a test stopped */ });
  clients.push(client);
  return new RedisSnapshotStore(client, `${clusterName}:`, 60_000);
}

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${node.httpUrl}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\d+)`, "m").exec(text)?.[1] ?? 0);
}

describe("room snapshots for failover", () => {
  it("orders tokens as decimal numbers of any length", () => {
    expect(newerToken("10", "9")).toBe(true);
    expect(newerToken("9", "10")).toBe(false);
    expect(newerToken("123456789012345678901", "123456789012345678900")).toBe(true);
    expect(newerToken("7", "7")).toBe(false);
  });

  it("keep an index of whose room each is; a room's remove() drops its own only, and an expired snapshot's entry whatever its token", { timeout: 20_000 }, async () => {
    const client = new Redis(region.url, { maxRetriesPerRequest: 1 });
    clients.push(client);
    const prefix = `${clusterName}-index:`;
    const store = new RedisSnapshotStore(client, prefix, 60_000);
    const brief = new RedisSnapshotStore(client, prefix, 1000);
    const base = { version: 1 as const, roomName: "session", createdAt: 0, maxClients: null, takenAt: 1, options: {}, state: null, sessions: [], queued: [], history: [] };
    const owner = { regionId: "jp-tokyo", nodeId: "tokyo-x" };
    await store.write({ ...base, roomId: "session__kept", name: "kept", token: "5" }, owner);
    await brief.write({ ...base, roomId: "session__brief", name: "brief", token: "6" }, owner);
    expect((await store.owners()).map((o) => [o.roomId, o.token, o.nodeId]).sort()).toEqual([["session__brief", "6", "tokyo-x"], ["session__kept", "5", "tokyo-x"]]);
    await store.remove("session__kept", "4"); // an older owner's close: not this snapshot
    expect(await store.read("session__kept")).toBeDefined();
    expect(await store.has("session__kept")).toBe(true);
    await waitFor(async () => (await brief.read("session__brief")) === undefined, 5000, "the brief snapshot to expire");
    expect((await store.owners()).map((o) => o.roomId).sort()).toEqual(["session__brief", "session__kept"]);
    await store.remove("session__brief", "0");
    await store.remove("session__kept", "5");
    expect(await store.owners()).toEqual([]);
    expect(await store.has("session__kept")).toBe(false);
  });

  it("a replica whose Redis is gone is skipped at once, not waited for through its reconnect backoff: writes and reads go on with the region's store", { timeout: 30_000 }, async () => {
    const gone = await startRedis();
    const goneStore = store(gone.url);
    const replicated = new ReplicatedSnapshotStore([store(region.url), goneStore]);
    const base = { version: 1 as const, roomName: "session", createdAt: 0, maxClients: null, options: {}, state: null, sessions: [], queued: [], history: [] };
    const owner = { regionId: "jp-tokyo", nodeId: "tokyo-y" };
    await replicated.write({ ...base, roomId: "session__lonely", name: "lonely", token: "3", takenAt: 1 }, owner);
    await gone.stop();
    await waitFor(() => goneStore.read("session__lonely").then(() => false, (error: Error) => /snapshot store unreachable/.test(error.message)), 10_000, "the gone store to fail at once");
    expect(await replicated.write({ ...base, roomId: "session__lonely", name: "lonely", token: "3", takenAt: 2 }, owner)).toBe("written");
    expect((await replicated.read("session__lonely"))?.takenAt).toBe(2);
    await replicated.remove("session__lonely", "3");
  });

  it("are written to the region's Redis and the replica, fenced by the room's token", { timeout: 60_000 }, async () => {
    const session = await new TsunagiClient({ url: node.httpUrl, token: await testToken(clusterName, "host", "snapper") }).joinOrCreate("session", { roomId: "snapped-1" });
    const [here, there] = [store(region.url), store(replica.url)];
    // The first is written as the room opens (before the join); the next ones have the session.
    const withSession = (snapshot: RoomSnapshot | undefined) => snapshot && snapshot.sessions.length > 0 && snapshot;
    const first = await waitFor(async () => withSession(await here.read(session.roomId)), 10_000, "the room's snapshot in its region's Redis");
    await waitFor(async () => withSession(await there.read(session.roomId)), 10_000, "its replica in the other region's Redis");
    expect(first).toMatchObject({ version: 1, roomId: "session__snapped-1", roomName: "session", sessions: [{ sessionId: session.sessionId, followsHandoff: true }] });
    expect((first.state as { participants: Array<{ sessionId: string }> }).participants.map((p) => p.sessionId)).toEqual([session.sessionId]);

    // A newer owner (a higher token) wrote elsewhere: this node's next write is refused, and
    // its copy of the room closes (NOT_ROOM_OWNER). That owner is not alive either, so the
    // node restores the room from the newer snapshot, and the session resumes there by itself.
    const moved = new Promise<{ reason: string; sessionId: string }>((resolve) => session.on("handoff", resolve));
    // (The next token the directory hands out: a restore claims the room under it or a newer one.)
    const newer: RoomSnapshot = { ...first, token: String(BigInt(first.token) + 1n), takenAt: Date.now() };
    // Counted before the write: the node's next write (within 100 ms) may be refused before a later count.
    const stale = await metric("tsunagi_room_snapshots_stale_total");
    expect(await here.write(newer, { regionId: "jp-osaka", nodeId: "osaka-x" })).toBe("written");
    await waitFor(async () => (await metric("tsunagi_room_snapshots_stale_total")) > stale, 10_000, "the node's next write refused as stale");
    expect(await moved).toMatchObject({ reason: "failover", sessionId: session.sessionId });
    const restored = await waitFor(async () => { const s = await here.read(session.roomId); return s && s.token !== first.token && !newerToken(newer.token, s.token) && s.sessions.length > 0 && s; }, 10_000, "the restored room's own snapshot, under a newer claim");
    expect(restored.sessions.map((s) => s.sessionId)).toEqual([session.sessionId]);
    // Read across both: the newest wins.
    expect((await new ReplicatedSnapshotStore([there, here]).read(session.roomId))!.token).toBe(restored.token);
    expect(await metric("tsunagi_room_snapshots_written_total")).toBeGreaterThan(0);
    await session.leave();
  });
});

describe("a replica region cut off by a partition that drops packets", () => {
  it("does not stop the room's snapshots in its own region: writes go on there while the replica's commands time out, and reach the replica again at the heal", { timeout: 60_000 }, async () => {
    const cluster = `${clusterName}-cut`;
    const toReplica = await DelayProxy.start({ target: { host: "127.0.0.1", port: replica.port } });
    const cut = await startNode({ regionId: "jp-tokyo", nodeId: "tokyo-cut", redisUrl: region.url, clusterName: cluster, extraArgs: ["--failover-snapshot-ms", "100", "--failover-replica-redis-url", `redis://127.0.0.1:${toReplica.port}`] });
    try {
      const session = await new TsunagiClient({ url: cut.httpUrl, token: await testToken(cluster, "host", "cut-off") }).joinOrCreate("session", { roomId: "cut-off" });
      const [hereClient, thereClient] = [new Redis(region.url, { maxRetriesPerRequest: 1 }), new Redis(replica.url, { maxRetriesPerRequest: 1 })];
      clients.push(hereClient, thereClient);
      const here = new RedisSnapshotStore(hereClient, `${cluster}:`, 60_000);
      const there = new RedisSnapshotStore(thereClient, `${cluster}:`, 60_000);
      await waitFor(async () => (await there.read(session.roomId)) !== undefined, 10_000, "a snapshot in the replica");
      toReplica.blackhole(true);
      const cutAt = Date.now();
      // Without a bound on the replica's commands, the write in flight never ends and no snapshot follows it, here either.
      await waitFor(async () => ((await here.read(session.roomId))?.takenAt ?? 0) > cutAt + 1000, 20_000, "snapshots in the region's Redis after the cut");
      toReplica.blackhole(false);
      await waitFor(async () => ((await there.read(session.roomId))?.takenAt ?? 0) > Date.now() - 5000 && ((await there.read(session.roomId))?.takenAt ?? 0) > cutAt, 20_000, "snapshots in the replica again after the heal");
      await session.leave();
    } finally {
      await cut.stop();
      await toReplica.close();
    }
  });
});
