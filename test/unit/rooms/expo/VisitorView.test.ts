/**
 * VisitorView against a fake neighbourhood: each frame is the difference between what
 * the client was told and what is so now (neighbours appeared, moved, gone; booths near
 * and far; areas entered and left), nothing when nothing changed, everything after a
 * restart, and only the difference after a handoff that carried what was told.
 */
import { describe, expect, it } from "vitest";
import { tsunagi } from "../../../../proto/index.ts";
import { VisitorView, encodedEntry } from "../../../../rooms/expo/VisitorView.ts";
import type { Entity } from "../../../../rooms/expo/model.ts";
import { envelopeOf } from "../../../fixtures/fakes/FakeClient.ts";
import { FakeNeighbourhood } from "../../../fixtures/fakes/FakeNeighbourhood.ts";
import { fakeEntity } from "../../../fixtures/fakes/FakeVisitor.ts";

const RADIUS = 20;
const none = new Set<string>();

/** A viewer at (10, 10) and its view over `near`, created at tick 0. */
function setUp(told?: { areas: string[]; booths: string[] }) {
  const near = new FakeNeighbourhood();
  const me = fakeEntity(1, 10, 10);
  near.add(me);
  const view = new VisitorView({ neighbourhood: near, radius: RADIUS }, 0, told);
  /** The decoded frame of `tick`, or undefined when the view had nothing to say. */
  const frame = (tick: number, areas: ReadonlySet<string> = none, booths: ReadonlySet<string> = none) => {
    const bytes = view.frame(me, areas, booths, tick, 1000 + tick);
    return bytes && (envelopeOf(bytes).expoFrame as tsunagi.v1.ExpoFrame);
  };
  return { near, me, view, frame };
}

/** Moves `entity` as a move applied during tick `tick - 1` would: shown from `tick`. */
function moveTo(entity: Entity, x: number, y: number, tick: number) {
  entity.x = x; entity.y = y; entity.seq++; entity.changedTick = tick;
}

const ids = (states: tsunagi.v1.IVisitorState[]) => states.map((s) => s.visitorId).sort((a, b) => a! - b!);

describe("VisitorView: neighbours", () => {
  it("a first frame names everyone within the radius as appeared, in full, and acknowledges the visitor's own seq", () => {
    const { near, me, frame } = setUp();
    near.add(fakeEntity(2, 15, 10, { name: "Aiko", avatar: "fox", seq: 7 }), fakeEntity(3, 10, 29), fakeEntity(4, 40, 40));
    me.seq = 5;
    const first = frame(1)!;
    expect(ids(first.appeared)).toEqual([2, 3]); // not itself, not 4 (beyond the radius)
    expect(first.appeared.find((s) => s.visitorId === 2)).toMatchObject({ x: 15, y: 10, name: "Aiko", avatar: "fox", seq: 7, role: "visitor" });
    expect(first.moved).toEqual([]);
    expect(first).toMatchObject({ tick: 1, ackSeq: 5, serverTimeMs: 1001 });
  });

  it("says nothing when nothing changed since its last frame", () => {
    const { near, frame } = setUp();
    near.add(fakeEntity(2, 15, 10));
    expect(frame(1)).toBeDefined();
    expect(frame(2)).toBeUndefined();
    expect(frame(3)).toBeUndefined();
  });

  it("one who moved is moved (newest position, no name); one who left the radius is gone; one who came is appeared", () => {
    const { near, frame } = setUp();
    const walker = fakeEntity(2, 15, 10, { name: "Walker" });
    const leaver = fakeEntity(3, 12, 12);
    const comer = fakeEntity(4, 50, 50, { name: "Comer" });
    near.add(walker, leaver, comer);
    frame(1);
    moveTo(walker, 16, 11, 2);
    moveTo(leaver, 60, 60, 2);
    moveTo(comer, 9, 9, 2);
    const next = frame(2)!;
    expect(next.moved).toHaveLength(1);
    expect(next.moved[0]).toMatchObject({ visitorId: 2, x: 16, y: 11, seq: 2 });
    expect(next.moved[0].name).toBe("");
    expect(next.gone).toEqual([3]);
    expect(ids(next.appeared)).toEqual([4]);
    expect(next.appeared[0].name).toBe("Comer");
  });

  it("names a new avatar in a move only in the frame after the change", () => {
    const { near, frame } = setUp();
    const other = fakeEntity(2, 15, 10, { avatar: "fox" });
    near.add(other);
    frame(1);
    moveTo(other, 15, 11, 2);
    other.avatar = "owl"; other.avatarTick = 2;
    expect(frame(2)!.moved[0].avatar).toBe("owl");
    moveTo(other, 15, 12, 3);
    expect(frame(3)!.moved[0].avatar).toBe("");
  });

  it("a frame skipped (backpressure) is caught up by the next: changes since the last frame sent, newest position only", () => {
    const { near, frame } = setUp();
    const other = fakeEntity(2, 15, 10);
    near.add(other);
    frame(1);
    moveTo(other, 15, 11, 3);
    moveTo(other, 15, 12, 5); // frames of ticks 2..5 were skipped
    const caughtUp = frame(6)!;
    expect(caughtUp.moved).toHaveLength(1);
    expect(caughtUp.moved[0]).toMatchObject({ visitorId: 2, y: 12, seq: 3 });
  });

  it("the visitor's own move alone is a frame: its ack", () => {
    const { near, me, frame } = setUp();
    near.add(fakeEntity(2, 15, 10));
    frame(1);
    me.seq = 9;
    expect(frame(2)).toMatchObject({ ackSeq: 9, appeared: [], moved: [], gone: [] });
    expect(frame(3)).toBeUndefined();
  });

  it("after restart (its socket came back) the next frame names everyone again, and goes out even if empty", () => {
    const { near, view, frame } = setUp();
    near.add(fakeEntity(2, 15, 10));
    frame(1);
    view.restart();
    expect(ids(frame(2)!.appeared)).toEqual([2]);
    const alone = setUp();
    alone.frame(1);
    alone.view.restart();
    expect(alone.frame(2)).toMatchObject({ appeared: [], gone: [] });
  });

  it("counts the neighbour entries of the frame it built", () => {
    const { near, view, frame } = setUp();
    const a = fakeEntity(2, 15, 10);
    near.add(a, fakeEntity(3, 16, 10));
    frame(1);
    expect(view.lastUpdates).toBe(2);
    moveTo(a, 80, 80, 2);
    frame(2);
    expect(view.lastUpdates).toBe(1); // one gone
  });
});

