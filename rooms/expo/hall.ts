/**
 * What the zone rooms of one hall share, through the region's Colyseus presence (Redis
 * in cluster mode, memory in embedded mode): key and channel names, and the hall-wide
 * events every zone applies to its own visitors.
 *
 * Keys (prefix `expo:{hallId}:`):
 *   layout          the validated layout JSON (set when the hall opens)
 *   visitor-seq     INCR: the next visitor id
 *   visitors        hash visitorId -> {subject, name, zoneId}: who is in the hall, where
 *   bans            set of banned token subjects
 *   mutes           hash subject -> muted-until (ms; 1 = until unmuted)
 *   pinned          the pinned message JSON
 *   presentations   hash boothId -> BoothState JSON (live ones only)
 *   analytics       hash zoneId -> that zone's AnalyticsSnapshot JSON
 * Channels:
 *   expo:{hallId}:events          HallEvent, from the zone that took the host command
 *   expo:{hallId}:ghosts:{zoneId} GhostBatch, each tick, from each neighbouring zone
 */
import type { tsunagi } from "../../proto/index.ts";

export const hallKey = (hallId: string, key: string) => `expo:${hallId}:${key}`;
export const eventsChannel = (hallId: string) => `expo:${hallId}:events`;
export const ghostsChannel = (hallId: string, zoneId: string) => `expo:${hallId}:ghosts:${zoneId}`;

/** What the hall's visitors hash holds per visitor id. */
export interface HallVisitorRecord { subject: string; name: string; zoneId: string }

/**
 * One zone's border visitors for a neighbour, each tick. `v` rows are
 * [visitorId, x, y, heading, seq, sentAtMs, avatar, name, role].
 */
export interface GhostBatch {
  z: string;
  t: number;
  v: Array<[number, number, number, number, number, number, string, string, string]>;
}

/** A host command's effect, applied by every zone to its own visitors. */
export type HallEventBody =
  | { type: "announce"; announcement: tsunagi.v1.IAnnouncement }
  | { type: "presentation"; state: tsunagi.v1.IBoothState }
  | { type: "pin"; pinned: tsunagi.v1.IPinnedMessage }
  | { type: "mute"; subject: string; untilMs: number; reason: string }
  | { type: "kick"; visitorId: number; reason: string }
  | { type: "ban"; subject: string; reason: string }
  | { type: "chat"; message: tsunagi.v1.IChatMessage; toVisitorId?: number };
/** A HallEventBody as published: `from` is the room that took the command. */
export type HallEvent = HallEventBody & { from: string };
