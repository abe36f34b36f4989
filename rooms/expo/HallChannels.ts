/**
 * What the zone rooms of one hall share, through the region's Colyseus presence (Redis
 * in cluster mode, memory in embedded mode): key and channel names, the hall-wide events
 * every zone applies to its own visitors, and HallChannels, one zone room's side of them.
 *
 * Keys (prefix `expo:{hallId}:`), each expiring `expo.hallRetentionMs` after the hall's
 * last open zone last refreshed them (keep()): a closed hall's figures stay exportable that
 * long, and the keys of a hall whose nodes all died do not stay forever:
 *   layout          the validated layout JSON (set when the hall opens)
 *   visitor-seq     INCR: the next visitor id
 *   visitors        hash visitorId -> {subject, name, zoneId}: who is in the hall, where
 *   bans            set of banned token subjects
 *   mutes           hash subject -> muted-until (ms; 1 = until unmuted)
 *   pinned          the pinned message JSON
 *   presentations   hash boothId -> BoothState JSON (live ones only)
 *   analytics:...   the hall's analytics (AnalyticsStore)
 * Channels:
 *   expo:{hallId}:events          HallEvent, from the zone that took the host command
 *   expo:{hallId}:ghosts:{zoneId} GhostBatch, each tick, from each neighbouring zone
 * Both are cluster.proto messages, protobuf in base64 (proto/clusterCodec.ts).
 */
import type { Presence } from "@colyseus/core";
import { ErrorCode, ProtocolError, tsunagi } from "../../proto/index.ts";
import { fromPresence, toPresence } from "../../proto/clusterCodec.ts";

export const hallKey = (hallId: string, key: string) => `expo:${hallId}:${key}`;
/** Every key of a hall (under hallKey()): the one list keep() expires. A new key belongs here. */
export const HALL_KEYS = ["layout", "visitor-seq", "visitors", "bans", "mutes", "pinned", "presentations"] as const;
/** How often an open zone refreshes its hall keys' expiry, ms. */
export const HALL_KEEP_MS = 60_000;
export const eventsChannel = (hallId: string) => `expo:${hallId}:events`;
export const ghostsChannel = (hallId: string, zoneId: string) => `expo:${hallId}:ghosts:${zoneId}`;

/** What the hall's visitors hash holds per visitor id. */
export interface HallVisitorRecord { subject: string; name: string; zoneId: string }


/** A host command's effect, applied by every zone to its own visitors. */
export type HallEventBody =
  | { type: "announce"; announcement: tsunagi.v1.IAnnouncement }
  | { type: "presentation"; state: tsunagi.v1.IBoothState }
  | { type: "pin"; pinned: tsunagi.v1.IPinnedMessage }
  | { type: "mute"; subject: string; untilMs: number; reason: string }
  | { type: "kick"; visitorId: number; reason: string }
  | { type: "ban"; subject: string; reason: string }
  | { type: "chat"; message: tsunagi.v1.IChatMessage; toVisitorId?: number }
  | { type: "sensors"; sensors: tsunagi.v1.IHallSensors };
/** A HallEventBody as published: `from` is the room that took the command. */
export type HallEvent = HallEventBody & { from: string };

/** A hall event as it travels (cluster.proto HallEvent). */
export function hallEventMessage(event: HallEvent): tsunagi.v1.IHallEvent {
  const message: tsunagi.v1.IHallEvent = { fromRoomId: event.from };
  switch (event.type) {
    case "announce": message.announcement = event.announcement; break;
    case "presentation": message.presentation = event.state; break;
    case "pin": message.pin = event.pinned; break;
    case "mute": message.mute = { subject: event.subject, untilMs: event.untilMs, reason: event.reason }; break;
    case "kick": message.kick = { visitorId: event.visitorId, reason: event.reason }; break;
    case "ban": message.ban = { subject: event.subject, reason: event.reason }; break;
    case "chat": message.chat = { message: event.message, toVisitorId: event.toVisitorId ?? 0 }; break;
    case "sensors": message.sensors = event.sensors; break;
  }
  return message;
}

