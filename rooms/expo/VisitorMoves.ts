/**
 * A visitor's moves (VisitorMove, up to `expo.maxMoveHz` a second). Each is checked (the
 * rate, finite numbers, a seq above the newest held, a position inside the hall, the
 * avatar's length) and applied: the entity's position, heading and seq, shown from the
 * next tick; where the visitor now is (HallPlaces); then the zone link may hand it on.
 *
 * A refusal is a coded error to the visitor (an Error envelope with correlation id 0 on
 * the protobuf channel, as expo.proto says, and a room error), but at most one a second
 * per code, the rest only counted: a misbehaving client sends many. A move at or below the newest seq held is
 * dropped quietly while the visitor replays the moves the zone it came from applied.
 *
 * @example
 *   const moves = new VisitorMoves({ width, height, maxMoveHz: 20, ... });
 *   room.onEnvelope("visitorMove", (client, envelope) => moves.apply(visitorOf(client), envelope.visitorMove));
 */
import { ErrorCode, tsunagi } from "../../proto/index.ts";
import { REFUSAL_INTERVAL_MS } from "../shared/RefusalThrottle.ts";
import type { Visitor } from "./model.ts";

export { REFUSAL_INTERVAL_MS };
/** Longest avatar id, characters. */
export const MAX_AVATAR = 64;

/** What VisitorMoves needs of its zone room. */
export interface VisitorMovesHost {
  /** The hall's size: positions outside 0..width × 0..height are refused. */
  readonly width: number;
  readonly height: number;
  readonly maxMoveHz: number;
  /** Moves applied and refused (tsunagi_expo_moves_total, tsunagi_expo_moves_refused_total). */
  readonly metrics: { moves: number; movesRefused: number };
  /** The tick counter: a change made now shows in frames of tick() + 1 onwards. */
  tick(): number;
  now(): number;
  /** Moves the visitor's entity in the interest grid. */
  place(visitor: Visitor, x: number, y: number): void;
  /** Updates the areas and booths around the visitor's new position. */
  placed(visitor: Visitor, now: number): void;
  /** Whether the visitor was just handed in from another zone (its replays are expected). */
  replaying(visitorId: number): boolean;
  /** After a move: the zone link hands the visitor on if it walked past the border. */
  moved(visitor: Visitor): void;
  /** A coded error to the visitor (an Error envelope and a room error; logged and counted), and a refusal only counted. */
  tell(visitor: Visitor, code: number, message: string): void;
  count(code: number): void;
}

export class VisitorMoves {
  /** The zone room: the hall's bounds, the grid, the counters. */
  private readonly host: VisitorMovesHost;

  constructor(host: VisitorMovesHost) {
    this.host = host;
  }

  /** Applies one move of `visitor`, or refuses it (the visitor stays where it was). */
  apply(visitor: Visitor, move: tsunagi.v1.IVisitorMove): void {
    const { host } = this;
    const metrics = host.metrics;
    if (!visitor.moves.take()) {
      metrics.movesRefused++;
      return this.refuse(visitor, ErrorCode.RATE_LIMITED, `more than ${host.maxMoveHz} moves/s: excess dropped`);
    }
    const { x, y, heading, seq, sentAtMs } = move as tsunagi.v1.VisitorMove;
    if (!Number.isFinite(x) || !Number.isFinite(y) || !Number.isFinite(heading) || !Number.isFinite(sentAtMs)) {
      metrics.movesRefused++;
      return this.refuse(visitor, ErrorCode.WRONG_TYPE, "move has a NaN or infinite value");
    }
    const entity = visitor.entity;
    if (seq <= entity.seq) {
      metrics.movesRefused++;
      // Replays after a handoff are expected; anything else is a client bug worth telling.
      if (!host.replaying(entity.id)) this.refuse(visitor, ErrorCode.WRONG_TYPE, `move seq ${seq} is not above ${entity.seq}, the newest held: dropped`);
      return;
    }
    const { width, height } = host;
    if (x < 0 || y < 0 || x > width || y > height) {
      metrics.movesRefused++;
      return this.refuse(visitor, ErrorCode.OUT_OF_HALL, `position (${x}, ${y}) is outside the hall (0..${width} × 0..${height}): you stay at (${entity.x}, ${entity.y})`);
    }
    if (move.avatar) {
      if (move.avatar.length > MAX_AVATAR) {
        this.refuse(visitor, ErrorCode.WRONG_TYPE, `avatar longer than ${MAX_AVATAR} characters: kept the old one`);
      } else if (move.avatar !== entity.avatar) {
        entity.avatar = move.avatar;
        entity.avatarTick = host.tick() + 1;
      }
    }
    metrics.moves++;
    entity.seq = seq;
    entity.heading = heading;
    entity.sentAtMs = sentAtMs;
    entity.changedTick = host.tick() + 1;
    host.place(visitor, x, y);
    host.placed(visitor, host.now());
    host.moved(visitor);
  }

  /** A coded error, at most once a second per code per visitor; the rest are counted. */
  private refuse(visitor: Visitor, code: number, message: string): void {
    const now = this.host.now();
    const last = visitor.refusedAt.get(code) ?? 0;
    if (now - last < REFUSAL_INTERVAL_MS) return this.host.count(code);
    visitor.refusedAt.set(code, now);
    this.host.tell(visitor, code, message);
  }
}
