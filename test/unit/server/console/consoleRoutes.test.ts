/** The console's read-only admin routes: rows, node list with RTTs, a teleop room's audit, refusals. */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { consoleRoutes } from "../../../../server/console/consoleRoutes.ts";
import type { NodeContext } from "../../../../server/context.ts";
import { consoleRoutesFor, type ConsoleSource } from "../../../../server/console/consoleRoutes.ts";
import { InMemoryAuditLog } from "../../../../server/audit/AuditSink.ts";
import { RouteTable } from "../../../../server/http/RouteTable.ts";
import { ErrorCode } from "../../../../proto/index.ts";
import type { NodeInfo } from "../../../../server/cluster/types.ts";

const node = (nodeId: string, regionId: string): NodeInfo => ({
  nodeId, regionId, publicAddress: `127.0.0.1:${nodeId.length}`, processId: nodeId,
  load: { ccu: 3, rooms: 2, eventLoopLagMs: 1, overloaded: false }, draining: false, startedAt: 1, heartbeatAt: 2,
});

function setup() {
  const audit = new InMemoryAuditLog("test:audit:teleop__site");
  const source: ConsoleSource = {
    regionId: "jp-tokyo", nodeId: "tokyo-1",
    listNodes: async () => [node("tokyo-1", "jp-tokyo"), node("osaka-1", "jp-osaka"), node("sendai-1", "jp-sendai")],
    rttTo: async (n) => (n.nodeId === "osaka-1" ? 9.5 : undefined),
    localRoomName: (roomId) => ({ "teleop__site": "teleop", "session__s": "session" } as Record<string, string>)[roomId],
    audit: () => audit,
  };
  const table = new RouteTable(consoleRoutesFor(source));
  const get = (path: string) => table.find("GET", path)!.handle(new Request(`http://node${path}`));
  return { table, get, audit };
}

describe("console routes", () => {
  it("are admin-only GETs without a body or CORS", () => {
    const { table } = setup();
    for (const path of ["/console/api/nodes", "/console/api/audit/x"]) {
      const route = table.find("GET", path)!;
      expect(route).toMatchObject({ access: "public", tokenRoles: ["admin"], cors: false, bodyLimit: 0, methods: ["GET"] });
      expect(table.find("POST", path)).toBeUndefined();
    }
  });

  it("list every node with its load and this node's round trip to it", async () => {
    const body = await (await setup().get("/console/api/nodes")).json();
    expect(body).toMatchObject({ regionId: "jp-tokyo", nodeId: "tokyo-1" });
    expect(body.nodes).toEqual([
      expect.objectContaining({ nodeId: "tokyo-1", regionId: "jp-tokyo", rttMs: 0, load: expect.objectContaining({ ccu: 3 }) }),
      expect.objectContaining({ nodeId: "osaka-1", rttMs: 9.5 }),
      expect.objectContaining({ nodeId: "sendai-1", rttMs: null }),
    ]);
  });

  it("answer a local teleop room's audit: verify report and newest entries first", async () => {
    const { get, audit } = setup();
    for (let i = 0; i < 5; i++) await audit.append("lease.granted", { deviceId: "ex-1", n: i });
    const response = await get("/console/api/audit/teleop__site?limit=2");
    expect(response.status).toBe(200);
    const body = await response.json();
    expect(body.verify).toMatchObject({ ok: true, entries: 5 });
    expect(body.total).toBe(5);
    expect(body.entries.map((e: { seq: number }) => e.seq)).toEqual([5, 4]);
  });

  it("refuse rooms that are not a teleop room of this node, and bad ids", async () => {
    const { get } = setup();
    for (const path of ["/console/api/audit/session__s", "/console/api/audit/elsewhere", "/console/api/audit/bad%20id", "/console/api/audit/a/b"]) {
      const response = await get(path);
      expect(response.status, path).toBe(404);
      expect((await response.json()).code, path).toBe(ErrorCode.UNKNOWN_ROOM);
    }
  });
});

describe("console routes on a node's context", () => {
  it("measure the round trip to a peer that answers as itself, and none to one that does not", async () => {
    const peer = createServer((request, response) => {
      response.setHeader("content-type", "application/json");
      response.end(JSON.stringify({ status: "ok", nodeId: request.url === "/healthz" ? "osaka-1" : "?" }));
    });
    await new Promise<void>((resolve) => peer.listen(0, "127.0.0.1", resolve));
    try {
      const address = `127.0.0.1:${(peer.address() as AddressInfo).port}`;
      const nodes = [node("tokyo-1", "jp-tokyo"), { ...node("osaka-1", "jp-osaka"), publicAddress: address }, { ...node("impostor-1", "jp-sendai"), publicAddress: address }];
      const context = {
        config: { tls: {}, gateway: {}, cluster: { peerRoutes: [] } },
        regionId: "jp-tokyo", nodeId: "tokyo-1",
        registry: { list: async () => nodes },
        audit: () => new InMemoryAuditLog("x"),
        logger: { error: () => {} }, metrics: { errors: { inc: () => {} } },
      } as unknown as NodeContext;
      const table = new RouteTable(consoleRoutes(context));
      const body = await (await table.find("GET", "/console/api/nodes")!.handle(new Request("http://node/console/api/nodes"))).json();
      const rtt = Object.fromEntries(body.nodes.map((n: { nodeId: string; rttMs: number | null }) => [n.nodeId, n.rttMs]));
      expect(rtt["tokyo-1"]).toBe(0);
      expect(rtt["osaka-1"]).toBeGreaterThan(0);
      expect(rtt["impostor-1"]).toBeNull();
      // no local room of that id: refused, no audit stream opened
      const refused = await table.find("GET", "/console/api/audit/teleop__nowhere")!.handle(new Request("http://node/console/api/audit/teleop__nowhere"));
      expect(refused.status).toBe(404);
    } finally {
      peer.close();
    }
  });
});
