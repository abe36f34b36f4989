/**
 * What a RoomSession takes and tells: its options (reconnection, requests, following a
 * room that moves or is restored elsewhere), its events, and what they carry.
 */
import type { Room } from "@colyseus/sdk";
import type { TsunagiError } from "./errors.ts";
import type { HandoffEvent, SeatReservation } from "./RoomFollower.ts";
import type { ResumeAnswer } from "./SessionRecovery.ts";

/**
 * Automatic reconnection, done by the Colyseus SDK (its `room.reconnection`). It
 * reconnects to the same node with the session's reconnection token when the socket
 * drops with 1001, 1005, 1006 or 4010; any other close code ends the session.
 */
export interface ReconnectionSettings {
  /** Default true. */
  enabled?: boolean;
  /** Attempts before giving up with close code 4003 (FAILED_TO_RECONNECT). SDK default 15. */
  maxRetries?: number;
  /** Base delay fed to `backoff`, in ms. SDK default 100. */
  delay?: number;
  /** Lower bound of every wait, in ms. SDK default 100. */
  minDelay?: number;
  /** Upper bound of every wait, in ms. SDK default 5000. */
  maxDelay?: number;
  /** A session that drops sooner than this after joining is not reconnected, in ms. SDK default 5000. */
  minUptime?: number;
  /** Wait before attempt `attempt` (1-based). SDK default: 2^attempt × delay. */
  backoff?: (attempt: number, delay: number) => number;
  /** Messages buffered while disconnected and sent on reconnect; the oldest is dropped beyond it. SDK default 10. */
  maxEnqueuedMessages?: number;
}

export interface RoomSessionOptions {
  reconnection?: ReconnectionSettings;
  /** Requests awaiting a reply at once; more are refused with RATE_LIMITED. Default 256. */
  maxPendingRequests?: number;
  /** Default bound on request(), in ms. Default 10 000 (as Colyseus' own requests). */
  requestTimeoutMs?: number;
  /** Largest envelope accepted from the server. Default 64 KiB. */
  maxEnvelopeBytes?: number;
  /** How long leave() waits for the server to close the socket before ending locally. Default 5000 ms. */
  leaveTimeoutMs?: number;
  /** The region this session was matchmade through, for the application's display. */
  region?: { id?: string; url: string; rttMs?: number };
  /** Where exceptions thrown by listeners and handlers go. Default: console.error. */
  onListenerError?: (error: unknown, source: string) => void;
  /**
   * Answer the room's round-trip probes (a Ping with a non-zero correlation id) at once
   * with a Pong echoing it. A TeleopRoom pings lease holders to check the device's
   * latency budget, and demotes a holder whose probes go unanswered. Default true.
   */
  answerPings?: boolean;
  /**
   * How the session takes its seat in a room's new home when the room moves
   * (RoomHandoff): the seat reservation in, the joined room out. TsunagiClient sets it;
   * without it a moved session ends with ROOM_MOVED (retryable: join again).
   */
  follow?: (reservation: SeatReservation) => Promise<Room<any, any>>;
  /** How long numbered envelopes are kept to be sent again after a room moves, ms. Default 2000. */
  resendWindowMs?: number;
  /**
   * Where the session's seat is after its room's node was lost (`POST /sessions/resume`
   * on any region). TsunagiClient sets it; with `follow`, a session whose node is lost
   * finds its room where the cluster restored it (SessionRecovery.ts).
   */
  resume?: (roomId: string, sessionId: string) => Promise<ResumeAnswer>;
  /** How long a session whose node was lost looks for its room before it ends, ms. Default 15 000. */
  recoveryWindowMs?: number;
  /**
   * This client's round trip to each region, ms (TsunagiClient passes its RegionProbe's):
   * sent to the room on joining, after a move, and every `rttReportMs`, so a room whose
   * participants are nearer another region can move there (RegionRtts).
   */
  regionRtts?: () => Record<string, number> | undefined;
  /** How often regionRtts are reported, ms. Default 30 000. */
  rttReportMs?: number;
}

export interface LeaveEvent {
  /** WebSocket close code (4000 when the client left). */
  code: number;
  reason?: string;
  /** Why the session ended, when it was not the client's choice; `retryable` says
   *  whether joining again (through the matchmaker) may work. */
  error?: TsunagiError;
}

export interface ReconnectingEvent {
  /** Which attempt is scheduled next, from 1. */
  attempt: number;
  maxRetries: number;
  /** Close code of the drop that started (or continued) reconnection. */
  code: number;
  reason?: string;
}

export interface RoomSessionEvents {
  /** A coded error from the room (room.onError) or an envelope that did not decode. The session goes on. */
  error: (error: TsunagiError) => void;
  /** The session ended; emitted once. Pending requests have been rejected. */
  leave: (event: LeaveEvent) => void;
  /** The socket dropped and the SDK will try again; emitted before each attempt. */
  reconnecting: (event: ReconnectingEvent) => void;
  /** The session is back, with the same sessionId; messages sent meanwhile are flushed. */
  reconnected: () => void;
  /** The room moved to another node or region and the session followed it: same room id, same session id, nothing lost. */
  handoff: (event: HandoffEvent) => void;
}

/** How a request's reply is delivered. */
export interface RequestOptions {
  /**
   * The reply also goes to the session's envelope handlers, as a notice. For an EStop or a
   * Reset: the room sends its sender the reply in place of the notice everyone else gets.
   */
  notice?: boolean;
}

