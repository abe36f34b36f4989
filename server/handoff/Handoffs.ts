/**
 * The node's handoffs, both ways: it hands its rooms to other nodes (RoomHandoff, on an
 * admin's request or while draining), and it opens rooms other nodes hand it (the
 * cluster routes below, which only nodes of the cluster may call: server/auth/nodeAuth.ts).
 *
 * Routes:
 *   POST /rooms/:roomId/handoff?to=REGION[&node=NODE]   admin: move a room (forwarded to its node)
 *   GET  /rooms/:roomId/handoffs                        admin: the room's handoff history
 *   POST /cluster/handoff/prepare   {handoffId, snapshot, seatSeconds} → {reservations}
 *   POST /cluster/handoff/arrivals  {handoffId, waitMs}                → {arrived, expected} (the clients there, before the Freeze)
 *   POST /cluster/handoff/refresh   {handoffId, snapshot, seatSeconds} → {reservations} (sessions new since prepare)
 *   POST /cluster/handoff/commit    {handoffId, fromToken, queued}     → {token}
 *   POST /cluster/handoff/abort     {handoffId}
 *   POST /cluster/handoff/complete  {handoffId, record}
 *   POST /cluster/handoff/device-moved  {deviceId, regionId, nodeId}  a room's device attached elsewhere (DeviceRehoming)
 *
 * @example
 *   const handoffs = new Handoffs(context, rpc, nodeAuth, selector);
 *   routes.push(...handoffs.routes());
 *   const record = await handoffs.handOff("session__hall-1", "jp-osaka", "admin");
 */
import { ServerError, matchMaker } from "@colyseus/core";
import { ErrorCode, errorCodeName } from "../../proto/index.ts";
import { FULL_ROOM_ID_PATTERN, REGION_ID_PATTERN } from "../../proto/ids.ts";
import type { NodeContext } from "../context.ts";
import type { NodeRpc } from "../cluster/NodeRpc.ts";
import type { RegionSelector } from "../cluster/RegionSelector.ts";
import type { NodeInfo } from "../cluster/types.ts";
import type { NodeAuth } from "../auth/nodeAuth.ts";
import type { HttpRoute } from "../http/RouteTable.ts";
import { answerJson } from "../http/responses.ts";
import { RoomHandoff, type HandoffPeer } from "./RoomHandoff.ts";
import { localRooms, moverOf, openFromSnapshot, type RoomMoverHandle } from "./localRooms.ts";
import { REQUESTABLE_REASONS, HandoffState, type HandoffReason, type HandoffRecord, type Migratable, type QueuedInput, type RoomSnapshot } from "./types.ts";
import { checkSnapshot, checkQueued, checkRecord, checkHandoffId, checkSeatSeconds } from "./snapshotChecks.ts";
import { DeviceRehoming } from "./DeviceRehoming.ts";
import { PlacementPolicy } from "./PlacementPolicy.ts";

const ROOM_PATH = /^\/rooms\/([^/]+)\/(handoff|handoffs)$/;

export class Handoffs {
  /** Rooms following their devices to other regions. */
  readonly rehoming: DeviceRehoming;
  /** Rooms opened here from a snapshot, waiting for their Switch, by handoff id. */
  private readonly prepared = new Map<string, { roomId: string; mover: RoomMoverHandle; timer: ReturnType<typeof setTimeout> }>();
  private readonly peer: HandoffPeer;

  constructor(
    private readonly context: NodeContext,
    private readonly rpc: NodeRpc,
    private readonly nodeAuth: NodeAuth,
    private readonly selector: RegionSelector,
  ) {
    const call = (target: NodeInfo, path: string, body: unknown) => rpc.post(target, path, body, nodeAuth.header(), context.config.handoff.rpcTimeoutMs);
    this.peer = {
      prepare: async (target, handoffId, snapshot, seatSeconds) => {
        const answer = await call(target, "/cluster/handoff/prepare", { handoffId, snapshot, seatSeconds });
        return { reservations: answer.reservations, timings: answer.timings };
      },
      arrivals: async (target, handoffId, waitMs) => call(target, "/cluster/handoff/arrivals", { handoffId, waitMs }),
      refresh: async (target, handoffId, snapshot, seatSeconds) => (await call(target, "/cluster/handoff/refresh", { handoffId, snapshot, seatSeconds })).reservations,
      commit: async (target, handoffId, fromToken, queued) => (await call(target, "/cluster/handoff/commit", { handoffId, fromToken, queued })).token,
      abort: async (target, handoffId) => { await call(target, "/cluster/handoff/abort", { handoffId }).catch(() => { /* it drops the copy by itself at prepareTimeoutMs */ }); },
    };
    this.rehoming = new DeviceRehoming(
      context,
      async (roomId, regionId, nodeId) => {
        const record = await this.handOff(roomId, regionId, "device", nodeId);
        await this.sendRecord(record);
        return record;
      },
      async (owner, moved) => { await call(owner, "/cluster/handoff/device-moved", moved); },
      { settleMs: context.config.handoff.deviceSettleMs, cooldownMs: context.config.handoff.cooldownMs },
    );
  }

