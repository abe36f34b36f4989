/**
 * A zone room's link to the other zones of its hall: ghost batches, so that visitors see
 * each other across a border, and the handoff of visitors who walk across one. Both
 * sides of a handoff are ONE explicit state machine per visitor id (compare LiveKit's
 * MigrateState); "served here" is the absence of a state.
 *
 *   going out (this zone hands a visitor on):
 *     served here --crosses the border--> Reserving --seat reserved--> Told --welcomed there--> Arrived
 *     Reserving --reservation failed--> Failed --HANDOFF_RETRY_MS--> served here (crosses again if still past)
 *     Reserving --leaves--> gone (aborted: the reservation lapses unused)
 *     Told | Arrived --leaves--> Lingering --a ghost of it arrives | LINGER_MS--> gone from here
 *     Told | Arrived --not followed for HANDOFF_STALE_MS--> served here (offered again)
 *   coming in (a visitor handed to this zone):
 *     nothing, its ghost, or Lingering --welcome--> HandedIn --REPLAY_GRACE_MS--> served here
 *     HandedIn --crosses the border--> Reserving
 *
 * A visitor has one state at most, so it is never both coming in and going out: a
 * handoff into this zone of a visitor still served here is refused ROOM_CONFLICT.
 *
 * Frames: the old zone goes on sending frames while the client joins the next one, so
 * the client sees no gap. The next zone tells the old one of the arrival before it sends
 * its welcome (the client switches on the welcome and ignores the old zone from then
 * on), and the old zone sends no frame from then on (Arrived): none is sent unheard.
 *
 * @example
 *   const zones = new ZoneLink({ hallId, roomId, layout, zone, handoffMargin: 1, interestRadius: 20, crowd, ... });
 *   zones.moved(visitor);                               // after each move: hands it on past the border
 *   const entity = await zones.admit(payload);          // a join with a verified handoff
 *   zones.receiveGhosts(batch);                         // a neighbour's batch
 *   zones.publishGhosts(tick); zones.expire(Date.now()); // at the start of each tick
 */
import { ServerError } from "@colyseus/core";
import { ErrorCode, tsunagi } from "../../proto/index.ts";
import type { Logger } from "../../server/observability/logging.ts";
import type { HallLayout, ZoneLayout } from "./HallLayout.ts";
import { distanceToRect, rectsWithin, zoneAt, zoneRoomId } from "./ZoneGeometry.ts";
import type { Crowd } from "./Crowd.ts";
import type { Entity, HandoffPayload, Visitor } from "./model.ts";

/** A handed-off visitor stays frozen in view this long at most, waiting for the new zone's ghost, ms. */
export const LINGER_MS = 2000;
/** Ghosts of a zone not heard from for this long are dropped (that zone is gone), ms. */
export const GHOST_TTL_MS = 1000;
/** A handoff the client has not followed after this long is offered again, ms. */
export const HANDOFF_STALE_MS = 10_000;
/** After a failed reservation, the next attempt waits this long, ms. */
export const HANDOFF_RETRY_MS = 1000;
/** After a handoff, moves at or below the newest held are replays: dropped quietly for this long, ms. */
export const REPLAY_GRACE_MS = 3000;

/** Where a visitor is in a handoff, as seen by this zone. Served here with no handoff under way: no state. */
export enum HandoffState {
  /** Going out: past the border; a seat in the next zone is being reserved. */
  Reserving = "reserving",
  /** Going out: told to go (ZoneHandoff sent); still served here, frames included. */
  Told = "told",
  /** Going out: the next zone welcomed it; its client listens there now, so it gets no frames here. */
  Arrived = "arrived",
  /** Going out: the reservation failed; served here, and tried again after a pause. */
  Failed = "failed",
  /** Gone out: left for the next zone; frozen in view here until that zone's ghost of it arrives. */
  Lingering = "lingering",
  /** Came in: welcomed from another zone; moves it replays are dropped quietly for a while. */
  HandedIn = "handedIn",
}

