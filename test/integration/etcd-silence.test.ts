/**
 * The etcd registry's silence rule against real etcd (EtcdNodeRegistry): a node whose
 * entry stops changing is taken as dead after the TTL, long before etcd would let its
 * lease expire, and only once its own ownership has lapsed; it learns so at its next
 * heartbeat and loses the rooms taken meanwhile. A gap in the watching (as an etcd
 * election makes) restarts the clocks, so a survivor is never mistaken for a dead node,
 * except for a node the direct heartbeats (PeerProbe) also found down throughout.
 *
 * Node "a" holds a 10-second lease here (granted before its first heartbeat), so nothing
 * but the silence rule can remove it within the test.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { claimRequest, nodeInfo } from "../fixtures/directoryEntries.ts";
import { performance } from "node:perf_hooks";
import { randomUUID } from "node:crypto";
import { EtcdSession } from "../../server/cluster/etcd/EtcdSession.ts";
import { EtcdNodeRegistry } from "../../server/cluster/etcd/EtcdNodeRegistry.ts";
import { EtcdRoomDirectory } from "../../server/cluster/etcd/EtcdRoomDirectory.ts";
import type { ReassertReport } from "../../server/cluster/RoomDirectory.ts";
import { startEtcd, type EtcdCluster } from "../fixtures/etcd.ts";
import { waitFor } from "../fixtures/processes.ts";

const TTL_MS = 900;
const HEARTBEAT_MS = 250;


/** A node of its own session: heartbeats on a timer that can halt and go on, as a stalled or cut-off process would. */
function node(endpoints: string[], prefix: string, nodeId: string) {
  const session = new EtcdSession({ endpoints, callTimeoutMs: 2000, defaultTtlMs: 10_000, prefix });
  const registry = new EtcdNodeRegistry(session, TTL_MS);
  const directory = new EtcdRoomDirectory(session, 2000);
  const losses: string[] = [];
  const reasserts: ReassertReport[] = [];
  const silent: Array<{ nodeId: string; at: number }> = [];
  session.events.on("lost", (_id, reason) => losses.push(reason));
  session.events.on("granted", (_id, afterLoss) => { if (afterLoss) void directory.reassert().then((r) => reasserts.push(r), () => {}); });
  session.events.on("silent", (id) => silent.push({ nodeId: id, at: performance.now() }));
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<void> | undefined;
  const beat = () => { inFlight ??= registry.heartbeat(nodeInfo(nodeId), TTL_MS).catch(() => {}).finally(() => { inFlight = undefined; }); };
  return {
    session, registry, directory, losses, reasserts, silent,
    async start() { await registry.heartbeat(nodeInfo(nodeId), TTL_MS); timer = setInterval(beat, HEARTBEAT_MS); },
    async halt() { clearInterval(timer); await inFlight; },
    async close() { clearInterval(timer); await inFlight; await session.close(); },
  };
}

