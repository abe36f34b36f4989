/**
 * An expo room's part of the MigratableRoom contract (rooms/shared/MigratableRoom.ts):
 * what a hall carries when its room moves to another node or region, and how it goes on
 * there.
 *
 * - The room: its tick (frames go on from it), and the hall's keys in the region's
 *   presence (layout, visitor ids, register, bans, mutes, pin, presentations, analytics),
 *   which the new home writes into its own region's presence.
 * - Each visitor: its visitor id, position, heading, the seq of its newest move, name,
 *   role, avatar, the areas and booths it is in and was told of, its mute, when it joined.
 * - A visitor whose client has not arrived yet gets no frames (it is out of the tick's
 *   slices); when it arrives its view restarts, so its first frame there describes the
 *   whole view (the SDK reconciles against it), as after a reconnection.
 *
 * Analytics still in the old home's memory (at most a second of dwell time) are flushed
 * there, to its region: the new home counts from the move on.
 *
 * A hall split in zones moves as one hall, not zone by zone: not yet supported; its rooms
 * say so (unmovableReason).
 */
import type { Client } from "@colyseus/core";
import { TokenBucket } from "../../common/TokenBucket.ts";
import type { HallChannels, HallKeys } from "./HallChannels.ts";
import type { Crowd } from "./Crowd.ts";
import type { HallPlaces } from "./HallPlaces.ts";
import type { ExpoAnalytics } from "./Analytics.ts";
import type { TickSlices } from "./TickSlices.ts";
import type { HostTools } from "./HostTools.ts";
import { VisitorView, type VisitorViewHost } from "./VisitorView.ts";
import type { HandoffPayload, Visitor } from "./model.ts";
import type { MigratableRoom } from "../shared/MigratableRoom.ts";
import type { ParkedClient } from "../shared/ParkedClient.ts";

/** The room as it moves. */
export interface ExpoRoomState {
  tick: number;
  keys: HallKeys;
}

/** One visitor as it moves: what a zone handoff carries (HandoffPayload), and its host tools and join time. */
export interface ExpoSessionState extends Omit<HandoffPayload, "roomId" | "fromRoomId" | "fromZoneId"> {
  isHost: boolean;
  joinedAt: number;
}

/** The parts of the room the move reads and writes. */
export interface ExpoMigrationHost {
  visitors: Map<string, Visitor>;
  crowd(): Crowd;
  slices(): TickSlices<Visitor>;
  hall(): HallChannels;
  places(): HallPlaces;
  analytics(): ExpoAnalytics;
  hostTools(): HostTools;
  viewHost(): VisitorViewHost;
  /** The hall's key names (HALL_KEYS and the analytics store's). */
  keyNames(): string[];
  maxMoveHz(): number;
  /** Whether the hall is split in zones. */
  zoned(): boolean;
  /** A visitor leaves the room (onLeave's work). */
  drop(sessionId: string): void;
  /** Sends a visitor its frame now, out of the tick's slices (what changed since it was last told). */
  sendFrame(visitor: Visitor): void;
}

export class ExpoMigration implements MigratableRoom {
  /** The tick of a room restored from a snapshot, applied at its first thaw. */
  private pendingTick?: number;

  constructor(private readonly host: ExpoMigrationHost) {}

  unmovableReason(): string | undefined {
    return this.host.zoned() ? "a hall split in zones moves as a whole, which is not supported yet" : undefined;
  }

  /** Time stops; every visitor first gets what it has not been told yet, so its last frame here is as late as can be. */
  freezeRoom() {
    this.host.slices().pause();
    for (const visitor of this.host.visitors.values()) this.host.sendFrame(visitor);
  }

  /** Frames go on; a room restored from a snapshot goes on from the old home's tick. */
  thawRoom() {
    this.host.slices().resume(this.pendingTick);
    this.pendingTick = undefined;
  }

  async snapshotState(): Promise<ExpoRoomState> {
    return { tick: this.host.slices().tick, keys: await this.host.hall().exportKeys(this.host.keyNames()) };
  }

