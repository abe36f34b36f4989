/**
 * Where rooms keep their snapshots for failover: the region's Redis, and a replica in
 * another region's. Each write carries the room's fencing token (its directory claim's),
 * and a write older than the one stored is refused, atomically: a node that lost a room
 * (partitioned, paused, handed it away) can never overwrite its successor's snapshot.
 * A snapshot lives `ttlMs` after its last write, so a room that is gone leaves nothing
 * behind for long; a room that closes removes its own (under its token).
 *
 * Each store also keeps an index of whose room each snapshot is (`owners()`): failover
 * reads it to find the rooms of nodes that stopped heartbeating.
 *
 * @example
 *   const store = new ReplicatedSnapshotStore([new RedisSnapshotStore(regionRedis, "tsunagi:", 60_000), new RedisSnapshotStore(replicaRedis, "tsunagi:", 60_000)]);
 *   await store.write(snapshot, { regionId: "jp-tokyo", nodeId: "tokyo-1" });  // "written", or "stale"
 *   const newest = await store.read(roomId);
 *   const orphans = (await store.local.owners()).filter((o) => !alive.has(o.nodeId));
 */
import type { Redis } from "ioredis";
import { connectionLost } from "../redisConnection.ts";
import type { NodeRef, RoomSnapshot } from "./types.ts";

export type WriteOutcome = "written" | "stale";

/** Whose room a stored snapshot is, under which token, and when it was taken. */
export interface SnapshotOwner extends NodeRef {
  roomId: string;
  roomName: string;
  token: string;
  takenAt: number;
}

export interface SnapshotStore {
  /**
   * Stores `snapshot`, taken by `owner`, unless one under a newer token is there already;
   * `json`: the snapshot encoded already; `durable`: it holds something acknowledged to a
   * user (a host action), so every reachable store is waited for.
   */
  write(snapshot: RoomSnapshot, owner: NodeRef, json?: string, durable?: boolean): Promise<WriteOutcome>;
  /** The newest stored snapshot of the room, if any. */
  read(roomId: string): Promise<RoomSnapshot | undefined>;
  /** Whether a snapshot of the room is stored (without reading it). */
  has(roomId: string): Promise<boolean>;
  /** Removes the room's snapshot if it was written under `token` (the room closed); an index entry whose snapshot expired, whatever its token. */
  remove(roomId: string, token: string): Promise<void>;
  /** Every stored snapshot's owner (one read: an entry may outlive its snapshot until remove() drops it). */
  owners(): Promise<SnapshotOwner[]>;
}

/** How long a snapshot write waits for the replicas once the region's store answered, ms. */
export const REPLICA_WAIT_MS = 500;

/** Whether decimal token `a` is newer than `b` (any length: compared as decimal strings). */
export function newerToken(a: string, b: string): boolean {
  return a.length !== b.length ? a.length > b.length : a > b;
}

// Compare-and-set on the token: KEYS[1] the snapshot hash, KEYS[2] the owners index;
// ARGV roomId, token, JSON, TTL ms, owner JSON. Tokens are decimal strings without
// leading zeros: longer is newer, then lexical order.
const WRITE_SCRIPT = `
local stored = redis.call('HGET', KEYS[1], 'token')
if stored then
  if #stored > #ARGV[2] or (#stored == #ARGV[2] and stored > ARGV[2]) then return 0 end
end
redis.call('HSET', KEYS[1], 'token', ARGV[2], 'snapshot', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[5])
return 1
`;

// Removes the snapshot and its index entry if the stored token is ARGV[2]; the index
// entry alone when the snapshot has expired.
const REMOVE_SCRIPT = `
local stored = redis.call('HGET', KEYS[1], 'token')
if stored == ARGV[2] then
  redis.call('DEL', KEYS[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
elseif not stored then
  redis.call('HDEL', KEYS[2], ARGV[1])
end
return 1
`;

/**
 * One Redis:
 *   <prefix>snapshot:<roomId>   hash {token, snapshot (JSON)}, PX ttl
 *   <prefix>snapshot-owners     hash roomId → SnapshotOwner (JSON)
 */
export class RedisSnapshotStore implements SnapshotStore {
  private readonly index: string;

  constructor(private readonly redis: Redis, private readonly prefix: string, private readonly ttlMs: number) {
    this.index = `${prefix}snapshot-owners`;
  }

  private key(roomId: string) { return `${this.prefix}snapshot:${roomId}`; }

  /**
   * Fails at once while the connection is lost (ioredis reconnecting, or closed), rather
   * than queueing the command until a reconnect attempt fails: a dead replica must not
   * hold up a restore's read or the room's next snapshot by its reconnect backoff.
   */
  private reachable() {
    if (connectionLost(this.redis)) throw new Error(`snapshot store unreachable (its Redis connection is ${this.redis.status})`);
  }

