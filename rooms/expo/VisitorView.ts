/**
 * What one visitor was last told, and the frame it gets next.
 *
 * A frame is the difference between what the client was told and what is so now:
 * neighbours within the interest radius that appeared (full state), moved since its last
 * frame (newest position only) or are gone; booths that came near or went far, and areas
 * entered or left; and `ack_seq`, its own newest move applied. Nothing is queued between
 * frames: all of it is derived at frame time from the told state, so a visitor that
 * skipped frames (backpressure) catches up in one, and a visitor handed over from another
 * zone, which carries over what it told of areas and booths, hears only what changed.
 *
 * Each neighbour's state is encoded once per change as a whole ExpoFrame field
 * (`encodedEntry`), and the same bytes are copied into every frame that needs them
 * (FrameEncoder.assemble): encode once, fan out bytes.
 *
 * @example
 *   const view = new VisitorView({ neighbourhood: crowd.grid, radius: 20 }, slices.tick);
 *   // in the visitor's tick slice:
 *   const frame = view.frame(visitor.entity, visitor.areas, visitor.booths, tick, Date.now());
 *   if (frame) sendRaw(visitor.client, frame);
 */
import { tsunagi } from "../../proto/index.ts";
import { assemble, entry } from "./FrameEncoder.ts";
import type { Entity } from "./model.ts";

/** Who is near a point: the interest grid, or a stand-in in tests. */
export interface Neighbourhood {
  /** Calls `visit` once for every entity within `r` of (x, y). */
  queryRadius(x: number, y: number, r: number, visit: (entity: Entity) => void): void;
}

/** What every view asks: where to look, and how far. */
export interface VisitorViewHost {
  readonly neighbourhood: Neighbourhood;
  /** The interest radius, metres. */
  readonly radius: number;
}

/** Areas and booths as a client was told of them (carried from zone to zone by a handoff). */
export interface ToldPlaces {
  areas: readonly string[];
  booths: readonly string[];
}

/** Entries of the frame being built; shared by every view (frames are built one at a time), trimmed after a crowd. */
const scratchEntries: Uint8Array[] = [];
/** Ids gone from the view of the frame being built, likewise shared. */
const scratchGone: number[] = [];
/** Entries kept in the shared scratch after a frame, so one crowded frame does not pin its memory. */
const SCRATCH_KEPT = 4096;

export class VisitorView {
  /** Where to look, and how far. */
  private readonly host: VisitorViewHost;
  /** Who was in view at the last frame: the neighbours the client knows of. */
  private told = new Set<Entity>();
  /** The next frame's view, built in a spare set that then swaps with `told`. */
  private spare = new Set<Entity>();
  /** The tick of the last frame built: neighbours changed after it are news. */
  private lastFrameTick: number;
  /** The newest of the visitor's own moves its client was told applied; -1 forces the next frame out. */
  private ackedSeq = -1;
  /** The areas it is in, as the client last heard them. */
  private readonly toldAreas: Set<string>;
  /** The booths near it, as the client last heard them. */
  private readonly toldBooths: Set<string>;
  /** Neighbour entries (appeared, moved, gone) in the last frame built, for the metrics. */
  lastUpdates = 0;

  /**
   * @param tick the room's tick now: changes made after it are news to this view.
   * @param told what the client was told of areas and booths by the zone it came from.
   */
  constructor(host: VisitorViewHost, tick: number, told?: ToldPlaces) {
    this.host = host;
    this.lastFrameTick = tick;
    this.toldAreas = new Set(told?.areas ?? []);
    this.toldBooths = new Set(told?.booths ?? []);
  }

