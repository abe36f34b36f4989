/**
 * A ClusterRoom's side of a move between nodes: as the source, what RoomHandoff drives
 * (server/handoff/types.ts `Migratable`: freeze, snapshot, thaw, redirect); as the
 * target, what the node's handoff routes drive (`MigrationTarget`: restore, reserve the
 * moved sessions' seats, take over at the Switch, or discard). The room type's own part
 * is the MigratableRoom contract (MigratableRoom.ts).
 *
 * It wraps the room's onJoin, onLeave and onDrop once, at onCreate (attach):
 * - a client taking a moved session's seat is resumed, not joined: SessionResumed first,
 *   then what the room sent its parked session, then the room type's resumeSession;
 * - once the room has moved away, clients leaving it are not sessions leaving the room
 *   (they are in its new home): the room type hears nothing of them.
 *
 * @example
 *   this.mover = new RoomMover(host);      // ClusterRoom's constructor
 *   this.mover.attach(restoreOf(options)); // ClusterRoom.onCreate
 */
import { ServerError, matchMaker, type Client, type Room } from "@colyseus/core";
import { ErrorCode } from "../../proto/index.ts";
import { nodeContext } from "../../server/context.ts";
import { awaitsReconnection, reserveSeat } from "../../server/colyseus/internals.ts";
import type { ClaimRequest } from "../../server/cluster/RoomDirectory.ts";
import type { Restore, MigrationTarget } from "../../server/handoff/restore.ts";
import type { HandoffReason, HandoffRecord, Migratable, NodeRef, QueuedInput, RoomSnapshot } from "../../server/handoff/types.ts";
import type { tsunagi } from "../../proto/index.ts";
import { RoomMigration, type MigratableRoom } from "./MigratableRoom.ts";
import { interceptEnvelope, interceptMessage, refuseIfUnowned } from "./MoveInputs.ts";
import type { ParkedClient } from "./ParkedClient.ts";

/** What the mover needs of its ClusterRoom (closures over its protected parts). */
export interface MoverHost {
  room: Room;
  /** The room type's MigratableRoom implementation; undefined: this type does not move. */
  type(): MigratableRoom | undefined;
  name(): string;
  /** The options the room was created with (no restore mark). */
  createOptions(): Record<string, unknown>;
  createdAt(): number;
  setCreatedAt(ms: number): void;
  claimToken(): string | undefined;
  /** Whether the room is in the cluster's directory (a lobby is not: it holds no claim to move). */
  listed(): boolean;
  holdClaim(token: string): void;
  /** The directory claimed the room again under a new token (RoomDirectory.reassert). */
  renewClaim(token: string): void;
  directoryEntry(): ClaimRequest;
  /** An envelope applied; `outOfTurn`: its input number is not noted (it is applied again in its turn). */
  deliverEnvelope(client: Client, bytes: Uint8Array, options?: { outOfTurn?: boolean }): void;
  deliverMessage(client: Client, type: string, message: unknown): void;
  sendEnvelope(client: Client, envelope: tsunagi.v1.IEnvelope): void;
  removeClient(client: Client, code: number, message: string): void;
  /** A refusal: the reply to a request (a correlation id), else told at most once a second (ClusterRoom.rejectRepeated). */
  refuse(client: Client, code: number, message: string, correlationId?: number): void;
}

/** Extra seconds a moved session's parked state outlives its seat reservation. */
const PARK_GRACE_S = 2;

export class RoomMover implements Migratable, MigrationTarget {
  readonly migration = new RoomMigration(() => { nodeContext().metrics.rooms.handoffDropped++; });
  private restore?: Restore;
  /** Whether the room was locked before the freeze (thaw leaves it so). */
  private wasLocked = false;
  private parkTimer?: ReturnType<typeof setTimeout>;
  private retireTimer?: ReturnType<typeof setTimeout>;
  /** The region the room came from, for SessionResumed. */
  private previousRegion = "";
  /** Sessions sent their seat in the target (announceSeats), during a handoff from here. */
  private readonly announced = new Set<string>();
  /** Opened from a snapshot: whether its sessions are parked yet (a resume asked before then is asked to wait). */
  private sessionsParked = false;
  /** Clients that took their seat here before the Switch: resumed at it. */
  private readonly early = new Map<string, Client>();

