/**
 * The multi-region harness with real traffic: three regions (Tokyo, Osaka, Sendai; the
 * cluster store in Tokyo), each node behind delay proxies. A client located in Osaka pays
 * its city's RTTs, node-to-node forwarding crosses the route proxies, and a partition
 * between two regions turns a forwarded join into REGION_UNAVAILABLE until it heals; a
 * killed node comes back on fresh ports behind the same proxies.
 * Then the same regions on etcd: a member in each region, the members' own traffic
 * through the links, a region cut off from the others left in the minority, and a
 * region's kill taking its member with it.
 * Timing checks are lower bounds only: the proxies add at least their delay.
 */
import "../../server/polyfills.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { performance } from "node:perf_hooks";
import { startRegions, type RegionsHarness } from "../fixtures/regions.ts";
import { addressOf, liveNodes, matchmake } from "../fixtures/cluster.ts";
import { testToken } from "../fixtures/tokens.ts";
import { waitFor } from "../fixtures/processes.ts";
import type { RoomSession } from "../../client-sdk/RoomSession.ts";
import { ErrorCode } from "../../proto/index.ts";

const FORWARD_TIMEOUT_MS = 500;
const REGIONS = ["jp-tokyo", "jp-osaka", "jp-sendai"];
let harness: RegionsHarness;
const sessions: RoomSession[] = [];

/** A room of type "session" held open by a host located in `city`, placed in `region` by its RTT hints. */
async function heldRoom(city: string, region: string, roomId: string) {
  const located = await harness.locate(city);
  const client = located.client(await testToken(harness.clusterName, "host"));
  const rttHints = Object.fromEntries(harness.regionIds.map((id) => [id, id === region ? 1 : 100]));
  const session = await client.create("session", { roomId, rttHints });
  sessions.push(session);
  return { located, client, session };
}

