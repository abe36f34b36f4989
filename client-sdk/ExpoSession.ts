/**
 * A visitor (or host) in an expo hall: move, see who is near, hear about booths and
 * areas, chat, and, for hosts, run the hall.
 *
 * The session keeps the picture of the neighbourhood that the room's per-tick frames
 * describe (`neighbours`), and follows zone handoffs by itself: when the room says the
 * visitor walked into another zone, the session joins that zone's room with the
 * reservation it was given, resends the moves the new zone lacks, and leaves the old
 * one. The application sees no reconnect: the same neighbours, the same visitor id, a
 * `zone` event.
 *
 * @example
 *   const client = new TsunagiClient({ url: "http://127.0.0.1:2567", token });
 *   const expo = await ExpoSession.join(client, "tokyo-expo", { name: "Aiko", avatar: "fox" });
 *   expo.on("neighbours", ({ appeared, moved, gone }) => render(expo.neighbours));
 *   expo.on("areaEntered", (areaId) => console.log("entered", areaId));
 *   setInterval(() => expo.move(x, y, heading), 100);
 *   await expo.chat({ kind: "booth", target: "acme" }, "Hello!");
 *   if (expo.host) await expo.host.announce("Keynote in 5 minutes", "stage");
 */
import { ErrorCode, tsunagi, type Envelope } from "../proto/index.ts";
import { TsunagiError, fromServerError } from "./errors.ts";
import { RoomSession, type HandoffEvent, type LeaveEvent, type RoomSessionOptions } from "./RoomSession.ts";
import { SafeEmitter } from "../common/SafeEmitter.ts";
import type { TsunagiClient } from "./TsunagiClient.ts";

const Kind = tsunagi.v1.ChatChannel.Kind;
const Action = tsunagi.v1.Moderate.Action;

/** One visitor in view. */
export interface Neighbour {
  visitorId: number;
  x: number;
  y: number;
  heading: number;
  /** The seq of the move this position comes from. */
  seq: number;
  /** The mover's own clock when it made that move (relayed untouched). */
  sentAtMs: number;
  avatar: string;
  name: string;
  role: string;
}

export interface NeighbourChanges {
  tick: number;
  appeared: Neighbour[];
  moved: Neighbour[];
  gone: number[];
}

export type ChatTarget = { kind: "hall" } | { kind: "booth"; target: string } | { kind: "direct"; target: number | string };

export interface ExpoSessionEvents {
  /** Neighbours changed (after `neighbours` was updated). */
  neighbours: (changes: NeighbourChanges) => void;
  /** Every frame as received, for applications that want the raw protocol. */
  frame: (frame: tsunagi.v1.ExpoFrame) => void;
  boothNear: (boothId: string) => void;
  boothFar: (boothId: string) => void;
  areaEntered: (areaId: string) => void;
  areaLeft: (areaId: string) => void;
  chat: (message: tsunagi.v1.ChatMessage) => void;
  announcement: (announcement: tsunagi.v1.Announcement) => void;
  boothState: (state: tsunagi.v1.BoothState) => void;
  pinned: (pinned: tsunagi.v1.PinnedMessage) => void;
  /** The voices to hear now (voice.proto; VoiceSession applies it). */
  voiceHear: (hear: tsunagi.v1.VoiceHear) => void;
  /** Muted, unmuted, kicked or banned (a kick or ban is followed by `leave`). */
  moderation: (notice: tsunagi.v1.ModerationNotice) => void;
  /** Handed to another zone of the hall. */
  zone: (event: { zoneId: string; roomId: string }) => void;
  /** The hall's room moved to another node or region, and this session with it (same visitor, nothing lost). */
  moved: (event: HandoffEvent) => void;
  /** A coded error from the room (a refused move, a flood...) or a failed handoff. The session goes on. */
  error: (error: TsunagiError) => void;
  /** The session ended. */
  leave: (event: LeaveEvent) => void;
}

export interface ExpoJoinOptions {
  /** Display name (1..40 characters once trimmed; the join is refused WRONG_TYPE otherwise); default: the token's name or subject. */
  name?: string;
  /** Avatar asset key (up to 64 characters; the join is refused WRONG_TYPE otherwise). */
  avatar?: string;
  /** Passed to the RoomSession of each zone joined. */
  session?: RoomSessionOptions;
}

/** The welcome carries the whole layout (a 2,000-booth hall is a few hundred KiB), so expo sessions accept larger envelopes than the SDK's default. */
const EXPO_MAX_ENVELOPE_BYTES = 8 * 1024 * 1024;
/** Moves kept for resending after a handoff; older unacknowledged moves are dropped. */
const MAX_UNACKED = 256;

