/**
 * One live room moving from this node to another, as an explicit state machine:
 *
 *   Init → Freeze → Transfer → Switch → Redirect → Complete
 *     ↘        ↘         ↘        ↘
 *                 Aborted (rolled back: the room stays here and goes on)
 *
 * - Init: the room can move (not already moving, a type that migrates). While it still
 *   runs, a snapshot of it goes to the target, which opens the room from it, unlisted and
 *   locked, and reserves each session's seat; each client that follows handoffs is sent
 *   its seat at once and connects there, and waits (still sending to this copy). So the
 *   pause clients see includes neither opening the room nor their connections.
 * - Freeze: the room queues its inputs and stops its time; teleop devices hold.
 * - Transfer: the room as it is now (state, sessions, inputs queued so far) goes to the
 *   target, which brings its copy up to it (and seats sessions new since Init).
 * - Switch: the target takes the directory claim from the snapshot's fencing token (a
 *   compare-and-set: nobody else can have moved or restored the room meanwhile),
 *   applies the inputs queued since the snapshot, which the Switch carries, and resumes
 *   the sessions whose clients have arrived (SessionResumed).
 * - Redirect: clients that do not follow handoffs are closed (ROOM_MOVED), devices are
 *   sent to the target; this copy applies nothing more.
 * - Complete.
 *
 * A target that fails before the Switch is told to drop its copy, and the room thaws
 * here: the inputs queued meanwhile are applied, in order, and nothing is lost. When the
 * Switch's answer is lost, this node takes the claim back by compare-and-set on the token
 * the Switch was to transfer: it wins only if the Switch has not happened, which then
 * never can; only a Switch known not to have happened rolls back.
 *
 * Every transition is logged, counted (tsunagi_room_handoff_transitions_total) and kept
 * in the room's handoff history.
 *
 * @example
 *   const record = await new RoomHandoff(room, target, "admin", peer, deps).run();
 *   record.outcome; // HandoffState.Complete, or Aborted with record.error
 */
import { randomUUID } from "node:crypto";
import type { NodeInfo } from "../cluster/types.ts";
import { TransferError, type RoomDirectory } from "../cluster/RoomDirectory.ts";
import type { Logger } from "../observability/logging.ts";
import type { NodeMetrics } from "../observability/metrics.ts";
import { HandoffState, type HandoffReason, type HandoffRecord, type Migratable, type NodeRef, type QueuedInput, type RoomSnapshot } from "./types.ts";

/** The target's side, over the network (HandoffRpc) or in tests. */
export interface HandoffPeer {
  /** Transfer: the target opens the room from `snapshot` and answers each session's seat reservation (JSON), by session id, and where its time went. */
  prepare(target: NodeInfo, handoffId: string, snapshot: RoomSnapshot, seatSeconds: number): Promise<{ reservations: Record<string, string>; timings?: HandoffRecord["target"] }>;
  /** Init: waits at most `waitMs` until the clients sent their seats have taken them there; how many did. */
  arrivals(target: NodeInfo, handoffId: string, waitMs: number): Promise<{ arrived: number; expected: number }>;
  /** Transfer: the target brings its copy up to `snapshot` (the room frozen); answers the seats of sessions new since prepare. */
  refresh(target: NodeInfo, handoffId: string, snapshot: RoomSnapshot, seatSeconds: number): Promise<Record<string, string>>;
  /** Switch: the target takes the claim from `fromToken`, applies `queued`, and opens; answers its new token. */
  commit(target: NodeInfo, handoffId: string, fromToken: string, queued: QueuedInput[]): Promise<string>;
  /** Rollback: the target drops its unswitched copy. Never rejects. */
  abort(target: NodeInfo, handoffId: string): Promise<void>;
}

