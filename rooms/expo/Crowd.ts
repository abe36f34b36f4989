/**
 * Everyone a zone room shows: its visitors, ghosts of the neighbouring zones' visitors,
 * and visitors handed on who linger for a moment; one entity per visitor id, by id and by
 * position in the interest grid. The room, its ZoneLink and its visitors' views share it.
 *
 * @example
 *   const crowd = new Crowd(hall.width, hall.height, interestRadius);
 *   const entity = crowd.create(visitorId, spawn.x, spawn.y, Date.now());
 *   crowd.add(entity);
 *   crowd.move(entity, move.x, move.y);
 *   crowd.grid.queryRadius(x, y, interestRadius, visit);
 */
import { InterestGrid } from "./InterestGrid.ts";
import type { Entity, Visitor } from "./model.ts";

export class Crowd {
  /** Everyone shown here, by visitor id. */
  private readonly byId = new Map<number, Entity>();
  /** The same entities by position: who is within r of a point. */
  readonly grid: InterestGrid<Entity>;

  constructor(width: number, height: number, interestRadius: number) {
    this.grid = new InterestGrid<Entity>(width, height, Math.max(1, interestRadius));
  }

  get(visitorId: number): Entity | undefined {
    return this.byId.get(visitorId);
  }

  /** This room's visitor with that id; undefined for a ghost, one handed on, or no one. */
  localById(visitorId: number): Visitor | undefined {
    return this.byId.get(visitorId)?.local;
  }

  /** A new entity at (x, y), not yet in the crowd (see add): nameless, never moved, not yet encoded. */
  create(visitorId: number, x: number, y: number, now: number): Entity {
    return {
      id: visitorId, name: "", role: "visitor", avatar: "", x, y, heading: 0, seq: 0, sentAtMs: 0,
      gridCell: -1, gridSlot: -1, changedTick: 0, avatarTick: 0, heardAt: now, encodedTick: -1,
    };
  }

  /** Shows `entity` here: by its id, and in the grid unless it is there already. */
  add(entity: Entity): void {
    this.byId.set(entity.id, entity);
    if (!(entity.gridCell >= 0)) this.grid.insert(entity);
  }

  move(entity: Entity, x: number, y: number): void {
    this.grid.move(entity, x, y);
  }

  /** Takes `entity` out of view (and out of the id map, unless another entity has its id by now). */
  remove(entity: Entity): void {
    this.grid.remove(entity);
    if (this.byId.get(entity.id) === entity) this.byId.delete(entity.id);
  }

  /** Everyone shown here; removing entities while iterating is safe. */
  values(): IterableIterator<Entity> {
    return this.byId.values();
  }
}
