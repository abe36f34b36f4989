/**
 * Matchmaking across regions, in front of Colyseus' own (which covers the nodes of one
 * region through the region's Redis).
 *
 * - A room id the RoomDirectory places in another region: the request is forwarded to a
 *   node there, whose seat reservation sends the client to that node's publicAddress.
 * - A new room: the RegionSelector picks the nearest region with capacity (from the
 *   client's `rttHints`) and its least-loaded node; another region → forwarded, this
 *   region → created on the chosen node through Colyseus IPC.
 * - Every failure is a coded error: JSON `{ code, error }` with an HTTP status a stock
 *   SDK understands (401, 403, 404, 429, 503...).
 */
import { matchMaker, ServerError, ErrorCode as ColyseusErrorCode } from "@colyseus/core";
import { ErrorCode, errorCodeName } from "../../proto/index.ts";
import { ROOM_ID_PATTERN } from "../../proto/ids.ts";
import type { NodeContext } from "../context.ts";
import { TokenBucket } from "../../common/TokenBucket.ts";
import { bearerToken, codedErrorResponse, httpStatusFor, jsonResponse } from "../http/responses.ts";
import { FORWARDED_HEADER, type NodeRpc } from "./NodeRpc.ts";
import { parseRttHints, type RegionSelector } from "./RegionSelector.ts";
import type { NodeInfo } from "./types.ts";

const methods = new Set(["joinOrCreate", "create", "join", "joinById", "reconnect"]);

/** Per-caller token buckets: `rate` per second, bursts of 2 × rate. Bounded in size. */
class RateLimiter {
  /** Buckets by caller key; oldest evicted past `maxKeys`. */
  private readonly buckets = new Map<string, TokenBucket>();
  constructor(private readonly rate: number, private readonly maxKeys = 10_000) {}

  take(key: string): boolean {
    let bucket = this.buckets.get(key);
    if (!bucket) {
      if (this.buckets.size >= this.maxKeys) this.buckets.delete(this.buckets.keys().next().value!);
      bucket = new TokenBucket(this.rate, this.rate * 2);
      this.buckets.set(key, bucket);
    }
    return bucket.take();
  }
}

/** Server-side creations (`matchMaker.createRoom`) that name their node, e.g. a hall's zones spread over a region. */
const processHints = new WeakMap<object, string>();

/** Makes `matchMaker.createRoom(name, options)` create the room on `processId` (a node of this region). */
export function placeOnProcess(options: object, processId: string): void {
  processHints.set(options, processId);
}

export class ClusterMatchmaker {
  /** Matchmaking admissions per caller (token, else remote address). */
  private readonly limiter: RateLimiter;
  /** Placement decided for a create, read back by Colyseus' selectProcessIdToCreateRoom. */
  private readonly placements = new WeakMap<object, string>();

  constructor(
    private readonly context: NodeContext,
    private readonly selector: RegionSelector,
    private readonly rpc: NodeRpc,
  ) {
    this.limiter = new RateLimiter(context.config.limits.maxMatchmakePerSecond);
  }

  /** Colyseus hook: which process creates a room this node decided to create in-region. */
  selectProcessId = async (roomName: string, clientOptions: any): Promise<string> => {
    const placed = clientOptions && typeof clientOptions === "object" ? this.placements.get(clientOptions) ?? processHints.get(clientOptions) : undefined;
    if (placed) return placed;
    const node = this.selector.selectNode(
      { roomName, localRegionId: this.context.regionId, rttHints: {} },
      await this.context.registry.list(this.context.regionId),
    );
    if (!node) throw new ServerError(ErrorCode.OVERLOADED, `no node in region ${this.context.regionId} has capacity`);
    return node.processId;
  };

