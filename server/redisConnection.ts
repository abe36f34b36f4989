/**
 * Whether an ioredis client has lost its connection (it is reconnecting, or closed), as
 * opposed to not having made it yet: a command sent now would wait in its offline queue
 * for a reconnect attempt to fail. Writers to a Redis in another region (the failover
 * replica) skip it instead, so a dead replica holds nothing up.
 *
 * @example
 *   if (connectionLost(replica)) throw new Error("replica unreachable");
 */
import type { Redis } from "ioredis";

export function connectionLost(redis: Pick<Redis, "status">): boolean {
  return redis.status === "reconnecting" || redis.status === "close" || redis.status === "end";
}

/**
 * How long a command to a Redis in another region (the failover replica) may go without
 * an answer before it counts as failed, ms: a partition that drops packets leaves the
 * connection looking open, and a command sent into it would wait for TCP to give up.
 */
export const REMOTE_COMMAND_TIMEOUT_MS = 2000;
