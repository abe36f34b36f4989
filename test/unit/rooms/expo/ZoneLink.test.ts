/**
 * ZoneLink against a fake zone room (the west zone of a hall split west | east at
 * x = 100): every transition of the handoff state machine, going out (Reserving, Told,
 * Failed and its retry, an abort, Lingering and its two ends, a stale handoff offered
 * again, Arrived once the next zone welcomed it) and coming in (HandedIn and its replay
 * grace, a return from Lingering), that no visitor is both coming in and going out, and
 * the ghost batches between zones.
 */
import { describe, expect, it } from "vitest";
import { ErrorCode, tsunagi } from "../../../../proto/index.ts";
import { VisitorView } from "../../../../rooms/expo/VisitorView.ts";
import { GHOST_TTL_MS, HANDOFF_RETRY_MS, HANDOFF_STALE_MS, HandoffState, LINGER_MS, REPLAY_GRACE_MS, ZoneLink } from "../../../../rooms/expo/ZoneLink.ts";
import type { HandoffPayload, Visitor } from "../../../../rooms/expo/model.ts";
import { FakeZoneLinkHost } from "../../../fixtures/fakes/FakeZoneLinkHost.ts";
import { fakeEntity, fakeVisitor } from "../../../fixtures/fakes/FakeVisitor.ts";

function setUp() {
  const room = new FakeZoneLinkHost();
  const zones = new ZoneLink(room);
  /** A visitor of this (west) room at (x, 50). */
  const visitor = (id: number, x: number, fields = {}) => room.join(fakeVisitor(fakeEntity(id, x, 50, fields)));
  /** What the room does when a visitor's socket closes. */
  const leave = (who: Visitor) => {
    room.here.delete(who.entity.id);
    who.entity.local = undefined;
    if (!zones.left(who)) room.crowd.remove(who.entity);
  };
  /** Walks a visitor to (x, 50) as an applied move would, and tells the link. */
  const walk = (who: Visitor, x: number) => {
    room.crowd.move(who.entity, x, 50);
    who.entity.seq++;
    zones.moved(who);
  };
  /** Walks a visitor east of the border and has its seat granted (Told) or refused (Failed). */
  const crossWith = (answer: "grant" | "refuse") => async (who: Visitor) => {
    walk(who, 102);
    room.reservations.at(-1)![answer]();
    await room.settle();
  };
  return { room, zones, visitor, leave, walk, tell: crossWith("grant"), fail: crossWith("refuse") };
}

/** A GhostBatch from `zoneId` as it arrives over the wire. */
function batch(zoneId: string, visitors: tsunagi.v1.IVisitorState[]): tsunagi.v1.GhostBatch {
  return tsunagi.v1.GhostBatch.decode(tsunagi.v1.GhostBatch.encode({ zoneId, tick: 1, visitors }).finish());
}

/** A handoff payload from the east zone for visitor `id` at (x, 50). */
function arrival(id: number, x: number, fields: Partial<HandoffPayload> = {}): HandoffPayload {
  return {
    roomId: "test-hall", fromRoomId: "test-hall--east", fromZoneId: "east", visitorId: id, subject: `subject-${id}`,
    name: "Arriving", role: "visitor", avatar: "owl", x, y: 50, heading: 0, seq: 10, sentAtMs: 5,
    areas: ["aisle"], booths: [], toldAreas: ["aisle"], toldBooths: [], mutedUntil: 0, ...fields,
  };
}

