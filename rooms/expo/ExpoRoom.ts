/**
 * An expo hall, or one zone of a hall too big for one process: visitors walk among
 * booths, and each is told only what is near, once per tick, in one frame. Everything
 * travels as Envelopes in the "pb" message (expo.proto).
 *
 * The room joins and moves visitors, and composes the pieces that do the rest:
 * - Crowd: everyone shown here, by id and in the interest grid;
 * - VisitorView: what each visitor was told, and its next frame (appeared, moved, gone,
 *   booths near and far, areas entered and left);
 * - TickSlices: the tick's frames spread over slices, one frame per visitor per tick;
 * - ZoneLink: ghost batches to and from neighbouring zones, and the handoff of visitors
 *   who cross a border (one state machine for both sides; ZoneSeats, its matchmaker calls);
 * - HallChat and HostTools: chat, and the host commands applied hall-wide;
 * - HallChannels: the hall's pub/sub channels and shared keys; ExpoAnalytics: this zone's
 *   figures, added every second to the hall's in AnalyticsStore.
 *
 * Halls are opened by `openHall()` (HallAdmin: POST /expo/halls, `--expo-hall-file`, the
 * demo), which signs each zone room's creation; a client cannot create an expo room.
 *
 * @example
 *   // HallAdmin.openHall, once per zone:
 *   await matchMaker.createRoom("expo", { roomId, hall: layout, zone: zoneId,
 *     opening: sign(OPENING, { hallId: layout.hallId, zoneId, roomId }, 60_000) });
 *   // a visitor: ExpoSession.join(client, hallId) from client-sdk
 */
import { ServerError, type AuthContext, type Client } from "@colyseus/core";
import { ErrorCode, TRUSTED, errorCodeName, tsunagi } from "../../proto/index.ts";
import { TokenBucket } from "../../common/TokenBucket.ts";
import { ClusterRoom, tokenAuth } from "../shared/ClusterRoom.ts";
import { PeriodicTasks } from "../shared/PeriodicTasks.ts";
import { clientBufferedAmount } from "../../server/colyseus/internals.ts";
import { nodeContext, type NodeContext } from "../../server/context.ts";
import type { TokenClaims } from "../../server/auth/tokens.ts";
import type { RoomAccess } from "../../server/auth/roomAccess.ts";
import { parseHallLayout, type HallLayout, type ZoneLayout } from "./HallLayout.ts";
import { zoneRoomId } from "./ZoneGeometry.ts";
import { HallPlaces } from "./HallPlaces.ts";
import { VisitorMoves, MAX_AVATAR } from "./VisitorMoves.ts";
import { ExpoAnalytics, type AnalyticsReport } from "./Analytics.ts";
import { AnalyticsStore, UNZONED, analyticsZones } from "./AnalyticsStore.ts";
import { AnalyticsFlush } from "./AnalyticsFlush.ts";
import { verify, type Signed } from "./signing.ts";
import { announceArrival, reserveZoneSeat, verifiedHandoff } from "./ZoneSeats.ts";
import { HALL_KEEP_MS, HALL_KEYS, HallChannels, type HallEvent } from "./HallChannels.ts";
import { applyHallSensors } from "./HallSensors.ts";
import { ExpoMigration } from "./ExpoMigration.ts";
import type { MigratableRoom } from "../shared/MigratableRoom.ts";
import { restoreOf } from "../../server/handoff/restore.ts";
import { Crowd } from "./Crowd.ts";
import { VisitorView, type VisitorViewHost } from "./VisitorView.ts";
import { TickSlices } from "./TickSlices.ts";
import { ZoneLink } from "./ZoneLink.ts";
import { HallChat } from "./HallChat.ts";
import { HostTools } from "./HostTools.ts";
import { sendRaw, trySend } from "./Delivery.ts";
import type { Entity, Visitor } from "./model.ts";
import type { RoomVoice } from "../shared/RoomVoice.ts";
import { hallRoomVoice, voiceFollowsMute } from "./HallVoice.ts";

type Envelope = tsunagi.v1.Envelope;