/** The states each state may move to; SERVED is "no handoff under way". */
const SERVED = "served";
type Step = HandoffState | typeof SERVED;
const transitions: Record<Step, readonly Step[]> = {
  [SERVED]: [HandoffState.Reserving, HandoffState.HandedIn],
  [HandoffState.Reserving]: [HandoffState.Told, HandoffState.Failed, SERVED],
  [HandoffState.Told]: [HandoffState.Arrived, HandoffState.Lingering, SERVED],
  [HandoffState.Arrived]: [HandoffState.Lingering, SERVED],
  [HandoffState.Failed]: [SERVED],
  [HandoffState.Lingering]: [HandoffState.HandedIn, SERVED],
  [HandoffState.HandedIn]: [HandoffState.Reserving, SERVED],
};

/** One visitor's handoff. */
interface Link {
  state: HandoffState;
  /** The other zone: where it is going, or where it came from. */
  zoneId: string;
  /** When it entered this state, ms. */
  since: number;
  /** The visitor, while it is connected here (not once it lingers, nor before it is welcomed). */
  visitor?: Visitor;
}

/** What a ZoneLink needs of its zone room. */
export interface ZoneLinkHost {
  readonly hallId: string;
  readonly roomId: string;
  readonly layout: HallLayout;
  /** This room's zone; undefined for an unzoned hall (no border, no neighbours). */
  readonly zone?: ZoneLayout;
  /** Metres past the border before a visitor is handed on, and within which visitors see each other. */
  readonly handoffMargin: number;
  readonly interestRadius: number;
  /** Everyone shown here: ghosts are added to it, lingering visitors stay in it. */
  readonly crowd: Crowd;
  /** This room's visitors. */
  visitors(): Iterable<Visitor>;
  /** The tick counter: a change made now shows in frames of tick() + 1 onwards. */
  tick(): number;
  now(): number;
  /** Reserves the visitor a seat in `roomId` carrying `payload` (signed); rejects when that room is not open or full. */
  reserveSeat(visitor: Visitor, roomId: string, payload: HandoffPayload): Promise<unknown>;
  send(visitor: Visitor, envelope: tsunagi.v1.IEnvelope): void;
  /** Tells room `roomId`, which the visitor came from, that it arrived here; resolves (never rejects) once told or given up. */
  announceArrival(roomId: string, visitorId: number): Promise<void>;
  /** Sends a neighbouring zone the visitors of this one within its reach. */
  publishGhosts(zoneId: string, batch: tsunagi.v1.IGhostBatch): void;
  /** Stops the visitor's frames (its client listens to the next zone now), or starts them again. */
  pauseFrames(visitor: Visitor): void;
  resumeFrames(visitor: Visitor): void;
  /** A visitor that lingered out of view: drop it from the hall's register unless another zone has it. */
  forget(visitorId: number): void;
  /** Counts a reservation's outcome (tsunagi_expo_handoffs_total). */
  counted(outcome: "reserved" | "failed"): void;
  readonly logger: Pick<Logger, "warn" | "debug">;
  /** Runs work nobody waits for; a failure is logged and counted. */
  background(work: Promise<unknown>, what: string): void;
}

export class ZoneLink {
  /** The zone room this links. */
  private readonly host: ZoneLinkHost;
  /** Handoffs under way, by visitor id: at most one state per visitor. */
  private readonly links = new Map<number, Link>();
  /** Per neighbouring zone: whether the last batch sent it was empty (an empty batch matters once). */
  private readonly lastBatchEmpty = new Map<string, boolean>();
  /** Zones within reach of this one: their ghosts show here, this zone's show there. */
  readonly neighbours: readonly ZoneLayout[];

