/**
 * Matchmaking across regions, in front of Colyseus' own (which covers the nodes of one
 * region through the region's Redis).
 *
 * - A room id the RoomDirectory places in another region: the request is forwarded to a
 *   node there, whose seat reservation sends the client to that node's publicAddress.
 * - A new room: the RegionSelector picks the nearest region with capacity (from the
 *   client's `rttHints`) and its least-loaded node; another region → forwarded, this
 *   region → created on the chosen node through Colyseus IPC.
 * - Each room type has its own id namespace (`roomIdOf`): `roomId` in the options is a
 *   name within the requested type, so a join never lands in a room of another type.
 * - Creating a room is authorised here, the one place that tells a create from a join
 *   (`authorizeCreate`, the room type's `static access`); joins by the room's onAuth.
 * - Admission is limited per client address (the TCP peer, or `X-Forwarded-For` from a
 *   trusted proxy) and per verified token subject: nothing the sender can vary.
 * - Every failure is a coded error: JSON `{ code, error }` with an HTTP status a stock
 *   SDK understands (401, 403, 404, 429, 503...).
 */
import { matchMaker, ServerError, ErrorCode as ColyseusErrorCode } from "@colyseus/core";
import { ErrorCode, errorCodeName } from "../../proto/index.ts";
import { FULL_ROOM_ID_PATTERN, ROOM_ID_PATTERN, roomIdOf } from "../../proto/ids.ts";
import type { NodeContext } from "../context.ts";
import { TokenBucket } from "../../common/TokenBucket.ts";
import { bearerToken, codedErrorResponse, httpStatusFor, jsonResponse } from "../http/responses.ts";
import { clientAddress } from "../http/peer.ts";
import { authority, type TokenClaims } from "../auth/tokens.ts";
import { accessOf, authorizeCreate } from "../auth/roomAccess.ts";
import { FORWARDED_HEADER, type NodeRpc } from "./NodeRpc.ts";
import { parseRttHints, type RegionSelector } from "./RegionSelector.ts";
import type { NodeInfo } from "./types.ts";
import { etcdUnreachable } from "./etcd/EtcdSession.ts";

const methods = new Set(["joinOrCreate", "create", "join", "joinById", "reconnect"]);

/**
 * Per-caller token buckets: `rate` per second, bursts of 2 × rate. Bounded in size, and
 * a caller's bucket is dropped once it has refilled (it would behave as a new one), at
 * most once per `sweepMs`: a crowd that joined once holds no bucket per visitor for good.
 */
export class RateLimiter {
  /** Buckets by caller key; oldest evicted past `maxKeys`. */
  private readonly buckets = new Map<string, TokenBucket>();
  private lastSweep: number;
  constructor(private readonly rate: number, private readonly maxKeys = 10_000, private readonly sweepMs = 1000, private readonly now: () => number = Date.now) {
    this.lastSweep = now();
  }

  get size(): number { return this.buckets.size; }

  take(key: string): boolean {
    if (this.now() - this.lastSweep >= this.sweepMs) this.sweep();
    let bucket = this.buckets.get(key);
    if (!bucket) {
      if (this.buckets.size >= this.maxKeys) this.buckets.delete(this.buckets.keys().next().value!);
      bucket = new TokenBucket(this.rate, this.rate * 2, this.now);
      this.buckets.set(key, bucket);
    }
    return bucket.take();
  }

  private sweep(): void {
    this.lastSweep = this.now();
    for (const [key, bucket] of this.buckets) if (bucket.isFull()) this.buckets.delete(key);
  }
}

/** Server-side creations (`matchMaker.createRoom`) that name their node, e.g. a hall's zones spread over a region. */
const processHints = new WeakMap<object, string>();

/** Makes `matchMaker.createRoom(name, options)` create the room on `processId` (a node of this region). */
export function placeOnProcess(options: object, processId: string): void {
  processHints.set(options, processId);
}

export class ClusterMatchmaker {
  /** Matchmaking admissions per client address (clientAddress: the peer, or a trusted proxy's X-Forwarded-For). */
  private readonly byAddress: RateLimiter;
  /** Matchmaking admissions per verified token subject, wherever its requests come from. */
  private readonly bySubject: RateLimiter;
  /** Placement decided for a create, read back by Colyseus' selectProcessIdToCreateRoom. */
  private readonly placements = new WeakMap<object, string>();

