/**
 * RoomMover's queue while a room is frozen for a move: inputs wait, in arrival order,
 * except an e-stop, which is applied at once (out of turn: its number not taken) and
 * queued in its place as well; and after the room moved, nothing is applied here.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import type { Client, Room } from "@colyseus/core";
import { RoomMover, type MoverHost } from "../../../../rooms/shared/RoomMover.ts";
import { setNodeContext, type NodeContext } from "../../../../server/context.ts";
import { NodeMetrics } from "../../../../server/observability/metrics.ts";
import { encodeEnvelope } from "../../../../proto/index.ts";

const metrics = new NodeMetrics({ connections: () => 0, roomsByType: () => ({}) });
beforeAll(() => setNodeContext({ config: { limits: { maxFrameBytes: 65536 } }, metrics, regionId: "jp-tokyo", ownsItsRooms: () => true } as unknown as NodeContext));
afterAll(() => setNodeContext(undefined));

function makeMover(here: string[] = []) {
  const delivered: Array<{ body: string; outOfTurn: boolean }> = [];
  const clients = Object.assign([], { getById: (id: string) => (here.includes(id) ? { sessionId: id } : undefined) });
  const host = {
    room: { roomId: "teleop__site", roomName: "teleop", locked: false, lock: async () => {}, unlock: async () => {}, disconnect: async () => {}, clients } as unknown as Room,
    type: () => ({ freezeRoom() {}, thawRoom() {} }),
    listed: () => true,
    deliverEnvelope: (_client: Client, bytes: Uint8Array, options?: { outOfTurn?: boolean }) => {
      delivered.push({ body: bytes.length > 20 ? "estop" : "command", outOfTurn: options?.outOfTurn === true });
    },
  } as unknown as MoverHost;
  return { mover: new RoomMover(host), delivered };
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
