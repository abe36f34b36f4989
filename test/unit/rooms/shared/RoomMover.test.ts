/**
 * RoomMover's queue while a room is frozen for a move: inputs wait, in arrival order,
 * except an e-stop, which is applied at once (out of turn: its number not taken) and
 * queued in its place as well; and after the room moved, nothing is applied here. A room
 * restored after a failover resumes a client that took its seat before it went live.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import type { Client, Room } from "@colyseus/core";
import { RoomMover, type MoverHost } from "../../../../rooms/shared/RoomMover.ts";
import { setNodeContext, type NodeContext } from "../../../../server/context.ts";
import { NodeMetrics } from "../../../../server/observability/metrics.ts";
import { ErrorCode, encodeEnvelope, type tsunagi } from "../../../../proto/index.ts";
import type { HandoffRecord, RoomSnapshot } from "../../../../server/handoff/types.ts";

const metrics = new NodeMetrics({ connections: () => 0, roomsByType: () => ({}) });
/** Whether this node can confirm it owns its rooms (its etcd lease): false behind a partition. */
let owns = true;
beforeAll(() => setNodeContext({ config: { limits: { maxFrameBytes: 65536 } }, metrics, regionId: "jp-tokyo", ownsItsRooms: () => owns } as unknown as NodeContext));
afterAll(() => setNodeContext(undefined));

function makeMover(here: string[] = []) {
  const delivered: Array<{ body: string; outOfTurn: boolean }> = [];
  const refused: number[] = [];
  const clients = Object.assign([], { getById: (id: string) => (here.includes(id) ? { sessionId: id } : undefined) });
  const host = {
    room: { roomId: "teleop__site", roomName: "teleop", locked: false, lock: async () => {}, unlock: async () => {}, disconnect: async () => {}, clients } as unknown as Room,
    type: () => ({ freezeRoom() {}, thawRoom() {} }),
    listed: () => true,
    refuse: (_client: Client, code: number) => { refused.push(code); },
    deliverEnvelope: (_client: Client, bytes: Uint8Array, options?: { outOfTurn?: boolean }) => {
      delivered.push({ body: bytes.length > 20 ? "estop" : "command", outOfTurn: options?.outOfTurn === true });
    },
  } as unknown as MoverHost;
  return { mover: new RoomMover(host), delivered, refused };
}

const client = { sessionId: "op-1" } as Client;
const command = encodeEnvelope({ inputSeq: 4, heartbeat: { deviceId: "ex-1" } });
const estop = encodeEnvelope({ inputSeq: 5, estop: { deviceId: "ex-1", reason: "stop it now please" } });

describe("RoomMover while frozen", () => {
  it("queues inputs but applies an e-stop at once, and queues it in its place too", async () => {
    const { mover, delivered } = makeMover();
    expect(mover.intercept(client, command)).toBe(false); // live: applied as usual
    mover.freeze();
    expect(mover.intercept(client, command)).toBe(true);
    expect(mover.intercept(client, estop)).toBe(true);
    expect(delivered).toEqual([{ body: "estop", outOfTurn: true }]);
    const snapshotQueue = mover.migration.queuedForSnapshot();
    expect(snapshotQueue.map((input) => input.kind)).toEqual(["envelope", "envelope"]);
    expect(Buffer.from((snapshotQueue[1] as { bytes: string }).bytes, "base64")).toEqual(Buffer.from(estop));
  });

  it("thawed behind a partition (its node cannot confirm it owns the room), applies no queued input but an e-stop, and refuses the rest NOT_ROOM_OWNER", () => {
    const { mover, delivered, refused } = makeMover(["op-1"]);
    mover.freeze();
    mover.intercept(client, command);
    mover.intercept(client, estop);
    delivered.length = 0;
    owns = false;
    try {
      mover.thaw(); // the handoff rolled back, its target cut off with the quorum
    } finally {
      owns = true;
    }
    expect(delivered).toEqual([{ body: "estop", outOfTurn: false }]);
    expect(refused).toEqual([ErrorCode.NOT_ROOM_OWNER]);
  });

  it("applies nothing once the room has moved away, and counts it", () => {
    const { mover, delivered } = makeMover();
    mover.freeze();
    mover.redirect({ regionId: "jp-osaka", nodeId: "osaka-1" }, new Map(), 1, "admin");
    const before = metrics.rooms.inputsAfterHandoff;
    expect(mover.intercept(client, estop)).toBe(true);
    expect(delivered).toEqual([]);
    expect(metrics.rooms.inputsAfterHandoff).toBe(before + 1);
  });
});

