/**
 * What the connections bench's processes tell each other. The server children (a region
 * node, or a vanilla Colyseus server) answer `memory` with their memory after a full
 * garbage collection; the load child joins clients and holds them.
 */

/** A server child's memory after a full GC (process.memoryUsage()). */
export interface MemoryFigures { rss: number; heapUsed: number; external: number; arrayBuffers: number }

export interface ConnectionsLoadConfig {
  /** The server's HTTP base URL. */
  url: string;
  /** Room type to join (joinOrCreate: the matchmaker fills a room before it opens another). */
  roomName: string;
  connections: number;
  /** Joins in flight at once. */
  concurrency: number;
  /** Where to get one token per client before the clock starts (a Tsunagi dev node's /dev/token), or none. */
  tokenUrl?: string;
}

export interface JoinFigures {
  joined: number;
  failed: number;
  /** Wall time of the join phase (tokens were fetched before it). */
  seconds: number;
  /** Failures by error message, the first few. */
  errors: Record<string, number>;
}

/** The vanilla server's room: no state. */
export const vanillaRoomName = "vanilla";
/** The vanilla server's room with the `session` room's participant list as its state. */
export const vanillaStateRoomName = "vanilla-state";