describe("VisitorView: areas and booths", () => {
  it("areas entered and left, booths near and far: the difference from what the client was told, once", () => {
    const { frame } = setUp();
    const first = frame(1, new Set(["aisle", "acme"]), new Set(["acme"]))!;
    expect([...first.areasEntered].sort()).toEqual(["acme", "aisle"]);
    expect(first.boothsNear).toEqual(["acme"]);
    expect(frame(2, new Set(["aisle", "acme"]), new Set(["acme"]))).toBeUndefined();
    const next = frame(3, new Set(["aisle", "stage"]), new Set(["bolt"]))!;
    expect(next).toMatchObject({ areasEntered: ["stage"], areasLeft: ["acme"], boothsNear: ["bolt"], boothsFar: ["acme"] });
  });

  it("a place left and entered again between two frames is no news", () => {
    const { me, frame } = setUp();
    frame(1, new Set(["stage"]));
    me.seq++; // it moved out and back in: only its ack is news
    const next = frame(2, new Set(["stage"]))!;
    expect(next.areasEntered).toEqual([]);
    expect(next.areasLeft).toEqual([]);
  });

  it("after a handoff only what the old zone did not tell is news: the carried told state", () => {
    const { frame, view } = setUp({ areas: ["aisle"], booths: ["east-1"] });
    const first = frame(1, new Set(["aisle", "stage"]), new Set(["east-1", "east-2"]))!;
    expect(first.areasEntered).toEqual(["stage"]); // not the aisle, which the old zone told
    expect(first.boothsNear).toEqual(["east-2"]);
    expect(view.toldPlaces()).toEqual({ areas: ["aisle", "stage"], booths: ["east-1", "east-2"] });
    const carried = setUp({ areas: ["aisle"], booths: [] });
    expect(carried.frame(1, new Set())!.areasLeft).toEqual(["aisle"]);
  });
});

describe("encodedEntry", () => {
  it("encodes a state once per change and form: every viewer copies the same bytes", () => {
    const entity = fakeEntity(2, 15, 10, { changedTick: 4 });
    const moved = encodedEntry(entity, "moved", false);
    expect(encodedEntry(entity, "moved", false)).toBe(moved);
    expect(encodedEntry(entity, "appeared", false)).not.toBe(moved);
    expect(encodedEntry(entity, "moved", true)).not.toBe(moved);
    entity.x = 16; entity.changedTick = 5;
    const after = encodedEntry(entity, "moved", false);
    expect(after).not.toBe(moved);
    expect(tsunagi.v1.ExpoFrame.decode(after).moved[0].x).toBe(16);
  });

  it("two viewers in one tick share the neighbour's encoding", () => {
    const near = new FakeNeighbourhood();
    const shared = fakeEntity(3, 12, 10);
    const [a, b] = [fakeEntity(1, 10, 10), fakeEntity(2, 14, 10)];
    near.add(a, b, shared);
    new VisitorView({ neighbourhood: near, radius: RADIUS }, 0).frame(a, none, none, 1, 0);
    const encoded = shared.appeared;
    expect(encoded).toBeDefined();
    new VisitorView({ neighbourhood: near, radius: RADIUS }, 0).frame(b, none, none, 1, 0);
    expect(shared.appeared).toBe(encoded);
  });
});