  constructor(
    private readonly context: NodeContext,
    private readonly selector: RegionSelector,
    private readonly rpc: NodeRpc,
  ) {
    this.byAddress = new RateLimiter(context.config.limits.maxMatchmakePerSecond);
    this.bySubject = new RateLimiter(context.config.limits.maxMatchmakePerSecond);
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
      const address = clientAddress(request, this.context.config.http.trustedProxies);
      if (!this.byAddress.take(address)) throw this.rateLimited("from your address");
      if (!methods.has(method)) throw new ServerError(ErrorCode.MATCHMAKE_NO_HANDLER, `unknown matchmaking method "${method}"`);
      const byId = method === "joinById" || method === "reconnect";
      if (!(byId ? FULL_ROOM_ID_PATTERN : ROOM_ID_PATTERN).test(roomName)) throw new ServerError(ErrorCode.UNKNOWN_ROOM, `invalid room ${byId ? "id" : "name"} "${roomName.slice(0, 80)}"`);
      // A reconnection's credential is its reconnection token: the access token may have expired meanwhile.
      const claims = method === "reconnect" ? undefined : await authority().verify(bearerToken(request.headers.get("authorization")));
      if (claims && !this.bySubject.take(claims.sub)) throw this.rateLimited(`for subject "${claims.sub.slice(0, 64)}"`);
      const options = await readOptions(request);
      const reservation = await this.route(method, roomName, options, request.headers, { claims, address });
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

  private rateLimited(what: string): ServerError {
    return new ServerError(ErrorCode.RATE_LIMITED, `more than ${this.context.config.limits.maxMatchmakePerSecond} matchmaking requests/s ${what}: slow down`);
  }

  private async route(method: string, roomName: string, options: Record<string, any>, headers: Headers, caller: { claims?: TokenClaims; address: string }): Promise<any> {
    const forwarded = headers.has(FORWARDED_HEADER);
    const authorization = headers.get("authorization");
    const authContext = { token: bearerToken(authorization), headers: Object.fromEntries(headers as any) } as any;
    const forward = (target: NodeInfo, forwardMethod: string, nameOrId: string, forwardOptions: unknown) =>
      this.rpc.forwardMatchmake(target, forwardMethod, nameOrId, forwardOptions, authorization, caller.address);

    if (method === "joinById" || method === "reconnect") {
      // The full id names the type (roomIdOf): a join by id lands in that type's room or nowhere.
      const roomId = roomName;
      const entry = await this.context.directory.get(roomId);
      if (entry && entry.regionId !== this.context.regionId && !forwarded) {
        return forward(await this.nodeFor(entry.regionId, entry.nodeId), method, roomId, options);
      }
      return colyseus(() => method === "joinById"
        ? matchMaker.joinById(roomId, options, authContext)
        : matchMaker.reconnect(roomId, options));
    }

    // Check the handler before anything else, so an unknown room type is a 404 everywhere.
    let roomClass: unknown;
    try { roomClass = matchMaker.getHandler(roomName).klass; } catch {
      throw new ServerError(ErrorCode.UNKNOWN_ROOM, `no room type "${roomName}" on this cluster`);
    }

    const requestedId = options.roomId;
    if (requestedId !== undefined && (typeof requestedId !== "string" || !ROOM_ID_PATTERN.test(requestedId))) {
      throw new ServerError(ErrorCode.WRONG_TYPE, `roomId must match ${ROOM_ID_PATTERN}`);
    }
    // The room's full id in this type's namespace.
    const roomId = requestedId ? roomIdOf(roomName, requestedId) : undefined;
    const joinNamed = () => this.joinExisting(roomName, roomId!, options, authContext, forwarded, forward);

    if (method === "join") {
      if (!roomId) return colyseus(() => matchMaker.join(roomName, options, authContext));
      const joined = await joinNamed();
      if (!joined) throw new ServerError(ErrorCode.UNKNOWN_ROOM, `no ${roomName} room "${requestedId}"`);
      return joined;
    }

    if (method === "create") this.authorizeCreate(caller.claims, roomClass, roomName, options);
    if (roomId && method === "joinOrCreate") {
      const joined = await joinNamed();
      if (joined) return joined;
    } else if (roomId) {
      const owner = await this.liveOwner(roomId);
      if (owner) throw new ServerError(ErrorCode.ROOM_CONFLICT, `${roomName} room "${requestedId}" already exists in ${owner.regionId}: join it instead`);
    } else if (method === "joinOrCreate") {
      // The room found may fill (or lock) before this seat is reserved, under a crowd of
      // joins: look again, and create a room only when none has a seat.
      for (let attempt = 0; attempt < JOIN_OR_CREATE_ATTEMPTS; attempt++) {
        const available = await matchMaker.findOneRoomAvailable(roomName, options);
        if (!available) break;
        try {
          return await colyseus(() => matchMaker.joinById(available.roomId, options, authContext));
        } catch (error) {
          if ((error as ServerError).code !== ErrorCode.ROOM_FULL) throw error;
        }
      }
    }
    if (method === "joinOrCreate") this.authorizeCreate(caller.claims, roomClass, roomName, options);

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
        return forward(target, method, roomName, options);
      }
      this.placements.set(options, target.processId);
    }
    try {
      return await colyseus(() => matchMaker.create(roomName, options, authContext));
    } catch (error) {
      // Lost the race for a named room to another node: join the winner instead.
      if ((error as ServerError).code === ErrorCode.ROOM_CONFLICT && roomId && method === "joinOrCreate") {
        const joined = await joinNamed();
        if (joined) return joined;
      }
      throw error;
    }
  }

  /** A new room of `roomName` by this caller: its type's access rule (server/auth/roomAccess.ts). Throws FORBIDDEN. */
  private authorizeCreate(claims: TokenClaims | undefined, roomClass: unknown, roomName: string, options: Record<string, any>) {
    const access = accessOf(roomClass);
    if (!claims || !access) throw new ServerError(ErrorCode.FORBIDDEN, `${roomName} rooms cannot be created through matchmaking`);
    authorizeCreate(claims, access, { roomType: roomName, name: options.roomId, devices: Array.isArray(options.devices) ? options.devices : undefined });
  }

  /** The live node holding `roomId` according to the directory, if any. */
  private async liveOwner(roomId: string): Promise<NodeInfo | undefined> {
    const entry = await this.context.directory.get(roomId);
    return entry ? this.context.registry.get(entry.nodeId) : undefined;
  }

  /**
   * Reserves a seat in the `roomName` room `roomId` (a full id) wherever it lives;
   * undefined when it does not exist. A directory entry whose node is dead counts as not
   * existing (failover restores it). A room of another type under that id is refused:
   * the namespaces make it impossible, and a join must never land there regardless.
   */
  private async joinExisting(roomName: string, roomId: string, options: Record<string, any>, authContext: any, forwarded: boolean,
    forward: (target: NodeInfo, method: string, roomId: string, options: unknown) => Promise<any>) {
    const entry = await this.context.directory.get(roomId);
    const owner = entry ? await this.context.registry.get(entry.nodeId) : undefined;
    const listing = owner ? undefined : await matchMaker.driver.findOne({ roomId });
    const type = owner ? entry!.roomName : (listing as { name?: string } | undefined)?.name;
    if (type !== undefined && type !== roomName) {
      throw new ServerError(ErrorCode.UNKNOWN_ROOM, `room "${roomId}" is a ${type} room, not ${roomName}`);
    }
    if (owner && owner.regionId !== this.context.regionId && !forwarded) {
      return forward(owner, "joinById", roomId, stripPlacement(options));
    }
    if (owner || listing) {
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
  if (typeof code === "number" && code > 0) return code;
  // The cluster's store out of reach for now (a partition healing, a member lost): retryable, and another region may do.
  return etcdUnreachable(error) ? ErrorCode.REGION_UNAVAILABLE : ErrorCode.INTERNAL;
}

/** Rooms a joinOrCreate without a room id tries to get a seat in before it opens a new one. */
const JOIN_OR_CREATE_ATTEMPTS = 3;

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