export class ExpoSession {
  /** The hall as its layout describes it. */
  readonly hall: tsunagi.v1.ExpoHall;
  readonly visitorId: number;
  /** "visitor" or "host". */
  readonly role: string;
  readonly tickMs: number;
  readonly interestRadius: number;
  readonly boothRadius: number;
  readonly maxMoveHz: number;
  /** Host tools; undefined for visitors. */
  readonly host?: HostTools;
  /** Who is in view now, by visitor id. The objects are live: a later frame updates them in place. */
  readonly neighbours = new Map<number, Neighbour>();
  /** Booths near and areas you are in, now. */
  readonly boothsNear = new Set<string>();
  readonly areas = new Set<string>();
  /** Booths presenting now, by booth id. */
  readonly presentations = new Map<string, tsunagi.v1.BoothState>();
  pinned: tsunagi.v1.IPinnedMessage;
  /** Counts, for applications and load tests. */
  readonly stats = { frames: 0, appeared: 0, moved: 0, gone: 0, handoffs: 0, movesSent: 0, movesResent: 0 };

  private session: RoomSession;
  private zone: string;
  private lastSeq: number;
  private acked: number;
  private position: { x: number; y: number; heading: number };
  private readonly unacked: tsunagi.v1.IVisitorMove[] = [];
  private readonly events: SafeEmitter<ExpoSessionEvents>;
  private switching = false;
  /** The next frame describes the whole view (after a handoff or a reconnect): reconcile against it. */
  private expectFullFrame = false;
  private ended = false;
  private detach: Array<() => void> = [];

  private constructor(private readonly client: TsunagiClient, session: RoomSession, welcomed: Welcomed, private readonly options: ExpoJoinOptions) {
    const welcome = welcomed.welcome;
    this.session = session;
    this.hall = welcome.hall as tsunagi.v1.ExpoHall;
    this.visitorId = welcome.visitorId;
    this.role = welcome.role;
    this.tickMs = welcome.tickMs;
    this.interestRadius = welcome.interestRadius;
    this.boothRadius = welcome.boothRadius;
    this.maxMoveHz = welcome.maxMoveHz;
    this.zone = welcome.zoneId;
    this.lastSeq = welcome.ackSeq;
    this.acked = welcome.ackSeq;
    this.position = { x: welcome.x, y: welcome.y, heading: welcome.heading };
    this.pinned = welcome.pinned ?? { text: "" };
    for (const state of welcome.presentations) this.presentations.set(state.boothId ?? "", state as tsunagi.v1.BoothState);
    this.events = new SafeEmitter<ExpoSessionEvents>(options.session?.onListenerError ?? ((error, source) => console.error(`tsunagi: ${source} threw`, error)));
    if (this.role === "host") this.host = new HostTools(this);
    this.attach(session);
    for (const envelope of welcomed.release()) this.receive(envelope);
  }

  /** Joins hall `hallId` (its entrance room) through `client`. */
  static async join(client: TsunagiClient, hallId: string, options: ExpoJoinOptions = {}): Promise<ExpoSession> {
    const joinOptions: Record<string, unknown> = {};
    if (options.name !== undefined) joinOptions.name = options.name;
    if (options.avatar !== undefined) joinOptions.avatar = options.avatar;
    const session = await client.joinById(hallId, joinOptions, { maxEnvelopeBytes: EXPO_MAX_ENVELOPE_BYTES, ...options.session });
    try {
      const welcomed = await nextWelcome(session);
      return new ExpoSession(client, session, welcomed, options);
    } catch (error) {
      await session.leave().catch(() => {});
      throw error;
    }
  }

  /** The zone this session is in now ("" for an unzoned hall). */
  get zoneId(): string { return this.zone; }
  /** The room serving you now. */
  get roomId(): string { return this.session.roomId; }
  /** The newest of your moves the room has applied. */
  get ackSeq(): number { return this.acked; }
  /** Your last position as sent (or as placed by the room on joining). */
  get me(): Readonly<{ x: number; y: number; heading: number }> { return this.position; }
  get closed(): boolean { return this.ended; }

  on<K extends keyof ExpoSessionEvents>(event: K, listener: ExpoSessionEvents[K]): () => void {
    return this.events.on(event, listener);
  }