describe("RoomMover after a failover: resuming a session", () => {
  it("gives a parked session's seat only to its own subject; a session here already is told to reconnect; any other gets nothing", () => {
    const { mover } = makeMover(["here-1"]);
    mover.migration.park({ sessionId: "parked-1", auth: { sub: "alice", role: "visitor" }, inputSeq: 7, followsHandoff: true, data: null });
    const seat = mover.resumeSeat("parked-1", "alice");
    expect(JSON.parse(seat!)).toMatchObject({ sessionId: "parked-1", roomId: "teleop__site", name: "teleop" });
    expect(mover.resumeSeat("parked-1", "mallory")).toBeUndefined();
    expect(mover.resumeSeat("here-1", "anyone")).toBe("connected");
    expect(mover.resumeSeat("nobody", "alice")).toBeUndefined();
  });
});

describe("RoomMover restored after a failover", () => {
  it("resumes a client that took its seat while the room was being restored, once it is live", async () => {
    const clients = new Map<string, Client>();
    const sent: Array<{ sessionId: string; body: string[] }> = [];
    const resumed: string[] = [];
    const room = {
      roomId: "expo__hall", roomName: "expo", lock: async () => {}, unlock: async () => {}, disconnect: async () => {},
      clients: { getById: (sessionId: string) => clients.get(sessionId) }, onJoin: () => {},
    } as unknown as Room & { onJoin: (client: Client, options?: unknown) => unknown };
    const type = {
      freezeRoom() {}, thawRoom() {}, async restoreState() {}, restoreSession() {}, sessionLost() {}, failedOver() {},
      resumeSession: (client: Client) => { resumed.push(client.sessionId); },
    };
    const host = {
      room, type: () => type, setCreatedAt() {}, holdClaim() {}, listed: () => true,
      sendEnvelope: (client: Client, envelope: tsunagi.v1.IEnvelope) => { sent.push({ sessionId: client.sessionId, body: Object.keys(envelope) }); },
    } as unknown as MoverHost;
    const snapshot: RoomSnapshot = {
      version: 1, roomName: "expo", roomId: "expo__hall", name: "hall", createdAt: 0, maxClients: null, token: "7", takenAt: 0, options: {}, state: {},
      sessions: [{ sessionId: "s1", auth: { sub: "visitor-1" }, inputSeq: 3, followsHandoff: true, data: null }], queued: [], history: [],
    };
    const mover = new RoomMover(host);
    mover.attach({ snapshot, handoffId: "f1", failover: true });
    // Opened, its sessions not parked yet: a resume asked now is told to wait, not that the seat is gone.
    expect(mover.resumeSeat("s1", "visitor-1")).toBe("restoring");
    await mover.restoreSnapshot();
    expect(JSON.parse(mover.resumeSeat("s1", "visitor-1")!)).toMatchObject({ sessionId: "s1" });

    // Its resume was answered once its session was parked; its seat taken before the room is live.
    const client = { sessionId: "s1" } as Client;
    clients.set("s1", client);
    room.onJoin(client, { resume: true });
    expect(sent).toEqual([]);

    const record = { id: "f1", roomId: "expo__hall", reason: "failover", from: { regionId: "jp-tokyo", nodeId: "tokyo-1" }, to: { regionId: "jp-tokyo", nodeId: "tokyo-2" }, transitions: [], sessions: 1, carriedInputs: 0 } as unknown as HandoffRecord;
    await mover.openAfterFailover("8", record);
    expect(sent).toEqual([{ sessionId: "s1", body: ["sessionResumed"] }]);
    expect(resumed).toEqual(["s1"]);
    expect(mover.resumeSeat("s1", "visitor-1")).toBe("connected");
  });
});
