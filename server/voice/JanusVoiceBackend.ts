/**
 * Voice on Janus (VoiceBackend): one VideoRoom per Tsunagi room, audio only, Opus, made
 * on the first grant and destroyed at release, driven over two janode connections to the
 * node's Janus (JanusProcess): the API (with its API secret) and the Admin API (tokens).
 *
 * - Each voice room is private, has a secret of its own (moderation, destroy), requires a
 *   publisher's private id to subscribe (`require_pvtid`), and admits only the tokens on
 *   its allowed list.
 * - A grant is a fresh token, added to Janus' tokens (core: it may attach to VideoRoom
 *   only) and to the room's allowed list, plus a publisher id chosen here. After
 *   `grantTtlMs` (at most 60 s) it leaves the room's list: it no longer admits anyone.
 *   Janus checks the core token on every request, so that one stays while the
 *   participant is in the room (its session goes on) and goes at leave or kick.
 * - Mute is VideoRoom's `moderate` of the publisher's audio (mid "0": the SDK publishes
 *   its microphone first); kick is `kick`.
 * - After Janus restarts (JanusProcess.onRestart) the rooms are gone: `restarted()`
 *   reconnects and forgets them; the next grant makes each again.
 *
 * @example
 *   const voice = await JanusVoiceBackend.connect(janus.endpoint, { logger });
 *   const grant = await voice.grant("expo__hall-1", { sessionId, display: "Aiko", speak: true });
 *   await voice.release("expo__hall-1");
 */
import type { Logger } from "../observability/logging.ts";
import type { JanusEndpoint } from "./JanusProcess.ts";
import { JanusLink } from "./JanusLink.ts";
import { pluginData, randomSecret as random } from "./janusRequests.ts";
import { MAX_GRANT_TTL_MS, type VoiceBackend, type VoiceGrant, type VoiceHealth, type VoiceParticipant } from "./VoiceBackend.ts";

const VIDEOROOM = "janus.plugin.videoroom";

export interface JanusVoiceOptions {
  logger: Logger;
  /** How long a grant admits its holder, ms (≤ 60 s). Default 30 s. */
  grantTtlMs?: number;
  /** Publishers per room. Default 100. */
  maxSpeakers?: number;
}

interface Grant { token: string; feedId: string; expiry: NodeJS.Timeout }
interface VoiceRoom {
  secret: string;
  grants: Map<string, Grant>;
  made: Promise<void>;
  /** A release or leaves put off (a room handed to another node lingers a while): cancelled by a grant here again. */
  lingering?: NodeJS.Timeout;
  leaving: Map<string, NodeJS.Timeout>;
}

export class JanusVoiceBackend implements VoiceBackend {
  private readonly rooms = new Map<string, VoiceRoom>();
  private readonly grantTtlMs: number;

  private constructor(
    private readonly endpoint: JanusEndpoint,
    private readonly link: JanusLink,
    private readonly options: JanusVoiceOptions,
  ) {
    this.grantTtlMs = Math.min(options.grantTtlMs ?? 30_000, MAX_GRANT_TTL_MS);
  }

  static async connect(endpoint: JanusEndpoint, options: JanusVoiceOptions): Promise<JanusVoiceBackend> {
    return new JanusVoiceBackend(endpoint, await JanusLink.open(endpoint, VIDEOROOM), options);
  }


  async grant(roomId: string, participant: VoiceParticipant): Promise<VoiceGrant> {
    const room = await this.room(roomId);
    // In use here again (the room came back before its old voice room went): it stays.
    clearTimeout(room.lingering);
    room.lingering = undefined;
    clearTimeout(room.leaving.get(participant.sessionId));
    room.leaving.delete(participant.sessionId);
    await this.endGrant(roomId, room, participant.sessionId);
    const token = random();
    const feedId = `${participant.sessionId}-${random().slice(0, 8)}`;
    pluginData(await this.link.admin({ janus: "add_token", token, plugins: [VIDEOROOM] }), "a token");
    await this.ask({ request: "allowed", room: roomId, secret: room.secret, action: "add", allowed: [token] }, "a grant");
    // Past its time it admits no one; the session it started goes on (its core token stays until leave).
    const expiry = setTimeout(() => void this.ask({ request: "allowed", room: roomId, secret: room.secret, action: "remove", allowed: [token] }, "a grant's expiry").catch(() => {}), this.grantTtlMs);
    expiry.unref?.();
    room.grants.set(participant.sessionId, { token, feedId, expiry });
    return { url: this.endpoint.apiUrl, room: roomId, token, feedId, speak: participant.speak, expiresAt: Date.now() + this.grantTtlMs };
  }