describe("ZoneLink: going out", () => {
  it("hands a visitor on only past the border by the margin, reserving a seat that carries its state and what it was told", () => {
    const { room, zones, visitor, walk } = setUp();
    const walker = visitor(1, 90, { name: "Walker", avatar: "fox" });
    walker.view = new VisitorView({ neighbourhood: { queryRadius: () => {} }, radius: 20 }, 0, { areas: ["aisle"], booths: ["west-1"] });
    walker.areas.add("aisle");
    walker.mutedUntil = 1;
    walk(walker, 100.9); // within the 1 m margin
    expect(room.reservations).toHaveLength(0);
    expect(zones.state(1)).toBeUndefined();
    walk(walker, 101.5);
    expect(zones.state(1)).toBe(HandoffState.Reserving);
    expect(room.reservations).toHaveLength(1);
    expect(room.reservations[0]).toMatchObject({ visitorId: 1, roomId: "test-hall--east" });
    expect(room.reservations[0].payload).toMatchObject({
      roomId: "test-hall--east", fromZoneId: "west", visitorId: 1, subject: "subject-1", name: "Walker", avatar: "fox",
      x: 101.5, seq: 3, areas: ["aisle"], toldAreas: ["aisle"], toldBooths: ["west-1"], mutedUntil: 1,
    });
  });

  it("once the seat is reserved the visitor is told to go (ZoneHandoff with the reservation), and it is counted", async () => {
    const { room, zones, visitor, tell } = setUp();
    const walker = visitor(1, 95);
    await tell(walker);
    expect(zones.state(1)).toBe(HandoffState.Told);
    expect(room.outcomes).toEqual(["reserved"]);
    expect(room.sent).toHaveLength(1);
    const handoff = room.sent[0].envelope.zoneHandoff!;
    expect(handoff).toMatchObject({ zoneId: "east", roomId: "test-hall--east" });
    expect(JSON.parse(handoff.reservationJson!)).toMatchObject({ roomId: "test-hall--east" });
  });

  it("starts no second handoff while one is under way", async () => {
    const { room, visitor, walk } = setUp();
    const walker = visitor(1, 95);
    walk(walker, 102);
    walk(walker, 103);
    room.reservations[0].grant();
    await room.settle();
    walk(walker, 104);
    expect(room.reservations).toHaveLength(1);
  });

  it("a failed reservation leaves the visitor served here (Failed, counted), and it is tried again after HANDOFF_RETRY_MS if still past", async () => {
    const { room, zones, visitor, fail } = setUp();
    const walker = visitor(1, 95);
    await fail(walker);
    expect(zones.state(1)).toBe(HandoffState.Failed);
    expect(room.outcomes).toEqual(["failed"]);
    expect(room.sent).toEqual([]);
    const failedAt = room.time;
    zones.expire(failedAt + HANDOFF_RETRY_MS);
    expect(room.reservations).toHaveLength(1);
    room.time = failedAt + HANDOFF_RETRY_MS + 1;
    zones.expire(room.time);
    expect(zones.state(1)).toBe(HandoffState.Reserving);
    expect(room.reservations).toHaveLength(2);
  });

  it("after a failure, a visitor that walked back into the zone is simply served here", async () => {
    const { room, zones, visitor, walk, fail } = setUp();
    const walker = visitor(1, 95);
    await fail(walker);
    walk(walker, 90);
    room.time += HANDOFF_RETRY_MS + 1;
    zones.expire(room.time);
    expect(zones.state(1)).toBeUndefined();
    expect(room.reservations).toHaveLength(1);
  });

  it("aborts when the visitor leaves while its seat is reserved: gone from view, and the late reservation is not followed", async () => {
    const { room, zones, visitor, walk, leave } = setUp();
    const walker = visitor(1, 95);
    walk(walker, 102);
    leave(walker);
    expect(zones.state(1)).toBeUndefined();
    expect(room.crowd.get(1)).toBeUndefined();
    room.reservations[0].grant();
    await room.settle();
    expect(room.sent).toEqual([]);
    expect(room.outcomes).toEqual([]);
    expect(zones.state(1)).toBeUndefined();
  });

  it("a visitor told to go that leaves lingers, frozen in view, until a ghost of it arrives from a neighbour", async () => {
    const { room, zones, visitor, leave, tell } = setUp();
    const walker = visitor(1, 95);
    await tell(walker);
    leave(walker);
    expect(zones.state(1)).toBe(HandoffState.Lingering);
    const entity = room.crowd.get(1)!;
    expect(entity).toBe(walker.entity);
    expect(entity.local).toBeUndefined();
    zones.receiveGhosts(batch("east", [{ visitorId: 1, x: 103, y: 50, seq: entity.seq, name: "Walker" }])); // same seq: still taken
    expect(zones.state(1)).toBeUndefined();
    expect(room.crowd.get(1)).toBe(entity);
    expect(entity).toMatchObject({ ghostZone: "east", x: 103, changedTick: room.tickNo + 1 });
    room.time += LINGER_MS + 1;
    zones.expire(room.time - GHOST_TTL_MS); // heard of just now: a ghost, not a lingerer
    expect(room.forgotten).toEqual([]);
  });

  it("a lingering visitor no zone picks up within LINGER_MS goes, and is forgotten from the hall's register", async () => {
    const { room, zones, visitor, leave, tell } = setUp();
    const walker = visitor(1, 95);
    await tell(walker);
    leave(walker);
    const leftAt = room.time;
    zones.expire(leftAt + LINGER_MS);
    expect(room.crowd.get(1)).toBeDefined();
    zones.expire(leftAt + LINGER_MS + 1);
    expect(room.crowd.get(1)).toBeUndefined();
    expect(zones.state(1)).toBeUndefined();
    expect(room.forgotten).toEqual([1]);
  });

  it("offers a handoff the client has not followed within HANDOFF_STALE_MS again", async () => {
    const { room, zones, visitor, tell } = setUp();
    const walker = visitor(1, 95);
    await tell(walker);
    const toldAt = room.time;
    zones.expire(toldAt + HANDOFF_STALE_MS);
    expect(room.reservations).toHaveLength(1);
    room.time = toldAt + HANDOFF_STALE_MS + 1;
    zones.expire(room.time);
    expect(room.warnings).toEqual([expect.stringContaining("did not follow its handoff to zone east")]);
    expect(zones.state(1)).toBe(HandoffState.Reserving);
    expect(room.reservations).toHaveLength(2);
  });

  it("an unzoned hall hands no one on and publishes no ghosts", () => {
    const room = new FakeZoneLinkHost();
    room.zone = undefined;
    const zones = new ZoneLink(room);
    const walker = room.join(fakeVisitor(fakeEntity(1, 150, 50)));
    zones.moved(walker);
    zones.publishGhosts(1);
    expect([room.reservations.length, room.batches.length, zones.neighbours.length]).toEqual([0, 0, 0]);
  });
});