  constructor(private readonly host: MoverHost) {}

  get roomId(): string { return this.host.room.roomId; }
  get roomName(): string { return this.host.room.roomName; }
  get moving(): boolean { return this.migration.phase !== "live"; }
  /** This copy handed the room away (or was dropped): it only waits for its clients to leave. */
  get retired(): boolean { return this.migration.phase === "moved"; }

  /** Wraps the room's join, leave and drop; `restore`: the room was opened from a snapshot. */
  attach(restore: Restore | undefined) {
    const room = this.host.room as Room & Record<string, any>;
    const onJoin = room.onJoin?.bind(room);
    const onLeave = room.onLeave?.bind(room);
    const onDrop = room.onDrop?.bind(room);
    room.onJoin = (client: Client, options?: any, auth?: any) => {
      const parked = this.migration.parked.get(client.sessionId);
      if (parked) return this.arrive(client, parked);
      if (options?.resume === true) throw new ServerError(ErrorCode.ROOM_MOVED, "this seat's session is no longer in the room");
      this.migration.joined(client.sessionId, options?.followsHandoff === true);
      return onJoin?.(client, options, auth);
    };
    room.onLeave = (client: Client, code?: number) => {
      if (this.early.get(client.sessionId) === client) this.early.delete(client.sessionId);
      const moved = this.migration.phase === "moved";
      this.migration.left(client.sessionId);
      if (!moved) return onLeave?.(client, code);
    };
    if (onDrop) {
      room.onDrop = (client: Client, code?: number) => {
        if (this.migration.phase === "moved") return; // no seat here to come back to: onLeave follows
        return onDrop(client, code);
      };
    }
    if (restore) {
      this.restore = restore;
      this.migration.phase = "restored";
      void room.lock();
    }
  }

  /** True when the input was queued or dropped by a move, or refused because this node may no longer own the room; not to be applied now (MoveInputs.ts). */
  intercept(client: Client, bytes: Uint8Array): boolean {
    return interceptEnvelope(this.migration, this.host, this.roomId, client, bytes);
  }

  /** Like intercept(), for a Colyseus message. */
  interceptMessage(client: Client, type: string, message: unknown): boolean {
    return interceptMessage(this.migration, this.host, this.roomId, client, type, message);
  }

  // --- the source (Migratable) ------------------------------------------------------

  unmovableReason(): string | undefined {
    const type = this.host.type();
    if (!type) return `${this.roomName} rooms do not move between nodes`;
    const typeReason = type.unmovableReason?.();
    if (typeReason) return typeReason;
    if (this.migration.phase !== "live") return `room ${this.roomId} is already moving (${this.migration.phase})`;
    if (this.host.listed() && this.host.claimToken() === undefined) return `room ${this.roomId} holds no directory claim`;
    return undefined;
  }

  freeze() {
    this.migration.phase = "frozen";
    this.wasLocked = this.host.room.locked;
    if (!this.wasLocked) void this.host.room.lock();
    this.host.type()!.freezeRoom();
  }

  async snapshot(): Promise<RoomSnapshot> {
    const type = this.host.type()!;
    const room = this.host.room;
    const state = await type.snapshotState();
    return {
      version: 1,
      roomName: room.roomName,
      roomId: room.roomId,
      name: this.host.name(),
      createdAt: this.host.createdAt(),
      maxClients: Number.isFinite(room.maxClients) ? room.maxClients : null,
      token: this.host.claimToken() ?? "",
      takenAt: Date.now(),
      options: this.host.createOptions(),
      state,
      sessions: room.clients.map((client) => this.migration.sessionSnapshot(client, type.snapshotSession(client))),
      queued: this.migration.queuedForSnapshot(),
      history: this.migration.history.map((record) => structuredClone(record)),
    };
  }

