/**
 * Several nodes of one region on real Redis: shared presence and driver, cross-node
 * seats, placement away from overloaded nodes, death by SIGKILL, and reconnection.
 */
import "../../server/polyfills.ts";
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { randomUUID } from "node:crypto";
import { Client } from "@colyseus/sdk";
import { startNode, flushRedisDb, waitFor, type NodeProcess } from "../fixtures/processes.ts";
import { testToken } from "../fixtures/tokens.ts";
import { addressOf, liveNodes, seat } from "../fixtures/cluster.ts";
import { testRedisUrl } from "../fixtures/redis.ts";

// A database of its own on the shared Redis, so Colyseus' unprefixed keys stay apart from other test files.
const redisUrl = testRedisUrl(3);
const clusterName = `cluster-${randomUUID().slice(0, 8)}`;
let a: NodeProcess;
let b: NodeProcess;
const extra: NodeProcess[] = [];


beforeAll(async () => {
  await flushRedisDb(redisUrl);
  [a, b] = await Promise.all([
    startNode({ regionId: "jp-tokyo", nodeId: "tokyo-a", redisUrl, clusterName }),
    startNode({ regionId: "jp-tokyo", nodeId: "tokyo-b", redisUrl, clusterName }),
  ]);
  await waitFor(async () => (await liveNodes(a)).length === 2, 5000, "both nodes registered");
});
afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop(), ...extra.map((n) => n.stop())]);
});

describe("one region, two nodes, one Redis", () => {
  it("has no /dev/token route outside dev mode", async () => {
    const response = await fetch(`${a.httpUrl}/dev/token?role=admin`);
    expect(response.status).toBe(404);
    expect(await response.text()).not.toMatch(/^ey/);
  });

  it("seats a client matchmaking through one node in a room hosted on the other, at the host's public address", async () => {
    const created = await seat(a, "create", "session", { roomId: "shared-room" });
    const hosting = created.publicAddress === addressOf(a) ? a : b;
    const other = hosting === a ? b : a;
    expect([addressOf(a), addressOf(b)]).toContain(created.publicAddress);

    const client = new Client(other.httpUrl);
    client.auth.token = await testToken(clusterName, "visitor");
    const room = await client.joinById("session__shared-room");
    expect(new URL(room.connection.url!).host).toBe(addressOf(hosting));
    await waitFor(() => room.state?.participants?.size >= 1, 5000, "state with the participant");

    const health = await (await fetch(`${hosting.httpUrl}/healthz`)).json();
    expect(health.load.ccu).toBeGreaterThanOrEqual(1);
    await room.leave();
  });

  it("never places a room on an overloaded node", async () => {
    const full = await startNode({ regionId: "jp-tokyo", nodeId: "tokyo-full", redisUrl, clusterName, extraArgs: ["--limits-max-rooms", "0"] });
    extra.push(full);
    await waitFor(async () => (await liveNodes(a)).includes("tokyo-full"), 5000, "tokyo-full registered");
    for (let i = 0; i < 6; i++) {
      const reservation = await seat(full, "create", "session", { roomId: `placed-${i}` });
      expect(reservation.publicAddress).not.toBe(addressOf(full));
    }
  });

  it("forgets a node killed with SIGKILL within its TTL", async () => {
    const ttlMs = 1500;
    const doomed = await startNode({ regionId: "jp-tokyo", nodeId: "tokyo-doomed", redisUrl, clusterName,
      extraArgs: ["--cluster-heartbeat-ms", "300", "--cluster-node-ttl-ms", String(ttlMs)] });
    extra.push(doomed);
    await waitFor(async () => (await liveNodes(a)).includes("tokyo-doomed"), 5000, "tokyo-doomed registered");
    await doomed.kill();
    const killedAt = Date.now();
    await waitFor(async () => !(await liveNodes(a)).includes("tokyo-doomed"), ttlMs + 2000, "tokyo-doomed to vanish");
    // The entry may only outlive the node by its TTL (plus a poll of this loop on a busy machine).
    expect(Date.now() - killedAt).toBeLessThanOrEqual(ttlMs + 1000);
  });

  it("reconnects a client to the same session after an abrupt close", async () => {
    const client = new Client(a.httpUrl);
    client.auth.token = await testToken(clusterName, "host");
    const room = await client.joinOrCreate("session", { roomId: "reconnect-room" });
    room.reconnection.minUptime = 0;
    const sessionId = room.sessionId;
    const reconnected = new Promise<void>((resolve) => room.onReconnect(() => resolve()));

    // Kill the TCP connection without a close frame, as a dropped mobile link would.
    (room.connection.transport as any).ws.terminate();
    await reconnected;
    expect(room.sessionId).toBe(sessionId);

    const echoed = new Promise<any>((resolve) => room.onMessage("chat", resolve));
    room.send("chat", { text: "back again" });
    expect(await echoed).toMatchObject({ from: sessionId, text: "back again" });
    await room.leave();
  });
});
