/**
 * Failover: rooms whose node was lost come back on another node, from their newest
 * snapshot (docs/regions.md "Failover").
 *
 * Every failover.checkMs each node reads the snapshot owners its region's Redis holds
 * (its own region's rooms, and those of the regions that replicate to it) and the live
 * nodes of the registry. A room whose owner is no longer in the registry (it stopped
 * heartbeating for cluster.nodeTtlMs) is an orphan. One node of the region is chosen for
 * each orphan (spread by room id over the region's nodes); any node of the region may
 * try once the chosen one has had failover.fallbackMs. A room of another region (its
 * snapshots replicated here) is left to that region while it has a node: here, every
 * node waits fallbackMs. The directory's claim decides: it succeeds only while the old
 * owner is dead, once, so one node restores each room.
 *
 * The restorer claims the room, opens it from the newest snapshot its stores hold (its
 * region's and its replica's), parks every session with a reserved seat, and puts it
 * live. Clients come back through `POST /sessions/resume` on any node (the SDK does it by
 * itself): the node finds the room in the directory and answers the session's seat, for
 * the token's subject only.
 *
 * Routes:
 *   POST /sessions/resume         {roomId, sessionId} + the client's token → {reservation, regionId, nodeId} | {reconnect: true}
 *   POST /cluster/failover/seat   {roomId, sessionId, subject} (node to node: the room's owner answers)
 *
 * @example
 *   const failover = new Failover(context, rpc, nodeAuth, snapshots);
 *   routes.push(...failover.routes());
 *   const stop = failover.start();
 */
import { ServerError, matchMaker } from "@colyseus/core";
import { randomUUID } from "node:crypto";
import { ErrorCode, errorCodeName } from "../../proto/index.ts";
import { FULL_ROOM_ID_PATTERN } from "../../proto/ids.ts";
import { authority } from "../auth/tokens.ts";
import type { NodeAuth } from "../auth/nodeAuth.ts";
import type { NodeContext } from "../context.ts";
import type { NodeRpc } from "../cluster/NodeRpc.ts";
import type { PeerProbe } from "../cluster/PeerProbe.ts";
import type { NodeInfo } from "../cluster/types.ts";
import type { HttpRoute } from "../http/RouteTable.ts";
import { answerJson, bearerToken } from "../http/responses.ts";
import { moverOf, openFromSnapshot } from "./localRooms.ts";
import { newerToken, type SnapshotOwner, type SnapshotStore } from "./SnapshotStore.ts";
import { HandoffState, type HandoffRecord } from "./types.ts";
import { RECONNECT_MAX_DELAY_MS } from "../redisAddress.ts";

const SESSION_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** What a client resuming its session is told. */
export type ResumeAnswer =
  | { reservation: string; regionId: string; nodeId: string }
  /** The session is live on its node (the socket dropped, the node did not): reconnect there. */
  | { reconnect: true; regionId: string; nodeId: string };

export class Failover {
  /** When this node first saw each orphan, by room id. */
  private readonly orphanedSince = new Map<string, number>();
  /** Rooms being restored here. */
  private readonly restoring = new Set<string>();
  /** Orphans another node holds now (the claim said so), by room id → the snapshot's token: not tried again. */
  private readonly settled = new Map<string, string>();
  /** No room is judged orphaned before this (Date.now() ms): the registry is being filled again after a Redis outage. */
  private quietUntil = 0;

  constructor(
    private readonly context: NodeContext,
    private readonly rpc: NodeRpc,
    private readonly nodeAuth: NodeAuth,
    private readonly store: SnapshotStore,
    /** Direct heartbeats: when a lost node stopped answering them, which may be before the registry could drop it. */
    private readonly probe?: Pick<PeerProbe, "lostAt">,
  ) {}