/** Calls list() every 100 ms until stopped, as Failover does; keeps what each call returned. */
function watcher(registry: EtcdNodeRegistry) {
  let stopped = false;
  let last: string[] = [];
  const loop = (async () => {
    while (!stopped) {
      last = (await registry.list().catch(() => [])).map((n) => n.nodeId).sort();
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return { listed: () => last, stop: async () => { stopped = true; await loop; } };
}

describe("etcd registry: the silence rule", () => {
  let etcd: EtcdCluster;
  beforeAll(async () => { etcd = await startEtcd({ members: 1 }); }, 30_000);
  afterAll(async () => { await etcd?.stop(); });

  it("takes a node whose entry stopped changing as dead after the TTL, before its lease expires and after its ownership lapsed; the node finds out at its next heartbeat and loses the room taken", { timeout: 60_000 }, async () => {
    const prefix = `tsunagi/silence-${randomUUID()}`;
    const a = node(etcd.endpoints, prefix, "a");
    const b = node(etcd.endpoints, prefix, "b");
    try {
      const leaseId = await a.session.lease("a").ensure(); // 10 s: only the silence rule removes "a" within the test
      await a.start();
      await b.start();
      await a.directory.claim(claimRequest("session__silent", "a"));
      const watching = watcher(b.registry);
      try {
        await waitFor(() => watching.listed().join() === "a,b", 5000, "both nodes listed");
        await a.halt();
        const ownedUntil = a.directory.validUntil("a");
        await waitFor(() => b.silent.length > 0, 10_000, "node a taken as dead");
        expect(b.silent.map((s) => s.nodeId)).toEqual(["a"]);
        // Safety: the entry went only once a's own ownership had lapsed (one clock: this process').
        expect(b.silent[0]!.at).toBeGreaterThan(ownedUntil);
        expect(a.directory.validUntil("a")).toBeLessThan(performance.now());
        // Its lease is still there: the silence rule did not wait for it.
        const { TTL } = await b.session.client.leaseClient.leaseTimeToLive({ ID: leaseId });
        expect(Number(TTL)).toBeGreaterThan(0);
        await waitFor(() => watching.listed().join() === "b", 2000, "a left out of the list");
        // a's room is taken over at once.
        const taken = await b.directory.claim(claimRequest("session__silent", "b"));
        expect(taken.claimed).toBe(true);

        // a wakes: its next heartbeat finds its entry gone, it counts its lease lost and, on a fresh one, learns the room is b's.
        await a.start();
        expect(a.losses.join("\n")).toMatch(/registry entry was removed/);
        await waitFor(() => a.reasserts.length > 0, 5000, "a's claims checked again");
        expect(a.reasserts[0]!.lostRooms).toMatchObject([{ roomId: "session__silent", nodeId: "b" }]);
        await waitFor(() => watching.listed().join() === "a,b", 5000, "a listed again, on its fresh lease");
        expect(a.directory.validUntil("a")).toBeGreaterThan(performance.now());
      } finally {
        await watching.stop();
      }
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it("does not take a node as dead for a silence that fell in a gap of the watching (an election, a stall)", { timeout: 60_000 }, async () => {
    const prefix = `tsunagi/silence-${randomUUID()}`;
    const a = node(etcd.endpoints, prefix, "a");
    const b = node(etcd.endpoints, prefix, "b");
    try {
      await a.session.lease("a").ensure();
      await a.start();
      await b.start();
      expect((await b.registry.list()).map((n) => n.nodeId).sort()).toEqual(["a", "b"]);
      // Neither a's heartbeats nor b's watching for twice the TTL, as while etcd has no leader.
      await a.halt();
      await new Promise((r) => setTimeout(r, 2 * TTL_MS));
      // b watches again at once; a heartbeats again a little later, as a survivor would.
      const watching = watcher(b.registry);
      try {
        await new Promise((r) => setTimeout(r, 150));
        await a.start();
        await new Promise((r) => setTimeout(r, 2 * TTL_MS));
        expect(b.silent).toEqual([]);
        expect(watching.listed()).toEqual(["a", "b"]);
        expect(a.losses).toEqual([]);
      } finally {
        await watching.stop();
      }
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it("across a gap, holds the clock of a node whose direct heartbeats (PeerProbe) fail, and drops it once they have failed for the TTL; restarts it for a node that answers", { timeout: 60_000 }, async () => {
    const prefix = `tsunagi/silence-${randomUUID()}`;
    const a = node(etcd.endpoints, prefix, "a");
    const c = node(etcd.endpoints, prefix, "c");
    const b = node(etcd.endpoints, prefix, "b");
    // What b's direct probes found, by node: for how long every probe failed (0: it answered).
    const direct = new Map<string, number>();
    const known: string[][] = [];
    b.registry.watchPeers({ know: (nodes) => known.push(nodes.map((n) => n.nodeId).sort()), silentFor: (nodeId) => direct.get(nodeId) ?? 0 });
    const listed = async () => (await b.registry.list()).map((n) => n.nodeId).sort();
    try {
      await a.session.lease("a").ensure();
      await c.session.lease("c").ensure();
      await Promise.all([a.start(), b.start(), c.start()]);
      expect(await listed()).toEqual(["a", "b", "c"]);
      expect(known.at(-1)).toEqual(["a", "b", "c"]);
      // Neither a's nor c's heartbeats, nor b's watching, for twice the TTL: an election.
      await Promise.all([a.halt(), c.halt()]);
      await new Promise((r) => setTimeout(r, 2 * TTL_MS));
      // b's first look after the gap: a's probes have been failing for less than the TTL, c's answered.
      direct.set("a", TTL_MS / 3);
      expect(await listed()).toEqual(["a", "b", "c"]);
      // A moment later a's probes have failed for the TTL: a goes (its entry's clock ran on through the gap), c stays.
      direct.set("a", TTL_MS + 50);
      expect(await listed()).toEqual(["b", "c"]);
      expect(b.silent.map((s) => s.nodeId)).toEqual(["a"]);
      expect(known.at(-1)).toEqual(["b", "c"]);
      // c's probes start failing only now, after the gap: its clock had started again, so it is not dropped on their word alone.
      direct.set("c", TTL_MS + 50);
      expect(await listed()).toEqual(["b", "c"]);
      // c heartbeats again and stays.
      direct.delete("c");
      await c.start();
      const watching = watcher(b.registry);
      try {
        await new Promise((r) => setTimeout(r, 2 * TTL_MS));
        expect(watching.listed()).toEqual(["b", "c"]);
        expect(b.silent.map((s) => s.nodeId)).toEqual(["a"]);
        expect(c.losses).toEqual([]);
      } finally {
        await watching.stop();
      }
    } finally {
      await Promise.all([a.close(), b.close(), c.close()]);
    }
  });
});
