/**
 * The seam between rooms and the SFU that carries their voice: Janus today
 * (JanusVoiceBackend); another SFU can be plugged in wherever one installs.
 *
 * A room asks for a participant's grant when it should hear and be heard; the backend
 * makes the room's voice room on first use, and removes it once the room releases it.
 * A grant admits its holder to its own room only, within its `expiresAt`; what the
 * session it started does afterwards goes on until the participant leaves.
 */

/** The longest a grant admits its holder. */
export const MAX_GRANT_TTL_MS = 60_000;
/** How long a room's voice goes on in its old home after the room moved, while its clients join it in the new one. */
export const HANDOFF_VOICE_LINGER_MS = 8000;

/** What a client needs to join a room's voice. */
export interface VoiceGrant {
  /** The SFU's client API (Janus: its WebSockets API). */
  url: string;
  /** The SFU's name for the room's voice room. */
  room: string;
  /** Admits its holder to `room` until `expiresAt`; nothing else. */
  token: string;
  /** The participant's own publisher id in the room: chosen here, so a moderator can name it. */
  feedId: string;
  /** Whether it may publish (a listener only subscribes). */
  speak: boolean;
  /** ms since the epoch. */
  expiresAt: number;
}

export interface VoiceParticipant {
  sessionId: string;
  display: string;
  speak: boolean;
}

export interface VoiceHealth {
  up: boolean;
  rooms: number;
  participants: number;
}

export interface VoiceBackend {
  /** `participant`'s grant to `roomId`'s voice (made now if it is not there yet). */
  grant(roomId: string, participant: VoiceParticipant): Promise<VoiceGrant>;
  /**
   * The participant left the room: its grant ends, and it is sent out of the voice room;
   * after `afterMs` if given (it left with the room for another node: its voice goes on
   * here meanwhile, while it joins the voice there), unless it is granted here again first.
   */
  leave(roomId: string, sessionId: string, afterMs?: number): Promise<void>;
  /** Stops (or lets again) the participant's voice reaching the others. */
  mute(roomId: string, sessionId: string, muted: boolean): Promise<void>;
  /** Sends the participant out of the voice room; its grant ends. */
  kick(roomId: string, sessionId: string): Promise<void>;
  /**
   * The room closed: its voice room goes; after `afterMs` if given (the room moved to
   * another node: make-before-break), unless a grant here uses it again first.
   */
  release(roomId: string, afterMs?: number): Promise<void>;
  health(): VoiceHealth;
  close(): Promise<void>;
}