/** The signing purpose of a zone room's opening (signing.ts). */
export const OPENING = "expo-opening";
const MAX_NAME = 40;
/** Roles with host tools. */
const hostRoles = new Set(["host", "admin"]);

/** Options the room is created with (by openHall). */
export interface ExpoRoomOptions {
  roomId: string;
  hall: unknown;
  zone?: string;
  /** sign(OPENING, {hallId, zoneId, roomId}) */
  opening: Signed;
}

/** Visitors and hosts walk a hall; hosts open, close and read it over HTTP (HallAdmin); only the node creates its rooms. */
export const expoAccess: RoomAccess = { join: ["visitor", "host"], create: [], name: [], admin: ["host"] };
const joinAuth = tokenAuth(expoAccess);

export class ExpoRoom extends ClusterRoom<ExpoRoomOptions> {
  static access = expoAccess;
  maxClients = 20_000;
  /** The node: config, logger, metrics. */
  private context!: NodeContext;
  /** The validated layout. */
  private layout!: HallLayout;
  /** The hall's id: the room id of its entrance, the prefix of its shared keys. */
  private hallId!: string;
  /** This room's zone of the hall; undefined when one room serves the whole hall. */
  private zone?: ZoneLayout;
  /** Everyone shown here: visitors, ghosts, visitors handed on and lingering. */
  private crowd!: Crowd;
  /** This room's visitors, by session id. */
  private readonly visitors = new Map<string, Visitor>();
  /** The hall's booths and areas, and which a visitor is in or near. */
  private places!: HallPlaces;
  /** A visitor's moves: checked, applied, refused. */
  private moves!: VisitorMoves;
  /** Visits, dwell times and the heatmap of this zone: what is under way, and what changed since the last flush. */
  private analytics!: ExpoAnalytics;
  /** The hall's figures in the region's presence, every zone's together. */
  private analyticsStore!: AnalyticsStore;
  /** This zone's analytics on their way to the hall's figures. */
  private analyticsFlush!: AnalyticsFlush;
  /** The hall's channels and keys, shared with its other zones. */
  private hall!: HallChannels;
  /** Ghost batches and handoffs to and from the other zones. */
  private zones!: ZoneLink;
  /** The tick's frames, spread over slices. */
  private slices!: TickSlices<Visitor>;
  /** Chat: channels, rates, moderation, delivery. */
  private chat!: HallChat;
  /** Host commands, applied hall-wide, and the pin and presentations joiners are welcomed with. */
  private hostTools!: HostTools;
  /** Proximity voice: grants, and who hears whom. */
  private voice!: RoomVoice;
  /** Where every visitor's view looks, and how far. */
  private viewHost!: VisitorViewHost;
  /** The hall as a first welcome describes it, built once (a big hall is hundreds of KiB). */
  private welcomeHall!: tsunagi.v1.IExpoHall;
  /** Every-second work: the heatmap and the analytics others read. */
  private readonly timers = new PeriodicTasks();

  static async onAuth(token: string, options: any, context: AuthContext): Promise<TokenClaims> {
    return joinAuth(token, options, context);
  }

