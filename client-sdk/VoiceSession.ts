/**
 * Voice in a room, in the browser (voice.proto): asks the room for a grant, joins the
 * room's SFU (Janus' VideoRoom) with it over plain WebRTC, publishes the microphone in
 * stereo Opus, and subscribes to exactly the voices the room says to hear (VoiceHear),
 * one multistream subscription changed in place as people move.
 *
 * - Mute stops sending (no packets at all, not silence); `levels()` reads each voice's
 *   level and the microphone's; `useMicrophone()` switches the input device.
 * - Spatial: in an expo hall each voice is panned (WebAudio PannerNode) by where its
 *   visitor stands relative to you; stage voices are not placed.
 * - When the room moves (a handoff, a zone change) or the SFU restarts, the session asks
 *   for a fresh grant and joins again: the new connection is made before the old one is
 *   closed, so the gap is the new subscription's start.
 *
 * @example
 *   const voice = await VoiceSession.start(expoVoiceLink(expo), { speak: true });
 *   voice.on("heard", ({ feedId, atMs }) => console.log(`${feedId} audible`));
 *   voice.mute(true);
 *   await voice.close();
 */
import { SafeEmitter } from "../common/SafeEmitter.ts";
import type { Envelope, IEnvelope, tsunagi } from "../proto/index.ts";
import { JanusSignal, type WebSocketFactory } from "./voice/JanusSignal.ts";
import { VoiceSpace, type Placement } from "./voice/VoiceSpace.ts";
import { withStereoOpus, whenGathered } from "./voice/sdp.ts";

const VIDEOROOM = "janus.plugin.videoroom";

/** What VoiceSession needs of the room it speaks in. */
export interface VoiceRoomLink {
  request(body: Omit<IEnvelope, "correlationId">): Promise<Envelope>;
  /** An envelope that needs no reply. */
  notify(body: Omit<IEnvelope, "correlationId">): void;
  onVoiceHear(handler: (hear: tsunagi.v1.VoiceHear) => void): () => void;
  /** The session moved to another room (zone, node or region): a new grant is needed. */
  onRoomChanged(handler: () => void): () => void;
  /** Where a visitor stands (expo), for panning. */
  placement?: Placement;
}

export interface VoiceSessionOptions {
  /** Publish the microphone (default true; a listener-only role is granted listening anyway). */
  speak?: boolean;
  /** The microphone's deviceId (default: the browser's default input). */
  microphone?: string;
  /** Pan voices by position (default: when the link knows positions). */
  spatial?: boolean;
  /** For tests and non-browser hosts. */
  webSocket?: WebSocketFactory;
  onListenerError?: (error: unknown, source: string) => void;
}

export interface VoiceSessionEvents {
  /** The voices heard changed (the room's VoiceHear applied). */
  hear: (feeds: tsunagi.v1.IVoiceFeed[]) => void;
  /**
   * A voice's first packet arrived after it was subscribed (Date.now() times): when the
   * room's VoiceHear naming it arrived, when the SFU's subscription was in place, and the packet.
   */
  heard: (event: { feedId: string; toldAtMs: number; startedAtMs: number; atMs: number }) => void;
  /** Joined the SFU again (a fresh grant): after a move or a restart. */
  rejoined: () => void;
  error: (error: Error) => void;
}

/** One connection to the SFU: its signalling, publisher and subscriber. */
interface Leg {
  janus: JanusSignal;
  grant: tsunagi.v1.VoiceGrant;
  publisher: number;
  privateId: number;
  publishing?: RTCPeerConnection;
  sender?: RTCRtpSender;
  subscriber?: number;
  receiving?: RTCPeerConnection;
  /** Feeds subscribed, and the mid each came in on. */
  feeds: Map<string, string>;
  /** Whether the SFU forwards each (false: on standby). */
  sending: Map<string, boolean>;
  /** Serialises subscription changes. */
  queue: Promise<void>;
  /** Where its voices play (spatial), if placed. */
  space?: VoiceSpace;
  /** Each subscribed feed's visitor (expo), by feed id. */
  visitors: Map<string, number>;
  /** Feeds whose first packet arrived. */
  firstPackets: Set<string>;
}

/**
 * After a move, the old connection keeps publishing this long (the others may not hear
 * the new one yet), ms; it stops playing once the new one has had first packets of as
 * many voices, or after this at the latest.
 */