  /** Handles `POST /matchmake/:method/:roomName`. */
  async handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const [, , method, rawRoomName] = url.pathname.split("/");
    const roomName = decodeURIComponent(rawRoomName ?? "");
    try {
      if (this.context.isDraining()) throw new ServerError(ErrorCode.NODE_DRAINING, "this node is draining: matchmake through another node");
      const caller = request.headers.get("authorization") ?? request.headers.get("x-forwarded-for") ?? "anonymous";
      if (!this.limiter.take(caller)) {
        throw new ServerError(ErrorCode.RATE_LIMITED, `more than ${this.context.config.limits.maxMatchmakePerSecond} matchmaking requests/s: slow down`);
      }
      if (!methods.has(method)) throw new ServerError(ErrorCode.MATCHMAKE_NO_HANDLER, `unknown matchmaking method "${method}"`);
      if (!ROOM_ID_PATTERN.test(roomName)) throw new ServerError(ErrorCode.UNKNOWN_ROOM, `invalid room name "${roomName.slice(0, 80)}"`);
      const options = await readOptions(request);
      const reservation = await this.route(method, roomName, options, request.headers);
      this.context.metrics.matchmake.inc({ method, outcome: "ok" });
      return jsonResponse(200, reservation);
    } catch (error) {
      const code = normaliseCode(error);
      const message = (error as Error).message || errorCodeName(code);
      this.context.metrics.matchmake.inc({ method: methods.has(method) ? method : "invalid", outcome: errorCodeName(code) });
      this.context.metrics.errors.inc({ code: errorCodeName(code), source: "matchmake" });
      const level = httpStatusFor(code) >= 500 && code !== ErrorCode.NODE_DRAINING ? "error" : "warn";
      this.context.logger[level]({ method, roomName, code: errorCodeName(code), err: level === "error" ? error : undefined }, `matchmake refused: ${message}`);
      return codedErrorResponse(code, message);
    }
  }

  private async route(method: string, roomName: string, options: Record<string, any>, headers: Headers): Promise<any> {
    const forwarded = headers.has(FORWARDED_HEADER);
    const authorization = headers.get("authorization");
    const authContext = { token: bearerToken(authorization), headers: Object.fromEntries(headers as any) } as any;

    if (method === "joinById" || method === "reconnect") {
      const roomId = roomName;
      const entry = await this.context.directory.get(roomId);
      if (entry && entry.regionId !== this.context.regionId && !forwarded) {
        return this.rpc.forwardMatchmake(await this.nodeFor(entry.regionId, entry.nodeId), method, roomId, options, authorization);
      }
      return colyseus(() => method === "joinById"
        ? matchMaker.joinById(roomId, options, authContext)
        : matchMaker.reconnect(roomId, options));
    }

    // Check the handler before anything else, so an unknown room type is a 404 everywhere.
    try { matchMaker.getHandler(roomName); } catch {
      throw new ServerError(ErrorCode.UNKNOWN_ROOM, `no room type "${roomName}" on this cluster`);
    }

    const requestedId = options.roomId;
    if (requestedId !== undefined && (typeof requestedId !== "string" || !ROOM_ID_PATTERN.test(requestedId))) {
      throw new ServerError(ErrorCode.WRONG_TYPE, `roomId must match ${ROOM_ID_PATTERN}`);
    }

    if (method === "join") {
      if (!requestedId) return colyseus(() => matchMaker.join(roomName, options, authContext));
      const joined = await this.joinExisting(requestedId, options, authorization, authContext, forwarded);
      if (!joined) throw new ServerError(ErrorCode.UNKNOWN_ROOM, `room "${requestedId}" does not exist`);
      return joined;
    }

    if (requestedId && method === "joinOrCreate") {
      const joined = await this.joinExisting(requestedId, options, authorization, authContext, forwarded);
      if (joined) return joined;
    } else if (requestedId) {
      const owner = await this.liveOwner(requestedId);
      if (owner) throw new ServerError(ErrorCode.ROOM_CONFLICT, `room "${requestedId}" already exists in ${owner.regionId}: join it instead`);
    } else if (method === "joinOrCreate") {
      const available = await matchMaker.findOneRoomAvailable(roomName, options);
      if (available) return colyseus(() => matchMaker.joinById(available.roomId, options, authContext));
    }

    // A new room: place it. A request forwarded from another region was placed in this
    // region; one forwarded from a node of this region was placed on this node.
    const forwarder = forwarded ? await this.context.registry.get(headers.get(FORWARDED_HEADER)!) : undefined;
    if (forwarder?.regionId === this.context.regionId) {
      this.placements.set(options, matchMaker.processId);
    } else {
      const nodes = await this.context.registry.list(forwarded ? this.context.regionId : undefined);
      const target = this.selector.selectNode(
        { roomName, localRegionId: this.context.regionId, rttHints: parseRttHints(options.rttHints) }, nodes);
      if (!target) throw new ServerError(ErrorCode.OVERLOADED, "no node with capacity for a new room");
      // Another node creates the room by its own matchmaking route, not by Colyseus' IPC:
      // IPC drops the code of a refusal from the room's onCreate (ROOM_CONFLICT, FORBIDDEN,
      // WRONG_TYPE…), and the client would get INTERNAL instead.
      if (target.nodeId !== this.context.nodeId) {
        return this.rpc.forwardMatchmake(target, method, roomName, options, authorization);
      }
      this.placements.set(options, target.processId);
    }
    try {
      return await colyseus(() => matchMaker.create(roomName, options, authContext));
    } catch (error) {
      // Lost the race for a named room to another node: join the winner instead.
      if ((error as ServerError).code === ErrorCode.ROOM_CONFLICT && requestedId && method === "joinOrCreate") {
        const joined = await this.joinExisting(requestedId, options, authorization, authContext, forwarded);
        if (joined) return joined;
      }
      throw error;
    }
  }

  /** The live node holding `roomId` according to the directory, if any. */
  private async liveOwner(roomId: string): Promise<NodeInfo | undefined> {
    const entry = await this.context.directory.get(roomId);
    return entry ? this.context.registry.get(entry.nodeId) : undefined;
  }

  /**
   * Reserves a seat in room `roomId` wherever it lives; undefined when it does not exist.
   * A directory entry whose node is dead counts as not existing (failover restores it).
   */
  private async joinExisting(roomId: string, options: Record<string, any>, authorization: string | null, authContext: any, forwarded: boolean) {
    const owner = await this.liveOwner(roomId);
    if (owner && owner.regionId !== this.context.regionId && !forwarded) {
      return this.rpc.forwardMatchmake(owner, "joinById", roomId, stripPlacement(options), authorization);
    }
    if (owner || (await matchMaker.driver.findOne({ roomId }))) {
      return colyseus(() => matchMaker.joinById(roomId, stripPlacement(options), authContext));
    }
    return undefined;
  }

  private async nodeFor(regionId: string, preferredNodeId: string): Promise<NodeInfo> {
    const nodes = await this.context.registry.list(regionId);
    const node = nodes.find((n) => n.nodeId === preferredNodeId) ?? nodes.find((n) => !n.draining);
    if (!node) throw new ServerError(ErrorCode.REGION_UNAVAILABLE, `no live node in region ${regionId}`);
    return node;
  }
}

