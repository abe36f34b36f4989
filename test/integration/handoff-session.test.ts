/**
 * A live session room handed from jp-tokyo to jp-osaka through the delay proxies, with
 * SDK clients and a stock Colyseus client in it: the same room id and session ids,
 * requests in flight answered, the participants' state intact, the stock client closed
 * with ROOM_MOVED; a handoff whose target cannot be reached rolls back and the room goes
 * on where it was; and the routes' refusals.
 */
import "../../server/polyfills.ts";
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { Client } from "@colyseus/sdk";
import { startRegions, type LocatedClient, type RegionsHarness } from "../fixtures/regions.ts";
import { waitFor } from "../fixtures/processes.ts";
import { testToken } from "../fixtures/tokens.ts";
import { adminHandoff, handoffHistory } from "../fixtures/handoffs.ts";
import { ErrorCode } from "../../proto/index.ts";
import type { HandoffEvent, RoomSession } from "../../client-sdk/index.ts";
import { NodeAuth } from "../../server/auth/nodeAuth.ts";
import { testKeys } from "../fixtures/tokens.ts";

let harness: RegionsHarness;

beforeAll(async () => {
  harness = await startRegions({
    regions: ["jp-tokyo", "jp-osaka"],
    nodeArgs: ["--handoff-rpc-timeout-ms", "1500", "--handoff-prepare-timeout-ms", "3000"],
  });
}, 90_000);
afterAll(async () => { await harness?.stop(); });

/** `count` host sessions of a city in session room `name`, placed in Tokyo. */
async function joinSessions(city: LocatedClient, count: number, subjectPrefix: string, name: string): Promise<RoomSession[]> {
  const sessions: RoomSession[] = [];
  for (let i = 0; i < count; i++) {
    const client = city.client(await testToken(harness.clusterName, "host", `${subjectPrefix}-${i}`));
    sessions.push(await client.joinOrCreate("session", { roomId: name, rttHints: { "jp-tokyo": 1, "jp-osaka": 10 } }));
  }
  return sessions;
}

/** The port a client of `city` reaches the node at `httpUrl` on (its proxy for that city). */
function nodePort(city: LocatedClient, httpUrl: string): string {
  return new URL(city.urlBuilder(new URL(`ws://${new URL(httpUrl).host}/`))).port;
}

/** The room's handoff history as Tokyo has it (404 once Tokyo no longer holds a copy). */
const tokyoHistory = (roomId: string) => handoffHistory(harness.region("jp-tokyo").nodes[0], roomId);

