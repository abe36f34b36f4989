/**
 * An admin drains over HTTP (POST /nodes/:nodeId/drain, POST /regions/:regionId/drain),
 * as the console's admin page does: asked of any node, the drain reaches the node (or each
 * node of the region), which answers, hands its rooms away with their sessions, and exits
 * as after SIGTERM. Two regions of two nodes on real Redis; the refusals first.
 */
import "../../server/polyfills.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRegions, type RegionsHarness } from "../fixtures/regions.ts";
import { waitFor, type NodeProcess } from "../fixtures/processes.ts";
import { testToken } from "../fixtures/tokens.ts";
import { ErrorCode } from "../../proto/index.ts";
import type { HandoffEvent, RoomSession } from "../../client-sdk/index.ts";
import type { Role } from "../../server/auth/tokens.ts";

let harness: RegionsHarness;
const sessions: RoomSession[] = [];
/** The session whose room the first drain moved to tokyo-2; the region drain moves it again. */
let moving: RoomSession | undefined;

beforeAll(async () => {
  harness = await startRegions({ regions: ["jp-tokyo", "jp-osaka"], nodesPerRegion: 2, delays: false });
}, 120_000);
afterAll(async () => {
  await Promise.allSettled(sessions.map((session) => session.leave()));
  await harness?.stop();
});

async function drain(via: NodeProcess, path: string, init: { token?: string; role?: Role; body?: string; method?: string } = {}) {
  const token = init.token ?? await testToken(harness.clusterName, init.role ?? "admin");
  const response = await fetch(`${via.httpUrl}${path}`, { method: init.method ?? "POST", headers: token ? { authorization: `Bearer ${token}` } : {}, body: init.body });
  return { status: response.status, body: await response.json().catch(() => ({})) };
}

/** Resolves with the exit code, or rejects after `ms`. */
function exitWithin(node: NodeProcess, ms: number): Promise<number | null> {
  return Promise.race([node.exited, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`node ${node.nodeId} still running after ${ms} ms`)), ms))]);
}

