/**
 * What the handoff bench's processes say to each other: the parent bench/handoff.ts (the
 * regions, the delay proxies, the admin calls) and its visitor load handoff-visitors.ts
 * (the ExpoSessions, their clocks and their counts).
 *
 * Every time here is wallClockMs() (measure.ts): the machine's monotonic clock plus the
 * run's one anchor, so differences are monotonic and the parent can set them beside the
 * nodes' Date.now() stamps of a handoff's transitions.
 */
import type { Region } from "../../common/RegionProbe.ts";
import type { BenchTokenIssuer } from "./expo-protocol.ts";
import type { HistogramData } from "./measure.ts";

/** The visitor load's argument. */
export interface HandoffLoadConfig {
  /** Every region as the clients' city reaches it (the city's delay proxies): for the RegionProbe and matchmaking. */
  regions: Region[];
  /**
   * A node's public address (`127.0.0.1:PORT`, what a seat reservation names) to the
   * city's proxy in front of it: the load's urlBuilder moves every socket onto the proxy,
   * as the harness' located client does.
   */
  proxyOf: Record<string, string>;
  /** Signs the visitors' tokens (the nodes run in Redis mode: no /dev/token). */
  issuer: BenchTokenIssuer;
  hallId: string;
  /** This process' visitors are indices firstIndex .. firstIndex + count - 1 of `total` (their moves spread over one period). */
  firstIndex: number;
  count: number;
  total: number;
  /** Moves a second per visitor. */
  moveHz: number;
  /** Hall size, m (the walk stays inside). */
  width: number;
  height: number;
  joinConcurrency: number;
  seed: number;
}

/** Ready data: everyone joined and placed. */
export interface HandoffLoadReady {
  joined: number;
}

/** One visitor's view of one move of its room, as wallClockMs() stamps. */
export interface HandoffMarks {
  /** The last frame the old home sent it (before `firstTarget`, whatever came between). */
  lastSource?: number;
  /** The RoomHandoff arrived: the SDK asked to take the seat in the new home. */
  received?: number;
  /** The seat in the new home was taken (the Colyseus join there answered). */
  joined?: number;
  /** The `moved` event: SessionResumed arrived, the unapplied inputs were sent again. */
  resumed?: number;
  /** The first frame the new home sent it. */
  firstTarget?: number;
  /** The SDK's own figures (HandoffEvent): inputs sent again, and RoomHandoff → SessionResumed, ms. */
  resent?: number;
  sdkPauseMs?: number;
  fromRegionId?: string;
  toRegionId?: string;
  /** The HandoffEvent's reason: "admin" for the bench's handoffs, "failover" for a room restored after its node was killed. */
  reason?: string;
}

/** `progress`: counters so far. */
export interface HandoffLoadProgress {
  sent: number;
  frames: number;
  /** The fewest `moved` events any live visitor has had: every visitor followed that many moves. */
  movedMin: number;
  movedMax: number;
  alive: number;
  lost: number;
  errors: Record<string, number>;
}

/** `settle`: the walk stopped; what was still unacknowledged once every ack came or the wait ended. */
export interface HandoffLoadSettled {
  waitedMs: number;
  /** Live visitors whose newest move was not acknowledged. */
  unackedVisitors: number;
  /** Their moves after the newest acknowledged, summed. */
  unackedMoves: number;
}

/** `results` (after `settle`): what each visitor saw, and the load's own health. */
export interface HandoffLoadResults {
  /** Per visitor (in index order), its marks per move of the room, in order. */
  marks: HandoffMarks[][];
  /** Per visitor, `moved` events. */
  moved: number[];
  /** Frames whose ackSeq was below one the visitor had already been sent: an older move of its own applied again. */
  ackRegressions: number;
  /** Neighbour entries whose seq was below one the viewer had already seen for that neighbour (each viewer counts apart). */
  neighbourRegressions: number;
  /** Per visitor, its last move's seq minus the ackSeq it ended with (0: its last move was applied). */
  unacked: number[];
  /** Moves sent in all. */
  sent: number;
  frames: number;
  /** Gaps between consecutive frames from the same home, ms: what the pause compares with. */
  frameGaps: HistogramData;
  /** The load process' event-loop delay p99 while walking, ms: it delays every stamp it takes. */
  eventLoopDelayP99Ms: number;
  sessionsLost: number;
  errors: Record<string, number>;
  /** Visitors whose room changes seen in frames did not match their `moved` events. */
  mismatched: number;
}