export interface RoomHandoffDeps {
  self: NodeRef;
  directory: RoomDirectory;
  logger: Logger;
  metrics: NodeMetrics;
  /** How long clients have to take their seat in the new home, s. */
  seatSeconds: number;
  /** How long to find out from the directory whether a Switch whose answer was lost happened, ms. */
  switchCheckMs?: number;
  /** How long Init waits for the clients to take their seats in the target before the Freeze, ms (0: not at all). */
  arrivalWaitMs?: number;
}

/** Thrown by run() steps to abort with a reason. */
class AbortHandoff extends Error {}

export class RoomHandoff {
  readonly id = randomUUID();
  private current = HandoffState.Init;
  private readonly startedAt = Date.now();
  private readonly startedMs = performance.now();
  readonly record: HandoffRecord;
  private readonly logger: Logger;

  constructor(
    private readonly room: Migratable,
    private readonly target: NodeInfo,
    readonly reason: HandoffReason,
    private readonly peer: HandoffPeer,
    private readonly deps: RoomHandoffDeps,
  ) {
    this.record = {
      id: this.id, roomId: room.roomId, reason,
      from: deps.self, to: { regionId: target.regionId, nodeId: target.nodeId },
      transitions: [], sessions: 0, carriedInputs: 0,
    };
    this.logger = deps.logger.child({ handoffId: this.id, roomId: room.roomId, to: target.nodeId, toRegion: target.regionId, reason });
  }

  get state(): HandoffState { return this.current; }

  /** Runs the handoff to its end; resolves with its record (Complete, or Aborted with the error). Never rejects. */
  async run(): Promise<HandoffRecord> {
    this.enter(HandoffState.Init);
    let frozen = false;
    let prepared = false;
    let switchTried = false;
    let announced = false;
    try {
      const unmovable = this.room.unmovableReason();
      if (unmovable) throw new AbortHandoff(unmovable);
      if (this.target.nodeId === this.deps.self.nodeId) throw new AbortHandoff("the target is this node");

      // Init, while the room still runs: the target opens it from a live snapshot and
      // reserves the seats, and the clients that follow handoffs connect there and wait.
      const warm = await this.room.snapshot();
      const reservations = new Map<string, string>();
      try {
        prepared = true;
        const answer = await this.peer.prepare(this.target, this.id, warm, this.deps.seatSeconds);
        for (const [sessionId, seat] of Object.entries(answer.reservations)) reservations.set(sessionId, seat);
        if (answer.timings) this.record.target = answer.timings;
      } catch (error) {
        throw new AbortHandoff(`the target did not open the room: ${(error as Error).message}`);
      }
      this.room.announceSeats(this.record.to, reservations, this.deps.seatSeconds, this.reason);
      announced = true;
      // Their connections are made while the room still runs, not during the pause.
      const waitMs = this.deps.arrivalWaitMs ?? 0;
      if (waitMs > 0 && reservations.size > 0) {
        const arrivals = await this.peer.arrivals(this.target, this.id, waitMs).catch(() => undefined);
        if (arrivals) this.record.arrived = arrivals;
      }

      this.enter(HandoffState.Freeze);
      this.room.freeze();
      frozen = true;

      // Transfer: the room as it is now; the target brings its copy up to it.
      this.enter(HandoffState.Transfer);
      const snapshot = await this.room.snapshot();
      this.record.sessions = snapshot.sessions.length;
      try {
        const added = await this.peer.refresh(this.target, this.id, snapshot, this.deps.seatSeconds);
        const fresh = new Map(Object.entries(added));
        for (const [sessionId, seat] of fresh) reservations.set(sessionId, seat);
        if (fresh.size) this.room.announceSeats(this.record.to, fresh, this.deps.seatSeconds, this.reason);
      } catch (error) {
        throw new AbortHandoff(`the target did not take the room's final state: ${(error as Error).message}`);
      }

      this.enter(HandoffState.Switch);
      switchTried = true;
      const late = this.room.takeQueued();
      this.record.carriedInputs = snapshot.queued.length + late.length;
      const switched = await this.switch(snapshot.token, late);
      if (!switched) throw new AbortHandoff("the target did not take the room's claim");

      this.enter(HandoffState.Redirect);
      this.room.redirect(this.record.to, reservations, this.deps.seatSeconds, this.reason);
      this.finish(HandoffState.Complete);
    } catch (error) {
      const message = error instanceof AbortHandoff ? error.message : `failed: ${(error as Error)?.message ?? String(error)}`;
      if (prepared) await this.peer.abort(this.target, this.id);
      if (announced) this.room.cancelSeats();
      if (frozen) this.room.thaw();
      if (switchTried) await this.room.reassertClaim().catch((error) => this.logger.error({ err: error }, "could not check the room's claim after the rollback"));
      this.finish(HandoffState.Aborted, message);
    }
    return structuredClone(this.record);
  }