  async leave(roomId: string, sessionId: string, afterMs = 0): Promise<void> {
    const room = this.rooms.get(roomId);
    if (!room) return;
    if (afterMs > 0) {
      clearTimeout(room.leaving.get(sessionId));
      const later = setTimeout(() => {
        room.leaving.delete(sessionId);
        void this.endGrant(roomId, room, sessionId, true).catch(() => {});
      }, afterMs);
      later.unref?.();
      room.leaving.set(sessionId, later);
      return;
    }
    await this.endGrant(roomId, room, sessionId, true);
  }

  async kick(roomId: string, sessionId: string): Promise<void> {
    await this.leave(roomId, sessionId);
  }

  async mute(roomId: string, sessionId: string, muted: boolean): Promise<void> {
    const room = this.rooms.get(roomId);
    const grant = room?.grants.get(sessionId);
    if (!room || !grant) throw new Error(`no voice grant for session ${sessionId} in room ${roomId}`);
    await this.ask({ request: "moderate", room: roomId, secret: room.secret, id: grant.feedId, mid: "0", mute: muted }, "a mute");
  }

  async release(roomId: string, afterMs = 0): Promise<void> {
    const room = this.rooms.get(roomId);
    if (!room) return;
    clearTimeout(room.lingering);
    room.lingering = undefined;
    if (afterMs > 0) {
      room.lingering = setTimeout(() => {
        if (this.rooms.get(roomId) === room && room.lingering) void this.release(roomId).catch(() => {});
      }, afterMs);
      room.lingering.unref?.();
      return;
    }
    this.rooms.delete(roomId);
    for (const timer of room.leaving.values()) clearTimeout(timer);
    for (const sessionId of [...room.grants.keys()]) await this.endGrant(roomId, room, sessionId).catch(() => {});
    await this.ask({ request: "destroy", room: roomId, secret: room.secret }, "the room's end").catch((error) => {
      this.options.logger.warn({ err: error, roomId }, `voice room ${roomId} could not be destroyed in Janus`);
    });
  }

  /** Janus died: down (health) until restarted() reconnects. */
  janusDown(): void {
    this.link.janusDown();
  }

  /** Janus started again: its rooms and sessions are gone. Reconnects, and forgets the rooms (the next grant makes each again). */
  async restarted(): Promise<void> {
    for (const room of this.rooms.values()) {
      for (const grant of room.grants.values()) clearTimeout(grant.expiry);
      for (const timer of room.leaving.values()) clearTimeout(timer);
      clearTimeout(room.lingering);
    }
    this.rooms.clear();
    await this.link.reopen();
  }

  health(): VoiceHealth {
    let participants = 0;
    for (const room of this.rooms.values()) participants += room.grants.size;
    return { up: this.link.up, rooms: this.rooms.size, participants };
  }

  async close(): Promise<void> {
    for (const roomId of [...this.rooms.keys()]) await this.release(roomId);
    await this.link.close();
  }

  /** The room's voice room, made once (a failed making is forgotten, so the next grant tries again). */
  private async room(roomId: string): Promise<VoiceRoom> {
    let room = this.rooms.get(roomId);
    if (!room) {
      const secret = random();
      const made = (async () => {
        await this.ask({
          request: "create", room: roomId, admin_key: this.endpoint.secrets.adminKey, secret, is_private: true,
          publishers: this.options.maxSpeakers ?? 100, audiocodec: "opus", require_pvtid: true, notify_joining: true,
        }, "a voice room");
        try {
          await this.ask({ request: "allowed", room: roomId, secret, action: "enable" }, "the room's allowed list");
        } catch (error) {
          // Never left open to any token: the room goes again.
          await this.ask({ request: "destroy", room: roomId, secret }, "an unguarded room's end").catch(() => {});
          throw error;
        }
      })();
      room = { secret, grants: new Map(), made, leaving: new Map() };
      this.rooms.set(roomId, room);
      made.catch(() => { if (this.rooms.get(roomId) === room) this.rooms.delete(roomId); });
    }
    await room.made;
    return room;
  }

  /** Ends a grant: off the room's list and Janus' tokens; `out`: its publisher is sent out of the room too. */
  private async endGrant(roomId: string, room: VoiceRoom, sessionId: string, out = false) {
    const grant = room.grants.get(sessionId);
    if (!grant) return;
    room.grants.delete(sessionId);
    clearTimeout(grant.expiry);
    await this.ask({ request: "allowed", room: roomId, secret: room.secret, action: "remove", allowed: [grant.token] }, "a grant's end").catch(() => {});
    await this.link.admin({ janus: "remove_token", token: grant.token }).catch(() => {});
    if (out) await this.ask({ request: "kick", room: roomId, secret: room.secret, id: grant.feedId }, "a kick").catch(() => { /* not in the room (never joined, or left) */ });
  }

  private async ask(body: Record<string, unknown>, what: string): Promise<any> {
    return this.link.ask(body, what);
  }
}