const LEG_OVERLAP_MS = 3000;

export class VoiceSession {
  private leg?: Leg;
  private microphone?: MediaStream;
  private muted = false;
  private closed = false;
  /** A grant is being asked for and used: what the room says to hear is for the connection to come. */
  private joining = false;
  /** The room's latest word on what to hear. */
  private hearing: tsunagi.v1.IVoiceFeed[] = [];
  private hearVersion = 0;
  /** When the latest VoiceHear arrived. */
  private toldAt = 0;
  private readonly events: SafeEmitter<VoiceSessionEvents>;
  /** Connections of the room's old home, kept until the new one plays (make-before-break). */
  private readonly retiring = new Set<Leg>();
  private readonly detach: Array<() => void> = [];

  private constructor(private readonly link: VoiceRoomLink, private readonly options: VoiceSessionOptions) {
    this.events = new SafeEmitter<VoiceSessionEvents>(options.onListenerError ?? ((error, source) => console.error(`tsunagi voice: ${source} threw`, error)));
  }

  /** Joins the room's voice: a grant, the SFU, the microphone (when speaking). */
  static async start(link: VoiceRoomLink, options: VoiceSessionOptions = {}): Promise<VoiceSession> {
    const voice = new VoiceSession(link, options);
    voice.detach.push(link.onVoiceHear((hear) => voice.applyHear(hear)));
    voice.detach.push(link.onRoomChanged(() => void voice.rejoin().catch((error) => voice.events.emit("error", error))));
    try {
      await voice.join();
    } catch (error) {
      await voice.close();
      throw error;
    }
    return voice;
  }

  on<K extends keyof VoiceSessionEvents>(event: K, listener: VoiceSessionEvents[K]): () => void {
    return this.events.on(event, listener);
  }

  /** The grant in use. */
  get grant(): tsunagi.v1.VoiceGrant | undefined { return this.leg?.grant; }
  /** Feeds subscribed now (audible or on standby). */
  get feeds(): string[] { return [...(this.leg?.feeds.keys() ?? [])]; }
  /** Feeds audible now: subscribed, and forwarded. */
  get audible(): string[] { return [...(this.leg?.sending ?? [])].filter(([, sending]) => sending).map(([feed]) => feed); }
  /** The mid each subscribed feed arrives on. */
  get mids(): ReadonlyMap<string, string> { return new Map(this.leg?.feeds); }
  /** The connections, for statistics (getStats). */
  get peerConnections(): { publishing?: RTCPeerConnection; receiving?: RTCPeerConnection } {
    return { publishing: this.leg?.publishing, receiving: this.leg?.receiving };
  }

  /** Stops (or starts again) sending the microphone: no packets while muted. */
  async mute(muted: boolean): Promise<void> {
    this.muted = muted;
    const track = muted ? null : this.microphone?.getAudioTracks()[0] ?? null;
    await Promise.all([this.leg, ...this.retiring].map((leg) => leg?.sender?.replaceTrack(track)));
  }

  get isMuted(): boolean { return this.muted; }

  /** Switches the microphone. */
  async useMicrophone(deviceId: string): Promise<void> {
    const next = await microphoneStream(deviceId);
    this.microphone?.getTracks().forEach((track) => track.stop());
    this.microphone = next;
    this.options.microphone = deviceId;
    if (!this.muted) await this.leg?.sender?.replaceTrack(next.getAudioTracks()[0] ?? null);
  }

  /** The inputs the browser offers. */
  static async microphones(): Promise<MediaDeviceInfo[]> {
    return (await navigator.mediaDevices.enumerateDevices()).filter((device) => device.kind === "audioinput");
  }

  /** Each voice's audio level (0..1) by feed id, and the microphone's as "self". */
  async levels(): Promise<Map<string, number>> {
    const levels = new Map<string, number>();
    const leg = this.leg;
    if (!leg) return levels;
    const feedOfMid = new Map([...leg.feeds].map(([feed, mid]) => [mid, feed]));
    // The samples where voices play (spatial); the browser's own figure otherwise (0 where nothing plays audio out).
    (await leg.receiving?.getStats())?.forEach((report) => {
      if (report.type === "inbound-rtp" && report.kind === "audio" && feedOfMid.has(report.mid)) levels.set(feedOfMid.get(report.mid)!, report.audioLevel ?? 0);
    });
    for (const [feedId, level] of leg.space?.levels() ?? []) levels.set(feedId, Math.max(level, levels.get(feedId) ?? 0));
    (await leg.publishing?.getStats())?.forEach((report) => {
      if (report.type === "media-source" && report.kind === "audio") levels.set("self", this.muted ? 0 : report.audioLevel ?? 0);
    });
    return levels;
  }

