/**
 * A room's voice (voice.proto): who has voice in the room, the grants the room asks of
 * the node's VoiceBackend (server/voice) for them, and which voices each one hears.
 *
 * - VoiceJoin: the sender's role decides (`rights`): speak, listen only, or no voice
 *   (FORBIDDEN). With no voice on the node, or its SFU down, VOICE_UNAVAILABLE. Grants are
 *   rate-limited per session (VOICE_GRANTS_PER_SECOND, burst VOICE_GRANT_BURST). A new
 *   grant ends the member's last one: its old feed is heard no more.
 * - VoiceReady: the member's feed publishes; only now is it heard by others. A member a
 *   host muted is muted in the SFU as soon as it publishes.
 * - VoiceHear: each member is told the whole set of voices it hears whenever that set
 *   changes. Who hears whom is the room's `hearing`: every live speaker (`everyone`), or an
 *   expo hall's proximity (rooms/expo/HallVoice), which also names voices on standby
 *   (subscribed, not forwarded: one SFU request from audible). A change marks the members
 *   it may affect; they are looked at together at once, then at most every
 *   HEAR_COALESCE_MS, so a burst of moves is one VoiceHear per member.
 * - Leaving (VoiceLeave, or leaving the room) ends the grant and sends the member out of
 *   the SFU room; `release()` (the room's dispose) closes the voice room. A room moving
 *   to another node (`moving`) does both HANDOFF_VOICE_LINGER_MS later, and tells no one
 *   of it: its members' voice goes on here, as it was, while they join it in the room's
 *   new home (make-before-break; VoiceSession does its side).
 *
 * @example
 *   this.voice = new RoomVoice({ roomId: this.roomId, rights: (role) => (role === "device" ? undefined : "speak"), ... });
 *   this.voice.register((kind, handler) => this.onEnvelope(kind, handler));
 *   onLeave(client) { this.voice.leave(client.sessionId); }
 *   onDispose() { this.voice.release(); }
 */
import type { Client } from "@colyseus/core";
import { ErrorCode, type EnvelopeBody, type tsunagi } from "../../proto/index.ts";
import { TokenBucket } from "../../common/TokenBucket.ts";
import type { Logger } from "../../server/observability/logging.ts";
import type { NodeMetrics } from "../../server/observability/metrics.ts";
import { HANDOFF_VOICE_LINGER_MS, type VoiceBackend } from "../../server/voice/VoiceBackend.ts";

/** Grants one session may ask for: per second, and the burst on top. */
export const VOICE_GRANTS_PER_SECOND = 0.5;
export const VOICE_GRANT_BURST = 3;
/** After a VoiceHear round, changes to who hears whom are gathered this long before the next, ms. */
export const HEAR_COALESCE_MS = 20;
/** How often a moving room looks whether its move is over (called off: its marks are told). */
const MOVING_RECHECK_MS = 200;
/** What every publisher sends (VoiceGrant.codec). */
export const VOICE_CODEC = "opus/48000/2";

type CorrelationId = tsunagi.v1.IEnvelope["correlationId"];

/** Someone in the room with a voice grant. */
export interface VoiceMember {
  readonly sessionId: string;
  client: Client;
  display: string;
  /** Expo: its visitor id; 0 elsewhere. */
  visitorId: number;
  /** Heard everywhere in the room (a host's stage voice). */
  stage: boolean;
  /** Its grant lets it publish. */
  speak: boolean;
  /** Its grant's publisher id. */
  feedId: string;
  /** Its feed publishes (VoiceReady): others may hear it. */
  live: boolean;
  /** A host muted it. */
  muted: boolean;
  /** The voices it was last told to hear, by feed id. */
  hears: Map<string, Heard>;
  /** Those last told to hear it. */
  heardBy: Set<VoiceMember>;
  /** Its last VoiceHear's version. */
  version: number;
}

/** A voice a member hears: audible, or on standby (subscribed, not forwarded yet). */
export interface Heard {
  speaker: VoiceMember;
  standby: boolean;
}

/** Who hears whom. */
export interface VoiceHearing {
  /** The live speakers `listener` hears now, audible or on standby; never `listener` itself. */
  audience(listener: VoiceMember, members: ReadonlyMap<string, VoiceMember>): Iterable<Heard>;
  /** The members whose audience may change when `member` joins, leaves, goes live or moves (those hearing it are added by RoomVoice). */
  affected(member: VoiceMember, members: ReadonlyMap<string, VoiceMember>): Iterable<VoiceMember>;
}