describe("the multi-region harness", () => {
  beforeAll(async () => {
    harness = await startRegions({ regions: REGIONS, nodeArgs: ["--cluster-forward-timeout-ms", String(FORWARD_TIMEOUT_MS)] });
  }, 120_000);

  afterAll(async () => {
    await Promise.allSettled(sessions.map((session) => session.leave()));
    await harness?.stop();
  }, 60_000);

  it("starts each region with its node ids, its own Redis, and route proxies between regions only", () => {
    const described = harness.describe();
    expect(described.regions.map((r) => [r.id, r.nodes.map((n) => n.nodeId)])).toEqual([
      ["jp-tokyo", ["tokyo-1"]], ["jp-osaka", ["osaka-1"]], ["jp-sendai", ["sendai-1"]],
    ]);
    expect(new Set(described.regions.map((r) => r.redisUrl)).size).toBe(3);
    expect(described.clusterStore.members).toEqual([{ regionId: "jp-tokyo", url: expect.stringMatching(/^redis:\/\/127\.0\.0\.1:\d+$/) }]);
    // 3 × 2 node routes, the two regions away from the store reach it through one each, and
    // each region reaches the Redis of the nearest other region (its snapshots' replica) through one.
    expect(described.routes.filter((r) => r.fronts.startsWith("cluster-store"))).toHaveLength(2);
    const replicas = described.routes.filter((r) => r.fronts.startsWith("snapshot replica"));
    expect(replicas.map((r) => r.from).sort()).toEqual(["jp-osaka", "jp-sendai", "jp-tokyo"]);
    for (const replica of replicas) {
      const nearest = harness.regionIds.filter((id) => id !== replica.from).sort((a, b) => harness.topology.rttMs(replica.from, a) - harness.topology.rttMs(replica.from, b))[0];
      expect(replica.fronts).toBe(`snapshot replica (${nearest} Redis)`);
    }
    expect(described.routes).toHaveLength(11);
    expect(harness.route("jp-tokyo", "osaka-1").delayMs).toBe(harness.topology.rttMs("jp-tokyo", "jp-osaka") / 2);
    expect(() => harness.route("jp-tokyo", "tokyo-1")).toThrow(/same region/);
  });

  it("a client located in Osaka pays its city's RTT: probing each region, and pinging a room in Tokyo through its proxy", { timeout: 30_000 }, async () => {
    const { located, client, session } = await heldRoom("jp-osaka", "jp-tokyo", "located-osaka");
    expect(located.rttMs).toEqual({ "jp-tokyo": 3 + 8, "jp-osaka": 3, "jp-sendai": 3 + 14 });

    // The seat names tokyo-1's public address; the urlBuilder moved the socket onto Osaka's proxy for it.
    const proxy = located.proxyFor("tokyo-1");
    expect(new URL(session.room.connection.url!).host).toBe(`127.0.0.1:${proxy.port}`);
    expect(located.rewrite(addressOf(harness.node("tokyo-1")))).toBe(`127.0.0.1:${proxy.port}`);
    expect(proxy.connections).toBeGreaterThanOrEqual(1);

    for (let round = 0; round < 3; round++) {
      const sentAt = performance.now();
      await session.request({ ping: { clientTimeMs: 0 } });
      expect(performance.now() - sentAt).toBeGreaterThanOrEqual(located.rttMs["jp-tokyo"]!);
    }
    for (const region of await client.probe!.probe()) {
      expect(region.rttMs, region.id).toBeGreaterThanOrEqual(located.rttMs[region.id]!);
    }
  });

  it("forwards a join from Tokyo to a room in Osaka through the Tokyo → osaka-1 route proxy", { timeout: 30_000 }, async () => {
    await heldRoom("jp-osaka", "jp-osaka", "forwarded-osaka");
    const route = harness.route("jp-tokyo", "osaka-1");
    const before = route.bytes;
    const sentAt = performance.now();
    const forwarded = await matchmake(harness.node("tokyo-1"), "joinById", "session__forwarded-osaka");
    const elapsed = performance.now() - sentAt;
    expect(forwarded.status, JSON.stringify(forwarded.body)).toBe(200);
    expect(forwarded.body.publicAddress).toBe(addressOf(harness.node("osaka-1")));
    expect(route.bytes.toTarget).toBeGreaterThan(before.toTarget);
    expect(route.bytes.toClient).toBeGreaterThan(before.toClient);
    expect(elapsed).toBeGreaterThanOrEqual(harness.topology.rttMs("jp-tokyo", "jp-osaka"));
  });

  it("a partition between Osaka and Sendai makes a join forwarded from Sendai fail with REGION_UNAVAILABLE; the heal restores it", { timeout: 30_000 }, async () => {
    await heldRoom("jp-osaka", "jp-osaka", "partitioned-osaka");
    const sendai = harness.node("sendai-1");
    const ok = await matchmake(sendai, "joinById", "session__partitioned-osaka");
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);

    harness.partition("jp-osaka", "jp-sendai");
    try {
      const cut = await matchmake(sendai, "joinById", "session__partitioned-osaka");
      expect(cut.body.code, JSON.stringify(cut.body)).toBe(ErrorCode.REGION_UNAVAILABLE);
      // Silence, not a reset: the forward waited for its timeout.
      expect(cut.body.error ?? cut.body.message).toMatch(/did not answer.*(timeout|abort)/i);
      // Tokyo still reaches Osaka: only the pair is cut.
      expect((await matchmake(harness.node("tokyo-1"), "joinById", "session__partitioned-osaka")).status).toBe(200);
    } finally {
      harness.heal("jp-osaka", "jp-sendai");
    }
    await waitFor(async () => (await matchmake(sendai, "joinById", "session__partitioned-osaka")).status === 200, 10_000, "a forwarded join from Sendai after the heal");
  });

  it("restart(id) starts a killed node again on fresh ports, behind the same proxies", { timeout: 60_000 }, async () => {
    const old = harness.node("osaka-1");
    await old.kill();
    const again = await harness.restart("osaka-1");
    expect(again.port).not.toBe(old.port);
    expect([harness.node("osaka-1"), harness.region("jp-osaka").nodes[0], harness.nodes.find((node) => node.nodeId === "osaka-1")]).toEqual([again, again, again]);
    // The registry lists it where it is now (restart waited for that), and the proxies in front of it reach it there.
    const located = await harness.locate("jp-tokyo");
    for (const port of [located.proxyFor("osaka-1").port, harness.route("jp-tokyo", "osaka-1").port]) {
      const health = await (await fetch(`http://127.0.0.1:${port}/healthz`)).json();
      expect(health).toMatchObject({ nodeId: "osaka-1", publicAddress: new URL(again.httpUrl).host });
    }
  });

  it("region(id).kill() takes a region's nodes and Redis down at once; the others see its node leave the registry", { timeout: 30_000 }, async () => {
    const sendai = harness.region("jp-sendai");
    await sendai.kill();
    expect(sendai.nodes.every((node) => node.child.signalCode === "SIGKILL")).toBe(true);
    await waitFor(async () => !(await liveNodes(harness.node("tokyo-1"))).includes("sendai-1"), 15_000, "sendai-1 gone from the registry");
  });
});