  /** Leaves the room's voice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const off of this.detach) off();
    if (this.leg) this.link.notify({ voiceLeave: {} });
    for (const leg of [this.leg, ...this.retiring]) this.endLeg(leg);
    this.retiring.clear();
    this.leg = undefined;
    this.microphone?.getTracks().forEach((track) => track.stop());
  }

  // --- joining ---------------------------------------------------------------------

  private async join(): Promise<void> {
    this.joining = true;
    try {
      await this.connect();
    } finally {
      this.joining = false;
    }
    // What the room said meanwhile, applied to the new connection.
    if (this.leg) this.subscribe(this.leg);
  }

  private async connect(): Promise<void> {
    const reply = await this.link.request({ voiceJoin: { speak: this.options.speak ?? true } });
    const grant = reply.voiceGrant as tsunagi.v1.VoiceGrant;
    const janus = await JanusSignal.connect(grant.url, grant.token, this.options.webSocket);
    let leg: Leg | undefined;
    try {
      const publisher = await janus.attach(VIDEOROOM);
      const joined = await janus.message(publisher, { request: "join", ptype: "publisher", room: grant.room, id: grant.feedId, display: grant.feedId, token: grant.token });
      leg = {
        janus, grant, publisher, privateId: joined.data.private_id, feeds: new Map(), sending: new Map(), queue: Promise.resolve(),
        visitors: new Map(), firstPackets: new Set(),
        space: (this.options.spatial ?? this.link.placement !== undefined) && typeof AudioContext !== "undefined" ? new VoiceSpace(this.link.placement) : undefined,
      };
      janus.onClose = (reason) => { if (this.leg === leg && !this.closed) void this.recover(reason); };
      if (grant.speak) await this.publish(leg);
    } catch (error) {
      this.endLeg(leg);
      janus.close();
      throw error;
    }
    const old = this.leg;
    this.leg = leg;
    if (grant.speak) this.link.notify({ voiceReady: { feedId: grant.feedId } });
    if (old) void this.retire(old, leg);
  }

  /**
   * The old home's connection: it stops playing once the new one plays as many voices as
   * it did, and goes (its microphone too) after LEG_OVERLAP_MS.
   */
  private async retire(old: Leg, next: Leg): Promise<void> {
    this.retiring.add(old);
    const started = Date.now();
    const playing = [...old.sending].filter(([feed, sending]) => sending && old.firstPackets.has(feed)).length;
    while (Date.now() - started < LEG_OVERLAP_MS && this.leg === next && next.firstPackets.size < playing) await new Promise((resolve) => setTimeout(resolve, 20));
    old.receiving?.close();
    void old.space?.close();
    old.space = undefined;
    const rest = LEG_OVERLAP_MS - (Date.now() - started);
    if (rest > 0 && this.leg === next) await new Promise((resolve) => setTimeout(resolve, rest));
    this.retiring.delete(old);
    this.endLeg(old);
  }

  /** Packets received so far of each visitor's voice (expo), over the connection and any still retiring. */
  async packetsByVisitor(): Promise<Map<number, number>> {
    const packets = new Map<number, number>();
    for (const leg of [this.leg, ...this.retiring]) {
      if (!leg) continue;
      const counts = await this.packetCounts(leg);
      for (const [feed, mid] of leg.feeds) {
        const visitorId = leg.visitors.get(feed);
        if (visitorId) packets.set(visitorId, (packets.get(visitorId) ?? 0) + (counts.get(mid) ?? 0));
      }
    }
    return packets;
  }

