/**
 * Whether an ioredis client has lost its connection (it is reconnecting, or closed), as
 * opposed to not having made it yet: a command sent now would wait in its offline queue
 * for a reconnect attempt to fail. Writers to a Redis in another region (the failover
 * replica) skip it instead, so a dead replica holds nothing up.
 *
 * A client given to followConnection() counts as lost from its connection's close to its
 * next ready, the reconnect attempts' own "connecting" and "connect" moments included (a
 * server gone behind a proxy or a balancer accepts each attempt, then drops it): its
 * status alone says those moments are fine.
 *
 * @example
 *   const replica = followConnection(new Redis(url));
 *   if (connectionLost(replica)) throw new Error("replica unreachable");
 */
import type { Redis } from "ioredis";

/** Clients followed by followConnection(): whether each lost its connection since it was last ready. */
const lostSinceReady = new WeakMap<object, boolean>();

export function connectionLost(redis: Pick<Redis, "status">): boolean {
  return lostSinceReady.get(redis) === true || redis.status === "reconnecting" || redis.status === "close" || redis.status === "end";
}

/** Follows `redis`'s connection from now on (see above); returns it. */
export function followConnection<R extends Pick<Redis, "on" | "status">>(redis: R): R {
  lostSinceReady.set(redis, false);
  redis.on("close", () => lostSinceReady.set(redis, true));
  redis.on("ready", () => lostSinceReady.set(redis, false));
  return redis;
}

/**
 * How long a command to a Redis in another region (the failover replica) may go without
 * an answer before it counts as failed, ms: a partition that drops packets leaves the
 * connection looking open, and a command sent into it would wait for TCP to give up.
 */
export const REMOTE_COMMAND_TIMEOUT_MS = 2000;