  override async onCreate(options: ExpoRoomOptions) {
    // A hall moving here from another node was opened there; its opening signature has expired since.
    const restored = restoreOf(options)?.snapshot.options as ExpoRoomOptions | undefined;
    const opening = restored ? { hallId: "", zoneId: restored.zone ?? "", roomId: restored.roomId } : verify<{ hallId: string; zoneId: string; roomId: string }>(OPENING, options?.opening);
    if (!opening || opening.roomId !== options.roomId) {
      throw new ServerError(ErrorCode.FORBIDDEN, "expo halls are opened by a host through POST /expo/halls (or the node's --expo-hall-file), not by joining");
    }
    this.layout = parseHallLayout(options.hall, `hall "${opening.hallId}"`);
    const hallId = this.hallId = this.layout.hallId;
    await super.onCreate(options);
    this.autoDispose = false;
    const context = this.context = nodeContext();
    const expo = context.config.expo;
    if (opening.zoneId) {
      this.zone = this.layout.zones.find((z) => z.id === opening.zoneId);
      if (!this.zone) throw new ServerError(ErrorCode.LAYOUT_INVALID, `hall "${hallId}" has no zone "${opening.zoneId}"`);
    }
    const zoneId = this.zone?.id ?? "";
    const { width, height, booths } = this.layout;
    this.crowd = new Crowd(width, height, expo.interestRadius);
    this.viewHost = { neighbourhood: this.crowd.grid, radius: expo.interestRadius };
    this.analytics = new ExpoAnalytics({ hallId, booths: booths.map((b) => b.id), width, height, cellSize: expo.heatmapCellSize }, Date.now());
    this.analyticsStore = new AnalyticsStore(this.presence, this.analytics.options);
    this.analyticsFlush = new AnalyticsFlush({ analytics: this.analytics, store: this.analyticsStore, zone: this.zone?.id || UNZONED, hallId, logger: context.logger });
    const places = this.places = new HallPlaces(this.layout, expo.boothRadius, this.analytics);
    const visitors = () => this.visitors.values();
    const localById = (visitorId: number) => this.crowd.localById(visitorId);
    const now = () => Date.now();
    this.hall = new HallChannels(this.presence, {
      hallId, roomId: this.roomId, zoneId, retentionMs: expo.hallRetentionMs, background: (work, what) => this.background(work, what),
      onHandlerError: (error, channel) => context.logger.error({ err: error, channel }, "expo hall message handler failed"),
    });
    this.zones = new ZoneLink({
      hallId, roomId: this.roomId, layout: this.layout, zone: this.zone, crowd: this.crowd, visitors, now,
      handoffMargin: expo.handoffMargin, interestRadius: expo.interestRadius, logger: context.logger,
      tick: () => this.slices.tick,
      reserveSeat: (visitor, roomId, payload) => reserveZoneSeat(roomId, payload, (visitor.client as { auth?: unknown }).auth),
      send: (visitor, envelope) => this.sendEnvelope(visitor.client, envelope),
      announceArrival: (roomId, visitorId) => announceArrival(roomId, visitorId, context.logger),
      publishGhosts: (toZoneId, batch) => this.hall.publishGhosts(toZoneId, batch),
      pauseFrames: (visitor) => this.slices.remove(visitor),
      resumeFrames: (visitor) => this.slices.add(visitor),
      forget: (visitorId) => this.hall.forgetIfStillHere(visitorId),
      counted: (outcome) => context.metrics.handoffs.inc({ outcome }),
      background: (work, what) => this.background(work, what),
    });
    const reject = (visitor: Visitor, code: number, message: string, correlationId: Envelope["correlationId"]) => this.reject(visitor.client, code, message, correlationId);
    this.chat = new HallChat({
      hallId, zoneId, boothIds: places.boothIds, limits: expo, visitors, localById, now, reject,
      isHere: (visitor) => this.visitors.get(visitor.sessionId) === visitor,
      hallVisitor: (visitorId) => this.hall.visitor(visitorId),
      publish: (event) => this.hall.publishEvent(event),
      send: (visitor, envelope, sendOptions) => this.sendEnvelope(visitor.client, envelope, sendOptions),
    });
    this.voice = hallRoomVoice({
      roomId: this.roomId, backend: () => context.voice, grid: this.crowd.grid, radius: expo.hearingRadius, visitors: this.visitors,
      roles: expoAccess.join, moving: () => this.mover.moving, logger: context.logger, metrics: context.metrics,
      send: (client, envelope) => this.sendEnvelope(client, envelope),
      reject: (client, code, message, correlationId) => this.reject(client, code, message, correlationId),
    });
    this.hostTools = new HostTools({
      hallId, zoneId, areaIds: places.areaIds, boothIds: places.boothIds, hall: this.hall,
      visitors, localById, now, reject, logger: context.logger,
      send: (visitor, envelope) => this.sendEnvelope(visitor.client, envelope),
      remove: (visitor, action, code, message, reason) => this.removeVisitor(visitor, action, code, message, reason),
      muted: (visitor) => voiceFollowsMute(this.voice, visitor),
      report: () => this.report(),
      stored: () => this.snapshots.writeNow(),
    });
    this.moves = new VisitorMoves({
      width, height, maxMoveHz: expo.maxMoveHz, metrics: context.metrics.expo, now,
      tick: () => this.slices.tick,
      place: (visitor, x, y) => this.crowd.move(visitor.entity, x, y),
      placed: (visitor, at) => { places.update(visitor, at); this.voice.changed(visitor.sessionId); },
      replaying: (visitorId) => this.zones.replaying(visitorId),
      moved: (visitor) => this.zones.moved(visitor),
      // An Error envelope with correlation id 0, as expo.proto promises, and the room error stock clients hear.
      tell: (visitor, code, message) => this.reject(visitor.client, code, message, 0),
      count: (code) => context.metrics.errors.inc({ code: errorCodeName(code), source: "expo" }),
    });
    this.slices = new TickSlices<Visitor>({
      tickMs: expo.tickMs, slices: expo.tickSlices,
      runSlice: (tick, slice, members) => this.runSlice(tick, slice, members),
      onError: (error) => context.logger.error({ err: error, hallId }, "expo tick failed"),
    });
    this.welcomeHall = {
      hallId, name: this.layout.name, width, height,
      booths: booths.map((b) => ({ boothId: b.id, name: b.name, exhibitor: b.exhibitor, area: b.area })),
      areas: this.layout.areas.map((a) => ({ areaId: a.id, name: a.name, rect: a.rect })),
      zones: this.layout.zones.map((z) => ({ zoneId: z.id, rect: z.rect, roomId: zoneRoomId(hallId, this.layout, z.id) })),
    };
    this.setMetadata({ hallId, zoneId });

    await this.hostTools.load();
    await this.analyticsStore.startZone(this.analyticsFlush.options.zone);
    await this.hall.onEvents((event) => this.applyHallEvent(event));
    if (this.zone) await this.hall.onGhosts((batch) => this.zones.receiveGhosts(batch));

    this.onEnvelope("visitorMove", (client, envelope) => {
      const visitor = this.visitors.get(client.sessionId);
      if (visitor) this.moves.apply(visitor, envelope.visitorMove!);
    });
    this.onEnvelope("chatSend", (client, envelope) => this.handle(client, envelope, "chat", (visitor) => this.chat.send(visitor, envelope)));
    this.onEnvelope("hostCommand", (client, envelope) => this.handle(client, envelope, "host command", (visitor) => this.hostTools.command(visitor, envelope)));
    this.voice.register((kind, handler) => this.onEnvelope(kind, handler));
    this.onEnvelope("analyticsRequest", (client, envelope) => this.handle(client, envelope, "analytics request", (visitor) => this.hostTools.analytics(visitor, envelope)));

    this.slices.start();
    // At its own phase: the zones of a hall open together.
    this.timers.every(1000, () => this.everySecond());
    this.keepHallKeys();
    this.timers.every(HALL_KEEP_MS, () => this.keepHallKeys());
    context.logger.info({ hallId, zoneId: zoneId || undefined, roomId: this.roomId, booths: booths.length, neighbours: this.zones.neighbours.map((z) => z.id) },
      `expo hall "${hallId}"${this.zone ? ` zone "${zoneId}"` : ""} open`);
  }