  constructor(host: ZoneLinkHost) {
    this.host = host;
    const zone = host.zone;
    const reach = host.interestRadius + host.handoffMargin;
    this.neighbours = zone ? host.layout.zones.filter((z) => z !== zone && rectsWithin(z.rect, zone.rect, reach)) : [];
  }

  /** The visitor's handoff state here; undefined when it is served here with none under way (or unknown). */
  state(visitorId: number): HandoffState | undefined {
    return this.links.get(visitorId)?.state;
  }

  // --- going out ------------------------------------------------------------------------

  /** After a visitor's move: hands it to the zone it walked into, once it is past this zone's border by the margin. */
  moved(visitor: Visitor): void {
    const zone = this.host.zone;
    if (!zone) return;
    const state = this.state(visitor.entity.id);
    if (state !== undefined && state !== HandoffState.HandedIn) return;
    const { x, y } = visitor.entity;
    if (distanceToRect(zone.rect, x, y) <= this.host.handoffMargin) return;
    const target = zoneAt(this.host.layout, x, y);
    if (!target || target === zone) return;
    this.host.background(this.handOff(visitor, target), "a zone handoff");
  }

  /** The next zone welcomed a visitor handed from here (it calls this before its welcome): no more frames from here. */
  arrived(visitorId: number): boolean {
    const link = this.links.get(visitorId);
    if (link?.state !== HandoffState.Told) return false;
    this.step(visitorId, link, HandoffState.Arrived);
    if (link.visitor) this.host.pauseFrames(link.visitor);
    return true;
  }

  /** A visitor of this room left: true when it stays in view, lingering (handed on), false when it is gone. */
  left(visitor: Visitor): boolean {
    const id = visitor.entity.id;
    const link = this.links.get(id);
    if (link?.state === HandoffState.Told || link?.state === HandoffState.Arrived) {
      this.step(id, link, HandoffState.Lingering);
      link.visitor = undefined;
      return true;
    }
    if (link) this.step(id, link, SERVED); // Reserving: aborted; Failed, HandedIn: simply gone
    return false;
  }

  private async handOff(visitor: Visitor, target: ZoneLayout): Promise<void> {
    const { host } = this;
    const entity = visitor.entity;
    const id = entity.id;
    const link = this.enter(id, HandoffState.Reserving, target.id, visitor);
    const roomId = zoneRoomId(host.hallId, host.layout, target.id);
    const { areas: toldAreas, booths: toldBooths } = visitor.view.toldPlaces();
    const payload: HandoffPayload = {
      roomId, fromRoomId: host.roomId, fromZoneId: host.zone!.id, visitorId: id, subject: visitor.subject,
      name: entity.name, role: entity.role, avatar: entity.avatar,
      x: entity.x, y: entity.y, heading: entity.heading, seq: entity.seq, sentAtMs: entity.sentAtMs,
      areas: [...visitor.areas], booths: [...visitor.booths], toldAreas, toldBooths, mutedUntil: visitor.mutedUntil,
    };
    let reservation: unknown;
    try {
      reservation = await host.reserveSeat(visitor, roomId, payload);
    } catch (error) {
      host.counted("failed");
      host.logger.warn({ hallId: host.hallId, visitorId: id, to: target.id, err: error }, `handoff of visitor ${id} to zone ${target.id} failed; it stays in zone ${host.zone!.id} and is retried`);
      if (this.links.get(id) === link) this.step(id, link, HandoffState.Failed);
      return;
    }
    if (this.links.get(id) !== link) return; // it left meanwhile: the reservation lapses unused
    this.step(id, link, HandoffState.Told);
    host.counted("reserved");
    host.send(visitor, { zoneHandoff: { zoneId: target.id, roomId, reservationJson: JSON.stringify(reservation) } });
    host.logger.debug({ hallId: host.hallId, visitorId: id, from: host.zone!.id, to: target.id }, `visitor ${id} handed from zone ${host.zone!.id} to ${target.id}`);
  }

  // --- coming in ------------------------------------------------------------------------