  /**
   * Restores the hall's keys and tick. Again with a later snapshot (a handoff's
   * Transfer, the room frozen): only the keys that changed, and not the analytics, which
   * change every second and count on here from the first import (what the old home
   * counted in between stays in its region).
   */
  async restoreState(state: unknown) {
    const { keys, tick } = state as ExpoRoomState;
    const again = this.imported.size > 0;
    const changed: HallKeys = {};
    for (const [name, value] of Object.entries(keys)) {
      if (again && name.startsWith("analytics:")) continue;
      const text = JSON.stringify(value);
      if (this.imported.get(name) === text) continue;
      changed[name] = value;
      this.imported.set(name, text);
    }
    if (Object.keys(changed).length) {
      await this.host.hall().importKeys(changed);
      await this.host.hostTools().load();
    }
    this.pendingTick = tick;
  }

  /** Each hall key last imported, as JSON. */
  private readonly imported = new Map<string, string>();

  snapshotSession(client: Client): ExpoSessionState | null {
    const visitor = this.host.visitors.get(client.sessionId);
    if (!visitor) return null;
    const { entity } = visitor;
    const told = visitor.view.toldPlaces();
    return {
      visitorId: entity.id, subject: visitor.subject, isHost: visitor.isHost, name: entity.name, role: entity.role, avatar: entity.avatar,
      x: entity.x, y: entity.y, heading: entity.heading, seq: entity.seq, sentAtMs: entity.sentAtMs,
      areas: [...visitor.areas], booths: [...visitor.booths], toldAreas: told.areas, toldBooths: told.booths,
      mutedUntil: visitor.mutedUntil, joinedAt: visitor.joinedAt,
    };
  }

  /** A visitor that moved here, its client not arrived yet: in the crowd (others see it), not in the slices. */
  restoreSession(parked: ParkedClient, state: unknown) {
    const data = state as ExpoSessionState | null;
    if (!data) return;
    const client = parked as unknown as Client;
    const now = Date.now();
    const known = this.host.visitors.get(client.sessionId);
    if (known) { this.update(known, data); return; }
    const crowd = this.host.crowd();
    const slices = this.host.slices();
    const entity = crowd.create(data.visitorId, data.x, data.y, now);
    entity.name = data.name; entity.role = data.role; entity.avatar = data.avatar;
    entity.heading = data.heading; entity.seq = data.seq; entity.sentAtMs = data.sentAtMs;
    entity.changedTick = entity.avatarTick = (this.pendingTick ?? slices.tick) + 1;
    crowd.add(entity);
    const visitor: Visitor = {
      entity, client, subject: data.subject, sessionId: client.sessionId, isHost: data.isHost,
      view: new VisitorView(this.host.viewHost(), this.pendingTick ?? slices.tick, { areas: data.toldAreas, booths: data.toldBooths }),
      areas: new Set(data.areas), booths: new Set(data.booths),
      moves: new TokenBucket(this.host.maxMoveHz() * 1.25, this.host.maxMoveHz()),
      mutedUntil: data.mutedUntil, refusedAt: new Map(), connected: false, joinedAt: data.joinedAt,
    };
    entity.local = visitor;
    this.host.visitors.set(client.sessionId, visitor);
    this.host.analytics().visitorJoined(data.subject, now);
    this.host.places().arrived(visitor, now);
    this.host.hall().register(entity.id, data.subject, entity.name);
  }

  /** A visitor restored from an earlier snapshot, brought up to a later one. */
  private update(visitor: Visitor, data: ExpoSessionState) {
    const { entity } = visitor;
    entity.name = data.name; entity.role = data.role; entity.avatar = data.avatar;
    entity.heading = data.heading; entity.seq = data.seq; entity.sentAtMs = data.sentAtMs;
    this.host.crowd().move(entity, data.x, data.y);
    entity.changedTick = entity.avatarTick = (this.pendingTick ?? this.host.slices().tick) + 1;
    visitor.areas = new Set(data.areas);
    visitor.booths = new Set(data.booths);
    visitor.mutedUntil = data.mutedUntil;
  }

  /** Its client arrived: its whole view at once, then frames in its slice of the tick. */
  resumeSession(client: Client) {
    const visitor = this.host.visitors.get(client.sessionId);
    if (!visitor) return;
    visitor.client = client;
    visitor.connected = true;
    visitor.view.restart();
    this.host.sendFrame(visitor);
    this.host.slices().add(visitor);
  }

  sessionLost(sessionId: string) { this.host.drop(sessionId); }
}