  /** Starts looking for lost rooms every failover.checkMs; returns the stop. */
  start(): () => void {
    const { checkMs } = this.context.config.failover;
    if (checkMs === 0) return () => {};
    let running = false;
    let lastProblem = 0;
    const timer = setInterval(() => {
      if (running || this.context.isDraining()) return;
      running = true;
      void this.check()
        .catch((error) => {
          // A Redis or registry outage: said once in a while, not every check.
          if (Date.now() - lastProblem < 10_000) return;
          lastProblem = Date.now();
          this.context.logger.warn({ err: error }, "failover check failed (retrying)");
        })
        .finally(() => { running = false; });
    }, checkMs);
    timer.unref?.();
    return () => clearInterval(timer);
  }

  /**
   * A Redis connection of this node is back (an outage, a restart, a Sentinel failover):
   * the registry may have lost every node's entry meanwhile (their TTL ran out while no
   * one could heartbeat), and the nodes come back one by one. Until each has had time to
   * heartbeat again, a missing entry says nothing, and a room restored on it would be a
   * second copy of a live one.
   */
  redisBack(): void {
    // The others reconnect at most RECONNECT_MAX_DELAY_MS after this one, then heartbeat within a TTL; and a TTL's margin.
    this.quietUntil = Date.now() + RECONNECT_MAX_DELAY_MS + 2 * this.context.config.cluster.nodeTtlMs;
    this.orphanedSince.clear();
  }

  /** One look for lost rooms; starts restoring those this node is to restore. */
  async check(): Promise<void> {
    const [live, owners] = await Promise.all([this.context.registry.list(), this.store.owners()]);
    // Quiet after a reconnect, reads answered across one included (queued while Redis was away, answered by the Redis that came back).
    if (Date.now() < this.quietUntil) return;
    const alive = new Set(live.map((node) => node.nodeId));
    const now = Date.now();
    const orphans = owners.filter((owner) => !alive.has(owner.nodeId) && this.settled.get(owner.roomId) !== owner.token);
    const orphaned = new Set(orphans.map((owner) => owner.roomId));
    for (const roomId of this.orphanedSince.keys()) if (!orphaned.has(roomId)) this.orphanedSince.delete(roomId);
    const indexed = new Set(owners.map((owner) => owner.roomId));
    for (const roomId of this.settled.keys()) if (!indexed.has(roomId)) this.settled.delete(roomId);
    if (orphans.length === 0) return;

    const serving = live.filter((node) => !node.draining);
    const region = serving
      .filter((node) => node.regionId === this.context.regionId)
      .sort((a, b) => a.nodeId.localeCompare(b.nodeId));
    for (const orphan of orphans) {
      // Restoring here, or restored here and its first snapshot not written yet.
      if (this.restoring.has(orphan.roomId) || matchMaker.getLocalRoomById(orphan.roomId)) continue;
      const since = this.orphanedSince.get(orphan.roomId) ?? now;
      this.orphanedSince.set(orphan.roomId, since);
      // A room of a region that replicates here is its own region's to restore while a node
      // of it is left; this region's chosen node steps in only after fallbackMs, as the others.
      const ownRegionLeft = orphan.regionId !== this.context.regionId && serving.some((node) => node.regionId === orphan.regionId);
      const chosen = region.length && !ownRegionLeft ? region[spread(orphan.roomId, region.length)] : undefined;
      if (chosen?.nodeId !== this.context.nodeId && now - since < this.context.config.failover.fallbackMs) continue;
      void this.restore(orphan, Math.min(since, this.probe?.lostAt(orphan.nodeId) ?? since));
    }
  }

