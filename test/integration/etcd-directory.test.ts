/**
 * The etcd registry and directory against real etcd: a node whose keep-alives stop (as a
 * SIGKILLed node's do) loses its entry, rooms and device claims with its lease; fencing
 * tokens only grow; claims survive the loss of one member of three and fail within their
 * bound without a quorum, while the node's confirmed ownership stops advancing; and the
 * quorum's return brings a fresh lease, onto which the node's rooms move under new tokens.
 *
 * Each "node" here is a session in this process with a heartbeat timer, as RegionNode
 * runs one; halting the timer without revoking anything is how it dies.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { claimRequest, deviceOwner, nodeInfo } from "../fixtures/directoryEntries.ts";
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { IKeyValue } from "etcd3";
import { EtcdSession } from "../../server/cluster/etcd/EtcdSession.ts";
import { EtcdNodeRegistry } from "../../server/cluster/etcd/EtcdNodeRegistry.ts";
import { EtcdRoomDirectory } from "../../server/cluster/etcd/EtcdRoomDirectory.ts";
import { safetyMarginMs } from "../../server/cluster/etcd/NodeLease.ts";
import { compareTokens, type ReassertReport } from "../../server/cluster/RoomDirectory.ts";
import type { DirectoryChange } from "../../server/cluster/types.ts";
import { startEtcd, type EtcdCluster } from "../fixtures/etcd.ts";
import { waitFor } from "../fixtures/processes.ts";

function tokenOf(result: { claimed: boolean; token?: string }): string {
  if (!result.claimed || !result.token) throw new Error(`not claimed: ${JSON.stringify(result)}`);
  return result.token;
}

interface TestNode {
  session: EtcdSession;
  registry: EtcdNodeRegistry;
  directory: EtcdRoomDirectory;
  /** Reasons of lease losses, and reassert reports after fresh leases, in order. */
  losses: string[];
  reasserts: ReassertReport[];
  /** Heartbeats that failed. */
  failures: number;
  /** Heartbeats every heartbeatMs until halt(); resolves after the first one succeeded. */
  start(): Promise<void>;
  /** Stops heartbeating without revoking anything, as a killed process would; resolves once no keep-alive is out. */
  halt(): Promise<void>;
  close(): Promise<void>;
}

/** A node on `endpoints` that heartbeats like RegionNode, and claims its rooms again after a fresh lease. */
function testNode(endpoints: string[], prefix: string, nodeId: string, options: { ttlMs: number; heartbeatMs: number; callTimeoutMs: number }): TestNode {
  const session = new EtcdSession({ endpoints, callTimeoutMs: options.callTimeoutMs, defaultTtlMs: options.ttlMs, prefix });
  const registry = new EtcdNodeRegistry(session);
  const directory = new EtcdRoomDirectory(session, options.callTimeoutMs);
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<void> | undefined;
  const node: TestNode = {
    session, registry, directory, losses: [], reasserts: [], failures: 0,
    async start() {
      await registry.heartbeat(nodeInfo(nodeId), options.ttlMs);
      timer = setInterval(() => {
        inFlight ??= registry.heartbeat(nodeInfo(nodeId), options.ttlMs)
          .catch(() => { node.failures++; })
          .finally(() => { inFlight = undefined; });
      }, options.heartbeatMs);
    },
    async halt() {
      clearInterval(timer);
      await inFlight;
    },
    async close() {
      await node.halt();
      await session.close();
    },
  };
  session.events.on("lost", (_id, reason) => node.losses.push(reason));
  session.events.on("granted", (_id, afterLoss) => {
    if (afterLoss) void directory.reassert().then((report) => node.reasserts.push(report), () => {});
  });
  return node;
}

/** Records when keys under `prefix` are deleted (performance.now()), from a watch of its own. */
async function deletions(session: EtcdSession, prefix: string) {
  const times = new Map<string, number>();
  const watcher = await session.client.watch().prefix(prefix).create();
  watcher.on("delete", (kv: IKeyValue) => times.set(kv.key.toString().slice(prefix.length), performance.now()));
  return { times, stop: () => watcher.cancel() };
}