describe("ZoneLink: the arrival in the next zone, so that no frame is sent unheard", () => {
  it("the next zone's notice moves a visitor told to go to Arrived, and its frames here stop", async () => {
    const { room, zones, visitor, tell } = setUp();
    const walker = visitor(1, 95);
    await tell(walker);
    expect(zones.arrived(1)).toBe(true);
    expect(zones.state(1)).toBe(HandoffState.Arrived);
    expect(room.paused.has(walker)).toBe(true);
  });

  it("a notice for a visitor not told to go changes nothing", async () => {
    const { room, zones, visitor, walk, leave, tell } = setUp();
    expect(zones.arrived(5)).toBe(false);
    const walker = visitor(1, 95);
    walk(walker, 102); // Reserving
    expect(zones.arrived(1)).toBe(false);
    expect(zones.state(1)).toBe(HandoffState.Reserving);
    room.reservations[0].grant();
    await room.settle();
    leave(walker); // Lingering
    expect(zones.arrived(1)).toBe(false);
    expect(zones.state(1)).toBe(HandoffState.Lingering);
    expect(room.paused.size).toBe(0);
    const other = visitor(2, 95);
    await tell(other);
    zones.arrived(2);
    expect(zones.arrived(2)).toBe(false); // a second notice: already Arrived
  });

  it("a visitor that arrived there and then leaves here lingers, like one told to go", async () => {
    const { zones, visitor, leave, tell } = setUp();
    const walker = visitor(1, 95);
    await tell(walker);
    zones.arrived(1);
    leave(walker);
    expect(zones.state(1)).toBe(HandoffState.Lingering);
  });

  it("an Arrived visitor still here after HANDOFF_STALE_MS gets its frames again and is offered the handoff again", async () => {
    const { room, zones, visitor, tell } = setUp();
    const walker = visitor(1, 95);
    await tell(walker);
    zones.arrived(1);
    room.time += HANDOFF_STALE_MS + 1;
    zones.expire(room.time);
    expect(room.paused.has(walker)).toBe(false);
    expect(zones.state(1)).toBe(HandoffState.Reserving);
    expect(room.reservations).toHaveLength(2);
  });

  it("coming in, the zone the visitor came from is told before it is admitted here (and so before its welcome)", async () => {
    const { room, zones } = setUp();
    room.holdArrivals = true;
    const admitting = zones.admit(arrival(7, 99));
    let admitted = false;
    void admitting.then(() => { admitted = true; });
    await new Promise((resolve) => setImmediate(resolve));
    expect(room.announced).toEqual([{ roomId: "test-hall--east", visitorId: 7, localYet: false }]);
    expect(admitted).toBe(false);
    expect(zones.state(7)).toBeUndefined();
    room.releaseArrivals();
    await admitting;
    expect(zones.state(7)).toBe(HandoffState.HandedIn);
  });

  it("an arrival refused ROOM_CONFLICT tells no zone anything", async () => {
    const { room, zones, visitor } = setUp();
    visitor(1, 95);
    await expect(zones.admit(arrival(1, 99))).rejects.toMatchObject({ code: ErrorCode.ROOM_CONFLICT });
    expect(room.announced).toEqual([]);
  });
});

