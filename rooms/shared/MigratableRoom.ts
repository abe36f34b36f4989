/**
 * The MigratableRoom contract: what a room type implements so a live room can move to
 * another node (server/handoff/RoomHandoff.ts) with the same room id, the same session
 * ids, and nothing lost; and RoomMigration, the machinery every ClusterRoom shares.
 *
 * A room type implements:
 * - `snapshotState()` / `restoreState(state)`: its state, JSON-safe, beside the sessions;
 * - `snapshotSession(client)` / `restoreSession(parked, data)`: one session's data (a
 *   visitor's position and view, what it was last told, its own sequence numbers). At
 *   restore the session's client has not arrived: a ParkedClient stands in for it;
 * - `resumeSession(client, parked)`: the client arrived; put it where the parked one
 *   was and greet it (a full view);
 * - `sessionLost(sessionId)`: a moved session whose client never took its seat: it left;
 * - `freezeRoom()` / `thawRoom()`: its time stops and resumes (ticks, device holds).
 *
 * ClusterRoom does the rest through RoomMigration: numbered inputs (Envelope.input_seq)
 * applied once per session; inputs queued while frozen, carried over, and applied by the
 * new home in arrival order; each client sent its seat there (RoomHandoff), or closed
 * with ROOM_MOVED when it does not follow handoffs; the new home's SessionResumed.
 *
 * @example
 *   class SessionRoom extends ClusterRoom implements MigratableRoom {
 *     snapshotState() { return { participants: [...] }; }
 *     restoreState(state) { ... }
 *     ...
 *   }
 */
import type { Client } from "@colyseus/core";
import type { HandoffRecord, NodeRef, QueuedInput, SessionSnapshot } from "../../server/handoff/types.ts";
import { ParkedClient } from "./ParkedClient.ts";

export interface MigratableRoom {
  /** Why this room cannot move now, if it cannot (checked before each handoff). */
  unmovableReason?(): string | undefined;
  snapshotState(): unknown | Promise<unknown>;
  restoreState(state: unknown): void | Promise<void>;
  snapshotSession(client: Client): unknown;
  restoreSession(parked: ParkedClient, data: unknown): void;
  resumeSession(client: Client, parked: ParkedClient): void;
  sessionLost(sessionId: string): void;
  freezeRoom(): void;
  thawRoom(): void | Promise<void>;
  /** The room is the target's now (after the Redirect was sent): what lives outside the room (devices) follows. */
  movedAway?(to: NodeRef): void;
  /**
   * The restore that follows (restoreState) is a failover: the old home was lost, not
   * handing over. What must not outlive it is not restored (a teleop room's leases).
   */
  failedOver?(): void;
}

/** Where a room is in a move. */
export type MigrationPhase =
  /** Taking inputs. */
  | "live"
  /** Frozen: inputs are queued. */
  | "frozen"
  /** Handed over: inputs are no longer applied here; the room disposes once its clients left. */
  | "moved"
  /** Opened from a snapshot, waiting for the Switch: nothing is applied until it. */
  | "restored";

/** Inputs one frozen room queues at most; beyond it they are dropped, and the SDK's numbered ones are sent again to the new home. */
export const MAX_QUEUED_INPUTS = 20_000;
/** Handoffs a room's history keeps, newest last. */
export const MAX_HANDOFF_HISTORY = 32;

export class RoomMigration {
  phase: MigrationPhase = "live";

  /** `dropped`: an input the frozen room's queue had no room for, or a send a parked session could not hold (counted). */
  constructor(private readonly dropped: () => void = () => {}) {}

  /** The last numbered input applied, per session. */
  private readonly inputSeqs = new Map<string, number>();
  /** Sessions whose clients follow RoomHandoff (they said so when joining). */
  private readonly followers = new Set<string>();
  /** Inputs queued since the freeze, in arrival order. */
  private queued: QueuedInput[] = [];
  /** How many of `queued` the snapshot carried, and how many the Switch. */
  private carried = 0;
  /** Moved sessions whose clients have not arrived, by session id. */
  readonly parked = new Map<string, ParkedClient>();
  /** The room's handoffs, newest last. */
  history: HandoffRecord[] = [];
  /** Each session's round trips to the regions (RegionRtts), for placement. */
  readonly rtts = new Map<string, Readonly<Record<string, number>>>();

  /**
   * Notes a numbered input: -1 when it was applied already (a duplicate: drop it), else
   * how many numbers it skipped (inputs of the session that never arrived; 0 normally).
   */
  admitSeq(sessionId: string, seq: number): number {
    if (!seq) return 0;
    const last = this.inputSeqs.get(sessionId) ?? 0;
    if (seq <= last) return -1;
    this.inputSeqs.set(sessionId, seq);
    return seq - last - 1;
  }

  inputSeq(sessionId: string): number { return this.inputSeqs.get(sessionId) ?? 0; }

  joined(sessionId: string, followsHandoff: boolean) {
    if (followsHandoff) this.followers.add(sessionId);
  }

  left(sessionId: string) {
    this.inputSeqs.delete(sessionId);
    this.followers.delete(sessionId);
    this.rtts.delete(sessionId);
  }

  follows(sessionId: string): boolean { return this.followers.has(sessionId); }

  /** Queues an input that arrived while frozen; false when the queue is full (dropped). */
  enqueue(input: QueuedInput): boolean {
    if (this.queued.length >= MAX_QUEUED_INPUTS) { this.dropped(); return false; }
    this.queued.push(input);
    return true;
  }

  /** What the snapshot carries: the queue so far. */
  queuedForSnapshot(): QueuedInput[] {
    this.carried = this.queued.length;
    return this.queued.slice();
  }

  /** What the Switch carries: the queue since the snapshot. */
  queuedSinceSnapshot(): QueuedInput[] {
    const late = this.queued.slice(this.carried);
    this.carried = this.queued.length;
    return late;
  }

  /** The whole queue, emptied: a thaw applies it here. */
  drainQueue(): QueuedInput[] {
    const all = this.queued;
    this.queued = [];
    this.carried = 0;
    return all;
  }

  /** Inputs that arrived after the Switch carried its share: not applied anywhere by the room (the SDK sends numbered ones again). */
  abandonQueue(): number {
    const abandoned = this.queued.length - this.carried;
    this.queued = [];
    this.carried = 0;
    return abandoned;
  }

  /** A session as the snapshot carries it. */
  sessionSnapshot(client: Client, data: unknown): SessionSnapshot {
    return { sessionId: client.sessionId, auth: client.auth, inputSeq: this.inputSeq(client.sessionId), followsHandoff: this.follows(client.sessionId), data };
  }

  /** The last input number a parked session's old home applied, from a later snapshot. */
  renumber(sessionId: string, inputSeq: number) {
    if (inputSeq > this.inputSeq(sessionId)) this.inputSeqs.set(sessionId, inputSeq);
  }

  /** A moved session, parked until its client arrives. */
  park(session: SessionSnapshot): ParkedClient {
    const parked = new ParkedClient(session.sessionId, session.auth, this.dropped);
    this.parked.set(session.sessionId, parked);
    if (session.inputSeq) this.inputSeqs.set(session.sessionId, session.inputSeq);
    if (session.followsHandoff) this.followers.add(session.sessionId);
    return parked;
  }

  record(record: HandoffRecord) {
    const index = this.history.findIndex((r) => r.id === record.id);
    if (index >= 0) this.history[index] = structuredClone(record);
    else this.history.push(structuredClone(record));
    if (this.history.length > MAX_HANDOFF_HISTORY) this.history.splice(0, this.history.length - MAX_HANDOFF_HISTORY);
  }
}