  /**
   * Sends a move (at most `maxMoveHz` a second; the room refuses the excess) and returns
   * its seq. `sentAtMs` defaults to this machine's clock and reaches every neighbour.
   */
  move(x: number, y: number, heading = this.position.heading, options: { avatar?: string; sentAtMs?: number } = {}): number {
    if (this.ended) throw new TsunagiError(ErrorCode.WRONG_TYPE, "the expo session has ended");
    const move: tsunagi.v1.IVisitorMove = { seq: ++this.lastSeq, x, y, heading, sentAtMs: options.sentAtMs ?? Date.now(), avatar: options.avatar ?? "" };
    this.unacked.push(move);
    if (this.unacked.length > MAX_UNACKED) this.unacked.shift();
    this.position = { x, y, heading };
    this.stats.movesSent++;
    // During a handoff moves still go to the old zone, which takes them until the client leaves it.
    if (!this.session.closed) this.session.sendEnvelope({ visitorMove: move });
    return this.lastSeq;
  }

  /** Sends chat; resolves with the message as delivered (moderation may have changed it). Rejects with a TsunagiError (MUTED, RATE_LIMITED, MODERATED...). */
  async chat(to: ChatTarget, text: string): Promise<tsunagi.v1.ChatMessage> {
    const channel = to.kind === "hall" ? { kind: Kind.HALL, target: "" }
      : to.kind === "booth" ? { kind: Kind.BOOTH, target: to.target }
      : { kind: Kind.DIRECT, target: String(to.target) };
    const reply = await this.request({ chatSend: { channel, text } });
    return reply.chatMessage as tsunagi.v1.ChatMessage;
  }

  /** Leaves the hall. */
  async leave(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    await this.session.leave();
  }

  /** A request to the current zone room (host tools use it). */
  request(body: Omit<tsunagi.v1.IEnvelope, "correlationId">): Promise<Envelope> {
    return this.session.request(body);
  }

  /** An envelope to the current zone room that needs no reply. */
  notify(body: Omit<tsunagi.v1.IEnvelope, "correlationId">): void {
    if (!this.session.closed) this.session.sendEnvelope(body);
  }

  // --- internals --------------------------------------------------------------------

  private attach(session: RoomSession) {
    for (const off of this.detach) off();
    this.detach = [
      session.onEnvelope((envelope) => { if (session === this.session) this.receive(envelope); }),
      session.on("error", (error) => { if (session === this.session) this.events.emit("error", error); }),
      session.on("reconnected", () => { if (session === this.session) this.expectFullFrame = true; }),
      // The hall's room moved to another node or region: its first frame there is the whole view.
      session.on("handoff", (event) => {
        if (session !== this.session) return;
        this.expectFullFrame = true;
        this.events.emit("moved", event);
      }),
      session.on("leave", (event) => {
        if (session !== this.session || this.switching) return;
        this.ended = true;
        this.events.emit("leave", event);
      }),
    ];
  }

  private receive(envelope: Envelope) {
    switch (envelope.body) {
      case "expoFrame": return this.applyFrame(envelope.expoFrame as tsunagi.v1.ExpoFrame);
      case "chatMessage": return this.events.emit("chat", envelope.chatMessage as tsunagi.v1.ChatMessage);
      case "announcement": return this.events.emit("announcement", envelope.announcement as tsunagi.v1.Announcement);
      case "boothState": {
        const state = envelope.boothState as tsunagi.v1.BoothState;
        if (state.live) this.presentations.set(state.boothId, state); else this.presentations.delete(state.boothId);
        return this.events.emit("boothState", state);
      }
      case "pinnedMessage":
        this.pinned = envelope.pinnedMessage!;
        return this.events.emit("pinned", envelope.pinnedMessage as tsunagi.v1.PinnedMessage);
      case "moderationNotice": return this.events.emit("moderation", envelope.moderationNotice as tsunagi.v1.ModerationNotice);
      case "voiceHear": return this.events.emit("voiceHear", envelope.voiceHear as tsunagi.v1.VoiceHear);
      case "zoneHandoff": return void this.handOff(envelope.zoneHandoff as tsunagi.v1.ZoneHandoff);
      // The room tells every refusal both ways: an Error envelope (correlation id 0, for
      // clients on the protobuf channel alone, such as Unity's) and a room error, which
      // arrives first and is reported as "error". Reporting the envelope too would tell
      // the application every refusal twice.
      case "error": return;
      default: return;
    }
  }