describe("a session room moves between regions", () => {
  it("keeps its id, its sessions and its participants; requests in flight are answered; a stock client is told ROOM_MOVED", async () => {
    const tokyoCity = await harness.locate("jp-tokyo");
    const tokyo = harness.region("jp-tokyo").nodes[0];
    const sessions = await joinSessions(tokyoCity, 5, "member", "moving-1");
    const roomId = sessions[0].roomId;
    expect(roomId).toBe("session__moving-1");
    const sessionIds = sessions.map((s) => s.sessionId);

    // A stock SDK client, without Tsunagi's RoomSession.
    const stock = new Client(tokyo.httpUrl);
    stock.auth.token = await testToken(harness.clusterName, "visitor");
    const stockRoom = await stock.joinById(roomId);
    const stockLeft = new Promise<number>((resolve) => stockRoom.onLeave((code: number) => resolve(code)));

    const handoffs = sessions.map((session) => new Promise<HandoffEvent>((resolve) => session.on("handoff", resolve)));
    // Requests sent before, during and after the move are all answered.
    const requests = sessions.map((session) => session.request({ ping: { clientTimeMs: 1 } }, 20_000));
    const moved = adminHandoff(tokyo, roomId, "jp-osaka");
    const during = sessions.map((session) => session.request({ ping: { clientTimeMs: 2 } }, 20_000));

    const { status, body } = await moved;
    expect(status, JSON.stringify(body)).toBe(200);
    expect(body).toMatchObject({ roomId, outcome: "complete", reason: "admin", from: { regionId: "jp-tokyo" }, to: { regionId: "jp-osaka" }, sessions: 6 });
    expect(body.transitions.map((t: { state: string }) => t.state)).toEqual(["init", "freeze", "transfer", "switch", "redirect", "complete"]);

    const events = await Promise.all(handoffs);
    for (const [i, event] of events.entries()) {
      expect(event).toMatchObject({ roomId, sessionId: sessionIds[i], fromRegionId: "jp-tokyo", toRegionId: "jp-osaka", reason: "admin" });
    }
    for (const reply of await Promise.all([...requests, ...during])) expect(reply.body).toBe("pong");
    const after = await Promise.all(sessions.map((session) => session.request({ ping: { clientTimeMs: 3 } }, 10_000)));
    expect(after.every((reply) => reply.body === "pong")).toBe(true);

    // Same sessions, same participants (the stock client's left with it).
    expect(sessions.map((s) => s.sessionId)).toEqual(sessionIds);
    expect(sessions.map((s) => s.roomId)).toEqual(sessionIds.map(() => roomId));
    expect(await stockLeft).toBe(ErrorCode.ROOM_MOVED);
    await waitFor(() => [...(sessions[0].state as any).participants.keys()].sort().join() === [...sessionIds].sort().join(), 10_000, "the participants in the new home to be the five sessions");
    const osakaPort = nodePort(tokyoCity, harness.region("jp-osaka").nodes[0].httpUrl);
    for (const session of sessions) expect(new URL(session.room.connection.url!).port).toBe(osakaPort);

    // The room is in Osaka now for everyone: a new client joining through Tokyo is sent there.
    const late = await tokyoCity.client(await testToken(harness.clusterName, "visitor")).joinById(roomId);
    expect(new URL(late.room.connection.url!).port).toBe(osakaPort);
    await waitFor(() => (sessions[0].state as any).participants.size === 6, 10_000, "the late joiner in the participants");
    const history = await tokyoHistory(roomId);
    expect(history.status).toBe(404); // Tokyo no longer has it: asked there, it says where
    await late.leave();
    await Promise.all(sessions.map((s) => s.leave()));
  });

  it("gives up when the target cannot be reached: the room goes on where it was, never frozen", async () => {
    const tokyoCity = await harness.locate("jp-tokyo");
    const tokyo = harness.region("jp-tokyo").nodes[0];
    const sessions = await joinSessions(tokyoCity, 3, "stayer", "staying-1");
    const roomId = sessions[0].roomId;
    let moved = 0;
    for (const session of sessions) session.on("handoff", () => { moved++; });
    harness.partition("jp-tokyo", "jp-osaka");
    try {
      const attempt = adminHandoff(tokyo, roomId, "jp-osaka");
      // The target is asked while the room still runs (Init): it answers meanwhile.
      await new Promise((resolve) => setTimeout(resolve, 300));
      const during = sessions.map((session) => session.request({ ping: { clientTimeMs: 7 } }, 20_000));
      for (const reply of await Promise.all(during)) expect(reply.body).toBe("pong");
      const { status, body } = await attempt;
      expect(status).toBe(502);
      expect(body.code).toBe(ErrorCode.HANDOFF_FAILED);
      expect(body.record).toMatchObject({ outcome: "aborted", to: { regionId: "jp-osaka" } });
      expect(body.record.transitions.map((t: { state: string }) => t.state)).toEqual(["init", "aborted"]);
    } finally {
      harness.heal("jp-tokyo", "jp-osaka");
    }
    expect(moved).toBe(0);
    const history = await tokyoHistory(roomId);
    expect(history.status).toBe(200);
    expect(history.body).toMatchObject({ regionId: "jp-tokyo", handoffs: [{ outcome: "aborted" }] });
    const after = await Promise.all(sessions.map((session) => session.request({ ping: { clientTimeMs: 8 } }, 10_000)));
    expect(after.every((reply) => reply.body === "pong")).toBe(true);
    await Promise.all(sessions.map((s) => s.leave()));
  });
});

