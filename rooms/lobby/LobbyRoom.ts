/**
 * `lobby`: the rooms of the whole cluster (every region), pushed live.
 *
 * It speaks the message protocol of Colyseus' own LobbyRoom, so stock clients and UIs
 * work: `rooms` (the full list on join and on filter), `+` [roomId, room] when a room
 * appears or changes, `-` roomId when it goes. Each room carries `roomId`, `name`
 * (type), `clients`, `maxClients`, `metadata`, plus `regionId`, `nodeId` and
 * `publicAddress`.
 *
 * `filter` answers with the whole list, so each client may send `lobby.filterPerSecond`
 * of them (bursts of `lobby.filterBurst`); beyond that it is refused RATE_LIMITED and the
 * client keeps its previous filter.
 */
import type { Client } from "@colyseus/core";
import { ErrorCode } from "../../proto/index.ts";
import { TokenBucket } from "../../common/TokenBucket.ts";
import type { LobbyListing } from "../../common/lobbyListing.ts";
import { ClusterRoom, tokenAuth } from "../shared/ClusterRoom.ts";
import type { MigratableRoom } from "../shared/MigratableRoom.ts";
import type { ParkedClient } from "../shared/ParkedClient.ts";
import { roles } from "../../server/auth/tokens.ts";
import type { RoomAccess } from "../../server/auth/roomAccess.ts";
import { nodeContext } from "../../server/context.ts";
import type { DirectoryChange, DirectoryEntry } from "../../server/cluster/types.ts";

export type { LobbyListing };

interface LobbyFilter { name?: string; regionId?: string }

function toListing(entry: DirectoryEntry): LobbyListing {
  return {
    roomId: entry.roomId, name: entry.roomName, regionId: entry.regionId, nodeId: entry.nodeId,
    publicAddress: entry.publicAddress, clients: entry.ccu, maxClients: entry.maxClients, metadata: entry.metadata,
  };
}

export class LobbyRoom extends ClusterRoom implements MigratableRoom {
  /** Everyone may list the rooms; a lobby has no name worth choosing. */
  static access: RoomAccess = { join: roles, create: roles, name: [] };
  static onAuth = tokenAuth(LobbyRoom.access);
  protected override listed = false;
  /** Current listing of live rooms, by room id. */
  private readonly rooms = new Map<string, LobbyListing>();
  /** Each client's filter, by session id. */
  private readonly filters = new Map<string, LobbyFilter>();
  /** Each client's allowance of `filter` messages, by session id. */
  private readonly filterAllowances = new Map<string, TokenBucket>();
  /** Stops the directory subscription. */
  private unwatch?: () => Promise<void>;

  override async onCreate(options: any) {
    await super.onCreate(options);
    const context = nodeContext();
    this.autoDispose = true;

    const { filterPerSecond, filterBurst } = context.config.lobby;
    this.onMessage("filter", (client, filter: unknown) => {
      let allowance = this.filterAllowances.get(client.sessionId);
      if (!allowance) this.filterAllowances.set(client.sessionId, allowance = new TokenBucket(filterPerSecond, filterBurst));
      if (!allowance.take()) {
        this.rejectRepeated(client, ErrorCode.RATE_LIMITED, `filter limited to ${filterPerSecond}/s (burst ${filterBurst}): retry in ${allowance.retryAfterMs()} ms; your previous filter stays`);
        return;
      }
      this.filters.set(client.sessionId, sanitizeFilter(filter));
      client.send("rooms", this.visibleTo(client));
    });

    this.unwatch = await context.directory.watch((change) => this.apply(change));
    await this.refresh();
    // Pub/sub tells of rooms that open, change and close; a crashed node tells nothing,
    // so its rooms are swept when its registry entry expires.
    this.clock.setInterval(() => void this.refresh(), Math.max(500, context.config.cluster.heartbeatMs));
  }

  override onJoin(client: Client, options?: any, auth?: any) {
    super.onJoin(client, options, auth);
    this.filters.set(client.sessionId, sanitizeFilter(options?.filter));
    client.send("rooms", this.visibleTo(client));
  }

  onLeave(client: Client) {
    this.filters.delete(client.sessionId);
    this.filterAllowances.delete(client.sessionId);
  }

  async onDispose() {
    await this.unwatch?.();
  }

  // --- MigratableRoom: a lobby moves with its clients' filters (the listing is the directory's) ---

  protected override migratableRoom(): MigratableRoom { return this; }
  snapshotState(): null { return null; }
  restoreState(): void { /* the listing comes from the directory */ }
  snapshotSession(client: Client): LobbyFilter { return this.filters.get(client.sessionId) ?? {}; }
  restoreSession(parked: ParkedClient, filter: unknown): void { this.filters.set(parked.sessionId, sanitizeFilter(filter)); }
  resumeSession(client: Client): void { client.send("rooms", this.visibleTo(client)); }
  sessionLost(sessionId: string): void { this.onLeave({ sessionId } as Client); }
  freezeRoom(): void { /* no clock of its own */ }
  thawRoom(): void { /* likewise */ }

  private visibleTo(client: Client): LobbyListing[] {
    const filter = this.filters.get(client.sessionId) ?? {};
    return [...this.rooms.values()].filter((room) => matches(room, filter));
  }

  private apply(change: DirectoryChange) {
    if (change.kind === "upsert") this.upsert(toListing(change.entry));
    else this.remove(change.roomId);
  }

  private upsert(listing: LobbyListing) {
    const previous = this.rooms.get(listing.roomId);
    if (previous && JSON.stringify(previous) === JSON.stringify(listing)) return;
    this.rooms.set(listing.roomId, listing);
    for (const client of this.clients) {
      if (matches(listing, this.filters.get(client.sessionId) ?? {})) client.send("+", [listing.roomId, listing]);
    }
  }

  private remove(roomId: string) {
    const previous = this.rooms.get(roomId);
    if (!previous) return;
    this.rooms.delete(roomId);
    for (const client of this.clients) {
      if (matches(previous, this.filters.get(client.sessionId) ?? {})) client.send("-", roomId);
    }
  }

  private async refresh() {
    const context = nodeContext();
    try {
      const [entries, nodes] = await Promise.all([context.directory.list(), context.registry.list()]);
      const live = new Set(nodes.map((n) => n.nodeId));
      const current = new Set<string>();
      for (const entry of entries) {
        if (!live.has(entry.nodeId)) continue;
        current.add(entry.roomId);
        this.upsert(toListing(entry));
      }
      for (const roomId of [...this.rooms.keys()]) if (!current.has(roomId)) this.remove(roomId);
    } catch (error) {
      context.logger.warn({ err: error }, "lobby refresh failed; keeping the last listing");
    }
  }
}

function sanitizeFilter(value: unknown): LobbyFilter {
  if (!value || typeof value !== "object") return {};
  const { name, regionId } = value as Record<string, unknown>;
  return {
    name: typeof name === "string" ? name : undefined,
    regionId: typeof regionId === "string" ? regionId : undefined,
  };
}

function matches(room: LobbyListing, filter: LobbyFilter): boolean {
  return (!filter.name || room.name === filter.name) && (!filter.regionId || room.regionId === filter.regionId);
}