describe("ZoneLink: coming in", () => {
  it("an arrival takes over its ghost here (the same entity, this room's from the next tick), keeping the newer state", async () => {
    const { room, zones } = setUp();
    zones.receiveGhosts(batch("east", [{ visitorId: 7, x: 101, y: 50, seq: 12, name: "Ghost" }]));
    const ghost = room.crowd.get(7)!;
    const entity = await zones.admit(arrival(7, 99, { seq: 11 }));
    expect(entity).toBe(ghost);
    expect(entity).toMatchObject({ seq: 12, x: 101, name: "Arriving", avatar: "owl", changedTick: room.tickNo + 1 });
    expect(entity.ghostZone).toBeUndefined();
    expect(zones.state(7)).toBe(HandoffState.HandedIn);
    const fresh = await zones.admit(arrival(8, 98));
    expect(fresh).toMatchObject({ id: 8, x: 98, seq: 10 });
    expect(room.crowd.get(8)).toBe(fresh);
  });

  it("drops its replays quietly for REPLAY_GRACE_MS, then it is served here like anyone", async () => {
    const { room, zones } = setUp();
    await zones.admit(arrival(7, 99));
    const arrivedAt = room.time;
    expect(zones.replaying(7)).toBe(true);
    zones.expire(arrivedAt + REPLAY_GRACE_MS);
    expect(zones.replaying(7)).toBe(true);
    zones.expire(arrivedAt + REPLAY_GRACE_MS + 1);
    expect(zones.replaying(7)).toBe(false);
    expect(zones.state(7)).toBeUndefined();
  });

  it("a visitor returning while it lingers here comes back in", async () => {
    const { room, zones, visitor, leave, tell } = setUp();
    const walker = visitor(1, 95);
    await tell(walker);
    leave(walker);
    const entity = await zones.admit(arrival(1, 99, { seq: 20 }));
    expect(entity).toBe(walker.entity);
    expect(zones.state(1)).toBe(HandoffState.HandedIn);
    room.time += LINGER_MS + 1;
    zones.expire(room.time);
    expect(room.forgotten).toEqual([]);
  });
});