/** Everyone hears every live speaker: sessions, teleop rooms. */
export const everyoneHears: VoiceHearing = {
  *audience(listener, members) {
    for (const member of members.values()) if (member !== listener && member.live) yield { speaker: member, standby: false };
  },
  affected: (_member, members) => members.values(),
};

/** What RoomVoice needs of its room. */
export interface RoomVoiceHost {
  /** The room's id: its voice room is named after it. */
  readonly roomId: string;
  /** The node's voice, if it runs one. */
  backend(): VoiceBackend | undefined;
  /** What a role may do in this room's voice; undefined: nothing. */
  rights(role: string): "speak" | "listen" | undefined;
  /** How the room shows this client (undefined: not one of its members now, e.g. a device). */
  describe(client: Client): { display: string; visitorId: number; stage: boolean; muted?: boolean } | undefined;
  readonly hearing: VoiceHearing;
  send(client: Client, envelope: tsunagi.v1.IEnvelope): void;
  /** A coded refusal (log line and metric), answering the request when it has a correlation id. */
  reject(client: Client, code: number, message: string, correlationId: CorrelationId): void;
  /** Whether the client is still in the room (a grant that arrives after it left is ended). */
  present(sessionId: string): boolean;
  /** The room is moving to another node (or moved, and this copy waits for its clients to follow). */
  moving(): boolean;
  readonly logger: Pick<Logger, "info" | "warn" | "error">;
  readonly metrics: Pick<NodeMetrics, "voiceGrants" | "voiceHearUpdates">;
}

export class RoomVoice {
  private readonly members = new Map<string, VoiceMember>();
  private readonly allowances = new GrantAllowances();
  /** Stage voices publishing now (heard everywhere): kept apart so no one's audience scans every member for them. */
  private readonly onStage = new Set<VoiceMember>();
  /** Members whose audience is looked at in the next flush. */
  private readonly dirty = new Set<VoiceMember>();
  private flushTimer?: NodeJS.Timeout;
  /** When the last VoiceHear round ran, ms. */
  private flushedAt = -Infinity;
  /** Whether the SFU holds a voice room for this room (release() closes it). */
  private opened = false;

  constructor(private readonly host: RoomVoiceHost) {}

  /** Registers the room's voice envelopes. */
  register(on: (kind: EnvelopeBody, handler: (client: Client, envelope: tsunagi.v1.Envelope) => void) => void): void {
    on("voiceJoin", (client, envelope) => void this.join(client, envelope));
    on("voiceReady", (client, envelope) => this.ready(client, envelope));
    on("voiceLeave", (client) => this.leave(client.sessionId));
  }

  member(sessionId: string): VoiceMember | undefined {
    return this.members.get(sessionId);
  }

  get size(): number {
    return this.members.size;
  }

  /** The stage voices publishing now. */
  get stage(): ReadonlySet<VoiceMember> {
    return this.onStage;
  }

  /** The member moved, or changed how it is shown: those it may affect are looked at again. */
  changed(sessionId: string): void {
    const member = this.members.get(sessionId);
    if (member) this.markAffected(member);
  }

  /** The member left the room's voice (or the room): its grant ends and the SFU sends it out. */
  leave(sessionId: string): void {
    const member = this.members.get(sessionId);
    this.allowances.forget(sessionId);
    if (!member) return;
    this.members.delete(sessionId);
    this.onStage.delete(member);
    this.dirty.delete(member);
    this.markAffected(member);
    for (const heard of member.hears.values()) heard.speaker.heardBy.delete(member);
    this.background(this.host.backend()?.leave(this.host.roomId, sessionId, this.lingerMs()), `ending ${sessionId}'s voice`);
  }

  /** A host muted (or unmuted) the member: applied in the SFU now if it publishes, else when it does. */
  mute(sessionId: string, muted: boolean): void {
    const member = this.members.get(sessionId);
    if (!member || member.muted === muted) return;
    member.muted = muted;
    if (member.live) this.background(this.host.backend()?.mute(this.host.roomId, sessionId, muted), `${muted ? "muting" : "unmuting"} ${sessionId}`);
  }