  override listingMetadata() {
    return { hallId: this.hallId, zoneId: this.zone?.id, visitors: this.visitors.size };
  }

  /** A token scoped to the hall admits its holder to every zone of it. */
  protected override scopeIds(): string[] {
    return [this.hallId, this.roomId];
  }

  override async onJoin(client: Client, options?: any, auth?: TokenClaims) {
    super.onJoin(client, options, auth);
    const subject = auth?.sub ?? client.sessionId;
    const badOption = joinOptionProblem(options);
    if (badOption) {
      this.context.metrics.errors.inc({ code: "WRONG_TYPE", source: "expo" });
      this.context.logger.warn({ hallId: this.hallId, subject, code: "WRONG_TYPE" }, `join refused: ${badOption}`);
      throw new ServerError(ErrorCode.WRONG_TYPE, badOption);
    }
    if (await this.hall.isBanned(subject)) {
      this.context.metrics.errors.inc({ code: "BANNED", source: "expo" });
      this.context.logger.warn({ hallId: this.hallId, subject }, `join refused: ${subject} is banned from hall ${this.hallId}`);
      throw new ServerError(ErrorCode.BANNED, `you are banned from hall "${this.hallId}"`);
    }
    const arrival = options?.handoff !== undefined ? verifiedHandoff(options.handoff, this.roomId, subject) : undefined;
    const expo = this.context.config.expo;
    let entity: Entity;
    let mutedRaw: number;
    if (arrival) {
      // From here to the welcome nothing is awaited: the zone it came from has just stopped its frames.
      entity = await this.zones.admit(arrival);
      mutedRaw = arrival.mutedUntil;
    } else {
      mutedRaw = await this.hall.mutedUntil(subject);
      entity = this.crowd.create(await this.hall.nextVisitorId(), this.layout.spawn.x, this.layout.spawn.y, Date.now());
      entity.name = typeof options?.name === "string" ? options.name.trim() : auth?.name ?? subject;
      entity.role = auth?.role === "host" || auth?.role === "admin" ? "host" : "visitor";
      entity.avatar = typeof options?.avatar === "string" ? options.avatar : "";
      entity.changedTick = entity.avatarTick = this.slices.tick + 1;
      this.crowd.add(entity);
    }
    const now = Date.now();
    const visitor: Visitor = {
      entity, client, subject, sessionId: client.sessionId, isHost: hostRoles.has(auth?.role ?? ""),
      view: new VisitorView(this.viewHost, this.slices.tick, arrival && { areas: arrival.toldAreas, booths: arrival.toldBooths }),
      areas: new Set(arrival?.areas ?? []), booths: new Set(arrival?.booths ?? []),
      moves: new TokenBucket(expo.maxMoveHz * 1.25, expo.maxMoveHz),
      mutedUntil: mutedRaw === 1 || mutedRaw > now ? mutedRaw : 0,
      refusedAt: new Map(), connected: true, joinedAt: now,
    };
    entity.local = visitor;
    this.visitors.set(client.sessionId, visitor);
    this.slices.add(visitor);
    this.analytics.visitorJoined(subject, now);
    if (arrival) this.places.arrived(visitor, now);
    else this.places.update(visitor, now);
    this.hall.register(entity.id, subject, entity.name);
    if (visitor.mutedUntil > 1) voiceFollowsMute(this.voice, visitor);

    this.sendEnvelope(client, {
      expoWelcome: {
        // after a handoff the client has the hall already (a big one is hundreds of KiB)
        visitorId: entity.id, role: entity.role, hall: arrival ? undefined : this.welcomeHall, zoneId: this.zone?.id ?? "",
        tickMs: expo.tickMs, interestRadius: expo.interestRadius, boothRadius: expo.boothRadius, maxMoveHz: expo.maxMoveHz,
        ackSeq: entity.seq, x: entity.x, y: entity.y, heading: entity.heading,
        pinned: this.hostTools.pinned, presentations: this.hostTools.presentations(),
        mutedUntilMs: visitor.mutedUntil, serverTimeMs: now,
      },
    }, TRUSTED);
  }

