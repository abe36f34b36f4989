/**
 * Two regions, each with its own Redis for presence and driver, sharing the cluster
 * Redis for the registry and directory: region choice by RTT, placement in the nearest
 * region with capacity, and joins forwarded to the region that hosts a room.
 */
import "../../server/polyfills.ts";
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { randomUUID } from "node:crypto";
import { Client } from "@colyseus/sdk";
import { startNode, startRedis, flushRedisDb, waitFor, type NodeProcess, type RedisProcess } from "../fixtures/processes.ts";
import { testToken } from "../fixtures/tokens.ts";
import { addressOf, liveNodes, matchmake } from "../fixtures/cluster.ts";
import { RegionProbe, TsunagiClient } from "../../client-sdk/index.ts";
import { testRedisUrl } from "../fixtures/redis.ts";

const clusterRedisUrl = testRedisUrl(4);
const clusterName = `regions-${randomUUID().slice(0, 8)}`;
let osakaRedis: RedisProcess;
let tokyo: NodeProcess;
let osaka: NodeProcess;
const extra: NodeProcess[] = [];


beforeAll(async () => {
  await flushRedisDb(clusterRedisUrl);
  osakaRedis = await startRedis();
  [tokyo, osaka] = await Promise.all([
    startNode({ regionId: "jp-tokyo", nodeId: "tokyo-1", redisUrl: clusterRedisUrl, clusterRedisUrl, clusterName, extraArgs: ["--regions-file", "deploy/regions.json"] }),
    startNode({ regionId: "jp-osaka", nodeId: "osaka-1", redisUrl: osakaRedis.url, clusterRedisUrl, clusterName, extraArgs: ["--regions-file", "deploy/regions.json"] }),
  ]);
  await waitFor(async () => (await liveNodes(tokyo)).length === 2, 5000, "both regions registered");
});
afterAll(async () => {
  await Promise.all([tokyo?.stop(), osaka?.stop(), ...extra.map((n) => n.stop())]);
  await osakaRedis?.stop();
});

describe("two regions", () => {
  it("RegionProbe with injected RTTs picks the nearest region, and the client joins there", async () => {
    const rtt: Record<string, number> = { "jp-tokyo": 18, "jp-osaka": 3 };
    const probe = new RegionProbe({
      regions: [{ id: "jp-tokyo", url: tokyo.httpUrl }, { id: "jp-osaka", url: osaka.httpUrl }],
      measure: async (region) => rtt[region.id],
    });
    expect((await probe.best()).id).toBe("jp-osaka");

    const client = new TsunagiClient({ probe, token: await testToken(clusterName, "host") });
    const session = await client.joinOrCreate("session", { roomId: "probe-room" });
    const entry = await matchmake(tokyo, "joinById", "session__probe-room", {});
    expect(entry.body.publicAddress).toBe(addressOf(osaka));
    await session.leave();

    rtt["jp-tokyo"] = 2;
    await probe.reprobe();
    expect((await probe.best()).id).toBe("jp-tokyo");
  });

  it("places a new room in the region nearest the client, and forwards joins there from any region", async () => {
    const placed = await matchmake(tokyo, "create", "session", { roomId: "near-osaka", rttHints: { "jp-tokyo": 20, "jp-osaka": 4 } });
    expect(placed.status).toBe(200);
    expect(placed.body.publicAddress).toBe(addressOf(osaka));

    // A visitor near Tokyo joins the same room through Tokyo and is sent to Osaka.
    const client = new Client(tokyo.httpUrl);
    client.auth.token = await testToken(clusterName, "visitor");
    const room = await client.joinById("session__near-osaka");
    expect(new URL(room.connection.url!).host).toBe(addressOf(osaka));
    await room.leave();

    // The same id cannot be created twice anywhere in the cluster.
    const duplicate = await matchmake(osaka, "create", "session", { roomId: "near-osaka" });
    expect(duplicate.status).toBe(409);
    expect(duplicate.body.code).toBe(4406);
  });

  it("lists rooms of every region in the lobby, with their region", async () => {
    await matchmake(osaka, "create", "session", { roomId: "lobby-osaka", rttHints: { "jp-osaka": 1 } });
    const client = new Client(tokyo.httpUrl);
    client.auth.token = await testToken(clusterName, "visitor");
    const lobby = await client.joinOrCreate("lobby");
    const listings = new Map<string, any>();
    lobby.onMessage("rooms", (rooms: any[]) => { for (const r of rooms) listings.set(r.roomId, r); });
    lobby.onMessage("+", ([roomId, room]: [string, any]) => listings.set(roomId, room));
    lobby.onMessage("-", (roomId: string) => listings.delete(roomId));
    const listed = await waitFor(() => listings.get("session__lobby-osaka"), 5000, "the Osaka room in Tokyo's lobby");
    expect(listed).toMatchObject({ name: "session", regionId: "jp-osaka", nodeId: "osaka-1", publicAddress: addressOf(osaka) });
    expect(new URL(lobby.connection.url!).host).toBe(addressOf(tokyo));
    await lobby.leave();
  });

  it("skips a region whose only node is overloaded", async () => {
    const sapporoRedis = await startRedis();
    try {
      const sapporo = await startNode({ regionId: "jp-sapporo", nodeId: "sapporo-full", redisUrl: sapporoRedis.url, clusterRedisUrl, clusterName,
        extraArgs: ["--regions-file", "deploy/regions.json", "--limits-max-rooms", "0"] });
      extra.push(sapporo);
      await waitFor(async () => (await liveNodes(tokyo)).includes("sapporo-full"), 5000, "sapporo registered");
      const placed = await matchmake(sapporo, "create", "session", { roomId: "not-in-sapporo", rttHints: { "jp-sapporo": 2, "jp-tokyo": 18, "jp-osaka": 26 } });
      expect(placed.status).toBe(200);
      expect(placed.body.publicAddress).toBe(addressOf(tokyo));
      await sapporo.stop();
    } finally {
      await sapporoRedis.stop();
    }
  });
});