  /**
   * Admits a visitor handed to this zone (a join whose handoff verified): tells the zone
   * it came from, then makes its entity (its ghost here, if there is one) this room's,
   * shown from the next tick. The caller welcomes it right after, without awaiting
   * anything in between, so the old zone stops its frames before the client can switch.
   * @throws ServerError ROOM_CONFLICT when the visitor is still served here.
   */
  async admit(payload: HandoffPayload): Promise<Entity> {
    const { crowd } = this.host;
    const id = payload.visitorId;
    this.refuseIfServedHere(id);
    await this.host.announceArrival(payload.fromRoomId, id);
    this.refuseIfServedHere(id);
    const entity = crowd.get(id) ?? crowd.create(id, payload.x, payload.y, this.host.now());
    if (payload.seq >= entity.seq) {
      entity.seq = payload.seq; entity.sentAtMs = payload.sentAtMs; entity.heading = payload.heading;
      crowd.move(entity, payload.x, payload.y);
    }
    entity.name = payload.name; entity.role = payload.role; entity.avatar = payload.avatar;
    entity.ghostZone = undefined;
    entity.changedTick = entity.avatarTick = this.host.tick() + 1;
    crowd.add(entity);
    this.enter(id, HandoffState.HandedIn, payload.fromZoneId);
    return entity;
  }

  /** Whether a move at or below the newest held is an expected replay: the visitor was handed in moments ago. */
  replaying(visitorId: number): boolean {
    return this.state(visitorId) === HandoffState.HandedIn;
  }

  private refuseIfServedHere(visitorId: number): void {
    if (this.host.crowd.get(visitorId)?.local) throw new ServerError(ErrorCode.ROOM_CONFLICT, `visitor ${visitorId} is already here`);
  }

  // --- ghost batches --------------------------------------------------------------------

  /** Sends each neighbouring zone the visitors of this one within its reach (at the start of each tick). */
  publishGhosts(tick: number): void {
    const zone = this.host.zone;
    if (!zone) return;
    const reach = this.host.interestRadius + this.host.handoffMargin;
    for (const neighbour of this.neighbours) {
      const rows: tsunagi.v1.IVisitorState[] = [];
      for (const visitor of this.host.visitors()) {
        const e = visitor.entity;
        if (distanceToRect(neighbour.rect, e.x, e.y) <= reach) {
          rows.push({ visitorId: e.id, x: e.x, y: e.y, heading: e.heading, seq: e.seq, sentAtMs: e.sentAtMs, avatar: e.avatar, name: e.name, role: e.role });
        }
      }
      // An empty batch matters once (it clears the neighbour's ghosts from here), not every tick.
      if (rows.length === 0 && this.lastBatchEmpty.get(neighbour.id)) continue;
      this.lastBatchEmpty.set(neighbour.id, rows.length === 0);
      this.host.publishGhosts(neighbour.id, { zoneId: zone.id, tick, visitors: rows });
    }
  }

  /** A neighbour's batch: its border visitors become (or update) ghosts here; its ghosts it no longer names go. */
  receiveGhosts(batch: tsunagi.v1.GhostBatch): void {
    const from = batch.zoneId;
    if (!from || from === this.host.zone?.id) return;
    const { crowd } = this.host;
    const now = this.host.now();
    const changeTick = this.host.tick() + 1;
    const seen = new Set<number>();
    for (const { visitorId: id, x, y, heading, seq, sentAtMs, avatar, name, role } of batch.visitors as tsunagi.v1.VisitorState[]) {
      seen.add(id);
      let entity = crowd.get(id);
      if (entity?.local) continue;
      const link = this.links.get(id);
      const lingering = link?.state === HandoffState.Lingering;
      if (!entity) {
        entity = crowd.create(id, x, y, now);
        crowd.add(entity);
        entity.changedTick = entity.avatarTick = changeTick;
      } else if (seq > entity.seq || lingering) {
        if (x !== entity.x || y !== entity.y || heading !== entity.heading || seq !== entity.seq) entity.changedTick = changeTick;
        crowd.move(entity, x, y);
      }
      if (entity.avatar !== avatar) { entity.avatar = avatar; entity.avatarTick = entity.changedTick = changeTick; }
      entity.ghostZone = from;
      entity.heardAt = now;
      entity.name = name; entity.role = role;
      if (seq > entity.seq) { entity.seq = seq; entity.heading = heading; entity.sentAtMs = sentAtMs; }
      if (lingering) this.step(id, link, SERVED); // picked up: a ghost from now on
    }
    for (const entity of crowd.values()) {
      if (entity.ghostZone === from && !seen.has(entity.id)) crowd.remove(entity);
    }
  }