  takeQueued(): QueuedInput[] { return this.migration.queuedSinceSnapshot(); }

  cancelSeats() {
    // Those sent their seat stay here: they leave the target's seat.
    for (const client of this.host.room.clients) {
      if (!this.announced.delete(client.sessionId)) continue;
      this.host.sendEnvelope(client, { roomHandoff: { cancelled: true, fromRegionId: nodeContext().regionId, reason: "cancelled" } });
    }
    this.announced.clear();
  }

  thaw() {
    this.migration.phase = "live";
    void Promise.resolve(this.host.type()!.thawRoom()).catch((error) => nodeContext().logger.error({ err: error, roomId: this.roomId }, "thawing the room after a rolled-back handoff failed"));
    for (const input of this.migration.drainQueue()) this.apply(input);
    if (!this.wasLocked) void this.host.room.unlock();
  }

  announceSeats(to: NodeRef, reservations: ReadonlyMap<string, string>, seatSeconds: number, reason: HandoffReason) {
    for (const client of this.host.room.clients) {
      const reservation = reservations.get(client.sessionId);
      if (!reservation || !this.migration.follows(client.sessionId)) continue;
      this.host.sendEnvelope(client, { roomHandoff: { regionId: to.regionId, nodeId: to.nodeId, reservationJson: reservation, reason, seatSeconds, fromRegionId: nodeContext().regionId } });
      this.announced.add(client.sessionId);
    }
  }

  redirect(to: NodeRef, reservations: ReadonlyMap<string, string>, seatSeconds: number, reason: HandoffReason) {
    this.migration.phase = "moved";
    nodeContext().metrics.rooms.inputsAfterHandoff += this.migration.abandonQueue();
    for (const client of [...this.host.room.clients]) {
      const reservation = reservations.get(client.sessionId);
      if (this.announced.has(client.sessionId)) continue; // it has its seat, and leaves by itself
      if (reservation && this.migration.follows(client.sessionId)) {
        this.host.sendEnvelope(client, { roomHandoff: { regionId: to.regionId, nodeId: to.nodeId, reservationJson: reservation, reason, seatSeconds, fromRegionId: nodeContext().regionId } });
      } else {
        this.host.removeClient(client, ErrorCode.ROOM_MOVED, `room ${this.roomId} moved to ${to.regionId}: join it again through matchmaking`);
      }
    }
    this.host.type()!.movedAway?.(to);
    // Clients leave as they take their seats there (the copy disposes with the last one);
    // whoever has not by the seat's end is closed.
    this.host.room.autoDispose = true;
    this.retireTimer = setTimeout(() => void this.host.room.disconnect(ErrorCode.ROOM_MOVED).catch(() => {}), seatSeconds * 1000);
    this.retireTimer.unref?.();
    if (this.host.room.clients.length === 0) void this.host.room.disconnect().catch(() => {});
  }

  claimEntry(): ClaimRequest { return this.host.directoryEntry(); }

  /** The node claimed the room again (after losing its store, RegionNode.reassertCluster; a lost Switch answer settled): writes carry this token from now on. */
  claimRenewed(token: string) {
    if (this.host.claimToken() !== undefined) this.host.renewClaim(token);
  }

  /**
   * After a handoff that rolled back past its Switch attempt: the room holds its claim
   * again (a target that switched, then failed and dropped its copy, released it). A
   * room another node holds now is closed here: its clients join the other copy.
   */
  async reassertClaim(): Promise<void> {
    const context = nodeContext();
    const entry = await context.directory.get(this.roomId);
    if (entry?.token === this.host.claimToken()) return;
    const claim = await context.directory.claim(this.host.directoryEntry());
    if (claim.claimed) { this.host.renewClaim(claim.token); return; }
    context.logger.error({ roomId: this.roomId, owner: claim.owner.nodeId }, `room ${this.roomId} is held by ${claim.owner.nodeId} now: closing this copy`);
    this.claimLost(claim.owner);
  }