  routes(): HttpRoute[] {
    const { handoff, limits } = this.context.config;
    const cluster = (path: string, bodyLimit: number, handle: (body: any, request: Request) => Promise<unknown>): HttpRoute => ({
      path, methods: ["POST"], bodyLimit, access: "cluster", cors: false,
      handle: (request) => this.answer(async () => handle(await request.json().catch(() => { throw new ServerError(ErrorCode.WRONG_TYPE, "the body must be JSON"); }), request)),
    });
    return [
      cluster("/cluster/handoff/prepare", handoff.maxSnapshotBytes, (body) => this.prepare(body)),
      cluster("/cluster/handoff/arrivals", limits.maxFrameBytes, (body) => this.arrivals(body)),
      cluster("/cluster/handoff/refresh", handoff.maxSnapshotBytes, (body) => this.refresh(body)),
      cluster("/cluster/handoff/commit", handoff.maxSnapshotBytes, (body) => this.commit(body)),
      cluster("/cluster/handoff/abort", limits.maxFrameBytes, (body) => this.abort(body)),
      cluster("/cluster/handoff/complete", limits.maxFrameBytes, (body) => this.complete(body)),
      cluster("/cluster/handoff/device-moved", limits.maxFrameBytes, async (body) => {
        // Answered at once; the room follows (or not) in the background, logged.
        void this.rehoming.deviceMoved(body ?? {}).catch((error) => this.context.logger.warn({ err: error }, "following a device to another region failed"));
        return { ok: true };
      }),
      {
        path: "/rooms/", methods: ["GET", "POST"], bodyLimit: 0, access: "public", tokenRoles: ["admin"], cors: false,
        handle: (request) => this.answer(() => this.admin(request)),
      },
    ];
  }

  /**
   * Moves local room `roomId` to region `toRegion` (its least-loaded node with capacity,
   * or `toNodeId`). Resolves with the handoff's record, Complete or Aborted.
   * @throws ServerError UNKNOWN_ROOM (not here), OVERLOADED (no node there), HANDOFF_IN_PROGRESS.
   */
  async handOff(roomId: string, toRegion: string, reason: HandoffReason, toNodeId?: string): Promise<HandoffRecord> {
    const room = matchMaker.getLocalRoomById(roomId);
    const mover = moverOf(room);
    if (!room || !mover) throw new ServerError(ErrorCode.UNKNOWN_ROOM, `room ${roomId} is not hosted on node ${this.context.nodeId}`);
    const unmovable = mover.unmovableReason();
    if (unmovable) throw new ServerError(mover.moving ? ErrorCode.HANDOFF_IN_PROGRESS : ErrorCode.WRONG_TYPE, unmovable);
    const target = await this.target(room.roomName, toRegion, toNodeId);
    return new RoomHandoff(mover, target, reason, this.peer, {
      self: { regionId: this.context.regionId, nodeId: this.context.nodeId },
      directory: this.context.directory,
      logger: this.context.logger.child({ component: "handoff" }),
      metrics: this.context.metrics,
      seatSeconds: this.context.config.handoff.seatSeconds,
      arrivalWaitMs: this.context.config.handoff.arrivalWaitMs,
    }).run();
  }