  // --- time -----------------------------------------------------------------------------

  /** Drops ghosts not heard of and visitors lingering too long; retries failed and stale handoffs (at each tick's start). */
  expire(now: number): void {
    const { crowd } = this.host;
    for (const entity of crowd.values()) {
      if (entity.ghostZone !== undefined && now - entity.heardAt > GHOST_TTL_MS) crowd.remove(entity);
    }
    for (const [id, link] of this.links) {
      const age = now - link.since;
      switch (link.state) {
        case HandoffState.Lingering:
          if (age <= LINGER_MS) break;
          // No ghost came from the zone it was handed to: it never arrived there, or walked off.
          this.step(id, link, SERVED);
          { const entity = crowd.get(id); if (entity && !entity.local) crowd.remove(entity); }
          this.host.forget(id);
          break;
        case HandoffState.Told:
        case HandoffState.Arrived:
          if (age <= HANDOFF_STALE_MS) break;
          this.host.logger.warn({ hallId: this.host.hallId, visitorId: id, to: link.zoneId }, `visitor ${id} did not follow its handoff to zone ${link.zoneId}; offering it again`);
          this.offerAgain(id, link);
          break;
        case HandoffState.Failed:
          if (age > HANDOFF_RETRY_MS) this.offerAgain(id, link);
          break;
        case HandoffState.HandedIn:
          if (age > REPLAY_GRACE_MS) this.step(id, link, SERVED);
          break;
        case HandoffState.Reserving:
          break; // the reservation settles it, either way
      }
    }
  }

  /** Back to served here, frames included; handed on again if it is still past the border. */
  private offerAgain(visitorId: number, link: Link): void {
    const visitor = link.visitor;
    const wasPaused = link.state === HandoffState.Arrived;
    this.step(visitorId, link, SERVED);
    if (!visitor) return;
    if (wasPaused) this.host.resumeFrames(visitor);
    this.moved(visitor);
  }

  // --- the state machine ----------------------------------------------------------------

  /** Starts a handoff for a visitor served here (or lingering, for a return): its new link. */
  private enter(visitorId: number, state: HandoffState, zoneId: string, visitor?: Visitor): Link {
    const current = this.links.get(visitorId);
    this.check(visitorId, current?.state ?? SERVED, state);
    const link: Link = { state, zoneId, since: this.host.now(), visitor: visitor ?? current?.visitor };
    this.links.set(visitorId, link);
    return link;
  }

  /** Moves an existing link on; SERVED ends it. */
  private step(visitorId: number, link: Link, to: Step): void {
    this.check(visitorId, link.state, to);
    if (to === SERVED) {
      if (this.links.get(visitorId) === link) this.links.delete(visitorId);
      return;
    }
    link.state = to;
    link.since = this.host.now();
  }

  /** A transition the machine does not have is a bug in the room, never a client's doing. */
  private check(visitorId: number, from: Step, to: Step): void {
    if (!transitions[from].includes(to)) throw new Error(`zone handoff of visitor ${visitorId}: no transition from ${from} to ${to}`);
  }
}
