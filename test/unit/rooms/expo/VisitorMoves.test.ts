/**
 * VisitorMoves against a fake zone room: a move is applied (position, seq, heading, the
 * tick it shows from, places, the zone link) or refused with a code (rate, NaN, stale
 * seq, outside the hall, long avatar), a replay after a handoff is dropped quietly, and
 * one refusal a second per code is told, the rest only counted.
 */
import { describe, expect, it } from "vitest";
import { ErrorCode } from "../../../../proto/index.ts";
import { REFUSAL_INTERVAL_MS, VisitorMoves } from "../../../../rooms/expo/VisitorMoves.ts";
import { FakeVisitorMovesHost } from "../../../fixtures/fakes/FakeVisitorMovesHost.ts";
import { fakeEntity, fakeVisitor } from "../../../fixtures/fakes/FakeVisitor.ts";

function setUp() {
  const room = new FakeVisitorMovesHost();
  const visitor = fakeVisitor(fakeEntity(1, 50, 30, { seq: 4, avatar: "fox" }));
  return { room, moves: new VisitorMoves(room), visitor };
}

const move = (seq: number, x: number, y: number, fields = {}) => ({ seq, x, y, heading: 1.5, sentAtMs: 777, avatar: "", ...fields });

describe("VisitorMoves", () => {
  it("applies a move: position, seq, heading and sender's clock, shown from the next tick; then places and the zone link", () => {
    const { room, moves, visitor } = setUp();
    moves.apply(visitor, move(5, 60, 20));
    expect(visitor.entity).toMatchObject({ x: 60, y: 20, seq: 5, heading: 1.5, sentAtMs: 777, changedTick: room.tickNo + 1 });
    expect(room.placements).toEqual([[1, 60, 20]]);
    expect([room.placesUpdated, room.linked]).toEqual([[1], [1]]);
    expect(room.metrics).toEqual({ moves: 1, movesRefused: 0 });
  });

  it("a new avatar shows from the next tick; one too long is refused but the move applies", () => {
    const { room, moves, visitor } = setUp();
    moves.apply(visitor, move(5, 60, 20, { avatar: "owl" }));
    expect(visitor.entity).toMatchObject({ avatar: "owl", avatarTick: room.tickNo + 1 });
    room.tickNo = 50;
    moves.apply(visitor, move(6, 61, 20, { avatar: "x".repeat(65) }));
    expect(visitor.entity).toMatchObject({ avatar: "owl", avatarTick: 41, seq: 6 });
    expect(room.told).toMatchObject([{ code: ErrorCode.WRONG_TYPE, message: expect.stringContaining("avatar") }]);
  });

  it("refuses NaN WRONG_TYPE, a seq not above the newest WRONG_TYPE, a position outside the hall OUT_OF_HALL: the visitor stays", () => {
    const { room, moves, visitor } = setUp();
    moves.apply(visitor, move(5, Number.NaN, 20));
    room.time += REFUSAL_INTERVAL_MS;
    moves.apply(visitor, move(4, 60, 20));
    moves.apply(visitor, move(5, 100.5, 20));
    expect(room.told.map((t) => t.code)).toEqual([ErrorCode.WRONG_TYPE, ErrorCode.WRONG_TYPE, ErrorCode.OUT_OF_HALL]);
    expect(room.told[2].message).toContain("you stay at (50, 30)");
    expect(visitor.entity).toMatchObject({ x: 50, y: 30, seq: 4 });
    expect(room.metrics).toEqual({ moves: 0, movesRefused: 3 });
    expect(room.linked).toEqual([]);
  });

  it("drops a replay quietly while the visitor was just handed in", () => {
    const { room, moves, visitor } = setUp();
    room.handedIn.add(1);
    moves.apply(visitor, move(3, 60, 20));
    expect(room.told).toEqual([]);
    expect(room.counted).toEqual([]);
    expect(room.metrics.movesRefused).toBe(1);
  });

  it("refuses moves above the rate RATE_LIMITED", () => {
    const { room, moves, visitor } = setUp();
    for (let seq = 5; seq < 5 + 21; seq++) moves.apply(visitor, move(seq, 60, 20)); // the burst is 20
    expect(room.metrics).toEqual({ moves: 20, movesRefused: 1 });
    expect(room.told).toMatchObject([{ code: ErrorCode.RATE_LIMITED }]);
  });

  it("tells one refusal a second per code and only counts the rest", () => {
    const { room, moves, visitor } = setUp();
    moves.apply(visitor, move(1, 60, 20));
    moves.apply(visitor, move(2, 60, 20));
    moves.apply(visitor, move(9, 500, 20));
    expect(room.told.map((t) => t.code)).toEqual([ErrorCode.WRONG_TYPE, ErrorCode.OUT_OF_HALL]);
    expect(room.counted).toEqual([ErrorCode.WRONG_TYPE]);
    room.time += REFUSAL_INTERVAL_MS;
    moves.apply(visitor, move(3, 60, 20));
    expect(room.told.map((t) => t.code)).toEqual([ErrorCode.WRONG_TYPE, ErrorCode.OUT_OF_HALL, ErrorCode.WRONG_TYPE]);
  });
});
