/** The admin drain routes: their rows, a node drained here or forwarded, a region's nodes each asked, refusals. */
import { describe, expect, it } from "vitest";
import { ServerError } from "@colyseus/core";
import { drainRoutes, type DrainSource } from "../../../../server/cluster/drainRoutes.ts";
import { FORWARDED_HEADER } from "../../../../server/cluster/NodeRpc.ts";
import { RouteTable } from "../../../../server/http/RouteTable.ts";
import { ErrorCode } from "../../../../proto/index.ts";
import type { NodeInfo } from "../../../../server/cluster/types.ts";
import { waitFor } from "../../../fixtures/processes.ts";

const node = (nodeId: string, regionId: string, draining = false): NodeInfo => ({
  nodeId, regionId, publicAddress: `127.0.0.1:${nodeId.length}`, processId: nodeId,
  load: { ccu: 0, rooms: 0, eventLoopLagMs: 1, overloaded: false }, draining, startedAt: 1, heartbeatAt: 2,
});

function setup(options: { failFor?: string } = {}) {
  const forwarded: Array<{ nodeId: string; path: string; authorization: string }> = [];
  const drained: string[] = [];
  const refusals: number[] = [];
  const source: DrainSource = {
    nodeId: "tokyo-1", regionId: "jp-tokyo",
    listNodes: async () => [node("tokyo-1", "jp-tokyo"), node("tokyo-2", "jp-tokyo"), node("tokyo-3", "jp-tokyo", true), node("osaka-1", "jp-osaka")],
    forward: async (target, path, authorization) => {
      forwarded.push({ nodeId: target.nodeId, path, authorization });
      if (target.nodeId === options.failFor) throw new ServerError(ErrorCode.REGION_UNAVAILABLE, `node ${target.nodeId} did not answer`);
      return { nodeId: target.nodeId, regionId: target.regionId, draining: true };
    },
    drainSelf: (reason) => drained.push(reason),
    refused: (code) => refusals.push(code),
  };
  const table = new RouteTable(drainRoutes(source));
  const post = async (path: string, headers: Record<string, string> = {}) => {
    const response = await table.find("POST", path)!.handle(new Request(`http://node${path}`, { method: "POST", headers: { authorization: "Bearer admin-token", ...headers } }));
    return { status: response.status, body: await response.json() };
  };
  return { table, post, forwarded, drained, refusals };
}

describe("drain routes", () => {
  it("are admin-only POSTs without a body or CORS", () => {
    const { table } = setup();
    for (const path of ["/nodes/tokyo-1/drain", "/regions/jp-tokyo/drain"]) {
      expect(table.find("POST", path)).toMatchObject({ access: "public", tokenRoles: ["admin"], cors: false, bodyLimit: 0, methods: ["POST"] });
      expect(table.find("GET", path)).toBeUndefined();
    }
  });

  it("drain this node after answering, and forward another node's drain with the admin's token", async () => {
    const { post, forwarded, drained } = setup();
    expect(await post("/nodes/tokyo-1/drain")).toEqual({ status: 200, body: { nodeId: "tokyo-1", regionId: "jp-tokyo", draining: true } });
    expect(drained).toEqual([]); // the answer goes first
    await waitFor(() => drained.length === 1, 2000, "the drain started");
    expect(drained[0]).toMatch(/admin/);
    expect(await post("/nodes/osaka-1/drain")).toEqual({ status: 200, body: { nodeId: "osaka-1", regionId: "jp-osaka", draining: true } });
    expect(forwarded).toEqual([{ nodeId: "osaka-1", path: "/nodes/osaka-1/drain", authorization: "Bearer admin-token" }]);
  });

  it("drain each live node of a region, this one last, and report a node that refused", async () => {
    const { post, forwarded, drained } = setup({ failFor: "tokyo-2" });
    const { status, body } = await post("/regions/jp-tokyo/drain");
    expect(status).toBe(200);
    // tokyo-3 drains already: not asked
    expect(body).toEqual({ regionId: "jp-tokyo", nodes: [
      { nodeId: "tokyo-2", draining: false, error: expect.stringMatching(/did not answer/) },
      { nodeId: "tokyo-1", draining: true },
    ] });
    expect(forwarded.map((f) => f.nodeId)).toEqual(["tokyo-2"]);
    await waitFor(() => drained.length === 1, 2000, "this node's drain started");
  });

  it("refuse bad ids, unknown nodes and regions, and a forwarded drain of another node, with coded errors", async () => {
    const { post, forwarded, drained, refusals } = setup();
    expect((await post("/nodes/no%20such/drain")).body.code).toBe(ErrorCode.WRONG_TYPE);
    expect((await post("/nodes/%E0%A4%A/drain")).body.code).toBe(ErrorCode.WRONG_TYPE);
    expect((await post("/nodes/tokyo-1/drain/now")).body.code).toBe(ErrorCode.WRONG_TYPE);
    expect((await post("/regions/JP/drain")).body.code).toBe(ErrorCode.WRONG_TYPE);
    const unknown = await post("/nodes/tokyo-9/drain");
    expect(unknown).toMatchObject({ status: 503, body: { code: ErrorCode.REGION_UNAVAILABLE } });
    expect(unknown.body.error).toMatch(/no live node tokyo-9/);
    expect((await post("/regions/jp-nowhere/drain")).body.code).toBe(ErrorCode.REGION_UNAVAILABLE);
    // a node never forwards a forwarded request: the registry and the asker disagree
    expect((await post("/nodes/osaka-1/drain", { [FORWARDED_HEADER]: "osaka-1" })).body.code).toBe(ErrorCode.REGION_UNAVAILABLE);
    expect(forwarded).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(drained).toEqual([]);
    expect(refusals).toHaveLength(7);
  });
});