  /** Another node holds the room now (RoomDirectory.reassert said so, or a reassertClaim): this copy closes at once, before it takes another input. */
  claimLost(owner: NodeRef) {
    this.fencedOff(`node ${owner.nodeId} (${owner.regionId}) holds it now`);
  }

  /**
   * A newer owner holds the room (the cluster restored it elsewhere while this node was
   * cut off, or took it while this node's claim had lapsed): this copy takes nothing more
   * and closes, whichever way it learnt it first. Its clients are told NOT_ROOM_OWNER and
   * the SDK resumes each session on the live copy, which holds their seats when it came
   * from this room's snapshot (a failover's restore, a handoff's target); where it does not,
   * the resume answers ROOM_MOVED and the session joins again.
   */
  fencedOff(why: string) {
    if (this.migration.phase === "moved") return;
    nodeContext().logger.error({ roomId: this.roomId }, `room ${this.roomId}: ${why}: closing this copy`);
    this.migration.phase = "moved";
    const message = `room ${this.roomId} is held by another node now: resume there`;
    for (const client of [...this.host.room.clients]) this.host.removeClient(client, ErrorCode.NOT_ROOM_OWNER, message);
    void this.host.room.disconnect(ErrorCode.NOT_ROOM_OWNER).catch(() => {});
  }

  recordHandoff(record: HandoffRecord) { this.migration.record(record); }
  regionRtts() { return [...this.migration.rtts.values()]; }
  handoffHistory(): HandoffRecord[] { return this.migration.history.map((r) => structuredClone(r)); }

  // --- the target (MigrationTarget) --------------------------------------------------

  /** Puts the snapshot's state and sessions in place; called once the room type's onCreate has run. */
  async restoreSnapshot() {
    const snapshot = this.requireRestore().snapshot;
    const type = this.host.type();
    if (!type) throw new ServerError(ErrorCode.WRONG_TYPE, `${snapshot.roomName} rooms do not move between nodes`);
    this.host.setCreatedAt(snapshot.createdAt);
    this.migration.history = snapshot.history.slice();
    type.freezeRoom();
    if (this.requireRestore().failover) type.failedOver?.();
    await type.restoreState(snapshot.state);
    for (const session of snapshot.sessions) {
      // A client that does not follow handoffs is closed with ROOM_MOVED at the Redirect and joins again as a new session.
      if (session.followsHandoff) type.restoreSession(this.migration.park(session), session.data);
      else type.sessionLost(session.sessionId);
    }
    this.sessionsParked = true;
  }

  async refreshSnapshot(snapshot: RoomSnapshot, seatSeconds: number): Promise<Record<string, string>> {
    const restore = this.requireRestore();
    const type = this.host.type()!;
    restore.snapshot = snapshot;
    await type.restoreState(snapshot.state);
    const now = new Map(snapshot.sessions.filter((session) => session.followsHandoff).map((session) => [session.sessionId, session]));
    // Gone since the first snapshot: they left the old home.
    for (const [sessionId, parked] of [...this.migration.parked]) {
      if (now.has(sessionId)) continue;
      this.migration.parked.delete(sessionId);
      this.migration.left(sessionId);
      type.sessionLost(sessionId);
      const early = this.early.get(sessionId);
      if (early) { this.early.delete(sessionId); this.host.removeClient(early, ErrorCode.ROOM_MOVED, "your session left the room before it moved"); }
      void parked;
    }
    const fresh: string[] = [];
    for (const [sessionId, session] of now) {
      const parked = this.migration.parked.get(sessionId);
      if (parked) this.migration.renumber(sessionId, session.inputSeq);
      else fresh.push(sessionId);
      type.restoreSession(parked ?? this.migration.park(session), session.data);
    }
    for (const session of snapshot.sessions) if (!session.followsHandoff && !this.migration.parked.has(session.sessionId)) type.sessionLost(session.sessionId);
    return this.reserveSeats(fresh, seatSeconds);
  }