describe("draining over HTTP", () => {
  it("refuses what it should, and drains nothing then", { timeout: 30_000 }, async () => {
    const osaka = harness.region("jp-osaka").nodes[0]!;
    expect((await drain(osaka, "/nodes/tokyo-1/drain", { token: "" })).body.code).toBe(ErrorCode.TOKEN_MISSING);
    expect((await drain(osaka, "/nodes/tokyo-1/drain", { role: "host" })).body.code).toBe(ErrorCode.FORBIDDEN);
    expect((await drain(osaka, "/regions/jp-tokyo/drain", { role: "supervisor" })).body.code).toBe(ErrorCode.FORBIDDEN);
    expect((await drain(osaka, "/nodes/tokyo-1/drain", { body: "{}" })).body.code).toBe(ErrorCode.FRAME_TOO_LARGE);
    expect((await drain(osaka, "/nodes/no%20such/drain")).body.code).toBe(ErrorCode.WRONG_TYPE);
    expect((await drain(osaka, "/nodes/tokyo-1/drain/now")).body.code).toBe(ErrorCode.WRONG_TYPE);
    const unknown = await drain(osaka, "/nodes/tokyo-9/drain");
    expect(unknown.body.code).toBe(ErrorCode.REGION_UNAVAILABLE);
    expect(unknown.body.error).toMatch(/no live node tokyo-9/);
    expect((await drain(osaka, "/regions/jp-nowhere/drain")).body.code).toBe(ErrorCode.REGION_UNAVAILABLE);
    expect((await drain(osaka, "/regions/JP_TOKYO/drain")).body.code).toBe(ErrorCode.WRONG_TYPE);
    // every node still up and serving
    for (const node of harness.nodes) expect((await fetch(`${node.httpUrl}/healthz`)).status).toBe(200);
  });

  it("drains a node asked of another: it answers, its room goes on elsewhere with its session, and it exits", { timeout: 60_000 }, async () => {
    const [tokyo1, tokyo2] = harness.region("jp-tokyo").nodes as [NodeProcess, NodeProcess];
    const osaka = harness.region("jp-osaka").nodes[0]!;
    const client = (await harness.locate("jp-tokyo")).client(await testToken(harness.clusterName, "host", "drained-host"));
    // a room on tokyo-1: created through it, its participants nearest Tokyo
    let session: RoomSession | undefined;
    for (let attempt = 0; attempt < 6 && !session; attempt++) {
      const candidate = await client.joinOrCreate("session", { roomId: `drain-me-${attempt}`, rttHints: { "jp-tokyo": 1, "jp-osaka": 10 } });
      sessions.push(candidate);
      if (await hostOf(candidate.roomId) === tokyo1.nodeId) session = candidate;
    }
    expect(session, "a session room on tokyo-1").toBeDefined();
    const moved = new Promise<HandoffEvent>((resolve) => session!.on("handoff", resolve));
    const sessionId = session!.sessionId;

    const answer = await drain(osaka, `/nodes/${tokyo1.nodeId}/drain`);
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    expect(answer.body).toEqual({ nodeId: tokyo1.nodeId, regionId: "jp-tokyo", draining: true });
    const event = await within(moved, 30_000, "the room handed away by the drain");
    expect(event).toMatchObject({ reason: "drain", fromRegionId: "jp-tokyo", toRegionId: "jp-tokyo" });
    expect(session!.sessionId).toBe(sessionId);
    expect(await exitWithin(tokyo1, 30_000)).toBe(0);
    // the nearest other node with capacity: Tokyo's other one
    expect(await hostOf(session!.roomId)).toBe(tokyo2.nodeId);
    moving = session;
  });

  it("drains a region: each of its live nodes, asked of a node elsewhere; the rooms go to the next region", { timeout: 60_000 }, async () => {
    const tokyo2 = harness.region("jp-tokyo").nodes[1]!;
    const osaka = harness.region("jp-osaka").nodes[0]!;
    await waitFor(async () => !(await listedNodes()).includes("tokyo-1"), 20_000, "tokyo-1 gone from the registry");
    const session = moving!;
    expect(session).toBeDefined();
    const moved = new Promise<HandoffEvent>((resolve) => session.on("handoff", resolve));

    const answer = await drain(osaka, "/regions/jp-tokyo/drain");
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    expect(answer.body).toEqual({ regionId: "jp-tokyo", nodes: [{ nodeId: tokyo2.nodeId, draining: true }] });
    const event = await within(moved, 30_000, "the room handed to the next region");
    expect(event.toRegionId).toBe("jp-osaka");
    expect(await exitWithin(tokyo2, 30_000)).toBe(0);
    // Osaka's nodes were not asked, and serve on
    for (const node of harness.region("jp-osaka").nodes) expect((await fetch(`${node.httpUrl}/healthz`)).status).toBe(200);
    // and a drained region is refused plainly afterwards
    await waitFor(async () => !(await listedNodes()).includes(tokyo2.nodeId), 20_000, "tokyo-2 gone from the registry");
    expect((await drain(osaka, "/regions/jp-tokyo/drain")).body.code).toBe(ErrorCode.REGION_UNAVAILABLE);
  });
});

async function listedNodes(): Promise<string[]> {
  const osaka = harness.region("jp-osaka").nodes[0]!;
  const { regions } = await (await fetch(`${osaka.httpUrl}/regions`)).json() as { regions: Array<{ nodes: Array<{ nodeId: string }> }> };
  return regions.flatMap((region) => region.nodes.map((node) => node.nodeId));
}

/** The node hosting `roomId`, by its handoff history route (each node answers for its own rooms only). */
async function hostOf(roomId: string): Promise<string | undefined> {
  const admin = `Bearer ${await testToken(harness.clusterName, "admin")}`;
  for (const node of harness.nodes) {
    if (node.child.exitCode !== null || node.child.signalCode !== null) continue;
    const response = await fetch(`${node.httpUrl}/rooms/${roomId}/handoffs`, { headers: { authorization: admin } }).catch(() => undefined);
    if (response?.status === 200) return ((await response.json()) as { nodeId: string }).nodeId;
  }
  return undefined;
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms))]);
}
