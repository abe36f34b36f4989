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
    client.joinOrCreate("lobby").then((joined) => {
      if (cancelled) { void joined.leave(); return; }
      session = joined;
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
        if (!cancelled) setState((old) => ({ ...old, phase: "error", error: error ? `${error.code ? `${errorCodeName(error.code)}: ` : ""}${error.message}` : "the lobby closed" }));
      });
      publish();
    }, (error: unknown) => {
      const code = (error as { code?: number })?.code;
      if (!cancelled) setState({ phase: "error", rooms: [], moves: [], error: `${code ? `${errorCodeName(code)}: ` : ""}${(error as Error)?.message ?? String(error)}` });
    });
    return () => {
      cancelled = true;
      void session?.leave();
    };
  }, [token]);
  return state;
}