  /** The room closed: its voice room goes. */
  release(): void {
    clearTimeout(this.flushTimer);
    this.members.clear();
    this.onStage.clear();
    this.dirty.clear();
    if (this.opened) this.background(this.host.backend()?.release(this.host.roomId, this.lingerMs()), "closing the voice room");
    this.opened = false;
  }

  private async join(client: Client, envelope: tsunagi.v1.Envelope): Promise<void> {
    const { host } = this;
    const correlationId = envelope.correlationId;
    const refuse = (code: number, outcome: string, message: string) => {
      host.metrics.voiceGrants.inc({ outcome });
      host.reject(client, code, message, correlationId);
    };
    const role = (client.auth as { role?: string } | undefined)?.role ?? "";
    const rights = host.rights(role);
    const shown = host.describe(client);
    if (!rights || !shown) return refuse(ErrorCode.FORBIDDEN, "forbidden", `role "${role}" has no voice in room "${host.roomId}"`);
    const backend = host.backend();
    if (!backend || !backend.health().up) return refuse(ErrorCode.VOICE_UNAVAILABLE, "unavailable", backend ? "the node's voice server is down; try again shortly" : "this node runs no voice");
    if (!this.allowances.take(client.sessionId)) return refuse(ErrorCode.RATE_LIMITED, "rate_limited", `voice ${GrantAllowances.REFUSAL}`);
    const speak = rights === "speak" && envelope.voiceJoin?.speak === true;
    let grant;
    try {
      grant = await backend.grant(host.roomId, { sessionId: client.sessionId, display: shown.display, speak });
      this.opened = true;
    } catch (error) {
      host.logger.error({ err: error, roomId: host.roomId, sessionId: client.sessionId }, `voice: no grant for ${client.sessionId} in ${host.roomId}`);
      return refuse(ErrorCode.VOICE_UNAVAILABLE, "failed", "the voice server did not grant voice; try again shortly");
    }
    if (!host.present(client.sessionId)) {
      this.background(backend.leave(host.roomId, client.sessionId), `ending the grant of ${client.sessionId}, who left`);
      return;
    }
    const last = this.members.get(client.sessionId);
    if (last) this.markAffected(last); // its old feed is gone
    const member: VoiceMember = last ?? {
      sessionId: client.sessionId, client, display: shown.display, visitorId: shown.visitorId, stage: shown.stage,
      speak, feedId: "", live: false, muted: shown.muted ?? false, hears: new Map(), heardBy: new Set(), version: 0,
    };
    for (const heard of member.hears.values()) heard.speaker.heardBy.delete(member);
    Object.assign(member, { client, speak: grant.speak, feedId: grant.feedId, live: false, hears: new Map() });
    this.onStage.delete(member);
    this.members.set(client.sessionId, member);
    host.metrics.voiceGrants.inc({ outcome: "granted" });
    host.send(client, {
      correlationId,
      voiceGrant: { url: grant.url, room: grant.room, token: grant.token, feedId: grant.feedId, speak: grant.speak, expiresAtMs: grant.expiresAt, codec: VOICE_CODEC },
    });
    // Its new SFU session hears nothing yet: it is told its set even if that is empty.
    member.version++;
    this.sendHear(member);
    this.markAffected(member);
  }

  private ready(client: Client, envelope: tsunagi.v1.Envelope): void {
    const member = this.members.get(client.sessionId);
    const feedId = envelope.voiceReady?.feedId ?? "";
    if (!member || !member.speak || member.feedId !== feedId) {
      const why = !member ? "no voice grant: send VoiceJoin first" : !member.speak ? "your grant is to listen, not to speak" : `feed "${feedId.slice(0, 80)}" is not your grant's`;
      this.host.reject(client, ErrorCode.WRONG_TYPE, `VoiceReady refused: ${why}`, 0);
      return;
    }
    if (member.live) return;
    member.live = true;
    if (member.stage) this.onStage.add(member);
    if (member.muted) this.background(this.host.backend()?.mute(this.host.roomId, member.sessionId, true), `muting ${member.sessionId}`);
    this.markAffected(member);
  }

