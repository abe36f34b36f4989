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