  async reserveResumes(seatSeconds: number): Promise<Record<string, string>> {
    const reservations = await this.reserveSeats([...this.migration.parked.keys()], seatSeconds);
    this.parkTimer = setTimeout(() => this.expireParked(), (seatSeconds + PARK_GRACE_S) * 1000);
    this.parkTimer.unref?.();
    return reservations;
  }

  /** Reserves these parked sessions' seats, all at once (as Colyseus' own _reserveMultipleSeats does); their reservations (JSON) by session id. */
  private async reserveSeats(sessionIds: readonly string[], seatSeconds: number): Promise<Record<string, string>> {
    const room = this.host.room;
    const reservations: Record<string, string> = {};
    await Promise.all(sessionIds.map((sessionId) => [sessionId, this.migration.parked.get(sessionId)!] as const).map(async ([sessionId, parked]) => {
      if (!(await reserveSeat(room, sessionId, { resume: true }, parked.auth, seatSeconds))) {
        throw new ServerError(ErrorCode.ROOM_FULL, `no seat for moved session ${sessionId}`);
      }
      reservations[sessionId] = this.reservationJson(sessionId);
    }));
    return reservations;
  }

  async takeOver(fromToken: string, queued: QueuedInput[]): Promise<string> {
    const restore = this.requireRestore();
    // An unlisted room (a lobby) holds no claim: its Switch is this node's say-so.
    let token = "";
    if (this.host.listed()) {
      const claim = await nodeContext().directory.transfer(this.host.directoryEntry(), fromToken);
      if (!claim.claimed) {
        throw new ServerError(ErrorCode.HANDOFF_FAILED, `room ${this.roomId} is held by ${claim.owner.nodeId} (${claim.owner.regionId}) under another claim: not switched`);
      }
      token = claim.token;
      this.host.holdClaim(token);
    }
    this.previousRegion = this.previousRegionOf(restore);
    // Switched: the room is this copy from now on, whatever else fails here.
    try {
      await this.host.type()!.thawRoom();
    } catch (error) {
      nodeContext().logger.error({ err: error, roomId: this.roomId }, `room ${this.roomId} switched here, but resuming it failed in part`);
    }
    this.migration.phase = "live";
    for (const input of [...restore.snapshot.queued, ...queued]) this.apply(input);
    void this.host.room.unlock();
    this.restore = undefined;
    // Clients already here (they connected during the Switch) go on at once.
    this.resumeEarly();
    return token;
  }

  /**
   * Failover: the room's old home is gone and this node claimed it (`token`) and opened
   * it from its newest snapshot; it goes live now, with the snapshot's queued inputs.
   * Its sessions are parked until their clients resume here (reserveResumes).
   */
  async openAfterFailover(token: string, record: HandoffRecord) {
    const restore = this.requireRestore();
    this.migration.record(record);
    this.previousRegion = record.from.regionId;
    try {
      await this.host.type()!.thawRoom();
    } catch (error) {
      nodeContext().logger.error({ err: error, roomId: this.roomId }, `room ${this.roomId} restored here, but resuming it failed in part`);
    }
    this.migration.phase = "live";
    for (const input of restore.snapshot.queued) this.apply(input);
    void this.host.room.unlock();
    this.restore = undefined;
    // Clients that took their seat while it was being restored (their resume was answered
    // once their sessions were parked) go on at once, as at a Switch.
    this.resumeEarly();
    // Live: its first snapshot here is written at once, under the new claim.
    this.host.holdClaim(token);
  }

  /**
   * A client asks to resume `sessionId` here after its room's old home was lost: its seat
   * reservation (JSON), if the session is parked here and `subject` is whose it is. The
   * seat was reserved when the room was restored (reserveResumes).
   */
  resumeSeat(sessionId: string, subject: string): string | "connected" | "restoring" | undefined {
    const parked = this.migration.parked.get(sessionId);
    // Opened, its sessions not parked yet: ask again shortly.
    if (!parked && this.restore && !this.sessionsParked) return "restoring";
    if (!parked) return this.host.room.clients.getById(sessionId) || awaitsReconnection(this.host.room, sessionId) ? "connected" : undefined;
    const owner = (parked.auth as { sub?: unknown } | undefined)?.sub;
    if (owner !== undefined && owner !== subject) return undefined;
    return this.reservationJson(sessionId);
  }

