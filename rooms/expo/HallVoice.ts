/**
 * Proximity voice in an expo hall (RoomVoice's `hearing` for ExpoRoom): a visitor hears
 * the live speakers within `radius` of where it stands, found in the room's interest
 * grid, and every host wherever it stands (stage voice).
 *
 * - Standby: speakers within STANDBY_REACH × `radius` are named too, on standby: the
 *   client subscribes to them without the SFU forwarding anything, so one who walks
 *   into hearing is switched on by one request, not a renegotiation.
 * - Hysteresis: a voice is taken in at `radius` and let go only beyond
 *   `radius * HEARING_HYSTERESIS` (likewise for standby), so two visitors at the edge,
 *   or one walking along it, do not make the subscription flap.
 * - At most MAX_AUDIBLE voices audible and MAX_STANDBY on standby, the nearest.
 * - A move affects the mover and, when it speaks, those within the outer radius of where
 *   it now stands; RoomVoice adds those who heard it, and coalesces a burst into one
 *   VoiceHear each. A listener's move costs one look at its own audience.
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
import { RoomVoice, type Heard, type RoomVoiceHost, type VoiceHearing, type VoiceMember } from "../shared/RoomVoice.ts";

/** A voice heard is let go only this many times the hearing radius away. */
export const HEARING_HYSTERESIS = 1.25;
/** Voices are on standby this many times the hearing radius away. */
export const STANDBY_REACH = 2;
/** The most voices one visitor hears at once, and has on standby (the nearest). */
export const MAX_AUDIBLE = 24;
export const MAX_STANDBY = 24;

export interface HallVoiceHost {
  readonly grid: InterestGrid<Entity>;
  /** Hearing distance, metres. */
  readonly radius: number;
  /** This room's visitor of a session. */
  visitorOf(sessionId: string): Visitor | undefined;
  /** The voice member of a session, if it has voice. */
  memberOf(sessionId: string): VoiceMember | undefined;
  /** The stage voices publishing now. */
  stage(): Iterable<VoiceMember>;
}

export class HallVoice implements VoiceHearing {
  /** Hearing's and standby's reach, taking in and letting go. */
  private readonly reach: { audible: number; audibleOut: number; standby: number; standbyOut: number };

  constructor(private readonly host: HallVoiceHost) {
    const r = host.radius;
    this.reach = { audible: r, audibleOut: r * HEARING_HYSTERESIS, standby: r * STANDBY_REACH, standbyOut: r * STANDBY_REACH * HEARING_HYSTERESIS };
  }

  *audience(listener: VoiceMember): Iterable<Heard> {
    const at = this.host.visitorOf(listener.sessionId)?.entity;
    if (!at) return;
    const { reach } = this;
    const near: Array<{ heard: Heard; d2: number }> = [];
    this.host.grid.queryRadius(at.x, at.y, reach.standbyOut, (entity) => {
      const speaker = entity.local && this.host.memberOf(entity.local.sessionId);
      if (!speaker || speaker === listener || !speaker.live || speaker.stage) return;
      const d2 = (entity.x - at.x) ** 2 + (entity.y - at.y) ** 2;
      const was = listener.hears.get(speaker.feedId);
      const wasAudible = was?.speaker === speaker && !was.standby;
      if (d2 <= reach.audible ** 2 || (wasAudible && d2 <= reach.audibleOut ** 2)) near.push({ heard: { speaker, standby: false }, d2 });
      else if (d2 <= reach.standby ** 2 || (was?.speaker === speaker && d2 <= reach.standbyOut ** 2)) near.push({ heard: { speaker, standby: true }, d2 });
    });
    near.sort((a, b) => a.d2 - b.d2);
    let audible = 0;
    let standby = 0;
    for (const { heard } of near) {
      if (!heard.standby && audible < MAX_AUDIBLE) { audible++; yield heard; }
      else if (standby < MAX_STANDBY) { standby++; yield { speaker: heard.speaker, standby: true }; }
    }
    for (const member of this.host.stage()) if (member !== listener) yield { speaker: member, standby: false };
  }

  *affected(member: VoiceMember, members: ReadonlyMap<string, VoiceMember>): Iterable<VoiceMember> {
    // Only a voice moves others' audience: a listener's move changes its own (RoomVoice looks at it, and at those who heard it).
    if (!member.live) return;
    if (member.stage) {
      yield* members.values();
      return;
    }
    const at = this.host.visitorOf(member.sessionId)?.entity;
    if (!at) return;
    const near: VoiceMember[] = [];
    this.host.grid.queryRadius(at.x, at.y, this.reach.standbyOut, (entity) => {
      const other = entity.local && this.host.memberOf(entity.local.sessionId);
      if (other) near.push(other);
    });
    yield* near;
  }
}

/** The room's voice, heard by proximity (HallVoice). */
export function hallRoomVoice(options: Pick<RoomVoiceHost, "roomId" | "backend" | "send" | "reject" | "moving" | "logger" | "metrics"> & {
  grid: InterestGrid<Entity>;
  radius: number;
  visitors: ReadonlyMap<string, Visitor>;
  /** The roles that walk the hall: each speaks. */
  roles: readonly string[];
}): RoomVoice {
  const { visitors } = options;
  const voice: RoomVoice = new RoomVoice({
    ...options,
    hearing: new HallVoice({
      grid: options.grid, radius: options.radius, visitorOf: (sessionId) => visitors.get(sessionId), memberOf: (sessionId) => voice.member(sessionId), stage: () => voice.stage,
    }),
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