describe("the handoff routes refuse what they should", () => {
  it("admin route: a token with the admin role, a room that exists and can move, a region that can take it (a lobby moves too); asked of another node, forwarded", async () => {
    const tokyo = harness.region("jp-tokyo").nodes[0];
    const post = async (path: string, authorization?: string) => {
      const response = await fetch(`${tokyo.httpUrl}${path}`, { method: "POST", headers: authorization ? { authorization } : {} });
      return { status: response.status, body: await response.json() };
    };
    const admin = `Bearer ${await testToken(harness.clusterName, "admin")}`;
    expect((await post("/rooms/session__x/handoff?to=jp-osaka")).body.code).toBe(ErrorCode.TOKEN_MISSING);
    expect((await post("/rooms/session__x/handoff?to=jp-osaka", `Bearer ${await testToken(harness.clusterName, "host")}`)).body.code).toBe(ErrorCode.FORBIDDEN);
    expect((await post("/rooms/session__nowhere/handoff?to=jp-osaka", admin)).body.code).toBe(ErrorCode.UNKNOWN_ROOM);
    expect((await post("/rooms/%00bad/handoff?to=jp-osaka", admin)).status).toBe(404);
    const client = (await harness.locate("jp-tokyo")).client(await testToken(harness.clusterName, "host", "refusals"));
    const session = await client.joinOrCreate("session", { roomId: "refusals-1", rttHints: { "jp-tokyo": 1, "jp-osaka": 10 } });
    expect((await post(`/rooms/${session.roomId}/handoff`, admin)).body.code).toBe(ErrorCode.WRONG_TYPE);
    expect((await post(`/rooms/${session.roomId}/handoff?to=jp-nowhere`, admin)).body.code).toBe(ErrorCode.OVERLOADED);
    expect((await post(`/rooms/${session.roomId}/handoff?to=jp-osaka&reason=whim`, admin)).body.code).toBe(ErrorCode.WRONG_TYPE);
    // A lobby holds no directory claim, yet moves with its clients' filters.
    const lobby = await client.joinOrCreate("lobby", { filter: { name: "session" } });
    const followed = new Promise<HandoffEvent>((resolve) => lobby.on("handoff", resolve));
    const listings: unknown[] = [];
    lobby.onMessage("rooms", (rooms) => listings.push(rooms));
    const moved = await post(`/rooms/${lobby.roomId}/handoff?to=jp-osaka`, admin);
    expect(moved.status, JSON.stringify(moved.body)).toBe(200);
    expect((await followed).toRegionId).toBe("jp-osaka");
    // Greeted in its new home with the listing its filter lets through (session rooms only).
    await waitFor(() => listings.length > 0, 10_000, "the lobby's listing in its new home");
    expect((listings.at(-1) as Array<{ name: string }>).every((room) => room.name === "session")).toBe(true);
    await lobby.leave();
    // Asked of a node that does not host the room (as the console does, from any node): forwarded
    // to the room's node with the admin's token and no body, and answered from there.
    const osaka = harness.region("jp-osaka").nodes[0];
    const forwarded = await fetch(`${osaka.httpUrl}/rooms/${session.roomId}/handoff?to=jp-osaka`, { method: "POST", headers: { authorization: admin } });
    const forwardedBody = await forwarded.json();
    expect(forwarded.status, JSON.stringify(forwardedBody)).toBe(200);
    expect(forwardedBody).toMatchObject({ outcome: "complete", to: { regionId: "jp-osaka" } });
    await session.leave();
  });

  it("cluster routes: only a node credential of this cluster, only a well-formed snapshot", async () => {
    const osaka = harness.region("jp-osaka").nodes[0];
    const call = async (path: string, body: unknown, authorization?: string) => {
      const response = await fetch(`${osaka.httpUrl}${path}`, {
        method: "POST", headers: { "content-type": "application/json", ...(authorization ? { authorization } : {}) }, body: typeof body === "string" ? body : JSON.stringify(body),
      });
      return { status: response.status, body: await response.json() };
    };
    const node = new NodeAuth(testKeys.node, "tokyo-1");
    expect((await call("/cluster/handoff/prepare", {})).body.code).toBe(ErrorCode.TOKEN_MISSING);
    expect((await call("/cluster/handoff/prepare", {}, `Bearer ${await testToken(harness.clusterName, "admin")}`)).body.code).toBe(ErrorCode.TOKEN_MISSING);
    expect((await call("/cluster/handoff/prepare", {}, new NodeAuth(testKeys.token, "tokyo-1").header())).body.code).toBe(ErrorCode.TOKEN_INVALID);
    expect((await call("/cluster/handoff/prepare", "{not json", node.header())).body.code).toBe(ErrorCode.WRONG_TYPE);
    const malformed = await call("/cluster/handoff/prepare", { handoffId: "12345678-aaaa", seatSeconds: 5, snapshot: { version: 1, roomName: "session", roomId: "session__z", name: "z", createdAt: 0, maxClients: null, token: "1", takenAt: 0, options: {}, state: {}, sessions: "many", queued: [], history: [] } }, node.header());
    expect(malformed.body.code).toBe(ErrorCode.WRONG_TYPE);
    expect(malformed.body.error).toMatch(/snapshot is not valid: .*sessions/);
    const commit = await call("/cluster/handoff/commit", { handoffId: "12345678-none", fromToken: "5", queued: [] }, node.header());
    expect(commit.body.code).toBe(ErrorCode.HANDOFF_FAILED);
    expect((await call("/cluster/handoff/abort", { handoffId: "../../etc" }, node.header())).body.code).toBe(ErrorCode.WRONG_TYPE);
    // The node goes on.
    expect((await fetch(`${osaka.httpUrl}/healthz`)).status).toBe(200);
  });
});

