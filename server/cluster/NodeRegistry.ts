/**
 * Which nodes are alive, where, and how loaded. Each node writes its own entry on a
 * heartbeat with a TTL; a node that stops heartbeating (crash, SIGKILL, partition)
 * disappears once the TTL passes, with no one needing to clean up after it.
 */
import type { Redis } from "ioredis";
import type { PeerWitness } from "./PeerProbe.ts";
import type { NodeInfo } from "./types.ts";

export interface NodeRegistry {
  /** Writes or refreshes this node's entry; it expires after `ttlMs` without a refresh. */
  heartbeat(info: NodeInfo, ttlMs: number): Promise<void>;
  /** Removes an entry at once (clean shutdown). */
  remove(nodeId: string): Promise<void>;
  /** Live nodes, optionally of one region. */
  list(regionId?: string): Promise<NodeInfo[]>;
  get(nodeId: string): Promise<NodeInfo | undefined>;
  close(): Promise<void>;
  /** Takes direct evidence of peers' silence (PeerProbe) where the registry can use it (etcd's silence rule). */
  watchPeers?(witness: PeerWitness): void;
}

/** Embedded default: one process, no Redis. */
export class InMemoryNodeRegistry implements NodeRegistry {
  /** Entries with their expiry time. */
  private readonly nodes = new Map<string, { info: NodeInfo; expiresAt: number }>();

  async heartbeat(info: NodeInfo, ttlMs: number) {
    this.nodes.set(info.nodeId, { info: structuredClone(info), expiresAt: Date.now() + ttlMs });
  }
  async remove(nodeId: string) { this.nodes.delete(nodeId); }
  async list(regionId?: string) {
    const now = Date.now();
    const live: NodeInfo[] = [];
    for (const [id, { info, expiresAt }] of this.nodes) {
      if (expiresAt <= now) { this.nodes.delete(id); continue; }
      if (!regionId || info.regionId === regionId) live.push(structuredClone(info));
    }
    return live;
  }
  async get(nodeId: string) { return (await this.list()).find((n) => n.nodeId === nodeId); }
  async close() {}
}

/**
 * Redis layout (prefix = `<cluster>:`):
 *   <prefix>node:<nodeId>  JSON NodeInfo, PX ttl: the entry itself, gone when the node is
 *   <prefix>nodes          sorted set nodeId → expiry ms: the index, pruned on read
 */
export class RedisNodeRegistry implements NodeRegistry {
  constructor(private readonly redis: Redis, private readonly prefix: string) {}

  private key(nodeId: string) { return `${this.prefix}node:${nodeId}`; }

  async heartbeat(info: NodeInfo, ttlMs: number) {
    const expiresAt = Date.now() + ttlMs;
    await this.redis.multi()
      .set(this.key(info.nodeId), JSON.stringify(info), "PX", ttlMs)
      .zadd(`${this.prefix}nodes`, expiresAt, info.nodeId)
      .exec();
  }

  async remove(nodeId: string) {
    await this.redis.multi().del(this.key(nodeId)).zrem(`${this.prefix}nodes`, nodeId).exec();
  }

  async list(regionId?: string) {
    const index = `${this.prefix}nodes`;
    await this.redis.zremrangebyscore(index, "-inf", Date.now());
    const ids = await this.redis.zrange(index, 0, -1);
    if (ids.length === 0) return [];
    const values = await this.redis.mget(ids.map((id) => this.key(id)));
    const nodes: NodeInfo[] = [];
    for (const value of values) {
      if (!value) continue;
      const info = JSON.parse(value) as NodeInfo;
      if (!regionId || info.regionId === regionId) nodes.push(info);
    }
    return nodes;
  }

  async get(nodeId: string) {
    const value = await this.redis.get(this.key(nodeId));
    return value ? (JSON.parse(value) as NodeInfo) : undefined;
  }

  async close() {}
}
