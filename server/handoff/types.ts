/**
 * What moves when a room moves, and what the node needs of a room to move it.
 *
 * The node (server/handoff) knows no room type: a room that can move implements
 * `Migratable` (rooms/shared/ClusterRoom does, for every room type that implements the
 * MigratableRoom contract in rooms/shared/MigratableRoom.ts).
 */

import type { ClaimRequest } from "../cluster/RoomDirectory.ts";

/** RoomHandoff's states, in order; Aborted ends a handoff that rolled back. */
export enum HandoffState {
  Init = "init",
  Freeze = "freeze",
  Transfer = "transfer",
  Switch = "switch",
  Redirect = "redirect",
  Complete = "complete",
  Aborted = "aborted",
}

/** The longest a moved session's seat waits for its client, s (handoff.seatSeconds at most). */
export const MAX_SEAT_SECONDS = 120;

/** Why a room moves. */
export type HandoffReason = "admin" | "drain" | "participants" | "device" | "failover";
export const HANDOFF_REASONS: readonly HandoffReason[] = ["admin", "drain", "participants", "device", "failover"];
/** What an admin may give as the reason of a handoff they ask for (a failover is the cluster's own). */
export const REQUESTABLE_REASONS: readonly HandoffReason[] = HANDOFF_REASONS.filter((reason) => reason !== "failover");

export interface NodeRef {
  regionId: string;
  nodeId: string;
}

/** One handoff of a room, as its history keeps it (and the console shows it). */
export interface HandoffRecord {
  id: string;
  roomId: string;
  reason: HandoffReason;
  from: NodeRef;
  to: NodeRef;
  /** Every state entered, with when (epoch ms) and how long after the start (ms). */
  transitions: Array<{ state: HandoffState; at: number; ms: number }>;
  /** The final state: Complete, or Aborted (with `error`). */
  outcome?: HandoffState.Complete | HandoffState.Aborted;
  error?: string;
  /** Sessions that moved. */
  sessions: number;
  /** Inputs that arrived during Freeze and were carried over. */
  carriedInputs: number;
  /** Clients that had taken their seats in the target when the room froze, of those sent one. */
  arrived?: { arrived: number; expected: number };
  /** Where the target's part of the Transfer went: opening the room, restoring it, reserving the seats (ms). */
  target?: { openMs: number; restoreMs: number; seatsMs: number };
  /**
   * A failover: when the snapshot the room came back from was taken (what happened in
   * the room after it is lost, but for the inputs its clients send again), and when the
   * restoring node first saw the old home gone (epoch ms).
   */
  failover?: { snapshotTakenAt: number; detectedAt: number };
}

/** A session as it moves: who it is, what the room applied of its inputs, and the room's own data of it. */
export interface SessionSnapshot {
  sessionId: string;
  /** The verified token claims it joined with. */
  auth: unknown;
  /** The last numbered input (Envelope.input_seq) the room applied for it. */
  inputSeq: number;
  /** Whether its client follows RoomHandoff (the Tsunagi SDK says so when joining). */
  followsHandoff: boolean;
  /** The room type's data of this session: its view, sequence numbers... JSON-safe. */
  data: unknown;
}

/** An input that arrived while the room was frozen, in arrival order: applied by the room's new home. */
export type QueuedInput =
  | { sessionId: string; kind: "envelope"; bytes: string /* base64 */ }
  | { sessionId: string; kind: "message"; type: string; message: unknown };

/** Everything a room's new home needs to go on where the old one stopped. JSON-safe. */
export interface RoomSnapshot {
  version: 1;
  roomName: string;
  roomId: string;
  /** The room's name within its type (ClusterRoom.name). */
  name: string;
  createdAt: number;
  maxClients: number | null;
  /** The fencing token of the claim the snapshot was taken under. */
  token: string;
  /** When it was taken, epoch ms. */
  takenAt: number;
  /** The options the room was created with (ClusterRoom keeps them): its new home creates it with them. */
  options: Record<string, unknown>;
  /** The room type's state, JSON-safe (MigratableRoom.snapshotState). */
  state: unknown;
  sessions: SessionSnapshot[];
  queued: QueuedInput[];
  history: HandoffRecord[];
}

/** What the node needs of a live room to hand it to another node (ClusterRoom implements it). */
export interface Migratable {
  readonly roomId: string;
  readonly roomName: string;
  /** Why this room cannot move now, or undefined when it can. */
  unmovableReason(): string | undefined;
  /** True while a handoff of the room is under way (or it has moved away). */
  readonly moving: boolean;
  /** True once this copy handed the room away: it only waits for its clients to leave. */
  readonly retired: boolean;
  /** Freeze: inputs are queued, the room's time stops, devices hold a safe state. */
  freeze(): void;
  /** Transfer: the room as it is now, with the inputs queued since the freeze. */
  snapshot(): Promise<RoomSnapshot>;
  /** Inputs queued since `snapshot()` (carried by the Switch). */
  takeQueued(): QueuedInput[];
  /**
   * After the Transfer: each session following handoffs is sent its seat in the target
   * now, so its client connects while the Switch is made (it waits there for
   * SessionResumed, holding its inputs).
   */
  announceSeats(to: NodeRef, reservations: ReadonlyMap<string, string>, seatSeconds: number, reason: HandoffReason): void;
  /** The handoff rolled back: clients sent their seats are told the move is off (they stay). */
  cancelSeats(): void;
  /** Abort before the Switch: the queued inputs are applied here, and time resumes. */
  thaw(): void;
  /**
   * Redirect: the room is the target's now. Sessions that were not sent their seat yet
   * are (clients that do not follow a handoff are closed with ROOM_MOVED); inputs
   * reaching this copy are no longer applied, and it disposes once its clients have left,
   * or after `seatSeconds`.
   */
  redirect(to: NodeRef, reservations: ReadonlyMap<string, string>, seatSeconds: number, reason: HandoffReason): void;
  /** The room's directory entry as this node claims it (a lost Switch answer is settled by taking it back). */
  claimEntry(): ClaimRequest;
  /** After a rollback past a Switch attempt: holds the directory claim again, or closes if another copy holds it. */
  reassertClaim(): Promise<void>;
  /** The node claimed the room again under a new fencing token (RoomDirectory.reassert). */
  claimRenewed(token: string): void;
  /** Another live node holds the room now (RoomDirectory.reassert reported it lost): this copy applies nothing more and closes; its clients join that one. */
  claimLost(owner: NodeRef): void;
  /** Each participant's round trips to the regions, as their SDKs reported them (placement). */
  regionRtts(): Array<Readonly<Record<string, number>>>;
  /** Adds (or updates) a record in the room's handoff history. */
  recordHandoff(record: HandoffRecord): void;
  handoffHistory(): HandoffRecord[];
}