describe("a target lost part-way (last: it kills Osaka's node)", () => {
  it("the room rolls back to Tokyo; the clients that had connected there come back, and nothing sent meanwhile is lost", async () => {
    const tokyoCity = await harness.locate("jp-tokyo");
    const tokyo = harness.region("jp-tokyo").nodes[0];
    const osaka = harness.region("jp-osaka").nodes[0];
    const sessions = await joinSessions(tokyoCity, 3, "survivor", "target-lost-1");
    const roomId = sessions[0].roomId;
    const errors: number[] = [];
    for (const session of sessions) session.on("error", (error) => errors.push(error.code));
    // Slow node-to-node traffic: each handoff call takes a second, so the kill lands mid-handoff.
    harness.link("jp-tokyo", "jp-osaka").setDelay(500);
    const connections = async () => {
      const text = await (await fetch(`${osaka.httpUrl}/metrics`)).text();
      return Number(/^tsunagi_connections (\d+)/m.exec(text)?.[1] ?? 0);
    };
    const attempt = adminHandoff(tokyo, roomId, "jp-osaka");
    // The clients were sent their seats in Osaka and connected there: the target dies now.
    await waitFor(async () => (await connections()) >= sessions.length, 20_000, "the clients connected to Osaka's copy");
    await osaka.kill();
    const during = sessions.map((session, i) => session.request({ ping: { clientTimeMs: 100 + i } }, 20_000));
    const { status, body } = await attempt;
    harness.link("jp-tokyo", "jp-osaka").setDelay(4);
    expect(status, JSON.stringify(body)).toBe(502);
    expect(body.record.outcome).toBe("aborted");
    // It died with the room frozen: what was sent meanwhile was queued, and applied here at the thaw.
    expect(body.record.transitions.map((t: { state: string }) => t.state)).toContain("freeze");
    for (const reply of await Promise.all(during)) expect(reply.body).toBe("pong");
    // Every session is still in Tokyo's room, under its own id, and goes on.
    for (const session of sessions) {
      expect(session.closed).toBe(false);
      expect(session.roomId).toBe(roomId);
      expect(new URL(session.room.connection.url!).port).toBe(nodePort(tokyoCity, tokyo.httpUrl));
    }
    const after = await Promise.all(sessions.map((session) => session.request({ ping: { clientTimeMs: 9 } }, 10_000)));
    expect(after.every((reply) => reply.body === "pong")).toBe(true);
    expect((await tokyoHistory(roomId)).body).toMatchObject({ regionId: "jp-tokyo", handoffs: [{ outcome: "aborted" }] });
    await Promise.all(sessions.map((s) => s.leave()));
  });
});

