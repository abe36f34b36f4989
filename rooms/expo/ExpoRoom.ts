/**
 * An expo hall, or one zone of a hall too big for one process: visitors walk among
 * booths, and each is told only what is near, once per tick, in one frame.
 *
 * Everything travels as Envelopes in the "pb" message (expo.proto).
 *
 * Per tick (expo.tickMs), for every visitor: the interest grid gives the visitors
 * within the interest radius; compared with what that visitor saw last tick, that makes
 * its frame: who appeared (full state), who moved (latest position only), who is gone,
 * plus booths that came near or went far and areas entered or left. Each neighbour's
 * state is encoded once per tick and copied into every frame that needs it
 * (FrameEncoder). A visitor whose socket is backed up skips frames until it drains; the
 * next frame it gets carries everything since the last one it got.
 *
 * Zones: a zoned hall is served by one ExpoRoom per zone, usually on different nodes.
 * - Each tick a zone publishes the visitors within the interest radius of a neighbour's
 *   rectangle to that neighbour (GhostBatch, through the region's presence). The
 *   neighbour puts them in its grid as ghosts, so visitors on either side of a border
 *   see each other.
 * - A visitor who walks past its zone's border by `expo.handoffMargin` is handed off:
 *   this room reserves a seat in the next zone's room, carrying the visitor's state in a
 *   signed option, and sends a ZoneHandoff. The client joins there, resends any moves the
 *   new zone lacks (ExpoWelcome.ack_seq), and leaves here. Meanwhile this room keeps
 *   taking its moves; afterwards it keeps the visitor frozen in view until the new
 *   zone's ghost of it arrives, so nobody sees it blink.
 *
 * Host tools (HostCommand) apply hall-wide: the zone that takes one applies it to its
 * own visitors and publishes it to the other zones (HallEvent).
 *
 * Halls are opened by `openHall()` (POST /expo/halls, `--expo-hall-file`, the demo),
 * which signs each zone room's creation; a client cannot create an expo room itself.
 */
import { ServerError, type AuthContext, type Client } from "@colyseus/core";
import { matchMaker } from "@colyseus/core";
import { ErrorCode, TRUSTED, errorCodeName, tsunagi } from "../../proto/index.ts";
import { ClusterRoom, tokenAuth } from "../shared/ClusterRoom.ts";
import { PeriodicTasks } from "../shared/PeriodicTasks.ts";
import { clientBufferedAmount } from "../../server/colyseus/internals.ts";
import { rejectInput } from "../../server/colyseus/rejectInput.ts";
import { nodeContext, type NodeContext } from "../../server/context.ts";
import type { TokenClaims } from "../../server/auth/tokens.ts";
import { parseHallLayout, type HallLayout, type ZoneLayout } from "./HallLayout.ts";
import { distanceToRect, rectsWithin, zoneAt, zoneRoomId } from "./ZoneGeometry.ts";
import { InterestGrid, type GridItem } from "./InterestGrid.ts";
import { AreaIndex } from "./AreaIndex.ts";
import { moderate, wordFilter, type ModerationHook, type ChatChannelKind } from "./ChatPolicy.ts";
import { TokenBucket } from "../../common/TokenBucket.ts";
import { ExpoAnalytics, mergeSnapshots, type AnalyticsSnapshot } from "./Analytics.ts";
import { assemble, entry, framedEnvelope } from "./FrameEncoder.ts";
import { sign, verify, type Signed } from "./signing.ts";
import { eventsChannel, ghostsChannel, hallKey, decodeGhosts, encodeGhosts, type HallEvent, type HallEventBody, type HallVisitorRecord } from "./HallChannels.ts";

type Envelope = tsunagi.v1.Envelope;
const Action = tsunagi.v1.Moderate.Action;
const Kind = tsunagi.v1.ChatChannel.Kind;

/** Signing purposes (signing.ts). */
export const OPENING = "expo-opening";
export const HANDOFF = "expo-handoff";
/** A handed-off visitor stays frozen in view this long at most, waiting for the new zone's ghost, ms. */
const LINGER_MS = 2000;
/** Ghosts of a zone not heard from for this long are dropped (that zone is gone), ms. */
const GHOST_TTL_MS = 1000;
/** A handoff the client has not followed after this long is offered again, ms. */
const HANDOFF_STALE_MS = 10_000;
/** After a failed handoff, the next attempt waits this long, ms. */
const HANDOFF_RETRY_MS = 1000;
/** Repeated refusals of one kind to one visitor: one Error per this long, the rest only counted, ms. */
const REFUSAL_INTERVAL_MS = 1000;
/** After joining through a handoff, moves at or below the newest held are replays: dropped quietly for this long, ms. */
const REPLAY_GRACE_MS = 3000;
/** Host commands one host may send: per second, and the burst on top. */
const HOST_COMMANDS_PER_SECOND = 5;
const HOST_COMMAND_BURST = 20;
const MAX_TEXT = 500;
const MAX_TITLE = 200;
const MAX_NAME = 40;
const MAX_AVATAR = 64;
/** Close codes for kicked and banned visitors: the error codes themselves (4000-4999 are the application's). */
const CLOSE_KICKED = ErrorCode.KICKED;
const CLOSE_BANNED = ErrorCode.BANNED;
const CLOSE_HALL_CLOSED = ErrorCode.HALL_CLOSED;
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

/** What a zone handoff carries to the next zone (signed). */
interface HandoffState {
  roomId: string;
  visitorId: number;
  subject: string;
  name: string;
  role: string;
  avatar: string;
  x: number; y: number; heading: number; seq: number; sentAtMs: number;
  areas: string[];
  booths: string[];
  /** What the client has been told of them, so the new zone's frames say only the difference. */
  toldAreas: string[];
  toldBooths: string[];
  mutedUntil: number;
}

/** Anyone in view: a visitor of this room, a ghost from a neighbouring zone, or one just handed off. */
interface Entity extends GridItem {
  id: number;
  kind: "local" | "ghost" | "lingering";
  name: string;
  role: string;
  avatar: string;
  heading: number;
  seq: number;
  sentAtMs: number;
  /** Tick whose frames first carry the current position (and avatar). */
  changedTick: number;
  avatarTick: number;
  /** Ghosts: the zone that sent it and when. Lingering: until when it is kept. */
  ghostZone?: string;
  heardAt: number;
  /** Encodings of the current state, valid while `encodedTick` equals `changedTick`. */
  encodedTick: number;
  moved?: Uint8Array;
  movedWithAvatar?: Uint8Array;
  appeared?: Uint8Array;
  local?: Visitor;
}

/** A visitor connected to this room. */
interface Visitor {
  entity: Entity;
  client: Client;
  subject: string;
  sessionId: string;
  isHost: boolean;
  /** Who was in view at the last frame sent, and a spare set for the next one. */
  view: Set<Entity>;
  spare: Set<Entity>;
  lastFrameTick: number;
  /** The newest seq acknowledged in a frame. */
  ackedSeq: number;
  /** Areas (booths included) the visitor is in, and booths near it, now. */
  areas: Set<string>;
  booths: Set<string>;
  /** The same as the client last heard them (its last frame, or the zone it came from): the next frame says the difference. */
  toldAreas: Set<string>;
  toldBooths: Set<string>;
  /** areas or booths changed since the last frame. */
  placeChanged: boolean;
  moves: TokenBucket;
  chat: TokenBucket;
  /** Host commands: a hall-wide fan-out each, so even a host is bounded (a leaked host token must not flood the hall). */
  commands: TokenBucket;
  mutedUntil: number;
  refusedAt: Map<number, number>;
  connected: boolean;
  joinedAt: number;
  handedIn: boolean;
  handoff?: { zoneId: string; at: number; state: "reserving" | "sent" | "failed" };
  /** The tick slice that sends its frames. */
  slice?: Set<Visitor>;
}