  private applyFrame(frame: tsunagi.v1.ExpoFrame) {
    this.stats.frames++;
    this.noteAck(frame.ackSeq);
    // Thousands of frames a second arrive at a busy client: neighbours are updated in
    // place, and the change lists are built only when someone listens for them.
    const report = this.events.has("neighbours");
    const changes: NeighbourChanges = { tick: frame.tick, appeared: [], moved: [], gone: [] };
    if (this.expectFullFrame) {
      // The room started this visitor's view afresh: whoever it does not name is out of view.
      this.expectFullFrame = false;
      const named = new Set<number>([...frame.appeared, ...frame.moved].map((v) => v.visitorId ?? 0));
      for (const id of [...this.neighbours.keys()]) if (!named.has(id)) { this.neighbours.delete(id); changes.gone.push(id); }
    }
    let appeared = 0, moved = 0, gone = changes.gone.length;
    for (const state of frame.appeared) {
      const known = this.neighbours.get(state.visitorId ?? 0);
      if (known) { update(known, state); moved++; if (report) changes.moved.push(known); continue; }
      const neighbour = toNeighbour(state);
      this.neighbours.set(neighbour.visitorId, neighbour);
      appeared++;
      if (report) changes.appeared.push(neighbour);
    }
    for (const state of frame.moved) {
      const known = this.neighbours.get(state.visitorId ?? 0);
      if (known) {
        if ((state.seq ?? 0) < known.seq) continue; // older than what we have (seen through another zone)
        update(known, state);
        moved++;
        if (report) changes.moved.push(known);
        continue;
      }
      const neighbour = toNeighbour(state);
      this.neighbours.set(neighbour.visitorId, neighbour);
      moved++;
      if (report) changes.moved.push(neighbour);
    }
    for (const id of frame.gone) if (this.neighbours.delete(id)) { gone++; if (report) changes.gone.push(id); }
    this.stats.appeared += appeared;
    this.stats.moved += moved;
    this.stats.gone += gone;
    this.events.emit("frame", frame);
    for (const id of frame.boothsNear) { this.boothsNear.add(id); this.events.emit("boothNear", id); }
    for (const id of frame.boothsFar) { this.boothsNear.delete(id); this.events.emit("boothFar", id); }
    for (const id of frame.areasEntered) { this.areas.add(id); this.events.emit("areaEntered", id); }
    for (const id of frame.areasLeft) { this.areas.delete(id); this.events.emit("areaLeft", id); }
    if (report && (changes.appeared.length || changes.moved.length || changes.gone.length)) this.events.emit("neighbours", changes);
  }

  private noteAck(seq: number) {
    if (seq <= this.acked) return;
    this.acked = seq;
    while (this.unacked.length && (this.unacked[0].seq ?? 0) <= seq) this.unacked.shift();
  }

  private async handOff(handoff: tsunagi.v1.ZoneHandoff) {
    if (this.switching || this.ended) return;
    this.switching = true;
    const old = this.session;
    try {
      const reservation = JSON.parse(handoff.reservationJson);
      const url = old.region?.url;
      if (!url) throw new TsunagiError(ErrorCode.INTERNAL, "handoff needs the region URL this session joined through");
      const colyseus = this.client.colyseusClient(url);
      const room = await colyseus.consumeSeatReservation(reservation);
      const next = new RoomSession(room, {
        maxEnvelopeBytes: EXPO_MAX_ENVELOPE_BYTES, ...this.options.session, region: old.region,
        follow: (seat) => colyseus.consumeSeatReservation(seat as never),
      });
      const welcomed = await nextWelcome(next);
      const welcome = welcomed.welcome;
      this.session = next;
      this.zone = welcome.zoneId;
      this.expectFullFrame = true;
      this.attach(next);
      for (const envelope of welcomed.release()) this.receive(envelope);
      // Moves the new zone lacks: after its ack, in order. It drops any it already has.
      for (const move of this.unacked) {
        if ((move.seq ?? 0) <= welcome.ackSeq) continue;
        next.sendEnvelope({ visitorMove: move });
        this.stats.movesResent++;
      }
      this.noteAck(welcome.ackSeq);
      this.stats.handoffs++;
      this.switching = false;
      await old.leave().catch(() => {});
      this.events.emit("zone", { zoneId: welcome.zoneId, roomId: next.roomId });
    } catch (error) {
      this.switching = false;
      this.events.emit("error", error instanceof TsunagiError ? error : fromServerError(error));
    }
  }
}

/** What a host may do in the hall (ExpoSession.host). Each resolves with the room's HostResult. */
export class HostTools {
  constructor(private readonly expo: ExpoSession) {}

