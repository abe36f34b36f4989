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
import { tsunagi } from "../../proto/index.ts";

export const hallKey = (hallId: string, key: string) => `expo:${hallId}:${key}`;
export const eventsChannel = (hallId: string) => `expo:${hallId}:events`;
export const ghostsChannel = (hallId: string, zoneId: string) => `expo:${hallId}:ghosts:${zoneId}`;

/** What the hall's visitors hash holds per visitor id. */
export interface HallVisitorRecord { subject: string; name: string; zoneId: string }

/** A GhostBatch (expo.proto) as it travels on a ghosts channel: protobuf, base64. */
export function encodeGhosts(batch: tsunagi.v1.IGhostBatch): string {
  return Buffer.from(tsunagi.v1.GhostBatch.encode(batch).finish()).toString("base64");
}

/** The GhostBatch of a ghosts-channel message; throws on anything else. */
export function decodeGhosts(message: unknown): tsunagi.v1.GhostBatch {
  if (typeof message !== "string") throw new TypeError(`ghost batch must be a base64 string, got ${typeof message}`);
  return tsunagi.v1.GhostBatch.decode(Buffer.from(message, "base64"));
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
