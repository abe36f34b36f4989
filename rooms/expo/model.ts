/**
 * The expo room's data, shared by ExpoRoom and its pieces (Crowd, VisitorView,
 * TickSlices, ZoneLink, HallChat, HostTools):
 *
 * - Entity: anyone a visitor of this room may see. A visitor of this room (`local`), a
 *   ghost of a neighbouring zone's visitor (`ghostZone`), or, for a moment, neither: a
 *   visitor handed to the next zone who has left this one and stays frozen in view until
 *   that zone's ghost of it arrives (ZoneLink's HandoffState.Lingering says so).
 * - Visitor: a client connected to this room.
 * - HandoffPayload: what a zone handoff carries to the next zone (signed, in join options).
 */
import type { Client } from "@colyseus/core";
import type { TokenBucket } from "../../common/TokenBucket.ts";
import type { GridItem } from "./InterestGrid.ts";
import type { VisitorView } from "./VisitorView.ts";

/** Longest chat message, announcement or pinned text, in characters. */
export const MAX_TEXT = 500;

/** Anyone in view here: placed in the interest grid, encoded once per change for every frame that needs it. */
export interface Entity extends GridItem {
  /** The visitor id, unique in the hall (every zone knows a visitor by it). */
  id: number;
  name: string;
  role: string;
  avatar: string;
  heading: number;
  /** The newest move applied (its seq and the sender's clock at sending). */
  seq: number;
  sentAtMs: number;
  /** The slice tick whose frames first carry the current position, and the current avatar. */
  changedTick: number;
  avatarTick: number;
  /** This room's visitor; undefined for a ghost or a visitor handed on. */
  local?: Visitor;
  /** A ghost's zone, whose batches carry it; undefined for anyone else. */
  ghostZone?: string;
  /** When a ghost's zone last named it, ms (a ghost not heard of for a while is dropped). */
  heardAt: number;
  /** Encodings of the current state (VisitorView), valid while `encodedTick` equals `changedTick`. */
  encodedTick: number;
  moved?: Uint8Array;
  movedWithAvatar?: Uint8Array;
  appeared?: Uint8Array;
}

/** A client connected to this room. */
export interface Visitor {
  entity: Entity;
  client: Client;
  /** The token subject: bans and mutes follow it, not the visitor id. */
  subject: string;
  sessionId: string;
  /** Whether its token's role has the host tools (host, admin). */
  isHost: boolean;
  /** What the client was last told, and the frame it gets next. */
  view: VisitorView;
  /** Areas (booths included) it is in, and booths near it, now. */
  areas: Set<string>;
  booths: Set<string>;
  /** Moves it may still send (expo.maxMoveHz, with a little slack for jitter). */
  moves: TokenBucket;
  /** No chat until then, ms; 1 means until unmuted, 0 not muted. */
  mutedUntil: number;
  /** When each refusal code was last sent to it, ms: one a second per code, the rest only counted. */
  refusedAt: Map<number, number>;
  /** False between a dropped socket and its reconnection: it gets no frames meanwhile. */
  connected: boolean;
  joinedAt: number;
}

/** What a zone handoff carries to the next zone, signed: the visitor's state and what its client was told. */
export interface HandoffPayload {
  /** The room it is handed to (the only one that accepts it). */
  roomId: string;
  /** The room and zone it comes from: the room is told when it arrives, so it stops sending frames. */
  fromRoomId: string;
  fromZoneId: string;
  visitorId: number;
  subject: string;
  name: string;
  role: string;
  avatar: string;
  x: number;
  y: number;
  heading: number;
  seq: number;
  sentAtMs: number;
  areas: string[];
  booths: string[];
  /** What the client has been told of them, so the new zone's frames say only the difference. */
  toldAreas: string[];
  toldBooths: string[];
  mutedUntil: number;
}