  override onDrop(client: Client, code?: number) {
    const visitor = this.visitors.get(client.sessionId);
    if (visitor) visitor.connected = false;
    super.onDrop(client, code);
  }

  onReconnect(client: Client) {
    const visitor = this.visitors.get(client.sessionId);
    if (!visitor) return;
    visitor.client = client;
    visitor.connected = true;
    visitor.view.restart();
  }

  onLeave(client: Client) {
    this.dropVisitor(client.sessionId);
  }

  /** A visitor leaves the room: gone from the crowd, or frozen in view when handed to another zone. */
  private dropVisitor(sessionId: string) {
    const visitor = this.visitors.get(sessionId);
    if (!visitor) return;
    this.visitors.delete(sessionId);
    this.voice.leave(sessionId);
    this.slices.remove(visitor);
    this.analytics.visitorLeft(visitor.subject, Date.now());
    const entity = visitor.entity;
    entity.local = undefined;
    if (this.zones.left(visitor)) return; // handed on: frozen in view until the next zone's ghost of it arrives
    this.crowd.remove(entity);
    this.hall.unregister(entity.id);
  }

  // --- MigratableRoom (ExpoMigration.ts) -----------------------------------------------

  private readonly migration = new ExpoMigration({
    visitors: this.visitors,
    crowd: () => this.crowd, slices: () => this.slices, hall: () => this.hall, places: () => this.places,
    analytics: () => this.analytics, hostTools: () => this.hostTools, viewHost: () => this.viewHost,
    keyNames: () => [...HALL_KEYS, ...this.analyticsStore.keyNames(analyticsZones(this.layout))],
    maxMoveHz: () => this.context.config.expo.maxMoveHz,
    zoned: () => this.layout.zones.length > 0,
    drop: (sessionId) => this.dropVisitor(sessionId),
    sendFrame: (visitor) => this.sendFrame(visitor, this.slices.tick, Date.now()),
  });
  protected override migratableRoom(): MigratableRoom { return this.migration; }