/** Publishes a hall event from outside the hall (a site's teleop room, whose sensors stand in it): every zone applies it. */
export function publishHallEvent(presence: Presence, hallId: string, event: HallEvent): Promise<unknown> {
  return Promise.resolve(presence.publish(eventsChannel(hallId), toPresence(tsunagi.v1.HallEvent, hallEventMessage(event))));
}

/** The hall event a HallEvent message carries; throws a ProtocolError for one without a body. */
export function hallEventOf(message: tsunagi.v1.HallEvent): HallEvent {
  const from = message.fromRoomId;
  switch (message.body) {
    case "announcement": return { type: "announce", announcement: message.announcement!, from };
    case "presentation": return { type: "presentation", state: message.presentation!, from };
    case "pin": return { type: "pin", pinned: message.pin!, from };
    case "mute": {
      const { subject, untilMs, reason } = message.mute as tsunagi.v1.HallMute;
      return { type: "mute", subject, untilMs, reason, from };
    }
    case "kick": {
      const { visitorId, reason } = message.kick as tsunagi.v1.HallKick;
      return { type: "kick", visitorId, reason, from };
    }
    case "ban": {
      const { subject, reason } = message.ban as tsunagi.v1.HallBan;
      return { type: "ban", subject, reason, from };
    }
    case "chat": {
      const chat = message.chat as tsunagi.v1.HallChat;
      if (!chat.message) throw new ProtocolError(ErrorCode.WRONG_TYPE, "a hall chat event without its message");
      return { type: "chat", message: chat.message, toVisitorId: chat.toVisitorId || undefined, from };
    }
    case "sensors": return { type: "sensors", sensors: message.sensors!, from };
    default: throw new ProtocolError(ErrorCode.WRONG_TYPE, "a hall event without a body");
  }
}

/** What a zone room's HallChannels needs of it. */
export interface HallChannelsHost {
  readonly hallId: string;
  /** This room: named in the events it publishes, so that it skips its own. */
  readonly roomId: string;
  /** This room's zone; "" for an unzoned hall, which has no other zone to tell. */
  readonly zoneId: string;
  /** How long the hall's keys outlive the last refresh (`expo.hallRetentionMs`), ms. */
  readonly retentionMs: number;
  /** Runs work nobody waits for (a publish, a register update); a failure is logged and counted. */
  background(work: Promise<unknown>, what: string): void;
  /** A channel's message handler threw: logged, and the next message is handled as usual. */
  onHandlerError(error: unknown, channel: string): void;
}

/**
 * One zone room's side of its hall's shared state: the pub/sub channels (hall events,
 * ghost batches to and from neighbouring zones) and the keys (bans, mutes, the pinned
 * message, presentations, the visitor register; the analytics are AnalyticsStore's).
 *
 * @example
 *   const hall = new HallChannels(room.presence, { hallId, roomId, zoneId, background, onHandlerError });
 *   await hall.onEvents((event) => apply(event));
 *   if (await hall.isBanned(subject)) refuse();
 *   hall.publishEvent({ type: "pin", pinned });
 *   hall.close(); // on dispose
 */
export class HallChannels {
  /** The region's presence: Redis in cluster mode, memory in embedded mode. */
  private readonly presence: Presence;
  /** The hall, this room, and where failures go. */
  private readonly host: HallChannelsHost;
  /** The highest visitor id this zone handed out. */
  private lastVisitorId = 0;
  /** Subscriptions to undo on close: each channel and the guarded callback given for it. */
  private readonly subscriptions: Array<[string, (data: unknown) => void]> = [];

  constructor(presence: Presence, host: HallChannelsHost) {
    this.presence = presence;
    this.host = host;
  }

  // --- channels -------------------------------------------------------------------------

  /** Hall events other zone rooms publish (this room's own are skipped). */
  onEvents(apply: (event: HallEvent) => void): Promise<void> {
    return this.subscribe(eventsChannel(this.host.hallId), (data) => {
      const event = hallEventOf(fromPresence(tsunagi.v1.HallEvent, data));
      if (event.from !== this.host.roomId) apply(event);
    });
  }

