/**
 * The hall's booths and areas, and which of them a visitor is in or near: after each
 * move, the areas (booths included) it stands in and the booths within the booth radius,
 * and the booth visits that starts or ends (ExpoAnalytics). What the client is told of
 * them is VisitorView's: its next frame says the difference.
 *
 * @example
 *   const places = new HallPlaces(layout, config.expo.boothRadius, analytics);
 *   places.update(visitor, Date.now());            // after each move
 *   if (places.boothIds.has(target)) ...
 */
import { AreaIndex } from "./AreaIndex.ts";
import type { HallLayout } from "./HallLayout.ts";
import type { Visitor } from "./model.ts";

/** Where booth visits are counted (ExpoAnalytics). */
export interface BoothVisits {
  enterBooth(subject: string, boothId: string, now: number): void;
  leaveBooth(subject: string, boothId: string, now: number): void;
}

export class HallPlaces {
  /** Every booth id, and every area id (booths included: a booth is an area with its id). */
  readonly boothIds: ReadonlySet<string>;
  readonly areaIds: ReadonlySet<string>;
  /** Which areas (booths included) a point is in. */
  private readonly areaIndex: AreaIndex;
  /** Which booths a point is within the booth radius of. */
  private readonly boothIndex: AreaIndex;
  /** Where visits are counted. */
  private readonly visits: BoothVisits;
  /** Ids found at one point (a handful), reused by every update: no set per move. */
  private readonly found: string[] = [];
  private readonly collect = (id: string) => { this.found.push(id); };

  constructor(layout: HallLayout, boothRadius: number, visits: BoothVisits) {
    const { width, height } = layout;
    const booths = layout.booths.map((b) => ({ id: b.id, rect: b.area }));
    const areas = [...booths, ...layout.areas.map((a) => ({ id: a.id, rect: a.rect }))];
    this.areaIndex = new AreaIndex(areas, width, height, 0);
    this.boothIndex = new AreaIndex(booths, width, height, boothRadius);
    this.boothIds = new Set(booths.map((b) => b.id));
    this.areaIds = new Set(areas.map((a) => a.id));
    this.visits = visits;
  }

  /** The visitor's areas and booths near at its position now; booth visits end and start accordingly. */
  update(visitor: Visitor, now: number): void {
    const { x, y } = visitor.entity;
    const found = this.found;
    found.length = 0;
    this.areaIndex.query(x, y, this.collect);
    for (const id of visitor.areas) {
      if (found.includes(id)) continue;
      visitor.areas.delete(id);
      if (this.boothIds.has(id)) this.visits.leaveBooth(visitor.subject, id, now);
    }
    for (const id of found) {
      if (visitor.areas.has(id)) continue;
      visitor.areas.add(id);
      if (this.boothIds.has(id)) this.visits.enterBooth(visitor.subject, id, now);
    }
    if (this.boothIndex.size === 0) return;
    found.length = 0;
    this.boothIndex.query(x, y, this.collect);
    for (const id of visitor.booths) if (!found.includes(id)) visitor.booths.delete(id);
    for (const id of found) visitor.booths.add(id);
  }

  /** A visitor handed in from another zone: its places came with it, and its booth visit goes on here. */
  arrived(visitor: Visitor, now: number): void {
    for (const id of visitor.areas) if (this.boothIds.has(id)) this.visits.enterBooth(visitor.subject, id, now);
  }
}