  onDispose() {
    this.slices?.stop();
    this.voice?.release();
    this.timers.stop();
    this.hall?.close();
    if (this.analyticsFlush) void this.analyticsFlush.all().then(() => this.keepHallKeys());
  }

  /** The next zone welcomed a visitor handed on from here (its remoteRoomCall, before its welcome): no more frames from here. */
  zoneArrival(visitorId: number): boolean {
    return this.zones.arrived(visitorId);
  }

  /** The hall's analytics: this zone's figures up to now, the other zones' as they flushed them (within a second). */
  async report(): Promise<AnalyticsReport> {
    await this.analyticsFlush.all();
    return this.analyticsStore.report(analyticsZones(this.layout), Date.now());
  }

  /**
   * Stores this zone's figures up to now (HallAdmin's remoteRoomCall, before it reads the
   * report on its own node: a big hall's report is not built on this room's event loop).
   */
  async flushAnalytics(): Promise<void> {
    await this.analyticsFlush.all();
  }

  /**
   * Closes this zone for good (DELETE /expo/halls/{hallId}, on every zone): each visitor
   * is told HALL_CLOSED and disconnected with that close code; the final analytics stay
   * in Redis for export.
   */
  async closeHall(by: string): Promise<number> {
    const visitors = [...this.visitors.values()];
    this.context.logger.info({ hallId: this.hallId, zoneId: this.zone?.id, by, visitors: visitors.length }, `closing hall "${this.hallId}"${this.zone ? ` zone "${this.zone.id}"` : ""}`);
    for (const visitor of visitors) trySend(() => visitor.client.error(ErrorCode.HALL_CLOSED, `hall "${this.hallId}" was closed by ${by}`));
    this.slices.stop();
    await this.disconnect(ErrorCode.HALL_CLOSED);
    // everyone's visits are closed now (onLeave): these are the hall's final figures
    await this.analyticsFlush.all();
    return visitors.length;
  }

  // --- the tick ----------------------------------------------------------------------

  /** One slice of the tick (TickSlices): its visitors' frames; slice 0 also expires ghosts and publishes this zone's. */
  private runSlice(tick: number, slice: number, members: ReadonlySet<Visitor>) {
    const started = performance.now();
    const now = Date.now();
    const metrics = this.context.metrics.expo;
    if (slice === 0) this.zones.expire(now);
    for (const visitor of members) this.sendFrame(visitor, tick, now);
    if (slice === 0) {
      this.zones.publishGhosts(tick);
      metrics.ticks++;
    }
    metrics.tickSeconds += (performance.now() - started) / 1000;
  }