  /** Claims `orphan` for this node and opens it from its newest snapshot; never throws (logged). */
  private async restore(orphan: SnapshotOwner, detectedAt: number): Promise<void> {
    const { context } = this;
    const { roomId } = orphan;
    this.restoring.add(roomId);
    const id = randomUUID();
    const self = { regionId: context.regionId, nodeId: context.nodeId };
    try {
      const snapshot = await this.store.read(roomId);
      if (!snapshot) {
        // Expired (its room lost longer ago than failover.snapshotTtlMs): nothing to restore.
        await this.store.remove(roomId, orphan.token);
        return;
      }
      const claim = await context.directory.claim({
        roomId, roomName: snapshot.roomName, regionId: self.regionId, nodeId: self.nodeId, publicAddress: context.publicAddress,
        ccu: 0, maxClients: snapshot.maxClients, createdAt: snapshot.createdAt,
      });
      if (!claim.claimed) {
        // Another node restored it first, or its owner is alive after all (back in the registry).
        this.settled.set(roomId, orphan.token);
        return;
      }
      if (newerToken(snapshot.token, claim.token)) {
        // Its snapshot would refuse this claim's writes, and the copy would close again at once.
        await context.directory.release(roomId, claim.token).catch(() => {});
        this.settled.set(roomId, orphan.token);
        throw new Error(`the directory's claim (token ${claim.token}) is older than the room's snapshot (token ${snapshot.token}): not restored`);
      }
      const claimedAt = Date.now();
      await this.ownershipConfirmed();
      let opened;
      try {
        opened = await openFromSnapshot(context, snapshot, id, context.config.handoff.seatSeconds, true);
      } catch (error) {
        await context.directory.release(roomId, claim.token).catch(() => {});
        throw error;
      }
      const liveAt = Date.now();
      const record: HandoffRecord = {
        id, roomId, reason: "failover", from: { regionId: orphan.regionId, nodeId: orphan.nodeId }, to: self,
        transitions: [
          { state: HandoffState.Init, at: detectedAt, ms: 0 },
          { state: HandoffState.Switch, at: claimedAt, ms: claimedAt - detectedAt },
          { state: HandoffState.Complete, at: liveAt, ms: liveAt - detectedAt },
        ],
        outcome: HandoffState.Complete,
        sessions: snapshot.sessions.length,
        carriedInputs: snapshot.queued.length,
        target: opened.timings,
        failover: { snapshotTakenAt: snapshot.takenAt, detectedAt },
      };
      await opened.mover.openAfterFailover(claim.token, record);
      context.metrics.roomHandoffs.inc({ reason: "failover", outcome: HandoffState.Complete });
      context.logger.warn(
        { roomId, from: record.from, sessions: record.sessions, snapshotAgeMs: detectedAt - snapshot.takenAt, restoreMs: liveAt - detectedAt },
        `room ${roomId} restored here after its node ${orphan.nodeId} (${orphan.regionId}) was lost: from a snapshot taken ${detectedAt - snapshot.takenAt} ms before that was seen, ${record.sessions} sessions waiting to resume`,
      );
    } catch (error) {
      context.metrics.roomHandoffs.inc({ reason: "failover", outcome: HandoffState.Aborted });
      context.logger.error({ err: error, roomId }, `room ${roomId} could not be restored here after its node ${orphan.nodeId} was lost (another node of the region may)`);
    } finally {
      this.restoring.delete(roomId);
    }
  }

