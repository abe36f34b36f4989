/**
 * ExpoSession against a scripted stand-in for ExpoRoom (a real Colyseus server on
 * 127.0.0.1, ws transport): the frames it turns into a neighbourhood, frames that arrive
 * with the welcome, and zone handoffs (join the next room, resend what it lacks, leave
 * the old one, reconcile the view) as the room would drive them.
 */
import "../../../server/polyfills.ts";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Room, Server, matchMaker, type Client } from "@colyseus/core";
import { WebSocketTransport } from "@colyseus/ws-transport";
import { ENVELOPE_MESSAGE_TYPE, decodeEnvelope, encodeEnvelope, tsunagi, type IEnvelope } from "../../../proto/index.ts";
import { TsunagiClient } from "../../../client-sdk/TsunagiClient.ts";
import { ExpoSession, type NeighbourChanges } from "../../../client-sdk/ExpoSession.ts";
import { waitFor } from "../../fixtures/processes.ts";

const hall: tsunagi.v1.IExpoHall = { hallId: "h", name: "Hall", width: 100, height: 100, booths: [{ boothId: "b1", name: "B", exhibitor: "E", area: { x: 0, y: 0, w: 5, h: 5 } }] };

/** Speaks the room side of expo.proto as far as these tests need; tests drive the rest. */
class ScriptedExpoRoom extends Room {
  zoneId = "";
  /** Moves received, by session. */
  readonly moves = new Map<string, number[]>();
  /** Newest seq held per session (as a zone would). */
  readonly held = new Map<string, number>();

  /** Neighbours to put in the frame that goes out right behind each welcome. */
  greeting?: tsunagi.v1.IVisitorState[];

  onCreate(options: { zoneId?: string; roomId?: string; greeting?: tsunagi.v1.IVisitorState[] }) {
    if (options.roomId) this.roomId = options.roomId;
    this.zoneId = options.zoneId ?? "";
    this.greeting = options.greeting;
    this.onMessageBytes(ENVELOPE_MESSAGE_TYPE, (client, bytes: Uint8Array) => {
      const envelope = decodeEnvelope(bytes);
      if (envelope.body !== "visitorMove") return;
      const seq = envelope.visitorMove!.seq!;
      (this.moves.get(client.sessionId) ?? this.moves.set(client.sessionId, []).get(client.sessionId)!).push(seq);
      if (seq > (this.held.get(client.sessionId) ?? 0)) this.held.set(client.sessionId, seq);
    });
  }

  onJoin(client: Client, options: { handoff?: { ackSeq: number; visitorId: number }; role?: string }) {
    this.held.set(client.sessionId, options.handoff?.ackSeq ?? 0);
    this.sendEnvelope(client, {
      expoWelcome: {
        visitorId: options.handoff?.visitorId ?? 7, role: options.role ?? "visitor", hall, zoneId: this.zoneId, tickMs: 50,
        interestRadius: 20, boothRadius: 5, maxMoveHz: 20, ackSeq: options.handoff?.ackSeq ?? 0, x: 1, y: 1,
      },
    });
    // A frame queued while the client joins goes out right behind the welcome.
    if (this.greeting) this.frame(client, { tick: 1, appeared: this.greeting });
  }

  frame(client: Client, frame: tsunagi.v1.IExpoFrame) {
    this.sendEnvelope(client, { expoFrame: { ackSeq: this.held.get(client.sessionId) ?? 0, ...frame } });
  }

  async handOff(client: Client, to: string, ackSeq: number) {
    const listing = await matchMaker.driver.findOne({ roomId: to });
    const reservation = await matchMaker.reserveSeatFor(listing as any, { handoff: { ackSeq, visitorId: 7 } });
    this.sendEnvelope(client, { zoneHandoff: { zoneId: "east", roomId: to, reservationJson: JSON.stringify(reservation) } });
  }

  sendEnvelope(client: Client, body: Omit<IEnvelope, "correlationId">) {
    client.sendBytes(ENVELOPE_MESSAGE_TYPE, encodeEnvelope({ ...body, correlationId: 0 }));
  }
}

let httpServer: http.Server;
let server: Server;
let url: string;
const sessions: ExpoSession[] = [];