  /** A visitor's frame of `tick`, if it has news and its socket is not backed up. */
  private sendFrame(visitor: Visitor, tick: number, now: number) {
    const metrics = this.context.metrics.expo;
    if (!visitor.connected) return;
    if (clientBufferedAmount(visitor.client) > this.context.config.expo.backpressureBytes) { metrics.framesSkipped++; return; }
    const frame = visitor.view.frame(visitor.entity, visitor.areas, visitor.booths, tick, now);
    if (!frame) return;
    metrics.frames++;
    metrics.updates += visitor.view.lastUpdates;
    sendRaw(visitor.client, frame);
  }

  private everySecond() {
    // Heatmap: one visitor-second per connected visitor, where it stands.
    for (const visitor of this.visitors.values()) this.analytics.samplePresence(visitor.entity.x, visitor.entity.y, 1);
    void this.analyticsFlush.publish();
  }

  // --- the hall ----------------------------------------------------------------------

  private applyHallEvent(event: HallEvent) {
    if (event.type === "chat") this.chat.deliver(event.message, event.toVisitorId);
    else if (event.type === "sensors") applyHallSensors(event.sensors, this.zone, this.analytics);
    else this.hostTools.apply(event);
  }

  /** The hall's keys, its analytics' among them, expire a retention period after the last zone refreshed them. */
  private keepHallKeys() {
    this.hall?.keep(this.analyticsStore.keyNames(analyticsZones(this.layout)));
  }

  // --- helpers -----------------------------------------------------------------------

  /** Runs a request of a visitor of this room; if it fails, the sender is told INTERNAL (and it is logged). */
  private handle(client: Client, envelope: Envelope, what: string, run: (visitor: Visitor) => Promise<void>) {
    const visitor = this.visitors.get(client.sessionId);
    if (!visitor) return;
    run(visitor).catch((error) => {
      this.context.logger.error({ err: error, hallId: this.hallId, sessionId: client.sessionId }, `expo: ${what} failed`);
      trySend(() => this.reject(client, ErrorCode.INTERNAL, `${what} failed on the server; try again`, envelope.correlationId));
    });
  }

  /**
   * Runs work nobody waits for; a failure (Redis away) is logged and counted, never left
   * as an unhandled rejection, which would end the node's process.
   */
  private background(work: Promise<unknown>, what: string) {
    void Promise.resolve(work).catch((error) => {
      this.context.metrics.errors.inc({ code: "INTERNAL", source: "expo" });
      this.context.logger.error({ err: error, hallId: this.hallId, roomId: this.roomId }, `expo: ${what} failed`);
    });
  }

  /** Ends a visitor's session for good (a kick, a ban): the notice, the coded error, and the close with that code. */
  private removeVisitor(visitor: Visitor, action: tsunagi.v1.Moderate.Action, code: number, message: string, reason: string) {
    this.context.metrics.errors.inc({ code: errorCodeName(code), source: "expo" });
    this.context.logger.warn({ hallId: this.hallId, sessionId: visitor.sessionId, subject: visitor.subject, code: errorCodeName(code) }, message);
    trySend(() => this.sendEnvelope(visitor.client, { moderationNotice: { action, reason } }));
    this.removeClient(visitor.client, code, message, code);
  }

}

/**
 * Why the join options' `name` or `avatar` is refused (WRONG_TYPE), or undefined. Both are
 * optional (absent or null): `name` 1..MAX_NAME characters once trimmed, `avatar` up to MAX_AVATAR.
 */
export function joinOptionProblem(options: unknown): string | undefined {
  const { name, avatar } = (typeof options === "object" && options !== null ? options : {}) as { name?: unknown; avatar?: unknown };
  if (name != null && (typeof name !== "string" || name.trim().length === 0 || name.trim().length > MAX_NAME)) {
    return `join option "name" must be a string of 1..${MAX_NAME} characters (leading and trailing spaces are trimmed)`;
  }
  if (avatar != null && (typeof avatar !== "string" || avatar.length > MAX_AVATAR)) {
    return `join option "avatar" must be a string of at most ${MAX_AVATAR} characters`;
  }
  return undefined;
}