/** Whether the etcd member at `url` answers /health with a leader (a linearizable read it can serve). */
async function memberHealthy(url: string): Promise<boolean | "down"> {
  try {
    const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) });
    return ((await response.json()) as { health?: string }).health === "true";
  } catch (error) {
    return (error as { cause?: { code?: string } }).cause?.code === "ECONNREFUSED" ? "down" : false;
  }
}

describe("the multi-region harness on etcd", () => {
  let etcdHarness: RegionsHarness;
  beforeAll(async () => {
    etcdHarness = await startRegions({ regions: REGIONS, directory: "etcd" });
  }, 120_000);
  afterAll(async () => { await etcdHarness?.stop(); }, 60_000);

  const healthOf = async () => Object.fromEntries(await Promise.all(etcdHarness.clusterStore.members.map(async (member, i) => [member.regionId, await memberHealthy(etcdHarness.clusterStore.urls()[i]!)])));

  it("puts a member in each region, and the members reach each other through the links", { timeout: 30_000 }, async () => {
    const described = etcdHarness.describe();
    expect(described.clusterStore).toEqual({
      kind: "etcd",
      members: REGIONS.map((regionId) => ({ regionId, url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/) })),
    });
    // Node to node (3 × 2), node to each member elsewhere (3 × 2), member to member (3 × 2),
    // and each region to its snapshots' replica (3).
    const peers = etcdHarness.routes.filter((route) => route.fronts.kind === "cluster-store-peer");
    expect(described.routes.filter((r) => r.fronts.startsWith("cluster-store#"))).toHaveLength(6);
    expect(peers).toHaveLength(6);
    expect(described.routes.filter((r) => r.fronts.startsWith("snapshot replica"))).toHaveLength(3);
    expect(described.routes).toHaveLength(21);
    for (const route of peers) expect(route.proxy.delayMs, `${route.from} → ${route.to}`).toBe(etcdHarness.topology.rttMs(route.from, route.to) / 2);
    // Raft's heartbeats cross every one of them, both ways.
    await waitFor(() => peers.every((route) => route.proxy.bytes.toTarget > 0 && route.proxy.bytes.toClient > 0), 10_000, "traffic through every member-to-member proxy");
    expect(etcdHarness.link("jp-tokyo", "jp-sendai").proxies.filter((route) => route.fronts.kind === "cluster-store-peer")).toHaveLength(2);
  });

  it("a region cut off from the other two holds a minority: its member loses its leader, theirs keep one, until the heal", { timeout: 60_000 }, async () => {
    expect(await healthOf()).toEqual({ "jp-tokyo": true, "jp-osaka": true, "jp-sendai": true });
    etcdHarness.partition("jp-sendai", "jp-tokyo");
    etcdHarness.partition("jp-sendai", "jp-osaka");
    try {
      await waitFor(async () => {
        const health = await healthOf();
        return health["jp-sendai"] === false && health["jp-tokyo"] === true && health["jp-osaka"] === true;
      }, 20_000, "Sendai's member without a leader, Tokyo's and Osaka's with one");
    } finally {
      etcdHarness.heal("jp-sendai", "jp-tokyo");
      etcdHarness.heal("jp-sendai", "jp-osaka");
    }
    await waitFor(async () => Object.values(await healthOf()).every((healthy) => healthy === true), 20_000, "every member with a leader after the heal");
  });

  it("region(id).kill() takes its member down with its nodes and Redis; the two left keep the registry going", { timeout: 30_000 }, async () => {
    await etcdHarness.region("jp-sendai").kill();
    expect(etcdHarness.region("jp-sendai").nodes.every((node) => node.child.signalCode === "SIGKILL")).toBe(true);
    expect((await healthOf())["jp-sendai"]).toBe("down");
    // Two of three: a quorum (after an election, if Sendai's member led).
    await waitFor(async () => {
      const health = await healthOf();
      return health["jp-tokyo"] === true && health["jp-osaka"] === true;
    }, 15_000, "Tokyo's and Osaka's members with a leader");
    // The registry may answer 503 while the members elect a leader: asked again until it lists.
    await waitFor(async () => (await liveNodes(etcdHarness.node("tokyo-1")).catch(() => ["sendai-1"])).includes("sendai-1") === false, 15_000, "sendai-1 gone from the registry");
  });
});