  /** To the whole hall, or to the visitors inside one area or booth. */
  announce(text: string, areaId = ""): Promise<tsunagi.v1.HostResult> {
    return this.command({ announce: { text, areaId } });
  }
  startPresentation(boothId: string, title = ""): Promise<tsunagi.v1.HostResult> {
    return this.command({ presentation: { boothId, live: true, title } });
  }
  stopPresentation(boothId: string): Promise<tsunagi.v1.HostResult> {
    return this.command({ presentation: { boothId, live: false } });
  }
  /** No chat for `seconds` (0: until unmuted). */
  mute(visitorId: number, seconds = 0, reason = ""): Promise<tsunagi.v1.HostResult> {
    return this.command({ moderate: { action: Action.MUTE, visitorId, seconds, reason } });
  }
  unmute(visitorId: number): Promise<tsunagi.v1.HostResult> {
    return this.command({ moderate: { action: Action.UNMUTE, visitorId } });
  }
  kick(visitorId: number, reason = ""): Promise<tsunagi.v1.HostResult> {
    return this.command({ moderate: { action: Action.KICK, visitorId, reason } });
  }
  /** Bans a visitor in the hall, or a token subject who is not here. */
  ban(who: { visitorId: number } | { subject: string }, reason = ""): Promise<tsunagi.v1.HostResult> {
    return this.command({ moderate: { action: Action.BAN, reason, ...("visitorId" in who ? { visitorId: who.visitorId } : { subject: who.subject }) } });
  }
  unban(subject: string): Promise<tsunagi.v1.HostResult> {
    return this.command({ moderate: { action: Action.UNBAN, subject } });
  }
  /** Pins a message for everyone; "" unpins. */
  pin(text: string): Promise<tsunagi.v1.HostResult> {
    return this.command({ pin: { text } });
  }
  /** The hall's analytics so far (every zone). */
  async analytics(): Promise<tsunagi.v1.AnalyticsReport> {
    const reply = await this.expo.request({ analyticsRequest: {} });
    return reply.analyticsReport as tsunagi.v1.AnalyticsReport;
  }

  private async command(command: tsunagi.v1.IHostCommand): Promise<tsunagi.v1.HostResult> {
    const reply = await this.expo.request({ hostCommand: command });
    return reply.hostResult as tsunagi.v1.HostResult;
  }
}

function toNeighbour(state: tsunagi.v1.IVisitorState): Neighbour {
  return {
    visitorId: state.visitorId ?? 0,
    x: state.x ?? 0, y: state.y ?? 0, heading: state.heading ?? 0,
    seq: state.seq ?? 0, sentAtMs: state.sentAtMs ?? 0,
    avatar: state.avatar ?? "", name: state.name ?? "", role: state.role || "visitor",
  };
}

/** A known neighbour's newer state; avatar, name and role only when the frame names them. */
function update(known: Neighbour, state: tsunagi.v1.IVisitorState): void {
  known.x = state.x ?? 0; known.y = state.y ?? 0; known.heading = state.heading ?? 0;
  known.seq = state.seq ?? 0; known.sentAtMs = state.sentAtMs ?? 0;
  if (state.avatar) known.avatar = state.avatar;
  if (state.name) known.name = state.name;
  if (state.role) known.role = state.role;
}

/**
 * The ExpoWelcome a freshly joined room sends first, and whatever came with it. The room
 * queues frames for a joining client and flushes them right behind the welcome, in the
 * same socket read, before an awaiting caller resumes: so the listener stays until
 * `release()`, keeping those envelopes (in order) for the caller to apply.
 */
interface Welcomed {
  welcome: tsunagi.v1.ExpoWelcome;
  /** Stops buffering and returns what arrived after the welcome. Call it in the same synchronous block as attaching the real handlers. */
  release(): Envelope[];
}

function nextWelcome(session: RoomSession, timeoutMs = 10_000): Promise<Welcomed> {
  return new Promise((resolve, reject) => {
    let welcome: tsunagi.v1.ExpoWelcome | undefined;
    const buffered: Envelope[] = [];
    const timer = setTimeout(() => { off(); offLeave(); reject(new TsunagiError(ErrorCode.REGION_UNAVAILABLE, `no ExpoWelcome within ${timeoutMs} ms: is "${session.roomId}" an expo hall?`)); }, timeoutMs);
    const off = session.onEnvelope((envelope) => {
      if (welcome) { buffered.push(envelope); return; }
      if (envelope.body !== "expoWelcome") return;
      welcome = envelope.expoWelcome as tsunagi.v1.ExpoWelcome;
      clearTimeout(timer); offLeave();
      resolve({ welcome, release: () => { off(); return buffered.splice(0); } });
    });
    const offLeave = session.on("leave", (event) => {
      clearTimeout(timer); off(); offLeave();
      reject(event.error ?? new TsunagiError(ErrorCode.INTERNAL, `left "${session.roomId}" before its welcome (close ${event.code})`));
    });
  });
}
