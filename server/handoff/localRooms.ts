/**
 * This node's rooms as the handoff and failover code sees them: which are here, the
 * mover of one (rooms/shared/RoomMover.ts), and opening one from a snapshot, which a
 * handoff's target and a failover's restorer both do.
 *
 * @example
 *   const opened = await openFromSnapshot(context, snapshot, handoffId, 15);
 *   opened.reservations;           // each parked session's seat here, by session id
 */
import { ServerError, matchMaker } from "@colyseus/core";
import { ErrorCode } from "../../proto/index.ts";
import type { NodeContext } from "../context.ts";
import { placeOnProcess } from "../cluster/ClusterMatchmaker.ts";
import { restoreOptions, type MigrationTarget } from "./restore.ts";
import type { Migratable, RoomSnapshot } from "./types.ts";

/** What a room that can move exposes as `mover` (rooms/shared/RoomMover.ts). */
export interface RoomMoverHandle extends Migratable, MigrationTarget {}

/** The rooms of this node (its process's listings), by id. */
export async function localRooms(): Promise<Array<{ roomId: string }>> {
  return Promise.resolve(matchMaker.driver.query({ processId: matchMaker.processId })).catch(() => []);
}

/** The mover of a local room, or undefined when it has none. */
export function moverOf(room: unknown): RoomMoverHandle | undefined {
  const mover = (room as { mover?: Partial<RoomMoverHandle> } | undefined)?.mover;
  return typeof mover?.unmovableReason === "function" && typeof mover.restoreSnapshot === "function" ? (mover as RoomMoverHandle) : undefined;
}

export interface OpenedRoom {
  mover: RoomMoverHandle;
  /** Each parked session's seat reservation (JSON), by session id. */
  reservations: Record<string, string>;
  /** Opening the room, restoring it, reserving the seats (ms). */
  timings: { openMs: number; restoreMs: number; seatsMs: number };
}

/**
 * Opens `snapshot`'s room on this node, restored and locked, its sessions parked with
 * their seats reserved for `seatSeconds`; it is not live until the caller makes it so
 * (a Switch, or a failover's openAfterFailover). Discarded if any step fails.
 * @throws ServerError UNKNOWN_ROOM (no such room type here), NODE_DRAINING, ROOM_CONFLICT (open here already).
 */
export async function openFromSnapshot(context: NodeContext, snapshot: RoomSnapshot, handoffId: string, seatSeconds: number, failover = false): Promise<OpenedRoom> {
  try { matchMaker.getHandler(snapshot.roomName); } catch {
    throw new ServerError(ErrorCode.UNKNOWN_ROOM, `no room type "${snapshot.roomName}" on node ${context.nodeId}`);
  }
  if (context.isDraining()) throw new ServerError(ErrorCode.NODE_DRAINING, `node ${context.nodeId} is draining`);
  const here = matchMaker.getLocalRoomById(snapshot.roomId);
  if (here && moverOf(here)?.retired) {
    // A copy that handed the room away from here, still seeing its last clients off: it goes now.
    await here.disconnect(ErrorCode.ROOM_MOVED).catch(() => {});
  } else if (here) {
    throw new ServerError(ErrorCode.ROOM_CONFLICT, `room ${snapshot.roomId} is already open on node ${context.nodeId}`);
  }

  const started = performance.now();
  const { options, done } = restoreOptions(snapshot, handoffId, failover);
  placeOnProcess(options, matchMaker.processId);
  try {
    await matchMaker.createRoom(snapshot.roomName, options);
  } finally {
    done();
  }
  const opened = performance.now();
  const mover = moverOf(matchMaker.getLocalRoomById(snapshot.roomId));
  if (!mover) throw new ServerError(ErrorCode.INTERNAL, `room ${snapshot.roomId} opened without its mover`);
  try {
    await mover.restoreSnapshot();
    const restored = performance.now();
    const reservations = await mover.reserveResumes(seatSeconds);
    return { mover, reservations, timings: { openMs: ms(opened - started), restoreMs: ms(restored - opened), seatsMs: ms(performance.now() - restored) } };
  } catch (error) {
    mover.discard();
    throw error;
  }
}

/** Milliseconds to one decimal. */
export function ms(value: number): number {
  return Math.round(value * 10) / 10;
}