describe("etcd directory, one member", () => {
  let etcd: EtcdCluster;
  let observer: EtcdSession;
  beforeAll(async () => {
    etcd = await startEtcd({ members: 1 });
    observer = new EtcdSession({ endpoints: etcd.endpoints, callTimeoutMs: 3000, defaultTtlMs: 10_000, prefix: "unused" });
  }, 30_000);
  afterAll(async () => {
    await observer?.close();
    await etcd?.stop();
  });

  it("a node whose keep-alives stop loses its entry, rooms and device claims with its 1-second lease, and watchers see the rooms go", { timeout: 60_000 }, async () => {
    const prefix = `test/${randomUUID()}`;
    const watchSession = new EtcdSession({ endpoints: etcd.endpoints, callTimeoutMs: 3000, defaultTtlMs: 10_000, prefix });
    const watching = new EtcdRoomDirectory(watchSession, 3000);
    const changes: Array<{ change: DirectoryChange; at: number }> = [];
    const unwatch = await watching.watch((change) => changes.push({ change, at: performance.now() }));
    const nodeKeys = await deletions(observer, `${prefix}/nodes/`);
    const measured: Array<{ killToDelete: number; keepAliveToDelete: number }> = [];
    try {
      for (let trial = 0; trial < 5; trial++) {
        const nodeId = `doomed-${trial}`;
        const node = testNode(etcd.endpoints, prefix, nodeId, { ttlMs: 1000, heartbeatMs: 250, callTimeoutMs: 2000 });
        try {
          await node.start();
          await node.directory.claim(claimRequest(`${nodeId}-r1`, nodeId));
          await node.directory.claim(claimRequest(`${nodeId}-r2`, nodeId));
          expect(await node.directory.claimDevice(`${nodeId}-ex`, deviceOwner(`${nodeId}-r1`, nodeId))).toEqual({ claimed: true });
          // Killed at a different phase of the heartbeat cadence in each trial.
          await new Promise((r) => setTimeout(r, (trial * 250) / 5));
          await node.halt();
          const killedAt = performance.now();
          const lease = node.session.existingLease(nodeId)!;
          const lastKeepAliveSent = lease.validUntil() - lease.ttl() + safetyMarginMs(lease.ttl());
          const gone = (roomId: string) => changes.some(({ change }) => change.kind === "remove" && change.roomId === roomId);
          await waitFor(() => gone(`${nodeId}-r1`) && gone(`${nodeId}-r2`) && nodeKeys.times.has(nodeId), 5000, `${nodeId}'s keys to vanish`);
          const deletedAt = nodeKeys.times.get(nodeId)!;
          measured.push({ killToDelete: Math.round(deletedAt - killedAt), keepAliveToDelete: Math.round(deletedAt - lastKeepAliveSent) });
          expect(await watching.get(`${nodeId}-r1`)).toBeUndefined();
          expect(await watching.deviceOwner(`${nodeId}-ex`)).toBeUndefined();
          expect(await new EtcdNodeRegistry(watchSession).list()).toEqual([]);
        } finally {
          await node.close();
        }
      }
    } finally {
      await unwatch();
      await nodeKeys.stop();
      await watchSession.close();
      await observer.client.delete().prefix(`${prefix}/`).exec();
    }
    console.log(`etcd lease expiry, TTL 1 s, heartbeat 250 ms: ${JSON.stringify(measured)}`);
    for (const { keepAliveToDelete } of measured) {
      // etcd counts the TTL from the last keep-alive it got, and checks for expired leases every 500 ms.
      expect(keepAliveToDelete).toBeGreaterThanOrEqual(900);
      expect(keepAliveToDelete).toBeLessThan(4000);
    }
  });

  it("raises the fencing token across claim, expiry of the owner, and a claim by another; the old owner's writes are refused", { timeout: 30_000 }, async () => {
    const prefix = `test/${randomUUID()}`;
    const a = testNode(etcd.endpoints, prefix, "a", { ttlMs: 1000, heartbeatMs: 250, callTimeoutMs: 2000 });
    const b = testNode(etcd.endpoints, prefix, "b", { ttlMs: 10_000, heartbeatMs: 1000, callTimeoutMs: 2000 });
    try {
      await a.start();
      await b.start();
      const first = tokenOf(await a.directory.claim(claimRequest("r", "a")));
      await a.directory.update({ ...claimRequest("r", "a"), ccu: 2, token: first });
      expect(await b.directory.claim(claimRequest("r", "b"))).toMatchObject({ claimed: false, owner: { nodeId: "a", ccu: 2, token: first } });
      await a.halt();
      await waitFor(async () => (await b.directory.get("r")) === undefined, 5000, "a's claim to expire with its lease");
      const second = tokenOf(await b.directory.claim(claimRequest("r", "b")));
      expect(compareTokens(second, first)).toBeGreaterThan(0);
      // a, partitioned rather than dead, comes back with its old token: refused.
      await a.directory.update({ ...claimRequest("r", "a"), ccu: 99, token: first });
      await a.directory.release("r", first);
      expect(await a.directory.transfer(claimRequest("r", "a"), first)).toMatchObject({ claimed: false, owner: { nodeId: "b", token: second } });
      expect(await b.directory.get("r")).toMatchObject({ nodeId: "b", ccu: 0, token: second });
    } finally {
      await a.close();
      await b.close();
      await observer.client.delete().prefix(`${prefix}/`).exec();
    }
  });

  it("sweeps claims whose node has no registry entry (a claim before any heartbeat), which other nodes may also take over", { timeout: 30_000 }, async () => {
    const prefix = `test/${randomUUID()}`;
    const b = testNode(etcd.endpoints, prefix, "b", { ttlMs: 10_000, heartbeatMs: 1000, callTimeoutMs: 2000 });
    try {
      await b.start();
      // "ghost" claims on a lease of its own, but never heartbeats: no registry entry.
      await b.directory.claim(claimRequest("ghost-1", "ghost"));
      await b.directory.claim(claimRequest("ghost-2", "ghost"));
      await b.directory.claimDevice("ex-ghost", deviceOwner("ghost-1", "ghost"));
      expect(await b.directory.claim(claimRequest("ghost-1", "b"))).toMatchObject({ claimed: true });
      expect(await b.directory.sweep()).toEqual({ rooms: 1, devices: 1 });
      expect((await b.directory.list()).map((e) => e.roomId)).toEqual(["ghost-1"]);
      expect(await b.directory.sweep()).toEqual({ rooms: 0, devices: 0 });
    } finally {
      await b.close();
      await observer.client.delete().prefix(`${prefix}/`).exec();
    }
  });
});