  private markAffected(member: VoiceMember): void {
    for (const other of this.host.hearing.affected(member, this.members)) if (this.members.get(other.sessionId) === other) this.dirty.add(other);
    for (const listener of member.heardBy) this.dirty.add(listener);
    if (this.members.get(member.sessionId) === member) this.dirty.add(member);
    // At once (after what this turn of the event loop brings), unless a round ran just now.
    this.schedule(Math.max(0, this.flushedAt + HEAR_COALESCE_MS - Date.now()));
  }

  private schedule(delayMs: number): void {
    if (this.flushTimer || this.dirty.size === 0) return;
    this.flushTimer = setTimeout(() => this.flush(), delayMs);
    this.flushTimer.unref?.();
  }

  /** Each marked member's audience, and a VoiceHear to those whose set changed. */
  private flush(): void {
    this.flushTimer = undefined;
    // A moving room's voice stays as it is while its members follow it; if the move is
    // called off, what changed meanwhile is told then.
    if (this.host.moving()) return this.schedule(MOVING_RECHECK_MS);
    this.flushedAt = Date.now();
    const marked = [...this.dirty];
    this.dirty.clear();
    for (const listener of marked) {
      if (this.members.get(listener.sessionId) !== listener) continue;
      const now = new Map<string, Heard>();
      for (const heard of this.host.hearing.audience(listener, this.members)) {
        if (heard.speaker !== listener && heard.speaker.live) now.set(heard.speaker.feedId, heard);
      }
      if (sameFeeds(now, listener.hears)) continue;
      for (const heard of listener.hears.values()) heard.speaker.heardBy.delete(listener);
      for (const heard of now.values()) heard.speaker.heardBy.add(listener);
      listener.hears = now;
      listener.version++;
      this.sendHear(listener);
    }
  }

  private sendHear(member: VoiceMember): void {
    const feeds = [...member.hears.values()].map(({ speaker, standby }) => ({ feedId: speaker.feedId, visitorId: speaker.visitorId, stage: speaker.stage, display: speaker.display, standby }));
    this.host.metrics.voiceHearUpdates.inc();
    this.host.send(member.client, { voiceHear: { version: member.version, feeds } });
  }

  /** How long what ends here goes on: a while in a room moving away, else not at all. */
  private lingerMs(): number {
    return this.host.moving() ? HANDOFF_VOICE_LINGER_MS : 0;
  }

  /** Work on the SFU nobody waits for: a failure is logged, never an unhandled rejection. */
  private background(work: Promise<unknown> | undefined, what: string): void {
    void work?.catch((error) => this.host.logger.warn({ err: error, roomId: this.host.roomId }, `voice: ${what} failed`));
  }
}

/** Grants (voice, cameras) one session may ask for: VOICE_GRANT_BURST, then VOICE_GRANTS_PER_SECOND. */
export class GrantAllowances {
  static readonly REFUSAL = `grants asked too often: at most ${VOICE_GRANT_BURST}, then one per ${1 / VOICE_GRANTS_PER_SECOND} s`;
  private readonly buckets = new Map<string, TokenBucket>();

  take(sessionId: string): boolean {
    let bucket = this.buckets.get(sessionId);
    if (!bucket) this.buckets.set(sessionId, bucket = new TokenBucket(VOICE_GRANTS_PER_SECOND, VOICE_GRANT_BURST));
    return bucket.take();
  }

  forget(sessionId: string): void {
    this.buckets.delete(sessionId);
  }
}

function sameFeeds(a: ReadonlyMap<string, Heard>, b: ReadonlyMap<string, Heard>): boolean {
  if (a.size !== b.size) return false;
  for (const [feedId, heard] of a) if (b.get(feedId)?.standby !== heard.standby) return false;
  return true;
}

/** A room where everyone with voice hears every speaker (sessions, teleop rooms): shown by its token's name. */
export function everyoneRoomVoice(options: Pick<RoomVoiceHost, "roomId" | "backend" | "rights" | "send" | "reject" | "present" | "moving" | "logger" | "metrics">): RoomVoice {
  return new RoomVoice({
    ...options,
    hearing: everyoneHears,
    describe: (client) => {
      const auth = client.auth as { name?: string; sub?: string } | undefined;
      return { display: auth?.name ?? auth?.sub ?? client.sessionId, visitorId: 0, stage: false };
    },
  });
}