  async write(snapshot: RoomSnapshot, owner: NodeRef, json = JSON.stringify(snapshot)): Promise<WriteOutcome> {
    this.reachable();
    const token = snapshot.token || "0";
    const entry: SnapshotOwner = { roomId: snapshot.roomId, roomName: snapshot.roomName, regionId: owner.regionId, nodeId: owner.nodeId, token, takenAt: snapshot.takenAt };
    const written = await this.redis.eval(WRITE_SCRIPT, 2, this.key(snapshot.roomId), this.index, snapshot.roomId, token, json, String(this.ttlMs), JSON.stringify(entry));
    return written === 1 ? "written" : "stale";
  }

  async read(roomId: string): Promise<RoomSnapshot | undefined> {
    this.reachable();
    const raw = await this.redis.hget(this.key(roomId), "snapshot");
    return raw ? (JSON.parse(raw) as RoomSnapshot) : undefined;
  }

  async has(roomId: string): Promise<boolean> {
    this.reachable();
    return (await this.redis.exists(this.key(roomId))) === 1;
  }

  async remove(roomId: string, token: string): Promise<void> {
    this.reachable();
    await this.redis.eval(REMOVE_SCRIPT, 2, this.key(roomId), this.index, roomId, token || "0");
  }

  async owners(): Promise<SnapshotOwner[]> {
    this.reachable();
    return Object.values(await this.redis.hgetall(this.index)).map((entry) => JSON.parse(entry) as SnapshotOwner);
  }
}

/**
 * The region's store (`local`, first) and its replicas, written together; read: the
 * newest any holds. Failover looks for orphaned rooms in `local` only: a region restores
 * the rooms whose snapshots it holds (its own nodes', and those of the regions that
 * replicate to it).
 */
export class ReplicatedSnapshotStore implements SnapshotStore {
  /** Each replica's write under way, by room: a replica still busy with a room's earlier snapshot skips this one (it gets the next). */
  private readonly replicaWrites = new Map<SnapshotStore, Set<string>>();

  /** `replicaWaitMs`: how long a write waits for the replicas once the region's store answered. */
  constructor(private readonly stores: readonly SnapshotStore[], private readonly replicaWaitMs = REPLICA_WAIT_MS) {
    if (stores.length === 0) throw new Error("a ReplicatedSnapshotStore needs at least one store");
  }

  get local(): SnapshotStore { return this.stores[0]!; }

  /**
   * "stale" if any store that answered holds a newer one (the room is someone else's);
   * rejects only when no store took it. The region's store is waited for; a replica only
   * for replicaWaitMs more, so a replica region that is slow or cut off (a partition that
   * drops its packets) never holds up the room's snapshots in its own region. A `durable`
   * write waits for every store until each answers or fails (a replica's commands time
   * out: REMOTE_COMMAND_TIMEOUT_MS).
   */
  async write(snapshot: RoomSnapshot, owner: NodeRef, json = JSON.stringify(snapshot), durable = false): Promise<WriteOutcome> {
    // Encoded once for every store (an expo hall's is ~130 KB, ten times a second).
    const replicas: Array<Promise<WriteOutcome>> = [];
    for (const store of this.stores.slice(1)) {
      if (durable) { replicas.push(store.write(snapshot, owner, json)); continue; }
      let busy = this.replicaWrites.get(store);
      if (!busy) this.replicaWrites.set(store, (busy = new Set()));
      if (busy.has(snapshot.roomId)) continue;
      busy.add(snapshot.roomId);
      const writing = store.write(snapshot, owner, json);
      const done = busy;
      writing.then(() => {}, () => {}).finally(() => done.delete(snapshot.roomId));
      replicas.push(writing);
    }
    let local: WriteOutcome | undefined;
    let localError: unknown;
    try { local = await this.local.write(snapshot, owner, json); } catch (error) { localError = error; }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const settled = replicas.map((writing) => writing.then((value) => ({ value }), () => undefined));
    const inTime = await Promise.race([
      Promise.all(settled),
      ...(durable ? [] : [new Promise<undefined>((resolve) => { timer = setTimeout(() => resolve(undefined), this.replicaWaitMs); })]),
    ]);
    clearTimeout(timer);
    const done = [...(local ? [local] : []), ...(inTime ?? []).flatMap((outcome) => (outcome ? [outcome.value] : []))];
    if (done.length === 0) throw localError ?? new Error("no snapshot store took the snapshot in time");
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

  async has(roomId: string): Promise<boolean> {
    const found = await Promise.allSettled(this.stores.map((store) => store.has(roomId)));
    return found.some((result) => result.status === "fulfilled" && result.value);
  }

  async remove(roomId: string, token: string): Promise<void> {
    await Promise.allSettled(this.stores.map((store) => store.remove(roomId, token)));
  }

  async owners(): Promise<SnapshotOwner[]> {
    return this.local.owners();
  }
}