  private async publish(leg: Leg): Promise<void> {
    this.microphone ??= await microphoneStream(this.options.microphone);
    const pc = leg.publishing = new RTCPeerConnection();
    const track = this.microphone.getAudioTracks()[0];
    const transceiver = pc.addTransceiver(track ?? "audio", { direction: "sendonly", streams: [this.microphone] });
    leg.sender = transceiver.sender;
    if (this.muted) await transceiver.sender.replaceTrack(null);
    const offer = await pc.createOffer();
    await pc.setLocalDescription({ type: "offer", sdp: withStereoOpus(offer.sdp ?? "") });
    await whenGathered(pc);
    const live = new Promise<void>((resolve) => {
      const watch = leg.janus.onEvent;
      leg.janus.onEvent = (handleId, message) => {
        if (handleId === leg.publisher && message.janus === "webrtcup") resolve();
        watch(handleId, message);
      };
    });
    const answer = await leg.janus.message(leg.publisher, { request: "configure", audio: true, video: false }, pc.localDescription!.toJSON());
    await pc.setRemoteDescription(answer.jsep!);
    await withTimeout(live, 10_000, "the voice server did not receive the microphone");
  }

  /** Applies the room's newest VoiceHear. */
  private applyHear(hear: tsunagi.v1.VoiceHear): void {
    if (hear.version <= this.hearVersion) return; // an older word
    this.hearVersion = hear.version;
    this.toldAt = Date.now();
    this.hearing = hear.feeds;
    this.events.emit("hear", hear.feeds);
    if (this.leg && !this.joining) this.subscribe(this.leg);
  }

  /** Brings the leg's subscription to the room's latest word; one change at a time, the latest wins. */
  private subscribe(leg: Leg): void {
    leg.queue = leg.queue.then(() => this.update(leg)).catch((error) => this.events.emit("error", error));
  }

  private async update(leg: Leg): Promise<void> {
    if (this.leg !== leg || this.closed) return;
    const toldAt = this.toldAt;
    const wanted = new Map(this.hearing.map((feed) => [feed.feedId!, !feed.standby]));
    const add = [...wanted.keys()].filter((feed) => !leg.feeds.has(feed));
    const drop = [...leg.feeds.keys()].filter((feed) => !wanted.has(feed));
    leg.space?.placeAll(this.hearing.filter((feed) => !feed.standby));
    for (const feed of this.hearing) if (feed.visitorId) leg.visitors.set(feed.feedId!, feed.visitorId);
    if (add.length > 0 || (drop.length > 0 && leg.subscriber !== undefined)) await this.resubscribe(leg, add, drop);
    // Audible or standby: the SFU forwards a stream or holds it (no renegotiation).
    const toggles = [...wanted].filter(([feed, audible]) => leg.feeds.has(feed) && leg.sending.get(feed) !== audible);
    if (toggles.length > 0 && leg.subscriber !== undefined) {
      const counted = await this.packetCounts(leg);
      const askedAt = Date.now();
      await leg.janus.message(leg.subscriber, { request: "configure", streams: toggles.map(([feed, audible]) => ({ mid: leg.feeds.get(feed), send: audible })) });
      const switchedAt = Date.now();
      for (const [feed, audible] of toggles) {
        leg.sending.set(feed, audible);
        if (audible) void this.watchFirstPacket(leg, feed, counted.get(leg.feeds.get(feed)!) ?? 0, toldAt, switchedAt, askedAt);
      }
    }
  }

  /** Subscribes to `add` and lets `drop` go: a renegotiation of the subscription. */
  private async resubscribe(leg: Leg, add: string[], drop: string[]): Promise<void> {
    const askedAt = Date.now();
    let answer;
    if (leg.subscriber === undefined) {
      leg.subscriber = await leg.janus.attach(VIDEOROOM);
      answer = await leg.janus.message(leg.subscriber, {
        request: "join", ptype: "subscriber", room: leg.grant.room, private_id: leg.privateId, token: leg.grant.token,
        streams: add.map((feed) => ({ feed })),
      });
    } else {
      answer = await leg.janus.message(leg.subscriber, {
        request: "update", ...(add.length ? { subscribe: add.map((feed) => ({ feed })) } : {}), ...(drop.length ? { unsubscribe: drop.map((feed) => ({ feed })) } : {}),
      });
    }
    const before = new Map(leg.sending);
    leg.feeds.clear();
    leg.sending.clear();
    for (const stream of answer.data.streams ?? []) {
      if (stream.active === false || !stream.feed_id) continue;
      const feed = String(stream.feed_id);
      leg.feeds.set(feed, String(stream.mid));
      // A new subscription is forwarded (Janus' default) until configured otherwise.
      leg.sending.set(feed, before.get(feed) ?? true);
    }
    if (!answer.jsep) return;
    const pc = leg.receiving ??= this.receiver(leg);
    await pc.setRemoteDescription(answer.jsep);
    const local = await pc.createAnswer();
    await pc.setLocalDescription({ type: "answer", sdp: withStereoOpus(local.sdp ?? "") });
    await whenGathered(pc);
    await leg.janus.message(leg.subscriber, { request: "start" }, pc.localDescription!.toJSON());
    const startedAt = Date.now();
    for (const feed of add) if (leg.sending.get(feed) && this.hearing.some((f) => f.feedId === feed && !f.standby)) void this.watchFirstPacket(leg, feed, 0, this.toldAt, startedAt, askedAt);
  }