function stripPlacement(options: Record<string, any>) {
  const { roomId: _roomId, ...rest } = options;
  return rest;
}

/** Runs a Colyseus matchmaker call, mapping its codes onto ours where they differ. */
async function colyseus<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    const code = (error as ServerError).code;
    if (code === ColyseusErrorCode.MATCHMAKE_INVALID_ROOM_ID) {
      // Colyseus locks a room when its seats run out and then reports it like a missing one.
      const locked = /is locked/.test((error as Error).message);
      throw new ServerError(locked ? ErrorCode.ROOM_FULL : ErrorCode.UNKNOWN_ROOM, (error as Error).message, { cause: error });
    }
    // Colyseus' SeatReservationError carries no code and is not exported: tell it by name.
    if ((error as Error)?.constructor?.name === "SeatReservationError") {
      const full = /already full/.test((error as Error).message);
      throw new ServerError(full ? ErrorCode.ROOM_FULL : ErrorCode.REGION_UNAVAILABLE, (error as Error).message, { cause: error });
    }
    throw error;
  }
}

function normaliseCode(error: unknown): number {
  const code = (error as { code?: unknown })?.code;
  return typeof code === "number" && code > 0 ? code : ErrorCode.INTERNAL;
}

/** The join options; the HTTP edge has bounded the body by its row (server/http/routes.ts). */
async function readOptions(request: Request): Promise<Record<string, any>> {
  const text = await request.text();
  if (!text) return {};
  let parsed: unknown;
  try { parsed = JSON.parse(text); } catch {
    throw new ServerError(ErrorCode.WRONG_TYPE, "matchmaking body must be a JSON object of join options");
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new ServerError(ErrorCode.WRONG_TYPE, "matchmaking body must be a JSON object of join options");
  }
  return parsed as Record<string, any>;
}