beforeAll(async () => {
  httpServer = http.createServer();
  server = new Server({ transport: new WebSocketTransport({ server: httpServer }), greet: false, gracefullyShutdown: false });
  server.define("expo-script", ScriptedExpoRoom);
  await server.listen(0, "127.0.0.1");
  url = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`;
});
afterEach(async () => { await Promise.all(sessions.splice(0).map((s) => s.leave().catch(() => {}))); });
afterAll(async () => {
  await server.gracefullyShutdown(false).catch(() => {});
  httpServer.closeAllConnections();
  await new Promise<void>((resolve) => httpServer.close(() => resolve()));
});

let rooms = 0;
async function openRoom(options: Record<string, unknown> = {}): Promise<ScriptedExpoRoom> {
  const roomId = `r${++rooms}`;
  await matchMaker.createRoom("expo-script", { roomId, ...options });
  return matchMaker.getLocalRoomById(roomId) as ScriptedExpoRoom;
}

async function join(room: ScriptedExpoRoom) {
  const expo = await ExpoSession.join(new TsunagiClient({ url }), room.roomId);
  sessions.push(expo);
  const client = await waitFor(() => room.clients.find((c) => c.sessionId === (expo as any).session.sessionId), 2000, "the room's client");
  return { expo, client };
}

const state = (visitorId: number, seq: number, extra: Partial<tsunagi.v1.IVisitorState> = {}): tsunagi.v1.IVisitorState =>
  ({ visitorId, x: visitorId, y: seq, heading: 0, seq, sentAtMs: 1000 + seq, ...extra });

describe("ExpoSession", () => {
  it("keeps a frame that arrives together with the welcome", async () => {
    const room = await openRoom({ greeting: [state(1, 1, { name: "first", avatar: "fox" })] });
    const { expo } = await join(room);
    // join() resolves after the welcome; the frame right behind it must not be lost
    expect(expo.neighbours.get(1)).toMatchObject({ name: "first", avatar: "fox", seq: 1 });
  });

  it("turns frames into a neighbourhood: appeared, moved (newest only), gone; older moves are ignored", async () => {
    const room = await openRoom();
    const { expo, client } = await join(room);
    const changes: NeighbourChanges[] = [];
    expo.on("neighbours", (c) => changes.push({ ...c, appeared: [...c.appeared], moved: [...c.moved] }));
    room.frame(client, { tick: 2, appeared: [state(1, 1, { name: "one", avatar: "owl", role: "host" }), state(2, 5, { name: "two" })] });
    await waitFor(() => expo.neighbours.size === 2, 2000, "two neighbours");
    room.frame(client, { tick: 3, moved: [state(1, 2), state(2, 4)], gone: [] }); // 2's seq 4 is older than 5: ignored
    await waitFor(() => expo.neighbours.get(1)?.seq === 2, 2000, "1 moved");
    expect(expo.neighbours.get(2)!.seq).toBe(5);
    expect(expo.neighbours.get(1)).toMatchObject({ name: "one", avatar: "owl", role: "host", x: 1, y: 2 }); // kept from `appeared`
    room.frame(client, { tick: 4, moved: [state(1, 3, { avatar: "crane" })], gone: [2] });
    await waitFor(() => !expo.neighbours.has(2), 2000, "2 gone");
    expect(expo.neighbours.get(1)!.avatar).toBe("crane");
    expect(changes.map((c) => [c.appeared.map((n) => n.visitorId), c.moved.map((n) => n.visitorId), c.gone])).toEqual([
      [[1, 2], [], []],
      [[], [1], []],
      [[], [1], [2]],
    ]);
  });

  it("tracks its acknowledged moves and booth and area events", async () => {
    const room = await openRoom();
    const { expo, client } = await join(room);
    const events: string[] = [];
    expo.on("areaEntered", (id) => events.push(`in:${id}`));
    expo.on("boothNear", (id) => events.push(`near:${id}`));
    expect(expo.move(2, 2, 0)).toBe(1);
    expect(expo.move(3, 3, 0)).toBe(2);
    await waitFor(() => room.held.get(client.sessionId) === 2, 2000, "both moves at the room");
    room.frame(client, { tick: 5, areasEntered: ["b1"], boothsNear: ["b1"] });
    await waitFor(() => expo.ackSeq === 2, 2000, "ack 2");
    expect(events).toEqual(["near:b1", "in:b1"]);
    expect([...expo.areas]).toEqual(["b1"]);
  });

  it("follows a zone handoff: joins the next room, resends what it lacks, leaves the old one, keeps its view", async () => {
    const west = await openRoom({ zoneId: "west" });
    const east = await openRoom({ zoneId: "east" });
    const { expo, client } = await join(west);
    const zones: string[] = [];
    expo.on("zone", (z) => zones.push(z.zoneId));
    const gone: number[] = [];
    expo.on("neighbours", (c) => gone.push(...c.gone));
    west.frame(client, { tick: 2, appeared: [state(1, 1), state(2, 1)] });
    await waitFor(() => expo.neighbours.size === 2, 2000, "two neighbours in the west");
    for (let i = 0; i < 3; i++) expo.move(10 + i, 10, 0); // seqs 1..3 to the west
    await waitFor(() => west.held.get(client.sessionId) === 3, 2000, "west holds 3");
    // the west hands over having applied only up to 2 (as far as the east knows)
    await west.handOff(client, east.roomId, 2);
    // (zoneId changes as the east's welcome is taken; the "zone" event follows it.)
    await waitFor(() => expo.zoneId === "east" && zones.length > 0, 3000, "in the east, and told so");
    expect(zones).toEqual(["east"]);
    const eastClient = east.clients[0];
    expect(east.moves.get(eastClient.sessionId)).toEqual([3]); // only what the east lacked
    await waitFor(() => west.clients.length === 0, 3000, "left the west");
    // the east's first frame is the whole view: 1 is still there, 2 is not, 3 is new
    east.frame(eastClient, { tick: 1, appeared: [state(1, 2), state(3, 1, { name: "three" })] });
    await waitFor(() => expo.neighbours.has(3), 2000, "3 in view");
    expect([...expo.neighbours.keys()].sort()).toEqual([1, 3]);
    expect(gone).toEqual([2]);
    expo.move(20, 10, 0);
    await waitFor(() => east.held.get(eastClient.sessionId) === 4, 2000, "move 4 went to the east");
    expect(west.moves.get(client.sessionId)).toEqual([1, 2, 3]);
  });

  it("reports a handoff it cannot follow and stays where it is", async () => {
    const room = await openRoom({ zoneId: "west" });
    const { expo, client } = await join(room);
    const errors: string[] = [];
    expo.on("error", (e) => errors.push(e.message));
    room.sendEnvelope(client, { zoneHandoff: { zoneId: "east", roomId: "nowhere", reservationJson: "{ not json" } });
    await waitFor(() => errors.length === 1, 2000, "an error event");
    expect(expo.zoneId).toBe("west");
    expo.move(5, 5, 0);
    await waitFor(() => room.held.get(client.sessionId) === 1, 2000, "moves still reach the room");
  });
});
