/**
 * How a node opens a room from a snapshot: through Colyseus' own createRoom, with
 * options marked as a restore. Colyseus hands onCreate a copy of the options, so the
 * mark is a random single-use nonce in them, looked up here: a client cannot guess one
 * (and a join's options never reach onCreate anyway).
 *
 * @example
 *   const options = restoreOptions(snapshot, handoffId);     // the handoff's target
 *   await matchMaker.createRoom(snapshot.roomName, options);
 *   const restore = restoreOf(options);                       // the room's onCreate
 */
import { randomBytes } from "node:crypto";
import type { HandoffRecord, RoomSnapshot } from "./types.ts";

export interface Restore {
  snapshot: RoomSnapshot;
  /** The handoff (or failover) this restore belongs to. */
  handoffId: string;
  /** A failover: the room's old home is lost, not handing it over (no lease survives it). */
  failover?: boolean;
}

/** The option key of the nonce. */
const RESTORE_KEY = "tsunagiRestore";
/** Restores waiting for their room's onCreate, by nonce. */
const restores = new Map<string, Restore>();

/**
 * Create options that open `snapshot`'s room: the options it was first created with,
 * its name as `roomId`, marked as a restore. `done` forgets the mark once the creation
 * is over (made or failed): it is good for that one creation.
 */
export function restoreOptions(snapshot: RoomSnapshot, handoffId: string, failover = false): { options: Record<string, unknown>; done(): void } {
  const nonce = randomBytes(16).toString("base64url");
  restores.set(nonce, { snapshot, handoffId, failover });
  return { options: { ...snapshot.options, roomId: snapshot.name, [RESTORE_KEY]: nonce }, done: () => { restores.delete(nonce); } };
}

/** The restore these create options carry, if the node marked them as one. */
export function restoreOf(options: unknown): Restore | undefined {
  const nonce = options !== null && typeof options === "object" ? (options as Record<string, unknown>)[RESTORE_KEY] : undefined;
  return typeof nonce === "string" ? restores.get(nonce) : undefined;
}

/** Create options as a snapshot keeps them: without a restore's mark. */
export function originalOptions(options: unknown): Record<string, unknown> {
  if (options === null || typeof options !== "object") return {};
  const { [RESTORE_KEY]: _mark, ...rest } = options as Record<string, unknown>;
  return rest;
}

/** What the handoff's target needs of the room it opened from a snapshot (ClusterRoom implements it). */
export interface MigrationTarget {
  /** Puts the snapshot's state and sessions in place, once the room type's onCreate has run. */
  restoreSnapshot(): Promise<void>;
  /** Brings a copy opened from an earlier snapshot up to `snapshot` (the room now frozen); answers the seats of sessions new since. */
  refreshSnapshot(snapshot: RoomSnapshot, seatSeconds: number): Promise<Record<string, string>>;
  /** Waits at most `waitMs` for every moved session's client to take its seat here; how many came. */
  awaitArrivals(waitMs: number): Promise<{ arrived: number; expected: number }>;
  /** Reserves each moved session's seat here; answers each reservation (JSON) by session id. */
  reserveResumes(seatSeconds: number): Promise<Record<string, string>>;
  /** The Switch: takes the directory claim from `fromToken`, applies the carried inputs, opens; resolves with the new token. */
  takeOver(fromToken: string, queued: RoomSnapshot["queued"]): Promise<string>;
  /** Drops this copy (a rolled-back handoff): nothing of it is applied or listed. */
  discard(): void;
  /** Failover: the node claimed the room (`token`) after its old home was lost; it goes live with the snapshot's queued inputs. */
  openAfterFailover(token: string, record: HandoffRecord): Promise<void>;
  /**
   * A client resuming `sessionId` after a failover: its seat reservation (JSON) if the
   * session is parked here and is `subject`'s; "connected" if it is here already (or its
   * seat waits for it to reconnect: the SDK's own reconnection will do); "restoring" while
   * the room is opened from its snapshot and its sessions are not parked yet.
   */
  resumeSeat(sessionId: string, subject: string): string | "connected" | "restoring" | undefined;
}
