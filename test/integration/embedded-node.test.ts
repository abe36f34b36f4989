/**
 * One node in the embedded default (no Redis), as `npm start` runs it: HTTP routes,
 * dev tokens, and a stock @colyseus/sdk client (not ours) joining the lobby.
 */
import "../../server/polyfills.ts";
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { Client } from "@colyseus/sdk";
import { startNode, waitFor, type NodeProcess } from "../fixtures/processes.ts";

describe.each(["uws", "ws"] as const)("embedded region node (%s transport)", (transport) => {
  let node: NodeProcess;
  beforeAll(async () => { node = await startNode({ regionId: "jp-tokyo", transport }); });
  afterAll(async () => { await node?.stop(); });

  it("serves /healthz, /ping with CORS for loopback origins, and /metrics to loopback peers", async () => {
    const health = await fetch(`${node.httpUrl}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: "ok", regionId: "jp-tokyo", nodeId: node.nodeId });

    // Dev mode with no http.corsOrigins: a local dev server's page may read it, another site's may not.
    const ping = await fetch(`${node.httpUrl}/ping`, { headers: { origin: "http://localhost:5173" } });
    expect(ping.status).toBe(200);
    expect(await ping.text()).toBe("pong");
    expect(ping.headers.get("access-control-allow-origin")).toBe("http://localhost:5173");
    const elsewhere = await fetch(`${node.httpUrl}/ping`, { headers: { origin: "http://example.test" } });
    expect(elsewhere.headers.get("access-control-allow-origin")).toBeNull();
    expect(ping.headers.get("x-tsunagi-region")).toBe("jp-tokyo");

    const metrics = await (await fetch(`${node.httpUrl}/metrics`)).text();
    for (const name of ["tsunagi_connections", "tsunagi_rooms", "tsunagi_messages_in_total", "tsunagi_bytes_out_total", "tsunagi_nodejs_eventloop_lag_seconds"]) {
      expect(metrics).toContain(name);
    }
  });

  it("issues dev tokens per role and refuses unknown roles with a code", async () => {
    const token = await (await fetch(`${node.httpUrl}/dev/token?role=operator`)).text();
    expect(token.split(".")).toHaveLength(3);
    const bad = await fetch(`${node.httpUrl}/dev/token?role=emperor`);
    expect(bad.status).toBe(400);
    expect((await bad.json()).code).toBe(4402);
    // Found by the fuzzer: an empty sub was a 500 INTERNAL (the issuer threw), a sub past 64 characters was cut silently.
    for (const sub of ["", "s".repeat(65)]) {
      const refused = await fetch(`${node.httpUrl}/dev/token?role=visitor&sub=${sub}`);
      expect(refused.status, `sub of ${sub.length}`).toBe(400);
      expect((await refused.json()).code).toBe(4402);
    }
  });

  it("lets a stock Colyseus SDK client with a dev token join the lobby and see rooms appear", async () => {
    const token = await (await fetch(`${node.httpUrl}/dev/token?role=visitor`)).text();
    const client = new Client(node.httpUrl);
    client.auth.token = token;
    const lobby = await client.joinOrCreate("lobby");
    const listings = new Map<string, any>();
    lobby.onMessage("rooms", (rooms: any[]) => { for (const r of rooms) listings.set(r.roomId, r); });
    lobby.onMessage("+", ([roomId, room]: [string, any]) => listings.set(roomId, room));
    lobby.onMessage("-", (roomId: string) => listings.delete(roomId));

    const host = new Client(node.httpUrl);
    host.auth.token = await (await fetch(`${node.httpUrl}/dev/token?role=host`)).text();
    const session = await host.create("session", { roomId: "demo-hall" });
    const listed = await waitFor(() => listings.get("session__demo-hall"), 5000, "demo-hall in the lobby");
    expect(listed).toMatchObject({ name: "session", regionId: "jp-tokyo", nodeId: node.nodeId });
    await waitFor(() => listings.get("session__demo-hall")?.clients === 1, 5000, "client count 1 in the lobby");

    await session.leave();
    await waitFor(() => !listings.has("demo-hall"), 5000, "demo-hall to leave the lobby");
    await lobby.leave();
  });
});