/** Moderation hooks every expo room runs before the built-in word filter. */
const moderationHooks: ModerationHook[] = [];

/** Adds a moderation hook for every expo hall of this process (an external service, a classifier...). */
export function registerModerationHook(hook: ModerationHook): () => void {
  moderationHooks.push(hook);
  return () => { const i = moderationHooks.indexOf(hook); if (i >= 0) moderationHooks.splice(i, 1); };
}

const joinAuth = tokenAuth(["visitor", "host"]);

export class ExpoRoom extends ClusterRoom<ExpoRoomOptions> {
  static async onAuth(token: string, options: any, context: AuthContext): Promise<TokenClaims> {
    return joinAuth(token, options, context);
  }

  maxClients = 20_000;
  private context!: NodeContext;
  private layout!: HallLayout;
  private hallId!: string;
  private zone?: ZoneLayout;
  /** zoneId for keys and ghosts ("" when unzoned). */
  private zoneId = "";
  private neighbours: ZoneLayout[] = [];
  private grid!: InterestGrid<Entity>;
  private areaIndex!: AreaIndex;
  private boothIndex!: AreaIndex;
  private boothIds!: Set<string>;
  private areaIds!: Set<string>;
  private analytics!: ExpoAnalytics;
  private readonly entities = new Map<number, Entity>();
  private readonly visitors = new Map<string, Visitor>();
  /** Slices of the tick elapsed (see tick()). */
  private tickNo = 0;
  /** Slice schedule: the epoch it counts from and the slice length, ms (performance.now()). */
  private tickEpoch = 0;
  private sliceMs = 50;
  private sliceTimer?: NodeJS.Timeout;
  private disposed = false;
  /** Visitors by the tick slice that sends their frames. */
  private slices: Array<Set<Visitor>> = [new Set()];
  private readonly timers = new PeriodicTasks();
  private radius = 20;
  private hallChat!: TokenBucket;
  private pinned: tsunagi.v1.IPinnedMessage = { text: "" };
  private readonly presentations = new Map<string, tsunagi.v1.IBoothState>();
  private welcomeHall!: tsunagi.v1.IExpoHall;
  private messageCounter = 0;
  private readonly subscriptions: Array<[string, (data: any) => void]> = [];
  private readonly builtinModeration: ModerationHook[] = [];
  /** Scratch for frame building, reused every viewer. */
  private readonly scratch: Uint8Array[] = [];
  private readonly gone: number[] = [];

  override async onCreate(options: ExpoRoomOptions) {
    const opening = verify<{ hallId: string; zoneId: string; roomId: string }>(OPENING, options?.opening);
    if (!opening || opening.roomId !== options.roomId) {
      throw new ServerError(ErrorCode.FORBIDDEN, "expo halls are opened by a host through POST /expo/halls (or the node's --expo-hall-file), not by joining");
    }
    this.layout = parseHallLayout(options.hall, `hall "${opening.hallId}"`);
    this.hallId = this.layout.hallId;
    await super.onCreate(options);
    this.autoDispose = false;
    this.context = nodeContext();
    const expo = this.context.config.expo;
    this.radius = expo.interestRadius;
    if (opening.zoneId) {
      this.zone = this.layout.zones.find((z) => z.id === opening.zoneId);
      if (!this.zone) throw new ServerError(ErrorCode.LAYOUT_INVALID, `hall "${this.hallId}" has no zone "${opening.zoneId}"`);
      this.zoneId = this.zone.id;
      const reach = this.radius + expo.handoffMargin;
      this.neighbours = this.layout.zones.filter((z) => z !== this.zone && rectsWithin(z.rect, this.zone!.rect, reach));
    }
    const { width, height } = this.layout;
    this.grid = new InterestGrid<Entity>(width, height, Math.max(1, this.radius));
    const areas = [...this.layout.booths.map((b) => ({ id: b.id, rect: b.area })), ...this.layout.areas.map((a) => ({ id: a.id, rect: a.rect }))];
    this.areaIndex = new AreaIndex(areas, width, height, 0);
    this.boothIndex = new AreaIndex(this.layout.booths.map((b) => ({ id: b.id, rect: b.area })), width, height, expo.boothRadius);
    this.boothIds = new Set(this.layout.booths.map((b) => b.id));
    this.areaIds = new Set(areas.map((a) => a.id));
    this.analytics = new ExpoAnalytics({ hallId: this.hallId, booths: this.layout.booths.map((b) => b.id), width, height, cellSize: expo.heatmapCellSize }, Date.now());
    this.hallChat = new TokenBucket(expo.hallChatPerSecond, Math.max(1, Math.ceil(expo.hallChatPerSecond)));
    if (expo.blockedWords.length) this.builtinModeration.push(wordFilter(expo.blockedWords, "mask"));
    this.welcomeHall = {
      hallId: this.hallId, name: this.layout.name, width, height,
      booths: this.layout.booths.map((b) => ({ boothId: b.id, name: b.name, exhibitor: b.exhibitor, area: b.area })),
      areas: this.layout.areas.map((a) => ({ areaId: a.id, name: a.name, rect: a.rect })),
      zones: this.layout.zones.map((z) => ({ zoneId: z.id, rect: z.rect, roomId: zoneRoomId(this.hallId, this.layout, z.id) })),
    };
    this.setMetadata({ hallId: this.hallId, zoneId: this.zoneId });

    await this.loadHallState();
    await this.subscribe(eventsChannel(this.hallId), (event: HallEvent) => this.applyHallEvent(event));
    if (this.zone) await this.subscribe(ghostsChannel(this.hallId, this.zoneId), (message: unknown) => this.receiveGhosts(decodeGhosts(message)));

    this.onEnvelope("visitorMove", (client, envelope) => this.move(client, envelope));
    this.onEnvelope("chatSend", (client, envelope) => this.answerFailure(this.chat(client, envelope), client, envelope, "chat"));
    this.onEnvelope("hostCommand", (client, envelope) => this.answerFailure(this.hostCommand(client, envelope), client, envelope, "host command"));
    this.onEnvelope("analyticsRequest", (client, envelope) => this.answerFailure(this.analyticsRequest(client, envelope), client, envelope, "analytics request"));

    const slices = Math.max(1, Math.min(expo.tickSlices, expo.tickMs));
    this.slices = Array.from({ length: slices }, () => new Set<Visitor>());
    this.sliceMs = expo.tickMs / slices;
    this.tickEpoch = performance.now();
    this.scheduleSlice();
    // At its own phase: the zones of a hall open together.
    this.timers.every(1000, () => this.everySecond());
    this.context.logger.info({ hallId: this.hallId, zoneId: this.zoneId || undefined, roomId: this.roomId, booths: this.layout.booths.length, neighbours: this.neighbours.map((z) => z.id) },
      `expo hall "${this.hallId}"${this.zone ? ` zone "${this.zoneId}"` : ""} open`);
  }

  override listingMetadata() {
    return { hallId: this.hallId, zoneId: this.zoneId || undefined, visitors: this.visitors.size };
  }

  /** A token scoped to the hall admits its holder to every zone of it. */
  protected override scopeIds(): string[] {
    return [this.hallId, this.roomId];
  }

