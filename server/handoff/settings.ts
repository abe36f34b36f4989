/**
 * The settings of rooms in motion (docs/regions.md): handoffs between nodes and regions,
 * and failover of a lost node's rooms; their shapes and defaults, part of the node's
 * configuration (server/config.ts: `handoff`, `failover`).
 */
import { z } from "zod";
import { redisUrlShape } from "../configShapes.ts";
import { MAX_SEAT_SECONDS } from "./types.ts";

/** Rooms moving between nodes and regions (server/handoff). */
export const handoffSettings = z.object({
  /** How long a moved session's seat in the new home is held for its client, s. */
  seatSeconds: z.number().int().min(1).max(MAX_SEAT_SECONDS),
  /** Bound of each node-to-node handoff call (prepare, commit, abort), ms. */
  rpcTimeoutMs: z.number().int().min(100).max(60_000),
  /** Largest room snapshot a node sends or accepts, bytes. */
  maxSnapshotBytes: z.number().int().min(64 * 1024).max(256 * 1024 * 1024),
  /** How long a room opened from a snapshot waits for its Switch before it is dropped, ms. */
  prepareTimeoutMs: z.number().int().min(1000).max(120_000),
  /** How long a handoff waits, before freezing the room, for its clients to take their seats in the target, ms (0: not at all). */
  arrivalWaitMs: z.number().int().min(0).max(10_000),
  /** How long a device must have been away, connected to another region's gateway, before its room follows it, ms. */
  deviceSettleMs: z.number().int().min(0).max(600_000),
  /** Least time between two moves of a room for the same cause (hysteresis), ms. */
  cooldownMs: z.number().int().min(0).max(3_600_000),
  /** How often each room's participants' round trips are weighed (PlacementPolicy), ms; 0: rooms never move for them. */
  placementCheckMs: z.number().int().min(0).max(3_600_000),
  /** How long another region must stay better for a room's participants before it moves there, ms. */
  placementWindowMs: z.number().int().min(0).max(3_600_000),
  /** Least gain in the participants' mean round trip for a move, ms, and as a share of the current one. */
  placementMinGainMs: z.number().min(0).max(10_000),
  placementMinGainRatio: z.number().min(0).max(1),
});

/** Failover (docs/regions.md): rooms' snapshots, to restore them elsewhere when their region is lost. */
export const failoverSettings = z.object({
  /** How often each room writes its snapshot, ms; 0: never (its rooms are then not restored when their node is lost). */
  snapshotMs: z.number().int().min(0).max(60_000),
  /** How often each node looks for rooms whose node stopped heartbeating, in the snapshots its region's Redis holds, ms; 0: never. */
  checkMs: z.number().int().min(0).max(60_000),
  /** How long the node chosen to restore a lost room has before any node of its region may, ms. */
  fallbackMs: z.number().int().min(0).max(60_000),
  /** A Redis in another region that keeps a replica of this region's snapshots. */
  replicaRedisUrl: redisUrlShape.optional(),
  /** How long a snapshot outlives its last write, ms. */
  snapshotTtlMs: z.number().int().min(1000).max(86_400_000),
});

export const handoffDefaults: z.input<typeof handoffSettings> = {
  seatSeconds: 15,
  rpcTimeoutMs: 5000,
  maxSnapshotBytes: 16 * 1024 * 1024,
  prepareTimeoutMs: 15_000,
  arrivalWaitMs: 1000,
  deviceSettleMs: 500,
  cooldownMs: 30_000,
  placementCheckMs: 5000,
  placementWindowMs: 30_000,
  placementMinGainMs: 5,
  placementMinGainRatio: 0.2,
};

export const failoverDefaults: z.input<typeof failoverSettings> = {
  snapshotMs: 100,
  checkMs: 100,
  fallbackMs: 1000,
  snapshotTtlMs: 60_000,
};