describe("etcd directory, three members", () => {
  let etcd: EtcdCluster;
  beforeAll(async () => { etcd = await startEtcd({ members: 3 }); }, 30_000);
  afterAll(async () => { await etcd?.stop(); });

  it("keeps claiming with one member down; without a quorum, calls fail within their bound and ownership stops being confirmed; with the quorum back, a fresh lease carries the rooms under new tokens", { timeout: 90_000 }, async () => {
    const prefix = `test/${randomUUID()}`;
    const callTimeoutMs = 1000;
    const node = testNode(etcd.endpoints, prefix, "a", { ttlMs: 2000, heartbeatMs: 250, callTimeoutMs });
    try {
      await node.start();
      const tokens = new Map<string, string>();
      for (const roomId of ["r1", "r2"]) tokens.set(roomId, tokenOf(await node.directory.claim(claimRequest(roomId, "a"))));
      expect(await node.directory.claimDevice("ex-1", deviceOwner("r1", "a"))).toEqual({ claimed: true });

      // One member of three gone: the other two keep a quorum (after an election, if it led).
      await etcd.members[0].kill();
      await waitFor(async () => {
        try { tokens.set("r3", tokenOf(await node.directory.claim(claimRequest("r3", "a")))); return true; } catch { return false; }
      }, 10_000, "a claim to succeed with one member down");
      for (const roomId of ["r4", "r5", "r6"]) tokens.set(roomId, tokenOf(await node.directory.claim(claimRequest(roomId, "a"))));
      const oldLease = node.session.existingLease("a")!.current()!;

      // Two gone: no quorum. A claim fails, and within its bound.
      const lossesBefore = node.losses.length;
      const reassertsBefore = node.reasserts.length;
      await etcd.members[1].kill();
      const startedAt = performance.now();
      await expect(node.directory.claim(claimRequest("r7", "a"))).rejects.toThrow();
      const elapsed = performance.now() - startedAt;
      expect(elapsed).toBeLessThan(callTimeoutMs + 2000);
      await expect(node.directory.get("r1")).rejects.toThrow();
      // No keep-alive is confirmed any more: the lease is counted lost, and its confirmed time stays in the past.
      await waitFor(() => node.losses.length > lossesBefore, 10_000, "the lease to be counted lost");
      const confirmedUntil = node.session.validUntil("a");
      expect(confirmedUntil).toBeLessThanOrEqual(performance.now());
      const failuresThen = node.failures;
      await waitFor(() => node.failures >= failuresThen + 2, 10_000, "two more failed heartbeats");
      expect(node.session.validUntil("a")).toBe(confirmedUntil);
      expect(node.session.validForMs("a")).toBe(0);

      // The members come back: a fresh lease, and the rooms move onto it with new tokens.
      await Promise.all([etcd.members[0].restart(), etcd.members[1].restart()]);
      await etcd.waitHealthy();
      // The client backs off its restarted members for a while (retries, circuit breaker): a busy machine takes longer.
      const report = await waitFor(() => node.reasserts[reassertsBefore], 45_000, "the rooms claimed again on a fresh lease");
      expect(node.session.existingLease("a")!.current()).not.toBe(oldLease);
      expect(report).toMatchObject({ rooms: 6, devices: 1, lostRooms: [], lostDevices: [] });
      expect(report.reclaimed.map((r) => r.roomId).sort()).toEqual(["r1", "r2", "r3", "r4", "r5", "r6"]);
      for (const { roomId, token } of report.reclaimed) {
        expect(compareTokens(token, tokens.get(roomId)!)).toBeGreaterThan(0);
        expect(await node.directory.get(roomId)).toMatchObject({ nodeId: "a", token });
      }
      // The old lease, if etcd kept it through the outage, ends without taking anything with it.
      await waitFor(async () => Number((await node.session.leaseClient.leaseTimeToLive({ ID: oldLease })).TTL) < 0, 10_000, "the old lease to end");
      expect((await node.directory.list()).map((e) => e.roomId).sort()).toEqual(["r1", "r2", "r3", "r4", "r5", "r6"]);
      expect(await node.directory.deviceOwner("ex-1")).toMatchObject({ roomId: "r1", nodeId: "a" });
      expect((await node.registry.get("a"))?.nodeId).toBe("a");
    } finally {
      await node.close();
    }
  });
});