  /** Ghost batches the neighbouring zones publish to this zone. */
  onGhosts(apply: (batch: tsunagi.v1.GhostBatch) => void): Promise<void> {
    return this.subscribe(ghostsChannel(this.host.hallId, this.host.zoneId), (data) => apply(fromPresence(tsunagi.v1.GhostBatch, data)));
  }

  /** Tells the hall's other zones (none in an unzoned hall). */
  publishEvent(event: HallEventBody): void {
    if (!this.host.zoneId) return;
    this.host.background(this.presence.publish(eventsChannel(this.host.hallId), toPresence(tsunagi.v1.HallEvent, hallEventMessage({ ...event, from: this.host.roomId } as HallEvent))), "publishing a hall event");
  }

  /** Sends the zone `zoneId` the visitors of this one within its reach. */
  publishGhosts(zoneId: string, batch: tsunagi.v1.IGhostBatch): void {
    this.host.background(this.presence.publish(ghostsChannel(this.host.hallId, zoneId), toPresence(tsunagi.v1.GhostBatch, batch)), "publishing ghosts");
  }

  /** Unsubscribes from everything (the room is closing). */
  close(): void {
    for (const [channel, callback] of this.subscriptions.splice(0)) this.presence.unsubscribe(channel, callback);
  }

  private async subscribe(channel: string, callback: (data: unknown) => void): Promise<void> {
    const guarded = (data: unknown) => {
      try { callback(data); } catch (error) { this.host.onHandlerError(error, channel); }
    };
    this.subscriptions.push([channel, guarded]);
    await this.presence.subscribe(channel, guarded);
  }

  // --- keys -----------------------------------------------------------------------------

  async isBanned(subject: string): Promise<boolean> {
    return !!(await this.presence.sismember(this.key("bans"), subject));
  }

  async ban(subject: string): Promise<void> {
    await this.presence.sadd(this.key("bans"), subject);
  }

  async unban(subject: string): Promise<void> {
    await this.presence.srem(this.key("bans"), subject);
  }

  /** When the subject's mute ends, ms: 1 until unmuted, 0 (or a past time) not muted. */
  async mutedUntil(subject: string): Promise<number> {
    return Number(await this.presence.hget(this.key("mutes"), subject) ?? 0);
  }

  /** Mutes the subject until `untilMs` (1: until unmuted); 0 unmutes. */
  async mute(subject: string, untilMs: number): Promise<void> {
    if (untilMs) await this.presence.hset(this.key("mutes"), subject, String(untilMs));
    else await this.presence.hdel(this.key("mutes"), subject);
  }

  async pinned(): Promise<tsunagi.v1.IPinnedMessage | undefined> {
    const raw = await this.presence.get(this.key("pinned"));
    return raw ? JSON.parse(raw) : undefined;
  }

  async pin(pinned: tsunagi.v1.IPinnedMessage): Promise<void> {
    await this.presence.set(this.key("pinned"), JSON.stringify(pinned));
  }

  /** The live presentations. */
  async presentations(): Promise<tsunagi.v1.IBoothState[]> {
    const stored = await this.presence.hgetall(this.key("presentations"));
    return Object.values(stored ?? {}).map((raw) => JSON.parse(raw) as tsunagi.v1.IBoothState);
  }

  /** Stores a presentation that started, or forgets one that stopped. */
  async present(state: tsunagi.v1.IBoothState): Promise<void> {
    if (state.live) await this.presence.hset(this.key("presentations"), state.boothId!, JSON.stringify(state));
    else await this.presence.hdel(this.key("presentations"), state.boothId!);
  }

  /**
   * A fresh visitor id, unique in the hall. A counter that went back (the region Redis
   * restarted empty or from an older snapshot) is moved past every id this zone handed
   * out, so its visitors do not get the id of one already here.
   */
  async nextVisitorId(): Promise<number> {
    const id = await this.presence.incr(this.key("visitor-seq"));
    if (id > this.lastVisitorId) return (this.lastVisitorId = id);
    await this.presence.set(this.key("visitor-seq"), String(this.lastVisitorId));
    return this.nextVisitorId();
  }