  /** A seat reservation here, as the SDK takes it (RoomHandoff's reservation_json). */
  private reservationJson(sessionId: string): string {
    return JSON.stringify({ name: this.roomName, sessionId, roomId: this.roomId, processId: matchMaker.processId, publicAddress: nodeContext().publicAddress });
  }

  discard() {
    this.migration.phase = "moved";
    clearTimeout(this.parkTimer);
    void this.host.room.disconnect().catch(() => {});
  }

  dispose() {
    clearTimeout(this.parkTimer);
    clearTimeout(this.retireTimer);
  }

  // --- internals --------------------------------------------------------------------

  /** A moved session's client arrived: resumed now, or at the Switch if it came before it. */
  private arrive(client: Client, parked: ParkedClient) {
    if (this.migration.phase === "restored") {
      this.early.set(client.sessionId, client);
      if (this.early.size >= this.migration.parked.size) this.allArrived?.();
      return;
    }
    this.resume(client, parked);
  }

  /** The room went live: every client that took its seat before goes on. */
  private resumeEarly() {
    for (const [sessionId, client] of this.early) {
      const parked = this.migration.parked.get(sessionId);
      if (parked && this.host.room.clients.getById(sessionId) === client) this.resume(client, parked);
    }
    this.early.clear();
  }

  /** Resolves awaitArrivals() once every moved session's client is here. */
  private allArrived?: () => void;

  /**
   * Waits, at most `waitMs`, until the client of every moved session has taken its seat
   * here (they connect while the old home still runs: the source freezes once they are
   * here, so their connections are not part of the pause). Answers how many came.
   */
  async awaitArrivals(waitMs: number): Promise<{ arrived: number; expected: number }> {
    const expected = () => this.migration.parked.size;
    if (this.early.size < expected()) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, waitMs);
        this.allArrived = () => { clearTimeout(timer); resolve(); };
      });
      this.allArrived = undefined;
    }
    return { arrived: this.early.size, expected: expected() };
  }

  private resume(client: Client, parked: ParkedClient) {
    this.migration.parked.delete(client.sessionId);
    client.userData = parked.userData;
    const context = nodeContext();
    this.host.sendEnvelope(client, { sessionResumed: { inputSeq: this.migration.inputSeq(client.sessionId), regionId: context.regionId, previousRegionId: this.previousRegion } });
    if (!parked.flushTo(client)) return;
    this.host.type()!.resumeSession(client, parked);
  }

  /** Moved sessions whose clients never came: they left. */
  private expireParked() {
    const type = this.host.type();
    for (const sessionId of [...this.migration.parked.keys()]) {
      this.migration.parked.delete(sessionId);
      this.migration.left(sessionId);
      type?.sessionLost(sessionId);
    }
  }

  /** An input carried over (or queued here and thawed), applied as it would have been. */
  private apply(input: QueuedInput) {
    const client = this.host.room.clients.getById(input.sessionId) ?? (this.migration.parked.get(input.sessionId) as unknown as Client | undefined);
    if (!client) return; // its session left meanwhile
    const bytes = input.kind === "envelope" ? Buffer.from(input.bytes, "base64") : undefined;
    // The fence of a live input holds for a queued one too: a node that cannot confirm it owns the room applies nothing.
    if (refuseIfUnowned(this.host, this.roomId, client, bytes)) return;
    if (input.kind === "envelope") this.host.deliverEnvelope(client, bytes!);
    else this.host.deliverMessage(client, input.type, input.message);
  }

  private previousRegionOf(restore: Restore): string {
    const last = restore.snapshot.history.at(-1);
    return last?.from.regionId ?? "";
  }

  private requireRestore(): Restore {
    if (!this.restore) throw new ServerError(ErrorCode.HANDOFF_FAILED, `room ${this.roomId} was not opened from a snapshot (or has been switched already)`);
    return this.restore;
  }
}
