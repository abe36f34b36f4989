/**
 * Proximity voice in an expo hall (RoomVoice's `hearing` for ExpoRoom): a visitor hears
 * the live speakers within `radius` of where it stands, found in the room's interest
 * grid, and every host wherever it stands (stage voice).
 *
 * - Hysteresis: a voice is taken in at `radius` and let go only beyond
 *   `radius * HEARING_HYSTERESIS`, so two visitors at the edge, or one walking along it,
 *   do not make the subscription flap.
 * - A move affects the mover and those within the outer radius of where it now stands;
 *   RoomVoice adds those who heard it, and coalesces a burst into one VoiceHear each.
 * - Within this room's zone only: a zoned hall's voice rooms are one per zone (a visitor
 *   handed to the next zone asks that room for voice).
 *
 * Every role that walks the hall speaks (visitors to those near, hosts to the whole
 * hall), and a host's mute silences a visitor's voice as well as its chat.
 *
 * @example
 *   this.voice = hallRoomVoice({ roomId, backend: () => context.voice, grid: crowd.grid, radius: expo.hearingRadius, visitors, roles: expoAccess.join, ... });
 *   voiceFollowsMute(this.voice, visitor); // after a host's mute or unmute
 */
import type { InterestGrid } from "./InterestGrid.ts";
import type { Entity, Visitor } from "./model.ts";
import { RoomVoice, type RoomVoiceHost, type VoiceHearing, type VoiceMember } from "../shared/RoomVoice.ts";

/** A voice heard is let go only this many times the hearing radius away. */
export const HEARING_HYSTERESIS = 1.25;

export interface HallVoiceHost {
  readonly grid: InterestGrid<Entity>;
  /** Hearing distance, metres. */
  readonly radius: number;
  /** This room's visitor of a session. */
  visitorOf(sessionId: string): Visitor | undefined;
  /** The voice member of a session, if it has voice. */
  memberOf(sessionId: string): VoiceMember | undefined;
}

export class HallVoice implements VoiceHearing {
  private readonly outer: number;

  constructor(private readonly host: HallVoiceHost) {
    this.outer = host.radius * HEARING_HYSTERESIS;
  }

  *audience(listener: VoiceMember, members: ReadonlyMap<string, VoiceMember>): Iterable<VoiceMember> {
    const at = this.host.visitorOf(listener.sessionId)?.entity;
    if (!at) return;
    const inner2 = this.host.radius ** 2;
    const outer2 = this.outer ** 2;
    const heard: VoiceMember[] = [];
    this.host.grid.queryRadius(at.x, at.y, this.outer, (entity) => {
      const speaker = entity.local && this.host.memberOf(entity.local.sessionId);
      if (!speaker || speaker === listener || !speaker.live || speaker.stage) return;
      const d2 = (entity.x - at.x) ** 2 + (entity.y - at.y) ** 2;
      if (d2 <= inner2 || (d2 <= outer2 && listener.hears.get(speaker.feedId) === speaker)) heard.push(speaker);
    });
    yield* heard;
    for (const member of members.values()) if (member.stage && member.live && member !== listener) yield member;
  }

  *affected(member: VoiceMember, members: ReadonlyMap<string, VoiceMember>): Iterable<VoiceMember> {
    if (member.stage) {
      yield* members.values();
      return;
    }
    const at = this.host.visitorOf(member.sessionId)?.entity;
    if (!at) return;
    const near: VoiceMember[] = [];
    this.host.grid.queryRadius(at.x, at.y, this.outer, (entity) => {
      const other = entity.local && this.host.memberOf(entity.local.sessionId);
      if (other) near.push(other);
    });
    yield* near;
  }
}

/** The room's voice, heard by proximity (HallVoice). */
export function hallRoomVoice(options: Pick<RoomVoiceHost, "roomId" | "backend" | "send" | "reject" | "logger" | "metrics"> & {
  grid: InterestGrid<Entity>;
  radius: number;
  visitors: ReadonlyMap<string, Visitor>;
  /** The roles that walk the hall: each speaks. */
  roles: readonly string[];
}): RoomVoice {
  const { visitors } = options;
  const voice: RoomVoice = new RoomVoice({
    ...options,
    hearing: new HallVoice({ grid: options.grid, radius: options.radius, visitorOf: (sessionId) => visitors.get(sessionId), memberOf: (sessionId) => voice.member(sessionId) }),
    rights: (role) => (options.roles.includes(role) || role === "admin" ? "speak" : undefined),
    describe: (client) => {
      const visitor = visitors.get(client.sessionId);
      return visitor && { display: visitor.entity.name, visitorId: visitor.entity.id, stage: visitor.isHost, muted: isMuted(visitor) };
    },
    present: (sessionId) => visitors.has(sessionId),
  });
  return voice;
}

/** A host's mute holds now: until unmuted (1), or until a time not yet passed. */
function isMuted(visitor: Visitor): boolean {
  return visitor.mutedUntil === 1 || visitor.mutedUntil > Date.now();
}

/** The visitor's voice follows its mute (`mutedUntil`): muted now, and unmuted when a timed mute runs out. */
export function voiceFollowsMute(voice: RoomVoice, visitor: Visitor): void {
  const until = visitor.mutedUntil;
  voice.mute(visitor.sessionId, isMuted(visitor));
  if (until <= 1) return;
  const runsOut = setTimeout(() => { if (visitor.mutedUntil === until) voice.mute(visitor.sessionId, false); }, Math.max(0, until - Date.now()));
  runsOut.unref?.();
}
