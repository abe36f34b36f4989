/**
 * Where rooms keep their snapshots for failover: the region's Redis, and a replica in
 * another region's. Each write carries the room's fencing token (its directory claim's),
 * and a write older than the one stored is refused, atomically: a node that lost a room
 * (partitioned, paused, handed it away) can never overwrite its successor's snapshot.
 * A snapshot lives `ttlMs` after its last write, so a room that is gone leaves nothing
 * behind for long.
 *
 * Failover reads the newest snapshot of a room from any of the stores.
 *
 * @example
 *   const store = new ReplicatedSnapshotStore([new RedisSnapshotStore(regionRedis, "tsunagi:", 60_000), new RedisSnapshotStore(replicaRedis, "tsunagi:", 60_000)]);
 *   await store.write(snapshot);          // "written", or "stale" when a newer owner wrote since
 *   const newest = await store.read(roomId);
 */
import type { Redis } from "ioredis";
import type { RoomSnapshot } from "./types.ts";

export type WriteOutcome = "written" | "stale";

export interface SnapshotStore {
  /** Stores `snapshot` unless one under a newer token is there already. */
  write(snapshot: RoomSnapshot): Promise<WriteOutcome>;
  /** The newest stored snapshot of the room, if any. */
  read(roomId: string): Promise<RoomSnapshot | undefined>;
}

/** Whether decimal token `a` is newer than `b` (any length: compared as decimal strings). */
export function newerToken(a: string, b: string): boolean {
  return a.length !== b.length ? a.length > b.length : a > b;
}

// Compare-and-set on the token: KEYS[1] the snapshot hash; ARGV token, JSON, TTL ms.
// Tokens are decimal strings without leading zeros: longer is newer, then lexical order.
const WRITE_SCRIPT = `
local stored = redis.call('HGET', KEYS[1], 'token')
if stored then
  if #stored > #ARGV[1] or (#stored == #ARGV[1] and stored > ARGV[1]) then return 0 end
end
redis.call('HSET', KEYS[1], 'token', ARGV[1], 'snapshot', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`;

/** One Redis: `<prefix>snapshot:<roomId>` → hash {token, snapshot (JSON)}. */
export class RedisSnapshotStore implements SnapshotStore {
  constructor(private readonly redis: Redis, private readonly prefix: string, private readonly ttlMs: number) {}

  private key(roomId: string) { return `${this.prefix}snapshot:${roomId}`; }

  async write(snapshot: RoomSnapshot): Promise<WriteOutcome> {
    const written = await this.redis.eval(WRITE_SCRIPT, 1, this.key(snapshot.roomId), snapshot.token || "0", JSON.stringify(snapshot), String(this.ttlMs));
    return written === 1 ? "written" : "stale";
  }

  async read(roomId: string): Promise<RoomSnapshot | undefined> {
    const raw = await this.redis.hget(this.key(roomId), "snapshot");
    return raw ? (JSON.parse(raw) as RoomSnapshot) : undefined;
  }
}

/** The region's store and its replicas, written together; read: the newest any holds. */
export class ReplicatedSnapshotStore implements SnapshotStore {
  constructor(private readonly stores: readonly SnapshotStore[]) {}

  /** "stale" if any store holds a newer one (the room is someone else's); rejects only when no store took it. */
  async write(snapshot: RoomSnapshot): Promise<WriteOutcome> {
    const outcomes = await Promise.allSettled(this.stores.map((store) => store.write(snapshot)));
    const done = outcomes.filter((o): o is PromiseFulfilledResult<WriteOutcome> => o.status === "fulfilled").map((o) => o.value);
    if (done.length === 0) throw (outcomes[0] as PromiseRejectedResult).reason;
    return done.includes("stale") ? "stale" : "written";
  }

  async read(roomId: string): Promise<RoomSnapshot | undefined> {
    const found = await Promise.allSettled(this.stores.map((store) => store.read(roomId)));
    let newest: RoomSnapshot | undefined;
    for (const result of found) {
      const snapshot = result.status === "fulfilled" ? result.value : undefined;
      if (!snapshot) continue;
      if (!newest || newerToken(snapshot.token, newest.token) || (snapshot.token === newest.token && snapshot.takenAt > newest.takenAt)) newest = snapshot;
    }
    return newest;
  }
}
