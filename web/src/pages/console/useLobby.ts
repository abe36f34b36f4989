/**
 * The rooms of the whole cluster, live: joins the `lobby` room with the page's token
 * (rooms/lobby/LobbyRoom.ts: `rooms` on join, `+` [roomId, room] when one appears or
 * changes, `-` roomId when it goes). A room whose region or node changes between two
 * listings has moved (a handoff, or a failover): those moves are kept, newest first, as
 * they happen.
 *
 * @example
 *   const lobby = useLobby(token);
 *   lobby.rooms;   // [{ roomId: "teleop__teleop-demo", name: "teleop", clients: 3, regionId, nodeId }]
 *   lobby.moves;   // [{ roomId, from: "jp-tokyo/tokyo-1", to: "jp-osaka/osaka-1", at }]
 */
import { useEffect, useState } from "preact/hooks";
import { TsunagiClient, errorCodeName, type RoomSession } from "../../../../client-sdk/index.ts";
import type { LobbyListing } from "../../../../common/lobbyListing.ts";

/** A room as the lobby lists it. */
export type Listing = LobbyListing;

export interface RoomMove { roomId: string; name: string; from: string; to: string; at: number }

export interface LobbyState {
  phase: "joining" | "live" | "error";
  error?: string;
  rooms: Listing[];
  moves: RoomMove[];
}

const MAX_MOVES = 50;
const GONE_KEPT_MS = 30_000;
/** A refused or closed lobby is joined again after this, doubling up to RETRY_MAX_MS. */
const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 15_000;

/** The id a room was opened with (`teleop__teleop-demo` -> `teleop-demo`). */
export function shortId(listing: Pick<Listing, "roomId" | "name">): string {
  const prefix = `${listing.name}__`;
  return listing.roomId.startsWith(prefix) ? listing.roomId.slice(prefix.length) : listing.roomId;
}

export function useLobby(token: string): LobbyState {
  const [state, setState] = useState<LobbyState>({ phase: "joining", rooms: [], moves: [] });
  useEffect(() => {
    let cancelled = false;
    let session: RoomSession | undefined;
    const rooms = new Map<string, Listing>();
    let moves: RoomMove[] = [];
    /** Rooms gone a moment ago: one back elsewhere soon after has moved (its old node said "-" before the new one said "+"). */
    const gone = new Map<string, { listing: Listing; at: number }>();
    const publish = () => {
      if (!cancelled) setState({ phase: "live", rooms: [...rooms.values()].sort((a, b) => a.name.localeCompare(b.name) || a.roomId.localeCompare(b.roomId)), moves });
    };
    const put = (listing: Listing) => {
      const recent = gone.get(listing.roomId);
      gone.delete(listing.roomId);
      const before = rooms.get(listing.roomId) ?? (recent && Date.now() - recent.at < GONE_KEPT_MS ? recent.listing : undefined);
      if (before && (before.regionId !== listing.regionId || before.nodeId !== listing.nodeId)) {
        moves = [{ roomId: listing.roomId, name: listing.name, from: `${before.regionId}/${before.nodeId}`, to: `${listing.regionId}/${listing.nodeId}`, at: Date.now() }, ...moves].slice(0, MAX_MOVES);
      }
      rooms.set(listing.roomId, listing);
    };
    const client = new TsunagiClient({ url: location.origin, token });
    let retryTimer: ReturnType<typeof setTimeout> | undefined;
    let retryMs = RETRY_FIRST_MS;
    /** Said on the page, and tried again: a node short of capacity (OVERLOADED) or a lobby that closed is a moment, not the end. */
    const failed = (message: string, retryable: boolean) => {
      if (cancelled) return;
      session = undefined;
      setState((old) => ({ ...old, phase: "error", error: retryable ? `${message} (trying again)` : message }));
      if (!retryable) return;
      retryTimer = setTimeout(join, retryMs);
      retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
    };
    const join = () => client.joinOrCreate("lobby").then((joined) => {
      if (cancelled) { void joined.leave(); return; }
      session = joined;
      retryMs = RETRY_FIRST_MS;
      rooms.clear(); // the list sent on join is the whole of it
      joined.onMessage<Listing[]>("rooms", (list) => { for (const listing of list) put(listing); publish(); });
      joined.onMessage<[string, Listing]>("+", ([, listing]) => { put(listing); publish(); });
      joined.onMessage<string>("-", (roomId) => {
        const listing = rooms.get(roomId);
        if (listing) gone.set(roomId, { listing, at: Date.now() });
        for (const [id, entry] of gone) if (Date.now() - entry.at > GONE_KEPT_MS) gone.delete(id);
        rooms.delete(roomId);
        publish();
      });
      joined.on("leave", ({ error }) => {
        failed(error ? `${error.code ? `${errorCodeName(error.code)}: ` : ""}${error.message}` : "the lobby closed", error?.retryable ?? true);
      });
      publish();
    }, (error: unknown) => {
      const { code, retryable } = error as { code?: number; retryable?: boolean };
      failed(`${code ? `${errorCodeName(code)}: ` : ""}${(error as Error)?.message ?? String(error)}`, retryable === true);
    });
    join();
    return () => {
      cancelled = true;
      clearTimeout(retryTimer);
      void session?.leave();
    };
  }, [token]);
  return state;
}