describe("ZoneLink: no visitor both coming in and going out", () => {
  it("refuses ROOM_CONFLICT the arrival of a visitor still served here, and its handoff goes on", async () => {
    const { zones, visitor, tell } = setUp();
    const walker = visitor(1, 95);
    await expect(zones.admit(arrival(1, 99))).rejects.toMatchObject({ code: ErrorCode.ROOM_CONFLICT });
    await tell(walker);
    await expect(zones.admit(arrival(1, 99))).rejects.toMatchObject({ code: ErrorCode.ROOM_CONFLICT });
    expect(zones.state(1)).toBe(HandoffState.Told);
  });

  it("a visitor handed in that walks on leaves its replay grace for Reserving", async () => {
    const { room, zones, walk } = setUp();
    const entity = await zones.admit(arrival(7, 99));
    const arrived = room.join(fakeVisitor(entity));
    expect(zones.replaying(7)).toBe(true);
    walk(arrived, 102);
    expect(zones.state(7)).toBe(HandoffState.Reserving);
    expect(zones.replaying(7)).toBe(false);
  });
});

describe("ZoneLink: ghost batches", () => {
  it("sends each neighbour the visitors within its reach, and an empty batch once", () => {
    const { room, zones, visitor } = setUp();
    expect(zones.neighbours.map((z) => z.id)).toEqual(["east"]);
    visitor(1, 85, { name: "Near", seq: 4 });
    visitor(2, 30);
    zones.publishGhosts(5);
    expect(room.batches).toHaveLength(1);
    expect(room.batches[0]).toMatchObject({ zoneId: "east", batch: { zoneId: "west", tick: 5 } });
    expect(room.batches[0].batch.visitors).toMatchObject([{ visitorId: 1, x: 85, name: "Near", seq: 4 }]);
    room.crowd.move(room.here.get(1)!.entity, 40, 50);
    zones.publishGhosts(6);
    zones.publishGhosts(7);
    expect(room.batches.map((b) => b.batch.visitors!.length)).toEqual([1, 0]);
  });

  it("takes a neighbour's batch: new ghosts appear, known ones move on newer seqs only, unnamed ones go", () => {
    const { room, zones, visitor } = setUp();
    const local = visitor(3, 95);
    zones.receiveGhosts(batch("east", [{ visitorId: 7, x: 101, y: 50, seq: 5, avatar: "fox" }, { visitorId: 8, x: 102, y: 50, seq: 1 }]));
    expect(room.crowd.get(7)).toMatchObject({ ghostZone: "east", changedTick: room.tickNo + 1, avatar: "fox" });
    room.tickNo++;
    zones.receiveGhosts(batch("east", [{ visitorId: 7, x: 150, y: 50, seq: 4, avatar: "fox" }, { visitorId: 3, x: 150, y: 50, seq: 99 }]));
    expect(room.crowd.get(7)).toMatchObject({ x: 101, seq: 5 }); // older: ignored
    expect(room.crowd.get(8)).toBeUndefined();                     // not named: gone
    expect([local.entity.x, local.entity.seq, local.entity.ghostZone]).toEqual([95, 1, undefined]); // this room's own: untouched
    zones.receiveGhosts(batch("east", [{ visitorId: 7, x: 103, y: 50, seq: 6, avatar: "owl" }]));
    expect(room.crowd.get(7)).toMatchObject({ x: 103, seq: 6, avatar: "owl", avatarTick: room.tickNo + 1 });
    zones.receiveGhosts(batch("west", [{ visitorId: 9, x: 10, y: 50, seq: 1 }])); // its own zone's: ignored
    expect(room.crowd.get(9)).toBeUndefined();
  });

  it("drops the ghosts of a zone not heard of for GHOST_TTL_MS", () => {
    const { room, zones } = setUp();
    zones.receiveGhosts(batch("east", [{ visitorId: 7, x: 101, y: 50, seq: 5 }]));
    zones.expire(room.time + GHOST_TTL_MS);
    expect(room.crowd.get(7)).toBeDefined();
    zones.expire(room.time + GHOST_TTL_MS + 1);
    expect(room.crowd.get(7)).toBeUndefined();
  });
});