  /**
   * Commits at the target. True once the directory names it; false when it certainly
   * does not (a Switch that did not happen rolls back). A lost answer is settled by a
   * compare-and-set on the directory, never by a read: this node takes the claim back
   * from the token the Switch was to transfer. If that succeeds, the target's Switch can
   * no longer happen (it transfers from the same token), so the room is this node's again,
   * under a new token; if the target holds the claim, the Switch happened. The room stays
   * frozen meanwhile (a pause, never two live copies). A directory silent for all of
   * switchCheckMs ends it as switched, and this copy's claim is released by its own token:
   * a no-op if the target holds the room, and otherwise the room is free to be opened again
   * through matchmaking.
   */
  private async switch(fromToken: string, late: QueuedInput[]): Promise<boolean> {
    try {
      await this.peer.commit(this.target, this.id, fromToken, late);
      return true;
    } catch (error) {
      this.logger.warn({ err: error }, "the Switch's answer did not arrive: settling it with the directory");
    }
    const deadline = performance.now() + (this.deps.switchCheckMs ?? 30_000);
    for (let wait = 50; ; wait = Math.min(wait * 2, 1000)) {
      try {
        const back = await this.deps.directory.transfer(this.room.claimEntry(), fromToken);
        if (!back.claimed) return back.owner.nodeId === this.target.nodeId;
        this.room.claimRenewed(back.token);
        return false;
      } catch (error) {
        if (error instanceof TransferError) return false; // no claim at all (a room that holds none, or released): nothing switched
        if (performance.now() > deadline) {
          this.logger.error({ err: error }, "the directory cannot say whether the Switch happened: sending the clients to the target and releasing this copy's claim");
          await this.deps.directory.release(this.room.roomId, fromToken).catch(() => { /* unreachable still: it lapses with this node */ });
          return true;
        }
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
  }

  private enter(state: HandoffState) {
    this.current = state;
    this.record.transitions.push({ state, at: Date.now(), ms: Math.round((performance.now() - this.startedMs) * 10) / 10 });
    this.deps.metrics.handoffTransitions.inc({ state });
    this.room.recordHandoff(this.record);
    if (state !== HandoffState.Init) this.logger.debug(`handoff ${state}`);
  }

  private finish(outcome: HandoffState.Complete | HandoffState.Aborted, error?: string) {
    this.record.outcome = outcome;
    if (error) this.record.error = error;
    this.enter(outcome);
    const seconds = (performance.now() - this.startedMs) / 1000;
    this.deps.metrics.roomHandoffs.inc({ reason: this.reason, outcome });
    this.deps.metrics.handoffSeconds.observe({ outcome }, seconds);
    const summary = { sessions: this.record.sessions, carriedInputs: this.record.carriedInputs, ms: Math.round(seconds * 1000), startedAt: this.startedAt };
    if (outcome === HandoffState.Complete) {
      this.logger.info(summary, `room ${this.room.roomId} handed to ${this.target.nodeId} (${this.target.regionId}) in ${summary.ms} ms`);
    } else {
      this.logger.warn({ ...summary, error }, `handoff of room ${this.room.roomId} to ${this.target.nodeId} aborted; the room stays here: ${error}`);
    }
  }
}
