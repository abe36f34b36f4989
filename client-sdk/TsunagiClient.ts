/**
 * Joins rooms through the nearest region: probes the regions, matchmakes through the
 * one with the lowest RTT (falling back to the next when it is down, draining or full),
 * and hands the server the measured RTTs so a new room is placed near its users.
 *
 * Where the seat is: the server answers matchmaking with a standard Colyseus seat
 * reservation. When the room lives on another node or region, `publicAddress` names
 * that node and the Colyseus SDK connects there by itself. @colyseus/sdk 0.18.4
 * (Client.buildEndpoint) builds the room URL as
 *   `${secure ? "wss" : "ws"}://${publicAddress}/${processId}/${roomId}?_authToken=…`
 * so publicAddress is "host[:port][/path]" without a scheme, the scheme follows the
 * region URL we matchmade through (https → wss), and without publicAddress the SDK
 * connects to that region URL. Only the WebSocket moves; matchmaking HTTP requests
 * always go to the region chosen here. Automatic reconnection reuses that same room
 * URL, so it reaches the same node; after a node is lost, join again (reconnect()
 * with the session's reconnectionToken goes through the matchmaker and its directory).
 *
 * @example
 *   const client = new TsunagiClient({
 *     regions: [{ id: "jp-tokyo", url: "https://tokyo.example.net" }, { id: "jp-osaka", url: "https://osaka.example.net" }],
 *     token: () => fetchTokenFromMyBackend(),
 *   });
 *   const session = await client.joinOrCreate("expo", { roomId: "hall-1" });
 */
import { Client, type ClientOptions, type Room } from "@colyseus/sdk";
import { ErrorCode } from "../proto/index.ts";
import { TsunagiError, fromServerError } from "./errors.ts";
import { RegionProbe, type Region } from "../common/RegionProbe.ts";
import type { ResumeAnswer } from "./SessionRecovery.ts";
import { RoomSession, type ReconnectionSettings, type RoomSessionOptions, type SeatReservation } from "./RoomSession.ts";

export interface TsunagiClientOptions {
  /** Regions to probe; the client matchmakes through the nearest. */
  regions?: Region[];
  /** A single entry point, when there is nothing to choose from. */
  url?: string;
  /** Bearer token, or a function called before each join for a fresh one. */
  token?: string | (() => string | Promise<string>);
  /** A probe to use (and share) instead of one built from `regions`. */
  probe?: RegionProbe;
  /** Automatic reconnection of sessions (Colyseus SDK's room.reconnection). */
  reconnection?: ReconnectionSettings;
  /** Passed to each session: request bounds, envelope size, listener error sink. */
  session?: Omit<RoomSessionOptions, "reconnection" | "region">;
  /** Passed to each Colyseus Client: headers, fetchFn, urlBuilder, protocol. */
  clientOptions?: ClientOptions;
  /** Builds the Colyseus client for a region URL (tests substitute a fake). */
  createClient?: (url: string, options?: ClientOptions) => Client;
}

/**
 * Node 20 has no global WebSocket: load the `ws` polyfill there, and only there (a
 * browser bundle keeps it in a chunk it never fetches). Joins wait for it. A failed
 * import is left to surface as the SDK's own connection error.
 */
const webSocketReady: Promise<unknown> = typeof (globalThis as { WebSocket?: unknown }).WebSocket === "undefined"
  ? import("./node.ts").catch(() => undefined)
  : Promise.resolve();

/** Codes after which the next region may do better: the chosen one is down, draining or full. */
const tryNextRegion: ReadonlySet<number> = new Set([ErrorCode.REGION_UNAVAILABLE, ErrorCode.NODE_DRAINING, ErrorCode.OVERLOADED]);

type Method = "joinOrCreate" | "create" | "join" | "joinById" | "reconnect";

interface Target { id?: string; url: string; rttMs?: number }