  override async onJoin(client: Client, options?: any, auth?: TokenClaims) {
    super.onJoin(client, options, auth);
    const subject = auth?.sub ?? client.sessionId;
    const presence = this.presence;
    if (await presence.sismember(hallKey(this.hallId, "bans"), subject)) {
      this.context.metrics.errors.inc({ code: "BANNED", source: "expo" });
      this.context.logger.warn({ hallId: this.hallId, subject }, `join refused: ${subject} is banned from hall ${this.hallId}`);
      throw new ServerError(ErrorCode.BANNED, `you are banned from hall "${this.hallId}"`);
    }
    const handoff = options?.handoff !== undefined ? verify<HandoffState>(HANDOFF, options.handoff) : undefined;
    if (options?.handoff !== undefined && (!handoff || handoff.roomId !== this.roomId || handoff.subject !== subject)) {
      throw new ServerError(ErrorCode.FORBIDDEN, "zone handoff not valid here (forged, expired or for another room)");
    }
    const expo = this.context.config.expo;
    const now = Date.now();
    let entity: Entity;
    if (handoff) {
      entity = this.entities.get(handoff.visitorId) ?? this.newEntity(handoff.visitorId, handoff.x, handoff.y);
      if (entity.kind === "local") throw new ServerError(ErrorCode.ROOM_CONFLICT, `visitor ${handoff.visitorId} is already here`);
      if (handoff.seq >= entity.seq) {
        entity.seq = handoff.seq; entity.sentAtMs = handoff.sentAtMs; entity.heading = handoff.heading;
        this.grid.move(entity, handoff.x, handoff.y);
      }
      entity.name = handoff.name; entity.role = handoff.role; entity.avatar = handoff.avatar;
    } else {
      const id = await presence.incr(hallKey(this.hallId, "visitor-seq"));
      entity = this.newEntity(id, this.layout.spawn.x, this.layout.spawn.y);
      entity.name = validName(options?.name) ?? auth?.name ?? subject;
      entity.role = auth?.role === "host" || auth?.role === "admin" ? "host" : "visitor";
      entity.avatar = typeof options?.avatar === "string" && options.avatar.length <= MAX_AVATAR ? options.avatar : "";
    }
    entity.kind = "local";
    entity.ghostZone = undefined;
    entity.changedTick = entity.avatarTick = this.tickNo + 1;
    if (entity.gridCell === undefined || entity.gridCell < 0) this.grid.insert(entity);
    this.entities.set(entity.id, entity);

    const mutedRaw = handoff ? handoff.mutedUntil : Number(await presence.hget(hallKey(this.hallId, "mutes"), subject) ?? 0);
    const visitor: Visitor = {
      entity, client, subject, sessionId: client.sessionId, isHost: hostRoles.has(auth?.role ?? ""),
      view: new Set(), spare: new Set(), lastFrameTick: this.tickNo, ackedSeq: -1,
      areas: new Set(handoff?.areas ?? []), booths: new Set(handoff?.booths ?? []),
      toldAreas: new Set(handoff?.toldAreas ?? []), toldBooths: new Set(handoff?.toldBooths ?? []), placeChanged: !!handoff,
      moves: new TokenBucket(expo.maxMoveHz * 1.25, expo.maxMoveHz),
      chat: new TokenBucket(expo.chatPerSecond, expo.chatBurst),
      commands: new TokenBucket(HOST_COMMANDS_PER_SECOND, HOST_COMMAND_BURST),
      mutedUntil: mutedRaw === 1 || mutedRaw > now ? mutedRaw : 0,
      refusedAt: new Map(), connected: true, joinedAt: now, handedIn: !!handoff,
    };
    entity.local = visitor;
    this.visitors.set(client.sessionId, visitor);
    visitor.slice = this.emptiestSlice();
    visitor.slice.add(visitor);
    this.analytics.visitorJoined(subject, now);
    if (!handoff) this.updatePlace(visitor, now);
    else for (const boothId of visitor.areas) if (this.boothIds.has(boothId)) this.analytics.enterBooth(subject, boothId, now);
    this.background(presence.hset(hallKey(this.hallId, "visitors"), String(entity.id), JSON.stringify({ subject, name: entity.name, zoneId: this.zoneId } satisfies HallVisitorRecord)), "registering a visitor");

    this.sendEnvelope(client, {
      expoWelcome: {
        // after a handoff the client has the hall already (a big one is hundreds of KiB)
        visitorId: entity.id, role: entity.role, hall: handoff ? undefined : this.welcomeHall, zoneId: this.zoneId,
        tickMs: expo.tickMs, interestRadius: this.radius, boothRadius: expo.boothRadius, maxMoveHz: expo.maxMoveHz,
        ackSeq: entity.seq, x: entity.x, y: entity.y, heading: entity.heading,
        pinned: this.pinned, presentations: [...this.presentations.values()],
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
    // Its picture of the neighbourhood is unknown after a gap: start it afresh, and send
    // the next frame even if it is empty, so the client can drop whoever left meanwhile.
    visitor.view.clear();
    visitor.ackedSeq = -1;
  }

  onLeave(client: Client) {
    const visitor = this.visitors.get(client.sessionId);
    if (!visitor) return;
    this.visitors.delete(client.sessionId);
    visitor.slice?.delete(visitor);
    const now = Date.now();
    const entity = visitor.entity;
    this.analytics.visitorLeft(visitor.subject, now);
    entity.local = undefined;
    if (visitor.handoff?.state === "sent") {
      // Handed to the next zone: keep it frozen in view until that zone's ghost of it arrives.
      entity.kind = "lingering";
      entity.heardAt = now;
      return;
    }
    this.removeEntity(entity);
    this.background(this.presence.hdel(hallKey(this.hallId, "visitors"), String(entity.id)), "unregistering a visitor");
  }

  onDispose() {
    this.disposed = true;
    clearTimeout(this.sliceTimer);
    this.timers.stop();
    for (const [channel, callback] of this.subscriptions) this.presence.unsubscribe(channel, callback);
    void this.publishAnalytics();
  }

  // --- movement ----------------------------------------------------------------------

  private move(client: Client, envelope: Envelope) {
    const visitor = this.visitors.get(client.sessionId);
    if (!visitor) return;
    const metrics = this.context.metrics.expo;
    const move = envelope.visitorMove as tsunagi.v1.VisitorMove;
    if (!visitor.moves.take()) {
      metrics.movesRefused++;
      this.refuse(visitor, ErrorCode.RATE_LIMITED, `more than ${this.context.config.expo.maxMoveHz} moves/s: excess dropped`);
      return;
    }
    const { x, y, heading, seq } = move;
    if (!Number.isFinite(x) || !Number.isFinite(y) || !Number.isFinite(heading) || !Number.isFinite(move.sentAtMs)) {
      metrics.movesRefused++;
      this.refuse(visitor, ErrorCode.WRONG_TYPE, "move has a NaN or infinite value");
      return;
    }
    const entity = visitor.entity;
    if (seq <= entity.seq) {
      metrics.movesRefused++;
      // Replays after a handoff are expected; anything else is a client bug worth telling.
      if (!(visitor.handedIn && Date.now() - visitor.joinedAt < REPLAY_GRACE_MS)) {
        this.refuse(visitor, ErrorCode.WRONG_TYPE, `move seq ${seq} is not above ${entity.seq}, the newest held: dropped`);
      }
      return;
    }
    if (x < 0 || y < 0 || x > this.layout.width || y > this.layout.height) {
      metrics.movesRefused++;
      this.refuse(visitor, ErrorCode.OUT_OF_HALL, `position (${x}, ${y}) is outside the hall (0..${this.layout.width} × 0..${this.layout.height}): you stay at (${entity.x}, ${entity.y})`);
      return;
    }
    if (move.avatar) {
      if (move.avatar.length > MAX_AVATAR) {
        this.refuse(visitor, ErrorCode.WRONG_TYPE, `avatar longer than ${MAX_AVATAR} characters: kept the old one`);
      } else if (move.avatar !== entity.avatar) {
        entity.avatar = move.avatar;
        entity.avatarTick = this.tickNo + 1;
      }
    }
    metrics.moves++;
    entity.seq = seq;
    entity.heading = heading;
    entity.sentAtMs = move.sentAtMs;
    entity.changedTick = this.tickNo + 1;
    this.grid.move(entity, x, y);
    this.updatePlace(visitor, Date.now());
    if (this.zone && !visitor.handoff) this.checkBorder(visitor);
  }

  /** Areas and booths around the visitor's new position: notifications and analytics. */
  private updatePlace(visitor: Visitor, now: number) {
    const { x, y } = visitor.entity;
    // Runs on every move: the lookups fill one scratch array, no set per move.
    const found = this.placeScratch;
    found.length = 0;
    this.areaIndex.query(x, y, this.collectPlace);
    for (const id of visitor.areas) {
      if (found.includes(id)) continue;
      visitor.areas.delete(id);
      visitor.placeChanged = true;
      if (this.boothIds.has(id)) this.analytics.leaveBooth(visitor.subject, id, now);
    }
    for (const id of found) {
      if (visitor.areas.has(id)) continue;
      visitor.areas.add(id);
      visitor.placeChanged = true;
      if (this.boothIds.has(id)) this.analytics.enterBooth(visitor.subject, id, now);
    }
    if (this.boothIndex.size === 0) return;
    found.length = 0;
    this.boothIndex.query(x, y, this.collectPlace);
    for (const id of visitor.booths) if (!found.includes(id)) { visitor.booths.delete(id); visitor.placeChanged = true; }
    for (const id of found) if (!visitor.booths.has(id)) { visitor.booths.add(id); visitor.placeChanged = true; }
  }
  /** Areas or booths found at one point (a handful), reused by every updatePlace. */
  private readonly placeScratch: string[] = [];
  private readonly collectPlace = (id: string) => { this.placeScratch.push(id); };

  /** What changed in a set since the client was told: [added, removed]; `told` becomes the current set. */
  private static tell(current: Set<string>, told: Set<string>): [string[], string[]] {
    const added: string[] = [];
    const removed: string[] = [];
    for (const id of current) if (!told.has(id)) added.push(id);
    for (const id of told) if (!current.has(id)) removed.push(id);
    for (const id of removed) told.delete(id);
    for (const id of added) told.add(id);
    return [added, removed];
  }

  // --- the tick ----------------------------------------------------------------------

  /**
   * One slice of the tick. Every visitor gets a frame once per `expo.tickMs`, but not
   * all at the same instant: visitors are spread over `expo.tickSlices` slices, run one
   * after another across the tick. A move then waits at most one tick for each viewer's
   * frame, plus the work of one slice, not of the whole hall, and clients receive a
   * steady stream rather than one burst per tick. The tick counter counts slices, so a
   * change made now reaches every viewer in its next frame whichever slice it is in.
   */
  private tick() {
    const started = performance.now();
    const tick = ++this.tickNo;
    const now = Date.now();
    const metrics = this.context.metrics.expo;
    const slice = tick % this.slices.length;
    if (slice === 0) this.expireEntities(now);
    const backpressure = this.context.config.expo.backpressureBytes;
    for (const visitor of this.slices[slice]) {
      if (!visitor.connected) continue;
      if (clientBufferedAmount(visitor.client) > backpressure) { metrics.framesSkipped++; continue; }
      this.sendFrame(visitor, tick, now);
    }
    if (slice === 0) {
      if (this.zone) this.publishGhosts(tick);
      metrics.ticks++;
    }
    metrics.tickSeconds += (performance.now() - started) / 1000;
  }

  /**
   * Slices run on a fixed schedule (epoch + n × sliceMs), not on setInterval, which
   * starts each wait when the previous callback ran: a few late slices would otherwise
   * stretch every tick, and with it every visitor's wait for its frame. A room that fell
   * more than a tick behind (the process was stalled) starts a new schedule rather than
   * rushing every missed slice out at once.
   */
  private scheduleSlice() {
    if (this.disposed) return;
    const now = performance.now();
    let due = this.tickEpoch + (this.tickNo + 1) * this.sliceMs;
    if (now - due > this.context.config.expo.tickMs) {
      this.tickEpoch = now - this.tickNo * this.sliceMs;
      due = now + this.sliceMs;
    }
    this.sliceTimer = setTimeout(() => {
      try { this.tick(); } catch (error) { this.context.logger.error({ err: error, hallId: this.hallId }, "expo tick failed"); }
      this.scheduleSlice();
    }, Math.max(0, due - now));
  }

  /** The slice with the fewest visitors: joiners fill the tick evenly. */
  private emptiestSlice(): Set<Visitor> {
    let best = this.slices[0];
    for (const slice of this.slices) if (slice.size < best.size) best = slice;
    return best;
  }

  private sendFrame(visitor: Visitor, tick: number, now: number) {
    const me = visitor.entity;
    const previous = visitor.view;
    const next = visitor.spare;
    const since = visitor.lastFrameTick;
    const entries = this.scratch;
    let count = 0;
    let bytes = 0;
    const { x, y } = me;
    // Inline query over the grid (the closure below is created once per viewer, not per neighbour).
    this.grid.queryRadius(x, y, this.radius, (other) => {
      if (other === me) return;
      next.add(other);
      let piece: Uint8Array | undefined;
      if (!previous.has(other)) piece = this.encoded(other, "appeared", false);
      else if (other.changedTick > since) piece = this.encoded(other, "moved", other.avatarTick > since);
      if (piece) { entries[count++] = piece; bytes += piece.length; }
    });
    const gone = this.gone;
    gone.length = 0;
    for (const other of previous) if (!next.has(other)) gone.push(other.id);
    previous.clear();
    visitor.view = next;
    visitor.spare = previous;
    visitor.lastFrameTick = tick;

    if (count === 0 && gone.length === 0 && !visitor.placeChanged && visitor.ackedSeq === me.seq) return;
    let place: Pick<tsunagi.v1.IExpoFrame, "areasEntered" | "areasLeft" | "boothsNear" | "boothsFar"> = {};
    if (visitor.placeChanged) {
      visitor.placeChanged = false;
      const [areasEntered, areasLeft] = ExpoRoom.tell(visitor.areas, visitor.toldAreas);
      const [boothsNear, boothsFar] = ExpoRoom.tell(visitor.booths, visitor.toldBooths);
      place = { areasEntered, areasLeft, boothsNear, boothsFar };
    }
    const header = tsunagi.v1.ExpoFrame.encode({ tick, serverTimeMs: now, ackSeq: me.seq, gone, ...place }).finish();
    visitor.ackedSeq = me.seq;
    const frame = assemble(header, entries, count, bytes);
    entries.length = Math.min(entries.length, 4096);
    const metrics = this.context.metrics.expo;
    metrics.frames++;
    metrics.updates += count + gone.length;
    try { visitor.client.enqueueRaw(frame); } catch { /* closing */ }
  }

  /** An entity's state as an `appeared` or `moved` entry, encoded at most once per change per form. */
  private encoded(entity: Entity, kind: "appeared" | "moved", withAvatar: boolean): Uint8Array {
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

  private everySecond() {
    // Heatmap: one visitor-second per connected visitor, where it stands.
    for (const visitor of this.visitors.values()) this.analytics.samplePresence(visitor.entity.x, visitor.entity.y, 1);
    if (this.zone) this.retryStaleHandoffs(Date.now());
    void this.publishAnalytics();
  }

  // --- zones -------------------------------------------------------------------------

  private publishGhosts(tick: number) {
    const reach = this.radius + this.context.config.expo.handoffMargin;
    for (const neighbour of this.neighbours) {
      const rows: tsunagi.v1.IVisitorState[] = [];
      for (const visitor of this.visitors.values()) {
        const e = visitor.entity;
        if (distanceToRect(neighbour.rect, e.x, e.y) <= reach) {
          rows.push({ visitorId: e.id, x: e.x, y: e.y, heading: e.heading, seq: e.seq, sentAtMs: e.sentAtMs, avatar: e.avatar, name: e.name, role: e.role });
        }
      }
      const key = neighbour.id;
      // An empty batch matters once (it clears the neighbour's ghosts from here), not every tick.
      if (rows.length === 0 && this.lastGhostsEmpty.get(key)) continue;
      this.lastGhostsEmpty.set(key, rows.length === 0);
      this.background(this.presence.publish(ghostsChannel(this.hallId, key), encodeGhosts({ zoneId: this.zoneId, tick, visitors: rows })), "publishing ghosts");
    }
  }
  private readonly lastGhostsEmpty = new Map<string, boolean>();

  private receiveGhosts(batch: tsunagi.v1.GhostBatch) {
    const from = batch.zoneId;
    if (!from || from === this.zoneId) return;
    const now = Date.now();
    const seen = new Set<number>();
    const changeTick = this.tickNo + 1;
    for (const { visitorId: id, x, y, heading, seq, sentAtMs, avatar, name, role } of batch.visitors as tsunagi.v1.VisitorState[]) {
      seen.add(id);
      let entity = this.entities.get(id);
      if (entity?.kind === "local") continue;
      if (!entity) {
        entity = this.newEntity(id, x, y);
        entity.kind = "ghost";
        this.entities.set(id, entity);
        this.grid.insert(entity);
        entity.changedTick = entity.avatarTick = changeTick;
      } else if (seq > entity.seq || entity.kind === "lingering") {
        if (x !== entity.x || y !== entity.y || heading !== entity.heading || seq !== entity.seq) entity.changedTick = changeTick;
        this.grid.move(entity, x, y);
      }
      if (entity.avatar !== avatar) { entity.avatar = avatar; entity.avatarTick = entity.changedTick = changeTick; }
      entity.kind = "ghost";
      entity.ghostZone = from;
      entity.heardAt = now;
      entity.name = name; entity.role = role;
      if (seq > entity.seq) { entity.seq = seq; entity.heading = heading; entity.sentAtMs = sentAtMs; }
    }
    for (const entity of this.entities.values()) {
      if (entity.kind === "ghost" && entity.ghostZone === from && !seen.has(entity.id)) this.removeEntity(entity);
    }
  }

  private expireEntities(now: number) {
    for (const entity of this.entities.values()) {
      if (entity.kind === "ghost" && now - entity.heardAt > GHOST_TTL_MS) this.removeEntity(entity);
      else if (entity.kind === "lingering" && now - entity.heardAt > LINGER_MS) {
        // No ghost came from the zone it was handed to: it never arrived there, or walked off.
        this.removeEntity(entity);
        this.background(this.forgetIfStillHere(entity.id), "unregistering a lingering visitor");
      }
    }
  }

  /** Drops a visitor from the hall's visitors hash unless another zone has claimed it since. */
  private async forgetIfStillHere(visitorId: number) {
    const key = hallKey(this.hallId, "visitors");
    const raw = await this.presence.hget(key, String(visitorId));
    if (raw && (JSON.parse(raw) as HallVisitorRecord).zoneId === this.zoneId) await this.presence.hdel(key, String(visitorId));
  }

  /** A handoff the client never followed (its reservation lapsed, or it failed to join): try again. */
  private retryStaleHandoffs(now: number) {
    for (const visitor of this.visitors.values()) {
      if (visitor.handoff?.state === "sent" && now - visitor.handoff.at > HANDOFF_STALE_MS) {
        this.context.logger.warn({ hallId: this.hallId, visitorId: visitor.entity.id, to: visitor.handoff.zoneId }, `visitor ${visitor.entity.id} did not follow its handoff to zone ${visitor.handoff.zoneId}; offering it again`);
        visitor.handoff = undefined;
        this.checkBorder(visitor);
      }
    }
  }

  private checkBorder(visitor: Visitor) {
    const e = visitor.entity;
    if (distanceToRect(this.zone!.rect, e.x, e.y) <= this.context.config.expo.handoffMargin) return;
    const target = zoneAt(this.layout, e.x, e.y);
    if (!target || target === this.zone) return;
    this.background(this.handOff(visitor, target), "a zone handoff");
  }

  private async handOff(visitor: Visitor, target: ZoneLayout) {
    const { logger, metrics } = this.context;
    const e = visitor.entity;
    visitor.handoff = { zoneId: target.id, at: Date.now(), state: "reserving" };
    const roomId = zoneRoomId(this.hallId, this.layout, target.id);
    try {
      const listing = await matchMaker.driver.findOne({ roomId });
      if (!listing) throw new ServerError(ErrorCode.UNKNOWN_ROOM, `zone room "${roomId}" is not open`);
      const state: HandoffState = {
        roomId, visitorId: e.id, subject: visitor.subject, name: e.name, role: e.role, avatar: e.avatar,
        x: e.x, y: e.y, heading: e.heading, seq: e.seq, sentAtMs: e.sentAtMs,
        areas: [...visitor.areas], booths: [...visitor.booths], toldAreas: [...visitor.toldAreas], toldBooths: [...visitor.toldBooths], mutedUntil: visitor.mutedUntil,
      };
      const reservation = await matchMaker.reserveSeatFor(listing as any, { handoff: sign(HANDOFF, state, 30_000) }, (visitor.client as any).auth);
      if (!this.visitors.has(visitor.sessionId)) return; // left meanwhile
      visitor.handoff.state = "sent";
      metrics.handoffs.inc({ outcome: "reserved" });
      this.sendEnvelope(visitor.client, { zoneHandoff: { zoneId: target.id, roomId, reservationJson: JSON.stringify(reservation) } });
      logger.debug({ hallId: this.hallId, visitorId: e.id, from: this.zoneId, to: target.id }, `visitor ${e.id} handed from zone ${this.zoneId} to ${target.id}`);
    } catch (error) {
      metrics.handoffs.inc({ outcome: "failed" });
      logger.warn({ hallId: this.hallId, visitorId: e.id, to: target.id, err: error }, `handoff of visitor ${e.id} to zone ${target.id} failed; it stays in zone ${this.zoneId} and is retried`);
      visitor.handoff = { zoneId: target.id, at: Date.now(), state: "failed" };
      setTimeout(() => { if (!this.disposed && visitor.handoff?.state === "failed") { visitor.handoff = undefined; if (this.visitors.has(visitor.sessionId)) this.checkBorder(visitor); } }, HANDOFF_RETRY_MS).unref();
    }
  }

  // --- chat --------------------------------------------------------------------------

  private async chat(client: Client, envelope: Envelope) {
    const visitor = this.visitors.get(client.sessionId);
    if (!visitor) return;
    const correlationId = envelope.correlationId;
    const send = envelope.chatSend!;
    const now = Date.now();
    const kind = channelKind(send.channel?.kind);
    const target = send.channel?.target ?? "";
    if (!kind) return this.reject(client, ErrorCode.WRONG_TYPE, "chat needs a channel: HALL, BOOTH (target: booth id) or DIRECT (target: visitor id)", correlationId);
    if (typeof send.text !== "string" || send.text.trim().length === 0 || send.text.length > MAX_TEXT) {
      return this.reject(client, ErrorCode.WRONG_TYPE, `chat text must be 1..${MAX_TEXT} characters`, correlationId);
    }
    if (visitor.mutedUntil === 1 || visitor.mutedUntil > now) {
      return this.reject(client, ErrorCode.MUTED, visitor.mutedUntil === 1 ? "a host muted you: no chat until unmuted" : `a host muted you: no chat until ${new Date(visitor.mutedUntil).toISOString()}`, correlationId);
    }
    let toVisitor: number | undefined;
    if (kind === "booth") {
      if (!this.boothIds.has(target)) return this.reject(client, ErrorCode.UNKNOWN_TARGET, `no booth "${target.slice(0, 64)}" in hall "${this.hallId}"`, correlationId);
      if (!visitor.areas.has(target)) return this.reject(client, ErrorCode.FORBIDDEN, `booth chat is for visitors at booth "${target}": walk into it first`, correlationId);
    } else if (kind === "direct") {
      toVisitor = /^[1-9][0-9]{0,9}$/.test(target) ? Number(target) : NaN;
      if (!Number.isSafeInteger(toVisitor) || !(await this.presence.hget(hallKey(this.hallId, "visitors"), target))) {
        return this.reject(client, ErrorCode.UNKNOWN_TARGET, `no visitor "${target.slice(0, 20)}" in hall "${this.hallId}"`, correlationId);
      }
    }
    // Only messages that could be delivered spend the sender's (and the hall's) allowance.
    if (!visitor.chat.take()) {
      return this.reject(client, ErrorCode.RATE_LIMITED, `chat limited to ${this.context.config.expo.chatPerSecond}/s (burst ${this.context.config.expo.chatBurst}): retry in ${visitor.chat.retryAfterMs()} ms`, correlationId);
    }
    if (kind === "hall" && !this.hallChat.take()) {
      return this.reject(client, ErrorCode.RATE_LIMITED, `the hall channel is busy (over ${this.context.config.expo.hallChatPerSecond} messages/s): retry shortly`, correlationId);
    }
    const verdict = await moderate([...moderationHooks, ...this.builtinModeration], {
      channel: { kind, target }, text: send.text,
      from: { visitorId: visitor.entity.id, subject: visitor.subject, name: visitor.entity.name, role: visitor.entity.role },
    }, this.context.config.expo.moderationTimeoutMs);
    if (verdict.action === "reject") return this.reject(client, ErrorCode.MODERATED, `message refused by moderation: ${verdict.reason}`, correlationId);
    const message: tsunagi.v1.IChatMessage = {
      messageId: `${this.zoneId || "hall"}-${process.pid.toString(36)}-${(++this.messageCounter).toString(36)}`,
      channel: { kind: send.channel!.kind, target }, fromVisitorId: visitor.entity.id, fromName: visitor.entity.name,
      text: verdict.action === "replace" ? verdict.text : send.text, atMs: now,
    };
    if (kind === "direct") {
      this.deliverChat(message, toVisitor);
      if (!this.localById(toVisitor!)) this.publishEvent({ type: "chat", message, toVisitorId: toVisitor });
    } else {
      this.deliverChat(message);
      if (kind === "hall") this.publishEvent({ type: "chat", message });
    }
    if (this.visitors.has(client.sessionId)) this.sendEnvelope(client, { correlationId, chatMessage: message }, TRUSTED);
  }

  /** Delivers chat to this zone's recipients (never echoing to the sender: its reply is the echo). */
  private deliverChat(message: tsunagi.v1.IChatMessage, toVisitorId?: number): number {
    const frame = framedEnvelope({ chatMessage: message });
    const kind = channelKind(message.channel?.kind);
    let delivered = 0;
    for (const visitor of this.visitors.values()) {
      if (visitor.entity.id === message.fromVisitorId) continue;
      if (kind === "direct" && visitor.entity.id !== toVisitorId) continue;
      if (kind === "booth" && !visitor.areas.has(message.channel!.target!)) continue;
      try { visitor.client.enqueueRaw(frame); delivered++; } catch { /* closing */ }
    }
    return delivered;
  }

  // --- host tools --------------------------------------------------------------------

  private async hostCommand(client: Client, envelope: Envelope) {
    const visitor = this.visitors.get(client.sessionId);
    if (!visitor) return;
    const correlationId = envelope.correlationId;
    if (!visitor.isHost) return this.reject(client, ErrorCode.FORBIDDEN, `host tools need the host role (you are ${visitor.entity.role})`, correlationId);
    if (!visitor.commands.take()) {
      return this.reject(client, ErrorCode.RATE_LIMITED, `host commands limited to ${HOST_COMMANDS_PER_SECOND}/s (burst ${HOST_COMMAND_BURST}): retry in ${visitor.commands.retryAfterMs()} ms`, correlationId);
    }
    const command = envelope.hostCommand!;
    const now = Date.now();
    const by = visitor.entity.name;
    const log = (what: string, fields: Record<string, unknown> = {}) =>
      this.context.logger.info({ hallId: this.hallId, zoneId: this.zoneId || undefined, host: visitor.subject, ...fields }, `host ${visitor.subject}: ${what}`);
    const reply = (delivered: number, detail: string) => this.sendEnvelope(client, { correlationId, hostResult: { delivered, detail } });
    try {
      switch (command.command) {
        case "announce": {
          const { text, areaId } = command.announce!;
          if (!text || text.length > MAX_TEXT) return this.reject(client, ErrorCode.WRONG_TYPE, `announcement text must be 1..${MAX_TEXT} characters`, correlationId);
          if (areaId && !this.areaIds.has(areaId)) return this.reject(client, ErrorCode.UNKNOWN_TARGET, `no area or booth "${areaId.slice(0, 64)}" in hall "${this.hallId}"`, correlationId);
          const announcement = { text, areaId: areaId ?? "", fromName: by, atMs: now };
          const delivered = this.deliverAnnouncement(announcement);
          this.publishEvent({ type: "announce", announcement });
          log(`announced to ${areaId ? `area ${areaId}` : "the hall"}`, { delivered });
          return reply(delivered, areaId ? `announced in ${areaId}` : "announced to the hall");
        }
        case "presentation": {
          const { boothId, live, title } = command.presentation!;
          if (!boothId || !this.boothIds.has(boothId)) return this.reject(client, ErrorCode.UNKNOWN_TARGET, `no booth "${(boothId ?? "").slice(0, 64)}" in hall "${this.hallId}"`, correlationId);
          if ((title ?? "").length > MAX_TITLE) return this.reject(client, ErrorCode.WRONG_TYPE, `presentation title must be at most ${MAX_TITLE} characters`, correlationId);
          const state: tsunagi.v1.IBoothState = { boothId, live: !!live, title: title ?? "", presenter: live ? by : "", sinceMs: now };
          if (live) await this.presence.hset(hallKey(this.hallId, "presentations"), boothId, JSON.stringify(state));
          else await this.presence.hdel(hallKey(this.hallId, "presentations"), boothId);
          const delivered = this.applyPresentation(state);
          this.publishEvent({ type: "presentation", state });
          log(`${live ? "started" : "stopped"} the presentation at ${boothId}`);
          return reply(delivered, `${live ? "started" : "stopped"} presentation at ${boothId}`);
        }
        case "pin": {
          const text = command.pin!.text ?? "";
          if (text.length > MAX_TEXT) return this.reject(client, ErrorCode.WRONG_TYPE, `pinned text must be at most ${MAX_TEXT} characters`, correlationId);
          const pinned = { text, by: text ? by : "", atMs: now };
          await this.presence.set(hallKey(this.hallId, "pinned"), JSON.stringify(pinned));
          const delivered = this.applyPin(pinned);
          this.publishEvent({ type: "pin", pinned });
          log(text ? "pinned a message" : "unpinned the message");
          return reply(delivered, text ? "pinned" : "unpinned");
        }
        case "moderate":
          return await this.moderateCommand(client, visitor, command.moderate!, correlationId, log, reply);
        default:
          return this.reject(client, ErrorCode.WRONG_TYPE, "HostCommand needs one of announce, presentation, moderate, pin", correlationId);
      }
    } catch (error) {
      this.context.logger.error({ err: error, hallId: this.hallId }, "host command failed");
      return this.reject(client, ErrorCode.INTERNAL, `host command failed: ${(error as Error).message}`, correlationId);
    }
  }

  private async moderateCommand(client: Client, host: Visitor, command: tsunagi.v1.IModerate, correlationId: Envelope["correlationId"],
    log: (what: string, fields?: Record<string, unknown>) => void, reply: (delivered: number, detail: string) => void) {
    const reason = (command.reason ?? "").slice(0, MAX_TITLE);
    const action = command.action ?? Action.ACTION_UNSPECIFIED;
    let subject = command.subject ?? "";
    let record: HallVisitorRecord | undefined;
    if (command.visitorId) {
      const raw = await this.presence.hget(hallKey(this.hallId, "visitors"), String(command.visitorId));
      if (!raw) return this.reject(client, ErrorCode.UNKNOWN_TARGET, `no visitor ${command.visitorId} in hall "${this.hallId}"`, correlationId);
      record = JSON.parse(raw) as HallVisitorRecord;
      subject = record.subject;
    }
    const needsVisitor = action === Action.MUTE || action === Action.UNMUTE || action === Action.KICK;
    if (needsVisitor && !record) return this.reject(client, ErrorCode.WRONG_TYPE, "mute, unmute and kick need a visitor_id", correlationId);
    if ((action === Action.BAN || action === Action.UNBAN) && !subject) return this.reject(client, ErrorCode.WRONG_TYPE, "ban needs a visitor_id or a subject; unban needs a subject", correlationId);
    if (subject === host.subject && action !== Action.UNMUTE && action !== Action.UNBAN) return this.reject(client, ErrorCode.WRONG_TYPE, "a host cannot mute, kick or ban themselves", correlationId);
    const mutes = hallKey(this.hallId, "mutes");
    const bans = hallKey(this.hallId, "bans");
    switch (action) {
      case Action.MUTE:
      case Action.UNMUTE: {
        const untilMs = action === Action.UNMUTE ? 0 : command.seconds ? Date.now() + command.seconds * 1000 : 1;
        if (untilMs) await this.presence.hset(mutes, subject, String(untilMs));
        else await this.presence.hdel(mutes, subject);
        const delivered = this.applyMute(subject, untilMs, reason);
        this.publishEvent({ type: "mute", subject, untilMs, reason });
        log(`${untilMs ? "muted" : "unmuted"} ${subject}`, { visitorId: command.visitorId, seconds: command.seconds || undefined });
        return reply(delivered, `${untilMs ? "muted" : "unmuted"} visitor ${command.visitorId}`);
      }
      case Action.KICK: {
        const delivered = this.applyKick(command.visitorId!, reason);
        this.publishEvent({ type: "kick", visitorId: command.visitorId!, reason });
        log(`kicked ${subject}`, { visitorId: command.visitorId, reason });
        return reply(delivered, `kicked visitor ${command.visitorId}`);
      }
      case Action.BAN: {
        await this.presence.sadd(bans, subject);
        const delivered = this.applyBan(subject, reason);
        this.publishEvent({ type: "ban", subject, reason });
        log(`banned ${subject}`, { visitorId: command.visitorId || undefined, reason });
        return reply(delivered, `banned ${subject}`);
      }
      case Action.UNBAN: {
        await this.presence.srem(bans, subject);
        log(`unbanned ${subject}`);
        return reply(0, `unbanned ${subject}`);
      }
      default:
        return this.reject(client, ErrorCode.WRONG_TYPE, "Moderate needs an action: MUTE, UNMUTE, KICK, BAN or UNBAN", correlationId);
    }
  }

  private deliverAnnouncement(announcement: tsunagi.v1.IAnnouncement): number {
    const frame = framedEnvelope({ announcement });
    let delivered = 0;
    for (const visitor of this.visitors.values()) {
      if (announcement.areaId && !visitor.areas.has(announcement.areaId)) continue;
      try { visitor.client.enqueueRaw(frame); delivered++; } catch { /* closing */ }
    }
    return delivered;
  }

  private applyPresentation(state: tsunagi.v1.IBoothState): number {
    if (state.live) this.presentations.set(state.boothId!, state);
    else this.presentations.delete(state.boothId!);
    return this.broadcastEnvelope({ boothState: state });
  }

  private applyPin(pinned: tsunagi.v1.IPinnedMessage): number {
    this.pinned = pinned;
    return this.broadcastEnvelope({ pinnedMessage: pinned });
  }

  private applyMute(subject: string, untilMs: number, reason: string): number {
    let delivered = 0;
    for (const visitor of this.visitors.values()) {
      if (visitor.subject !== subject) continue;
      visitor.mutedUntil = untilMs;
      this.sendEnvelope(visitor.client, { moderationNotice: { action: untilMs ? Action.MUTE : Action.UNMUTE, reason, untilMs } });
      delivered++;
    }
    return delivered;
  }

  private applyKick(visitorId: number, reason: string): number {
    const visitor = this.localById(visitorId);
    if (!visitor) return 0;
    this.removeVisitor(visitor, Action.KICK, ErrorCode.KICKED, CLOSE_KICKED, `a host removed you from the hall${reason ? `: ${reason}` : ""}`, reason);
    return 1;
  }

  private applyBan(subject: string, reason: string): number {
    let delivered = 0;
    for (const visitor of [...this.visitors.values()]) {
      if (visitor.subject !== subject) continue;
      this.removeVisitor(visitor, Action.BAN, ErrorCode.BANNED, CLOSE_BANNED, `a host banned you from this hall${reason ? `: ${reason}` : ""}`, reason);
      delivered++;
    }
    return delivered;
  }

  /**
   * Runs work nobody waits for; a failure (Redis away) is logged and counted, never left
   * as an unhandled rejection, which would end the node's process.
   */
  private background(work: Promise<unknown> | unknown, what: string) {
    void Promise.resolve(work).catch((error) => {
      this.context.metrics.errors.inc({ code: "INTERNAL", source: "expo" });
      this.context.logger.error({ err: error, hallId: this.hallId, roomId: this.roomId }, `expo: ${what} failed`);
    });
  }

  /** Runs a request's handler; if it fails, the sender is told INTERNAL (and it is logged). */
  private answerFailure(work: Promise<unknown>, client: Client, envelope: Envelope, what: string) {
    work.catch((error) => {
      this.context.logger.error({ err: error, hallId: this.hallId, sessionId: client.sessionId }, `expo: ${what} failed`);
      try { this.reject(client, ErrorCode.INTERNAL, `${what} failed on the server; try again`, envelope.correlationId); } catch { /* closing */ }
    });
  }

  private removeVisitor(visitor: Visitor, action: tsunagi.v1.Moderate.Action, code: number, closeCode: number, message: string, reason: string) {
    this.context.metrics.errors.inc({ code: errorCodeName(code), source: "expo" });
    this.context.logger.warn({ hallId: this.hallId, sessionId: visitor.sessionId, subject: visitor.subject, code: errorCodeName(code) }, message);
    try { this.sendEnvelope(visitor.client, { moderationNotice: { action, reason } }); } catch { /* already closing */ }
    this.removeClient(visitor.client, code, message, closeCode);
  }

  private broadcastEnvelope(envelope: tsunagi.v1.IEnvelope): number {
    const frame = framedEnvelope(envelope);
    let delivered = 0;
    for (const visitor of this.visitors.values()) {
      try { visitor.client.enqueueRaw(frame); delivered++; } catch { /* closing */ }
    }
    return delivered;
  }

  // --- hall-wide state ---------------------------------------------------------------

  private async loadHallState() {
    const presence = this.presence;
    const pinned = await presence.get(hallKey(this.hallId, "pinned"));
    if (pinned) this.pinned = JSON.parse(pinned);
    const presentations = await presence.hgetall(hallKey(this.hallId, "presentations"));
    for (const raw of Object.values(presentations ?? {})) {
      const state = JSON.parse(raw) as tsunagi.v1.IBoothState;
      this.presentations.set(state.boothId!, state);
    }
  }

  private async subscribe(channel: string, callback: (data: any) => void) {
    const guarded = (data: any) => {
      try { callback(data); } catch (error) { this.context.logger.error({ err: error, channel }, "expo hall message handler failed"); }
    };
    this.subscriptions.push([channel, guarded]);
    await this.presence.subscribe(channel, guarded);
  }

  private publishEvent(event: HallEventBody) {
    if (!this.zone) return;
    this.background(this.presence.publish(eventsChannel(this.hallId), { ...event, from: this.roomId }), "publishing a hall event");
  }

  private applyHallEvent(event: HallEvent) {
    if (!event || event.from === this.roomId) return;
    switch (event.type) {
      case "announce": this.deliverAnnouncement(event.announcement); return;
      case "presentation": this.applyPresentation(event.state); return;
      case "pin": this.applyPin(event.pinned); return;
      case "mute": this.applyMute(event.subject, event.untilMs, event.reason); return;
      case "kick": this.applyKick(event.visitorId, event.reason); return;
      case "ban": this.applyBan(event.subject, event.reason); return;
      case "chat": this.deliverChat(event.message, event.toVisitorId); return;
    }
  }

  // --- analytics ---------------------------------------------------------------------

  private async publishAnalytics() {
    try {
      await this.presence.hset(hallKey(this.hallId, "analytics"), this.zoneId || "hall", JSON.stringify(this.analytics.snapshot(Date.now())));
    } catch (error) {
      this.context?.logger.warn({ err: error, hallId: this.hallId }, "could not publish expo analytics; retrying next second");
    }
  }

  /** The hall's analytics: this zone's live figures merged with the other zones' latest. */
  async report(): Promise<ReturnType<ExpoAnalytics["report"]>> {
    const now = Date.now();
    if (!this.zone) return this.analytics.report(now);
    const stored = await this.presence.hgetall(hallKey(this.hallId, "analytics"));
    const snapshots: AnalyticsSnapshot[] = [this.analytics.snapshot(now)];
    for (const [zoneId, raw] of Object.entries(stored ?? {})) if (zoneId !== this.zoneId) snapshots.push(JSON.parse(raw));
    return mergeSnapshots({ hallId: this.hallId, booths: this.layout.booths.map((b) => b.id), width: this.layout.width, height: this.layout.height, cellSize: this.context.config.expo.heatmapCellSize }, snapshots, now);
  }

  /**
   * Closes this zone for good (DELETE /expo/halls/{hallId}, on every zone): each visitor
   * is told HALL_CLOSED and disconnected with that close code; the final analytics stay
   * in Redis for export.
   */
  async closeHall(by: string): Promise<number> {
    const visitors = [...this.visitors.values()];
    this.context.logger.info({ hallId: this.hallId, zoneId: this.zoneId || undefined, by, visitors: visitors.length }, `closing hall "${this.hallId}"${this.zone ? ` zone "${this.zoneId}"` : ""}`);
    for (const visitor of visitors) {
      try { visitor.client.error(ErrorCode.HALL_CLOSED, `hall "${this.hallId}" was closed by ${by}`); } catch { /* closing */ }
    }
    this.disposed = true;
    clearTimeout(this.sliceTimer);
    await this.disconnect(CLOSE_HALL_CLOSED);
    // everyone's visits are closed now (onLeave): these are the hall's final figures
    await this.publishAnalytics();
    return visitors.length;
  }

  private async analyticsRequest(client: Client, envelope: Envelope) {
    const visitor = this.visitors.get(client.sessionId);
    if (!visitor) return;
    if (!visitor.isHost) return this.reject(client, ErrorCode.FORBIDDEN, "analytics are for hosts", envelope.correlationId);
    const report = await this.report();
    this.sendEnvelope(client, { correlationId: envelope.correlationId, analyticsReport: report });
  }

  // --- helpers -----------------------------------------------------------------------

  private newEntity(id: number, x: number, y: number): Entity {
    return {
      id, kind: "ghost", name: "", role: "visitor", avatar: "", x, y, heading: 0, seq: 0, sentAtMs: 0,
      gridCell: -1, gridSlot: -1, changedTick: 0, avatarTick: 0, heardAt: Date.now(), encodedTick: -1,
    };
  }

  private removeEntity(entity: Entity) {
    this.grid.remove(entity);
    if (this.entities.get(entity.id) === entity) this.entities.delete(entity.id);
  }

  private localById(visitorId: number): Visitor | undefined {
    const entity = this.entities.get(visitorId);
    return entity?.kind === "local" ? entity.local : undefined;
  }

  /** A coded error for a hot-path refusal, at most once a second per kind per visitor; the rest are counted. */
  private refuse(visitor: Visitor, code: number, message: string) {
    const now = Date.now();
    const last = visitor.refusedAt.get(code) ?? 0;
    if (now - last < REFUSAL_INTERVAL_MS) {
      this.context.metrics.errors.inc({ code: errorCodeName(code), source: "expo" });
      return;
    }
    visitor.refusedAt.set(code, now);
    rejectInput(this.context, visitor.client, code, message, { roomId: this.roomId, source: "expo" });
  }
}

function channelKind(kind: number | null | undefined): ChatChannelKind | undefined {
  switch (kind) {
    case Kind.HALL: return "hall";
    case Kind.BOOTH: return "booth";
    case Kind.DIRECT: return "direct";
    default: return undefined;
  }
}

function validName(value: unknown): string | undefined {
  return typeof value === "string" && value.trim().length > 0 && value.length <= MAX_NAME ? value.trim() : undefined;
}