  /**
   * Waits (at most twice the node TTL) until this node's own claims are confirmed again:
   * after an etcd election the claim may land before the node's next heartbeat does, and a
   * room put live then would refuse its sessions' first inputs (NOT_ROOM_OWNER).
   */
  private async ownershipConfirmed() {
    const until = Date.now() + 2 * this.context.config.cluster.nodeTtlMs;
    while (!this.context.ownsItsRooms() && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 10));
  }

  routes(): HttpRoute[] {
    const small = this.context.config.limits.maxFrameBytes;
    const json = async (request: Request) => request.json().catch(() => { throw new ServerError(ErrorCode.WRONG_TYPE, "the body must be JSON"); });
    return [
      {
        path: "/sessions/resume", methods: ["POST"], bodyLimit: Math.min(small, 4096), access: "public", cors: true,
        handle: (request) => this.answer(async () => this.resume(await json(request), request)),
      },
      {
        path: "/cluster/failover/seat", methods: ["POST"], bodyLimit: Math.min(small, 4096), access: "cluster", cors: false,
        handle: (request) => this.answer(async () => {
          const { roomId, sessionId, subject } = checkResume(await json(request));
          if (typeof subject !== "string" || subject.length > 256) throw new ServerError(ErrorCode.WRONG_TYPE, "subject must be a string");
          return this.seatHere(roomId, sessionId, subject);
        }),
      },
    ];
  }

  /** A client's resume: the room's owner answers its seat (here, or asked over the cluster). */
  private async resume(body: unknown, request: Request): Promise<ResumeAnswer> {
    const { roomId, sessionId } = checkResume(body);
    // Any role's token: the session's own subject is what is checked (the edge's token check is for role-gated routes).
    const token = bearerToken(request.headers.get("authorization"));
    if (!token) throw new ServerError(ErrorCode.TOKEN_MISSING, "POST /sessions/resume needs the session's token: Authorization: Bearer <token>");
    const claims = await authority().verify(token);
    const entry = await this.context.directory.get(roomId);
    const owner: NodeInfo | undefined = entry && (entry.nodeId === this.context.nodeId ? undefined : await this.context.registry.get(entry.nodeId));
    if (entry?.nodeId === this.context.nodeId) return this.seatHere(roomId, sessionId, claims.sub);
    if (!entry || !owner) {
      // Its node is lost and no other has restored it yet, or it is gone for good.
      // (Asked by every client of the room a few times a second while it is restored: an existence check, not a read.)
      if (await this.store.has(roomId).catch(() => false)) {
        throw new ServerError(ErrorCode.HANDOFF_IN_PROGRESS, `room ${roomId} is being restored after its node was lost: retry shortly`);
      }
      throw new ServerError(ErrorCode.UNKNOWN_ROOM, `room ${roomId} is not open anywhere in the cluster: join again`);
    }
    return await this.rpc.post(owner, "/cluster/failover/seat", { roomId, sessionId, subject: claims.sub }, this.nodeAuth.header(), this.context.config.handoff.rpcTimeoutMs) as ResumeAnswer;
  }

  /** The seat of a session of a room on this node, for `subject`. */
  private seatHere(roomId: string, sessionId: string, subject: string): ResumeAnswer {
    const mover = moverOf(matchMaker.getLocalRoomById(roomId));
    const self = { regionId: this.context.regionId, nodeId: this.context.nodeId };
    if (!mover) throw new ServerError(ErrorCode.HANDOFF_IN_PROGRESS, `room ${roomId} is not on node ${this.context.nodeId} (it may be moving): retry shortly`);
    const seat = mover.resumeSeat(sessionId, subject);
    if (seat === "connected") return { reconnect: true, ...self };
    if (seat === "restoring") throw new ServerError(ErrorCode.HANDOFF_IN_PROGRESS, `room ${roomId} is being restored here: retry shortly`);
    if (!seat) throw new ServerError(ErrorCode.ROOM_MOVED, `session ${sessionId} has no seat to resume in room ${roomId}: join the room again`);
    return { reservation: seat, ...self };
  }

  private answer(run: () => Promise<unknown>): Promise<Response> {
    return answerJson(run, (code, error) => {
      if (code === ErrorCode.INTERNAL) this.context.logger.error({ err: error }, "failover route failed");
      // A room being restored is asked again every 250 ms by each of its clients: not worth a line each.
      else if (code !== ErrorCode.HANDOFF_IN_PROGRESS) this.context.logger.warn({ code: errorCodeName(code) }, `failover route refused: ${(error as Error).message}`);
      this.context.metrics.errors.inc({ code: errorCodeName(code), source: "failover" });
    });
  }
}

function checkResume(body: unknown): { roomId: string; sessionId: string; subject?: unknown } {
  const { roomId, sessionId, subject } = (body ?? {}) as Record<string, unknown>;
  if (typeof roomId !== "string" || !FULL_ROOM_ID_PATTERN.test(roomId)) throw new ServerError(ErrorCode.WRONG_TYPE, "roomId must be a room id (type__name)");
  if (typeof sessionId !== "string" || !SESSION_ID.test(sessionId)) throw new ServerError(ErrorCode.WRONG_TYPE, "sessionId must be a session id");
  return { roomId, sessionId, subject };
}

/** Which of `n` nodes restores `roomId` (a stable spread). */
function spread(roomId: string, n: number): number {
  let hash = 0;
  for (let i = 0; i < roomId.length; i++) hash = (hash * 31 + roomId.charCodeAt(i)) >>> 0;
  return hash % n;
}