  /**
   * The frame for `me` at `tick`, ready for `client.enqueueRaw()`, or undefined when there
   * is nothing to tell. Either way what is in view now becomes what the client was told.
   */
  frame(me: Entity, areas: ReadonlySet<string>, booths: ReadonlySet<string>, tick: number, now: number): Uint8Array | undefined {
    const previous = this.told;
    const next = this.spare;
    const since = this.lastFrameTick;
    const entries = scratchEntries;
    let count = 0;
    let bytes = 0;
    // One closure per viewer per frame, none per neighbour.
    this.host.neighbourhood.queryRadius(me.x, me.y, this.host.radius, (other) => {
      if (other === me) return;
      next.add(other);
      let piece: Uint8Array | undefined;
      if (!previous.has(other)) piece = encodedEntry(other, "appeared", false);
      else if (other.changedTick > since) piece = encodedEntry(other, "moved", other.avatarTick > since);
      if (piece) { entries[count++] = piece; bytes += piece.length; }
    });
    const gone = scratchGone;
    gone.length = 0;
    for (const other of previous) if (!next.has(other)) gone.push(other.id);
    previous.clear();
    this.told = next;
    this.spare = previous;
    this.lastFrameTick = tick;

    const areaNews = news(areas, this.toldAreas);
    const boothNews = news(booths, this.toldBooths);
    this.lastUpdates = 0;
    if (count === 0 && gone.length === 0 && !areaNews && !boothNews && this.ackedSeq === me.seq) return undefined;
    const header: tsunagi.v1.IExpoFrame = { tick, serverTimeMs: now, ackSeq: me.seq, gone };
    if (areaNews) { header.areasEntered = areaNews[0]; header.areasLeft = areaNews[1]; }
    if (boothNews) { header.boothsNear = boothNews[0]; header.boothsFar = boothNews[1]; }
    this.ackedSeq = me.seq;
    this.lastUpdates = count + gone.length;
    const frame = assemble(header, entries, count, bytes);
    entries.length = Math.min(entries.length, SCRATCH_KEPT);
    return frame;
  }

  /**
   * Forgets which neighbours the client knows (after its socket came back: it may have
   * missed frames): the next frame names everyone in view, and goes out even if empty,
   * so the client can drop whoever left meanwhile.
   */
  restart(): void {
    this.told.clear();
    this.ackedSeq = -1;
  }

  /** What the client was told of areas and booths, for the zone it is handed to. */
  toldPlaces(): { areas: string[]; booths: string[] } {
    return { areas: [...this.toldAreas], booths: [...this.toldBooths] };
  }
}

/**
 * An entity's state as an `appeared` or `moved` entry (FrameEncoder.entry), encoded at
 * most once per change per form, however many frames carry it.
 */
export function encodedEntry(entity: Entity, kind: "appeared" | "moved", withAvatar: boolean): Uint8Array {
  if (entity.encodedTick !== entity.changedTick) {
    entity.encodedTick = entity.changedTick;
    entity.moved = entity.movedWithAvatar = entity.appeared = undefined;
  }
  if (kind === "appeared") {
    return entity.appeared ??= entry("appeared", {
      visitorId: entity.id, x: entity.x, y: entity.y, heading: entity.heading, seq: entity.seq, sentAtMs: entity.sentAtMs,
      avatar: entity.avatar, name: entity.name, role: entity.role,
    });
  }
  if (withAvatar) {
    return entity.movedWithAvatar ??= entry("moved", {
      visitorId: entity.id, x: entity.x, y: entity.y, heading: entity.heading, seq: entity.seq, sentAtMs: entity.sentAtMs, avatar: entity.avatar,
    });
  }
  return entity.moved ??= entry("moved", {
    visitorId: entity.id, x: entity.x, y: entity.y, heading: entity.heading, seq: entity.seq, sentAtMs: entity.sentAtMs,
  });
}

/**
 * What changed in `current` since the client was told `told`: [added, removed], or
 * undefined when nothing did (no allocation on that, the usual, path). `told` becomes `current`.
 */
function news(current: ReadonlySet<string>, told: Set<string>): [string[], string[]] | undefined {
  let same = current.size === told.size;
  if (same) for (const id of current) if (!told.has(id)) { same = false; break; }
  if (same) return undefined;
  const added: string[] = [];
  const removed: string[] = [];
  for (const id of current) if (!told.has(id)) added.push(id);
  for (const id of told) if (!current.has(id)) removed.push(id);
  for (const id of removed) told.delete(id);
  for (const id of added) told.add(id);
  return [added, removed];
}