export class TsunagiClient {
  /** Chooses the region; undefined with a single `url`. */
  readonly probe?: RegionProbe;
  /** The single entry point, when no regions were given. */
  private readonly url?: string;
  /** The bearer token, or the function that fetches a fresh one per join. */
  private readonly token?: TsunagiClientOptions["token"];
  /** Applied to every session's room.reconnection. */
  private readonly reconnection?: ReconnectionSettings;
  /** Passed to every RoomSession. */
  private readonly sessionOptions: TsunagiClientOptions["session"];
  /** Passed to every Colyseus Client. */
  private readonly clientOptions?: ClientOptions;
  /** Builds a Colyseus Client for a region URL. */
  private readonly createClient: (url: string, options?: ClientOptions) => Client;
  /** One Colyseus client per region URL, reused across joins. */
  private readonly clients = new Map<string, Client>();

  constructor(options: TsunagiClientOptions) {
    const { regions, url, probe } = options ?? ({} as TsunagiClientOptions);
    if (!probe && !(regions && regions.length > 0) && !url) throw new TypeError("TsunagiClient needs `regions`, `probe` or `url`");
    this.probe = probe ?? (regions && regions.length > 0 ? new RegionProbe({ regions }) : undefined);
    this.url = url?.replace(/\/+$/, "");
    this.token = options.token;
    this.reconnection = options.reconnection;
    this.sessionOptions = options.session;
    this.clientOptions = options.clientOptions;
    this.createClient = options.createClient ?? ((target, clientOptions) => new Client(target, clientOptions));
  }

  /** Joins a room of this type with a free seat, or creates one. */
  joinOrCreate<State = any>(roomName: string, options: Record<string, unknown> = {}): Promise<RoomSession<State>> {
    return this.matchmake<State>("joinOrCreate", roomName, options);
  }

  /** Creates a room (with `options.roomId`, a room of that id; ROOM_CONFLICT if it exists anywhere). */
  create<State = any>(roomName: string, options: Record<string, unknown> = {}): Promise<RoomSession<State>> {
    return this.matchmake<State>("create", roomName, options);
  }

  /** Joins an existing room of this type. */
  join<State = any>(roomName: string, options: Record<string, unknown> = {}): Promise<RoomSession<State>> {
    return this.matchmake<State>("join", roomName, options);
  }

  /**
   * Joins a room by its full id (`room.roomId`: `teleop__site-7`, or an expo hall's id),
   * wherever in the cluster it lives; to join by name, use join(type, { roomId: name }).
   * `session` overrides the client's session options for this one.
   */
  joinById<State = any>(roomId: string, options: Record<string, unknown> = {}, session?: TsunagiClientOptions["session"]): Promise<RoomSession<State>> {
    return this.matchmake<State>("joinById", roomId, options, session);
  }

  /**
   * Takes a session back with its reconnection token (RoomSession.reconnectionToken)
   * after automatic reconnection gave up, e.g. because its node is gone. Goes through
   * the matchmaker, which knows where the room lives now.
   */
  reconnect<State = any>(reconnectionToken: string): Promise<RoomSession<State>> {
    return this.matchmake<State>("reconnect", reconnectionToken, {});
  }

  /** The Colyseus client for a region URL (created on first use). */
  colyseusClient(url: string): Client {
    let client = this.clients.get(url);
    if (!client) {
      client = this.createClient(url, this.clientOptions);
      this.clients.set(url, client);
    }
    return client;
  }

