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
import { startRegions, type RegionsHarness } from "../fixtures/regions.ts";
import { waitFor } from "../fixtures/processes.ts";
import { testToken } from "../fixtures/tokens.ts";
import { ErrorCode } from "../../proto/index.ts";
import type { HandoffEvent, RoomSession } from "../../client-sdk/index.ts";

let harness: RegionsHarness;

beforeAll(async () => {
  harness = await startRegions({
    regions: ["jp-tokyo", "jp-osaka"],
    nodeArgs: ["--handoff-rpc-timeout-ms", "1500", "--handoff-prepare-timeout-ms", "3000"],
  });
}, 90_000);
afterAll(async () => { await harness?.stop(); });

async function adminHandoff(nodeUrl: string, roomId: string, to: string, token?: string) {
  const response = await fetch(`${nodeUrl}/rooms/${roomId}/handoff?to=${to}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token ?? await testToken(harness.clusterName, "admin")}` },
  });
  return { status: response.status, body: await response.json() };
}

async function directoryEntry(roomId: string) {
  // The lobby lists rooms with their region; the matchmaker's joinById names the node. Use the admin history route instead.
  const tokyo = harness.region("jp-tokyo").nodes[0];
  const response = await fetch(`${tokyo.httpUrl}/rooms/${roomId}/handoffs`, { headers: { authorization: `Bearer ${await testToken(harness.clusterName, "admin")}` } });
  return { status: response.status, body: await response.json() };
}

describe("a session room moves between regions", () => {
  it("keeps its id, its sessions and its participants; requests in flight are answered; a stock client is told ROOM_MOVED", async () => {
    const tokyoCity = await harness.locate("jp-tokyo");
    const tokyo = harness.region("jp-tokyo").nodes[0];
    const sessions: RoomSession[] = [];
    for (let i = 0; i < 5; i++) {
      const client = tokyoCity.client(await testToken(harness.clusterName, "host", `member-${i}`));
      sessions.push(await client.joinOrCreate("session", { roomId: "moving-1", rttHints: { "jp-tokyo": 1, "jp-osaka": 10 } }));
    }
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
    const moved = adminHandoff(tokyo.httpUrl, roomId, "jp-osaka");
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
    for (const session of sessions) expect(new URL(session.room.connection.url!).port).toBe(new URL(tokyoCity.urlBuilder(new URL(`ws://${new URL(harness.region("jp-osaka").nodes[0].httpUrl).host}/`))).port);

    // The room is in Osaka now for everyone: a new client joining through Tokyo is sent there.
    const late = await tokyoCity.client(await testToken(harness.clusterName, "visitor")).joinById(roomId);
    expect(late.region).toBeDefined();
    await waitFor(() => (sessions[0].state as any).participants.size === 6, 10_000, "the late joiner in the participants");
    const history = await directoryEntry(roomId);
    expect(history.status).toBe(404); // Tokyo no longer has it: asked there, it says where
    await late.leave();
    await Promise.all(sessions.map((s) => s.leave()));
  });
});
