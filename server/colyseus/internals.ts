/**
 * The few Colyseus internals Tsunagi reaches into, in one place, so an upgrade of the
 * pinned Colyseus version has one file to check.
 */
import { Room, Protocol, ClientState } from "@colyseus/core";
import { uWebSocketClient } from "@colyseus/uwebsockets-transport";
import { WebSocketClient } from "@colyseus/ws-transport";

export { Room, Protocol, ClientState };

/** Client classes of both transports: every outgoing frame passes their `raw()`. */
export function transportClientClasses(): Array<{ prototype: { raw: (...args: any[]) => any } }> {
  return [uWebSocketClient as any, WebSocketClient as any];
}

/** A room's matchmaking listing (Colyseus keeps it private as `_listing`). */
export function roomListing(room: Room): { unlisted?: boolean; clients: number; maxClients: number } {
  return (room as any)._listing;
}

/** Colyseus' per-room lifecycle emitter ("join", "leave", "dispose"). */
export function roomEvents(room: Room): import("node:events").EventEmitter {
  return (room as any)._events;
}

/**
 * Bytes queued on a client's socket and not yet sent, on either transport: the measure
 * of a slow client for per-client backpressure. 0 when it cannot be read (closed socket).
 */
export function clientBufferedAmount(client: unknown): number {
  try {
    const ref = (client as { ref?: any }).ref;
    if (ref?.ws?.getBufferedAmount) return ref.ws.getBufferedAmount(); // uWebSockets.js wrapper
    if (typeof ref?.bufferedAmount === "number") return ref.bufferedAmount; // ws
  } catch {
    // uWS throws on a closed socket: nothing is queued any more
  }
  return 0;
}

/**
 * Reserves a seat in `room` for the given session id (Colyseus' private `_reserveSeat`):
 * a moved session keeps its id in the room's new home. Resolves false when the room is full.
 */
export function reserveSeat(room: Room, sessionId: string, joinOptions: unknown, auth: unknown, seconds: number): Promise<boolean> {
  return (room as any)._reserveSeat(sessionId, joinOptions, auth, seconds, false);
}

/** Whether `sessionId` holds a seat in `room` waiting for its client to reconnect (Colyseus' allowReconnection). */
export function awaitsReconnection(room: Room, sessionId: string): boolean {
  const seat = (room as any)._reservedSeats?.[sessionId] as unknown[] | undefined;
  return seat?.[3] === true;
}