  private receiver(leg: Leg): RTCPeerConnection {
    const pc = new RTCPeerConnection();
    pc.ontrack = (event) => {
      const mid = event.transceiver.mid;
      const feed = [...leg.feeds].find(([, at]) => at === mid)?.[0];
      if (feed) leg.space?.play(feed, event.track);
    };
    return pc;
  }

  /** Packets received so far on each mid of the subscription (none once it is closed). */
  private async packetCounts(leg: Leg): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    const pc = leg.receiving;
    if (!pc || pc.signalingState === "closed") return counts;
    (await pc.getStats().catch(() => undefined))?.forEach((report) => { if (report.type === "inbound-rtp" && report.mid) counts.set(report.mid, report.packetsReceived ?? 0); });
    return counts;
  }

  /** Emits "heard" at the first packet of `feed` past `before` (its inbound-rtp count, polled every 5 ms, for 3 s at most). */
  private async watchFirstPacket(leg: Leg, feed: string, before: number, toldAtMs: number, startedAtMs: number, askedAtMs: number): Promise<void> {
    const mid = leg.feeds.get(feed);
    const receiver = leg.receiving?.getTransceivers().find((transceiver) => transceiver.mid === mid)?.receiver;
    for (let waited = 0; waited < 3000 && this.leg === leg && mid !== undefined; waited += 5) {
      // The browser's own time for the newest packet of each source (its counters lag up to ~50 ms).
      const arrived = receiver?.getSynchronizationSources().map((source) => epochMs(source.timestamp)).filter((at) => at >= askedAtMs);
      const counted = !arrived?.length && ((await this.packetCounts(leg)).get(mid) ?? 0) > before;
      if (arrived?.length || counted) {
        leg.firstPackets.add(feed);
        return this.events.emit("heard", { feedId: feed, toldAtMs, startedAtMs, atMs: arrived?.length ? Math.min(...arrived) : Date.now() });
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  /** The SFU connection dropped (a restart): a fresh grant, once it answers again. */
  private async recover(reason: string): Promise<void> {
    this.events.emit("error", new Error(`voice: ${reason}; joining again`));
    for (let attempt = 0; !this.closed; attempt++) {
      try {
        await this.rejoin();
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, Math.min(250 * 2 ** attempt, 5000)));
      }
    }
  }

  /** A fresh grant and SFU connection, made before the old one is closed. */
  private async rejoin(): Promise<void> {
    if (this.closed) return;
    this.hearVersion = 0;
    await this.join();
    this.events.emit("rejoined");
  }

  private endLeg(leg: Leg | undefined): void {
    if (!leg) return;
    leg.janus.onClose = () => {};
    leg.publishing?.close();
    leg.receiving?.close();
    leg.janus.close();
    void leg.space?.close();
  }
}

/** A browser timestamp as Unix epoch ms: Chromium gives RTP sources' times on the epoch, the spec on the page's clock. */
function epochMs(timestamp: number): number {
  return timestamp > 1e12 ? timestamp : performance.timeOrigin + timestamp;
}

async function microphoneStream(deviceId?: string): Promise<MediaStream> {
  return navigator.mediaDevices.getUserMedia({ audio: { ...(deviceId ? { deviceId: { exact: deviceId } } : {}), channelCount: { ideal: 2 }, echoCancellation: true } });
}

function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([work, new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new Error(what)), ms); })]).finally(() => clearTimeout(timer));
}