  private async matchmake<State>(method: Method, target: string, options: Record<string, unknown>, session?: TsunagiClientOptions["session"]): Promise<RoomSession<State>> {
    if (typeof target !== "string" || target === "") throw new TypeError(`${method} needs a non-empty ${method === "joinById" ? "room id" : method === "reconnect" ? "reconnection token" : "room name"}`);
    await webSocketReady;
    const candidates = await this.candidates();
    const token = await this.resolveToken();
    // The session follows its room when the room moves (RoomSession: RoomHandoff); the room is told so.
    const joinOptions = { ...this.withRttHints(options), followsHandoff: true };

    let lastError: TsunagiError | undefined;
    for (const region of candidates) {
      try {
        const client = this.colyseusClient(region.url);
        if (token !== undefined) client.auth.token = token;
        const room: Room<any, State> = method === "reconnect"
          ? await client.reconnect<State>(target)
          : await client[method]<State>(target, joinOptions);
        const follow = (reservation: SeatReservation) => client.consumeSeatReservation<State>(reservation as never);
        const probe = this.probe;
        const regionRtts = probe && (() => probe.rttHints());
        const resume = (roomId: string, sessionId: string) => this.resume(roomId, sessionId);
        return new RoomSession<State>(room, { ...this.sessionOptions, ...session, reconnection: this.reconnection, region, follow, regionRtts, resume });
      } catch (error) {
        lastError = fromServerError(error);
        if (!tryNextRegion.has(lastError.code)) throw lastError;
        // the nearest region is down, draining or full: the next nearest may do
      }
    }
    throw lastError ?? new TsunagiError(ErrorCode.REGION_UNAVAILABLE, "no region to matchmake through");
  }

  /**
   * Where a session's seat is after its room's node was lost (SessionRecovery): asks
   * `POST /sessions/resume` of the regions, nearest first (the session's own region
   * may be the one lost), each bounded by 2 s; the first answer, or the last refusal.
   */
  private async resume(roomId: string, sessionId: string): Promise<ResumeAnswer> {
    const token = await this.resolveToken();
    const reachable = this.probe?.reachable() ?? [];
    const regions: Array<{ url: string }> = this.probe
      ? [...reachable, ...this.probe.regions.filter((region) => !reachable.some((r) => r.id === region.id))]
      : [{ url: this.url! }];
    let last: TsunagiError = new TsunagiError(ErrorCode.REGION_UNAVAILABLE, "no region answered");
    for (const region of regions) {
      try {
        const response = await fetch(`${region.url.replace(/\/+$/, "")}/sessions/resume`, {
          method: "POST",
          headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
          body: JSON.stringify({ roomId, sessionId }),
          signal: AbortSignal.timeout(2000),
        });
        const body = await response.json().catch(() => ({})) as Record<string, unknown>;
        if (response.ok) return body as unknown as ResumeAnswer;
        last = fromServerError({ code: body.code, message: body.error ?? `HTTP ${response.status}` });
        // Being restored, or this region cannot tell: ask the next; anything else is the answer.
        if (last.code !== ErrorCode.HANDOFF_IN_PROGRESS && !tryNextRegion.has(last.code)) throw last;
      } catch (error) {
        if (error === last) throw error;
        last = new TsunagiError(ErrorCode.REGION_UNAVAILABLE, `region ${region.url} did not answer: ${(error as Error)?.message ?? String(error)}`, { cause: error });
      }
    }
    throw last;
  }

  /** Regions to try, nearest first: the best one, then the other reachable ones. */
  private async candidates(): Promise<Target[]> {
    if (!this.probe) return [{ url: this.url! }];
    const best = await this.probe.best(); // REGION_UNAVAILABLE when none answered
    const others = this.probe.reachable().filter((region) => region.id !== best.id);
    return [best, ...others];
  }

  private async resolveToken(): Promise<string | undefined> {
    if (typeof this.token !== "function") return this.token;
    try {
      const token = await this.token();
      if (typeof token !== "string" || token === "") throw new TypeError(`the token function returned ${typeof token === "string" ? "an empty string" : typeof token}`);
      return token;
    } catch (error) {
      throw new TsunagiError(ErrorCode.TOKEN_MISSING, `could not get a token: ${(error as Error)?.message ?? String(error)}`, { cause: error });
    }
  }

  /** Join options plus the probe's RTTs, unless the caller passed their own. */
  private withRttHints(options: Record<string, unknown>): Record<string, unknown> {
    if (!this.probe || options.rttHints !== undefined) return options;
    const rttHints = this.probe.rttHints();
    return Object.keys(rttHints).length > 0 ? { ...options, rttHints } : options;
  }
}