  /** The register's record of a visitor id, in whichever zone it is; undefined when it is not in the hall. */
  async visitor(visitorId: number | string): Promise<HallVisitorRecord | undefined> {
    const raw = await this.presence.hget(this.key("visitors"), String(visitorId));
    return raw ? (JSON.parse(raw) as HallVisitorRecord) : undefined;
  }

  /** Records that a visitor is in this zone (in the background). */
  register(visitorId: number, subject: string, name: string): void {
    const record: HallVisitorRecord = { subject, name, zoneId: this.host.zoneId };
    this.host.background(this.presence.hset(this.key("visitors"), String(visitorId), JSON.stringify(record)), "registering a visitor");
  }

  /** Records that a visitor left the hall (in the background). */
  unregister(visitorId: number): void {
    this.host.background(this.presence.hdel(this.key("visitors"), String(visitorId)), "unregistering a visitor");
  }

  /** Unregisters a visitor unless another zone has claimed it since (a handoff that was followed after all). */
  forgetIfStillHere(visitorId: number): void {
    this.host.background((async () => {
      const record = await this.visitor(visitorId);
      if (record?.zoneId === this.host.zoneId) await this.presence.hdel(this.key("visitors"), String(visitorId));
    })(), "unregistering a lingering visitor");
  }

  /**
   * Sets every hall key, and `extra` (names under the hall's prefix, such as the
   * analytics store's), to expire `retentionMs` from now (in the background). An open
   * zone calls it every HALL_KEEP_MS and when it closes, so the keys go `retentionMs`
   * after the hall's last zone closed or died.
   */
  keep(extra: readonly string[] = []): void {
    const seconds = Math.ceil(this.host.retentionMs / 1000);
    this.host.background(Promise.all([...HALL_KEYS, ...extra].map((name) => this.presence.expire(this.key(name), seconds))), "refreshing the hall keys' expiry");
  }

  /**
   * The hall's keys, `names` under its prefix (HALL_KEYS and the analytics store's), as
   * they are now: what a hall carries when it moves to another region's presence. Every
   * one is a hash but those in STRING_KEYS and SET_KEYS.
   */
  async exportKeys(names: readonly string[]): Promise<HallKeys> {
    const keys: HallKeys = {};
    await Promise.all(names.map(async (name) => {
      const key = this.key(name);
      if (STRING_KEYS.has(name)) {
        const value = await this.presence.get(key);
        if (value !== null && value !== undefined) keys[name] = { string: String(value) };
      } else if (SET_KEYS.has(name)) {
        const members = await this.presence.smembers(key);
        if (members.length) keys[name] = { set: members.map(String) };
      } else {
        const hash = await this.presence.hgetall(key);
        if (hash && Object.keys(hash).length) keys[name] = { hash };
      }
    }));
    return keys;
  }

  /** Writes keys exportKeys() read elsewhere into this region's presence (a hall that moved here). */
  async importKeys(keys: HallKeys): Promise<void> {
    await Promise.all(Object.entries(keys).map(async ([name, value]) => {
      const key = this.key(name);
      if (value.string !== undefined) await this.presence.set(key, value.string);
      else if (value.set) await Promise.all(value.set.map((member) => this.presence.sadd(key, member)));
      else if (value.hash) await Promise.all(Object.entries(value.hash).map(([field, v]) => this.presence.hset(key, field, v)));
    }));
  }

  private key(name: string): string {
    return hallKey(this.host.hallId, name);
  }
}

/** A hall's keys as they move between regions (HallChannels.exportKeys). */
export type HallKeys = Record<string, { string?: string; set?: string[]; hash?: Record<string, string> }>;
/** The hall keys that are strings, and sets; the rest are hashes. */
const STRING_KEYS: ReadonlySet<string> = new Set(["layout", "visitor-seq", "pinned"]);
const SET_KEYS: ReadonlySet<string> = new Set(["bans"]);
