/**
 * What the transport bench's processes say to each other: the parent, the broadcast
 * server (broadcast-server.ts) and the load generator (broadcast-load.ts).
 */

export type TransportKind = "uws" | "ws";

export const benchRoomName = "bench";

/** The one message type: a client's send time (wallClockMs), broadcast back unchanged. */
export const stampMessage = "stamp";

/** Ready data of the broadcast server. */
export interface ServerReady {
  port: number;
}

/** The load generator's argument. */
export interface LoadConfig {
  url: string;
  clients: number;
  hz: number;
}

/**
 * Reply of the load generator's `stopWindow` call: what happened between its
 * `startWindow` and `stopWindow` calls.
 */
export interface LoadWindow {
  windowMs: number;
  sent: number;
  delivered: number;
  p50Ms: number;
  p99Ms: number;
  /** p99 of the generator's event-loop delay: how late it may have timestamped receives. */
  eventLoopDelayP99Ms: number;
  /** Clients whose connection dropped or that left the room since they joined. */
  clientsLost: number;
}