  /**
   * A draining node's rooms, each handed to the nearest node with capacity (another of
   * this region first, then the nearest region), a few at a time, starting none after
   * `budgetMs`. Rooms that cannot move, that no other node can take (`stranded`: a lone
   * node, the embedded default), or whose handoff aborts, are left to the drain (their
   * clients are told NODE_DRAINING and join again elsewhere).
   */
  async drainRooms(budgetMs: number, concurrency = 4): Promise<{ moved: number; failed: number; unmovable: number; stranded: number }> {
    const deadline = performance.now() + budgetMs;
    const listings = await localRooms();
    const queue = listings.map((listing) => listing.roomId);
    const result = { moved: 0, failed: 0, unmovable: 0, stranded: 0 };
    const nodes = (await this.context.registry.list().catch(() => [] as NodeInfo[])).filter((node) => node.nodeId !== this.context.nodeId);
    const worker = async () => {
      for (let roomId = queue.shift(); roomId !== undefined && performance.now() < deadline; roomId = queue.shift()) {
        const room = matchMaker.getLocalRoomById(roomId);
        const mover = moverOf(room);
        if (!room || !mover || mover.unmovableReason()) { result.unmovable++; continue; }
        const target = this.selector.selectNode({ roomName: room.roomName, localRegionId: this.context.regionId, rttHints: {} }, nodes);
        if (!target) { result.stranded++; continue; }
        const record = await this.handOff(roomId, target.regionId, "drain", target.nodeId).catch(() => undefined);
        if (record?.outcome === HandoffState.Complete) result.moved++;
        else result.failed++;
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    if (listings.length) {
      const stranded = result.stranded ? `, ${result.stranded} with no other node to take them (they close with this one)` : "";
      this.context.logger.info(result, `drain: ${result.moved} rooms handed to other nodes, ${result.failed} failed, ${result.unmovable} cannot move${stranded}`);
    }
    return result;
  }

  /**
   * Weighs each room's participants' round trips every handoff.placementCheckMs
   * (PlacementPolicy) and moves a room whose participants have been clearly nearer
   * another region for handoff.placementWindowMs. Returns the stop.
   */
  startPlacement(): () => void {
    const { handoff } = this.context.config;
    if (handoff.placementCheckMs === 0) return () => {};
    const policy = new PlacementPolicy({ windowMs: handoff.placementWindowMs, minGainMs: handoff.placementMinGainMs, minGainRatio: handoff.placementMinGainRatio, cooldownMs: handoff.cooldownMs });
    let running = false;
    const timer = setInterval(() => {
      if (running || this.context.isDraining()) return;
      running = true;
      void this.weigh(policy).catch((error) => this.context.logger.warn({ err: error }, "placement check failed")).finally(() => { running = false; });
    }, handoff.placementCheckMs);
    timer.unref?.();
    return () => clearInterval(timer);
  }

  private async weigh(policy: PlacementPolicy) {
    const listings = await localRooms();
    for (const { roomId } of listings) {
      const mover = moverOf(matchMaker.getLocalRoomById(roomId));
      if (!mover || mover.unmovableReason()) { policy.forget(roomId); continue; }
      const lastMove = mover.handoffHistory().filter((record) => record.reason === "participants" && record.outcome === HandoffState.Complete).at(-1);
      const to = policy.decide(roomId, this.context.regionId, mover.regionRtts(), lastMove?.transitions[0]?.at);
      if (!to) continue;
      this.context.logger.info({ roomId, to }, `room ${roomId}: its participants have been nearer ${to} for ${this.context.config.handoff.placementWindowMs} ms: moving it there`);
      void this.handOff(roomId, to, "participants")
        .then((record) => this.sendRecord(record))
        .catch((error) => this.context.logger.warn({ err: error, roomId, to }, `room ${roomId} could not move to ${to} for its participants`));
    }
  }

  /** Drops every copy opened here that is still waiting for its Switch (the node stops). */
  close() {
    for (const [handoffId, { mover, timer }] of this.prepared) {
      clearTimeout(timer);
      mover.discard();
      this.prepared.delete(handoffId);
    }
  }

  // --- the target's side --------------------------------------------------------------

  private async prepare(body: unknown) {
    const { handoffId, snapshot, seatSeconds } = (body ?? {}) as { handoffId?: unknown; snapshot?: unknown; seatSeconds?: unknown };
    checkHandoffId(handoffId);
    const checked: RoomSnapshot = checkSnapshot(snapshot);
    checkSeatSeconds(seatSeconds);
    const { mover, reservations, timings } = await openFromSnapshot(this.context, checked, handoffId, seatSeconds as number);
    const timer = setTimeout(() => this.drop(handoffId, "no Switch within handoff.prepareTimeoutMs"), this.context.config.handoff.prepareTimeoutMs);
    timer.unref?.();
    this.prepared.set(handoffId, { roomId: checked.roomId, mover, timer });
    return { reservations, timings };
  }

  private async arrivals(body: unknown) {
    const { handoffId, waitMs } = (body ?? {}) as { handoffId?: unknown; waitMs?: unknown };
    checkHandoffId(handoffId);
    if (!Number.isInteger(waitMs) || (waitMs as number) < 0 || (waitMs as number) > 10_000) throw new ServerError(ErrorCode.WRONG_TYPE, "waitMs must be an integer of 0..10000");
    const prepared = this.prepared.get(handoffId);
    if (!prepared) throw new ServerError(ErrorCode.HANDOFF_FAILED, `no room prepared here for handoff ${handoffId} (expired, or never prepared)`);
    return prepared.mover.awaitArrivals(waitMs as number);
  }

  private async refresh(body: unknown) {
    const { handoffId, snapshot, seatSeconds } = (body ?? {}) as { handoffId?: unknown; snapshot?: unknown; seatSeconds?: unknown };
    checkHandoffId(handoffId);
    const checked = checkSnapshot(snapshot);
    checkSeatSeconds(seatSeconds);
    const prepared = this.prepared.get(handoffId);
    if (!prepared || prepared.roomId !== checked.roomId) throw new ServerError(ErrorCode.HANDOFF_FAILED, `no room prepared here for handoff ${handoffId} (expired, or never prepared)`);
    return { reservations: await prepared.mover.refreshSnapshot(checked, seatSeconds) };
  }

  private async commit(body: unknown) {
    const { handoffId, fromToken, queued } = (body ?? {}) as { handoffId?: unknown; fromToken?: unknown; queued?: unknown };
    checkHandoffId(handoffId);
    if (typeof fromToken !== "string" || !/^\d{0,30}$/.test(fromToken)) throw new ServerError(ErrorCode.WRONG_TYPE, "fromToken must be a decimal fencing token (empty for a room that holds no claim)");
    const inputs: QueuedInput[] = checkQueued(queued);
    const prepared = this.prepared.get(handoffId);
    if (!prepared) throw new ServerError(ErrorCode.HANDOFF_FAILED, `no room prepared here for handoff ${handoffId} (expired, or never prepared)`);
    this.prepared.delete(handoffId);
    clearTimeout(prepared.timer);
    try {
      return { token: await prepared.mover.takeOver(fromToken, inputs) };
    } catch (error) {
      prepared.mover.discard();
      throw error;
    }
  }

  private async abort(body: unknown) {
    const { handoffId } = (body ?? {}) as { handoffId?: unknown };
    checkHandoffId(handoffId);
    this.drop(handoffId, "the source rolled the handoff back");
    return { ok: true };
  }

  private async complete(body: unknown) {
    const { handoffId, record } = (body ?? {}) as { handoffId?: unknown; record?: unknown };
    checkHandoffId(handoffId);
    const checked = checkRecord(record);
    moverOf(matchMaker.getLocalRoomById(checked.roomId))?.recordHandoff(checked);
    return { ok: true };
  }

  private drop(handoffId: string, why: string) {
    const prepared = this.prepared.get(handoffId);
    if (!prepared) return;
    this.prepared.delete(handoffId);
    clearTimeout(prepared.timer);
    prepared.mover.discard();
    this.context.logger.warn({ handoffId, roomId: prepared.roomId }, `room ${prepared.roomId} opened for handoff ${handoffId} dropped: ${why}`);
  }

  // --- admin ----------------------------------------------------------------------------

  private async admin(request: Request): Promise<unknown> {
    const url = new URL(request.url);
    const match = ROOM_PATH.exec(url.pathname);
    if (!match) throw new ServerError(ErrorCode.UNKNOWN_ROOM, `no ${request.method} ${url.pathname.slice(0, 100)} here: POST /rooms/:roomId/handoff?to=REGION or GET /rooms/:roomId/handoffs`);
    const roomId = decodeURIComponent(match[1]);
    if (!FULL_ROOM_ID_PATTERN.test(roomId)) throw new ServerError(ErrorCode.UNKNOWN_ROOM, `invalid room id "${roomId.slice(0, 80)}"`);
    const wantsHistory = match[2] === "handoffs";
    if (wantsHistory !== (request.method === "GET")) throw new ServerError(ErrorCode.WRONG_TYPE, wantsHistory ? "GET /rooms/:roomId/handoffs" : "POST /rooms/:roomId/handoff?to=REGION");

    const local = matchMaker.getLocalRoomById(roomId);
    if (!local) return this.forwardAdmin(roomId, request);
    const mover = moverOf(local);
    if (wantsHistory) return { roomId, regionId: this.context.regionId, nodeId: this.context.nodeId, handoffs: mover?.handoffHistory() ?? [] };

    const to = url.searchParams.get("to") ?? "";
    const reason = (url.searchParams.get("reason") ?? "admin") as HandoffReason;
    if (!REQUESTABLE_REASONS.includes(reason)) throw new ServerError(ErrorCode.WRONG_TYPE, `reason must be one of ${REQUESTABLE_REASONS.join(", ")}`);
    if (!REGION_ID_PATTERN.test(to)) throw new ServerError(ErrorCode.WRONG_TYPE, "to=REGION (a region id) is required");
    const record = await this.handOff(roomId, to, reason, url.searchParams.get("node") ?? undefined);
    if (record.outcome !== HandoffState.Complete) {
      throw Object.assign(new ServerError(ErrorCode.HANDOFF_FAILED, `handoff of ${roomId} to ${to} aborted: ${record.error}`), { record });
    }
    await this.sendRecord(record);
    return record;
  }

  /** The new home keeps the room's history from a complete handoff on: it gets the final record. */
  private async sendRecord(record: HandoffRecord) {
    if (record.outcome !== HandoffState.Complete) return;
    const target = await this.context.registry.get(record.to.nodeId).catch(() => undefined);
    if (!target) return;
    void this.rpc.post(target, "/cluster/handoff/complete", { handoffId: record.id, record }, this.nodeAuth.header())
      .catch((error) => this.context.logger.warn({ err: error, roomId: record.roomId }, "the room's new home did not take its handoff record"));
  }

  /** An admin request for a room on another node: sent there with the admin's own token. */
  private async forwardAdmin(roomId: string, request: Request): Promise<unknown> {
    const entry = await this.context.directory.get(roomId);
    const owner = entry && await this.context.registry.get(entry.nodeId);
    if (!entry || !owner) throw new ServerError(ErrorCode.UNKNOWN_ROOM, `room ${roomId} is not open anywhere in the cluster`);
    if (request.headers.has("x-tsunagi-forwarded-by")) throw new ServerError(ErrorCode.HANDOFF_IN_PROGRESS, `room ${roomId} is not on node ${this.context.nodeId}, where the directory says it is: it may be moving; retry`);
    const url = new URL(request.url);
    if (request.method === "GET") {
      throw new ServerError(ErrorCode.UNKNOWN_ROOM, `room ${roomId} is on node ${owner.nodeId} (${owner.regionId}): ask it there`);
    }
    return this.rpc.post(owner, `${url.pathname}${url.search}`, undefined, request.headers.get("authorization") ?? "", this.context.config.handoff.rpcTimeoutMs * 4);
  }

  private async target(roomName: string, regionId: string, nodeId?: string): Promise<NodeInfo> {
    const nodes = (await this.context.registry.list(regionId)).filter((node) => node.nodeId !== this.context.nodeId && (!nodeId || node.nodeId === nodeId));
    const target = this.selector.selectNode({ roomName, localRegionId: regionId, rttHints: {} }, nodes);
    if (!target) throw new ServerError(ErrorCode.OVERLOADED, `no node ${nodeId ? `"${nodeId}" ` : ""}of region ${regionId} can take a room now`);
    return target;
  }

  private answer(run: () => Promise<unknown>): Promise<Response> {
    return answerJson(run, (code, error) => {
      if (code === ErrorCode.INTERNAL) this.context.logger.error({ err: error }, "handoff route failed");
      this.context.metrics.errors.inc({ code: errorCodeName(code), source: "handoff" });
    }, (error) => {
      const record = (error as { record?: unknown }).record;
      return record ? { record } : {};
    });
  }
}
