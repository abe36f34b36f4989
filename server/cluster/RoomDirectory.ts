/**
 * Room id → the region and node that host it, for the whole cluster.
 *
 * A room is claimed before it opens, atomically, so two nodes never host the same room:
 * the second claimant gets the winner's entry back and sends its client there instead.
 * A claim held by a node that is no longer in the registry (crashed) may be taken over.
 *
 * Teleop devices are claimed the same way: a machine answers to one room in the whole
 * cluster, whichever node its adapter happens to be connected to.
 */
import type { Redis } from "ioredis";
import type { DeviceOwner, DirectoryChange, DirectoryEntry } from "./types.ts";
import { SafeEmitter } from "../../common/SafeEmitter.ts";

export type ClaimResult = { claimed: true } | { claimed: false; owner: DirectoryEntry };
export type DeviceClaimResult = { claimed: true } | { claimed: false; owner: DeviceOwner };

export interface RoomDirectory {
  /** Claims `entry.roomId` for `entry.nodeId` unless a live node already holds it. */
  claim(entry: DirectoryEntry): Promise<ClaimResult>;
  /** Refreshes listing data (ccu, metadata); ignored unless `entry.nodeId` holds the room. */
  update(entry: DirectoryEntry): Promise<void>;
  /** Drops the entry if `nodeId` holds it. */
  release(roomId: string, nodeId: string): Promise<void>;
  get(roomId: string): Promise<DirectoryEntry | undefined>;
  list(): Promise<DirectoryEntry[]>;
  /** Calls `listener` for every change anywhere in the cluster; returns an unsubscribe. */
  watch(listener: (change: DirectoryChange) => void): Promise<() => Promise<void>>;
  /**
   * Binds `deviceId` to `owner.roomId` unless another room holds it on a live node. A
   * claim held on `owner.nodeId` itself is taken over: that node's rooms arbitrate among
   * themselves (and a restarted node reuses its id).
   */
  claimDevice(deviceId: string, owner: DeviceOwner): Promise<DeviceClaimResult>;
  /** Unbinds the device if `roomId` holds it. */
  releaseDevice(deviceId: string, roomId: string): Promise<void>;
  /** The room the device answers to, if any (possibly on a dead node). */
  deviceOwner(deviceId: string): Promise<DeviceOwner | undefined>;
  close(): Promise<void>;
}

type IsAlive = (nodeId: string) => boolean | Promise<boolean>;

/** Embedded default: one process. */
export class InMemoryRoomDirectory implements RoomDirectory {
  /** Entries by room id. */
  private readonly entries = new Map<string, DirectoryEntry>();
  /** Device owners by device id. */
  private readonly devices = new Map<string, DeviceOwner>();
  /** Change listeners, each isolated from the others' exceptions. */
  private readonly listeners = new SafeEmitter<{ change: (change: DirectoryChange) => void }>(() => { /* a faulty listener must not break the directory */ });

  constructor(private readonly isAlive: IsAlive = () => true) {}

  async claim(entry: DirectoryEntry): Promise<ClaimResult> {
    const current = this.entries.get(entry.roomId);
    if (current && current.nodeId !== entry.nodeId && (await this.isAlive(current.nodeId))) {
      return { claimed: false, owner: structuredClone(current) };
    }
    this.entries.set(entry.roomId, structuredClone(entry));
    this.emit({ kind: "upsert", entry });
    return { claimed: true };
  }
  async update(entry: DirectoryEntry) {
    if (this.entries.get(entry.roomId)?.nodeId !== entry.nodeId) return;
    this.entries.set(entry.roomId, structuredClone(entry));
    this.emit({ kind: "upsert", entry });
  }
  async release(roomId: string, nodeId: string) {
    if (this.entries.get(roomId)?.nodeId !== nodeId) return;
    this.entries.delete(roomId);
    this.emit({ kind: "remove", roomId });
  }
  async get(roomId: string) {
    const entry = this.entries.get(roomId);
    return entry && structuredClone(entry);
  }
  async list() { return [...this.entries.values()].map((e) => structuredClone(e)); }
  async watch(listener: (change: DirectoryChange) => void) {
    const off = this.listeners.on("change", listener);
    return async () => off();
  }
  async claimDevice(deviceId: string, owner: DeviceOwner): Promise<DeviceClaimResult> {
    for (;;) {
      const current = this.devices.get(deviceId);
      if (current && current.roomId !== owner.roomId && current.nodeId !== owner.nodeId) {
        const alive = await this.isAlive(current.nodeId);
        if (this.devices.get(deviceId) !== current) continue; // claimed meanwhile: decide again
        if (alive) return { claimed: false, owner: structuredClone(current) };
      }
      this.devices.set(deviceId, structuredClone(owner));
      return { claimed: true };
    }
  }
  async releaseDevice(deviceId: string, roomId: string) {
    if (this.devices.get(deviceId)?.roomId === roomId) this.devices.delete(deviceId);
  }
  async deviceOwner(deviceId: string) {
    const owner = this.devices.get(deviceId);
    return owner && structuredClone(owner);
  }
  async close() { this.listeners.removeAll(); }

  private emit(change: DirectoryChange) {
    const copy = structuredClone(change);
    this.listeners.emit("change", copy);
  }
}

// Atomic claim: free, ours, or held by a node whose registry entry has expired → take it.
const CLAIM_SCRIPT = `
local current = redis.call('GET', KEYS[1])
if current then
  local owner = cjson.decode(current)
  if owner.nodeId ~= ARGV[2] and redis.call('EXISTS', ARGV[3] .. owner.nodeId) == 1 then
    return current
  end
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[4])
return false
`;

// Compare-and-set / compare-and-delete on the owner's node id.
const UPDATE_SCRIPT = `
local current = redis.call('GET', KEYS[1])
if not current or cjson.decode(current).nodeId ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
`;
const RELEASE_SCRIPT = `
local current = redis.call('GET', KEYS[1])
if not current or cjson.decode(current).nodeId ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[2])
return 1
`;

// Device claims: free, held by the same room or on our own node, or held on a node whose
// registry entry has expired → take it.
const DEVICE_CLAIM_SCRIPT = `
local current = redis.call('GET', KEYS[1])
if current then
  local owner = cjson.decode(current)
  if owner.roomId ~= ARGV[2] and owner.nodeId ~= ARGV[3] and redis.call('EXISTS', ARGV[4] .. owner.nodeId) == 1 then
    return current
  end
end
redis.call('SET', KEYS[1], ARGV[1])
return false
`;
const DEVICE_RELEASE_SCRIPT = `
local current = redis.call('GET', KEYS[1])
if not current or cjson.decode(current).roomId ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
`;

/**
 * Redis layout (prefix = `<cluster>:`):
 *   <prefix>room:<roomId>      JSON DirectoryEntry
 *   <prefix>rooms              set of room ids
 *   <prefix>directory          pub/sub channel of DirectoryChange
 *   <prefix>device-owner:<id>  JSON DeviceOwner: the teleop room a device answers to
 */
export class RedisRoomDirectory implements RoomDirectory {
  /** Subscriber connections opened by watch(), closed by close(). */
  private readonly subscribers = new Set<Redis>();

  constructor(private readonly redis: Redis, private readonly prefix: string) {}

  private key(roomId: string) { return `${this.prefix}room:${roomId}`; }
  private get indexKey() { return `${this.prefix}rooms`; }
  private get channel() { return `${this.prefix}directory`; }
  private deviceKey(deviceId: string) { return `${this.prefix}device-owner:${deviceId}`; }

  async claim(entry: DirectoryEntry): Promise<ClaimResult> {
    const owner = await this.redis.eval(
      CLAIM_SCRIPT, 2, this.key(entry.roomId), this.indexKey,
      JSON.stringify(entry), entry.nodeId, `${this.prefix}node:`, entry.roomId,
    ) as string | null;
    if (owner) return { claimed: false, owner: JSON.parse(owner) };
    await this.publish({ kind: "upsert", entry });
    return { claimed: true };
  }

  async update(entry: DirectoryEntry) {
    const updated = await this.redis.eval(UPDATE_SCRIPT, 1, this.key(entry.roomId), JSON.stringify(entry), entry.nodeId);
    if (updated === 1) await this.publish({ kind: "upsert", entry });
  }

  async release(roomId: string, nodeId: string) {
    const released = await this.redis.eval(RELEASE_SCRIPT, 2, this.key(roomId), this.indexKey, nodeId, roomId);
    if (released === 1) await this.publish({ kind: "remove", roomId });
  }

  async get(roomId: string) {
    const value = await this.redis.get(this.key(roomId));
    return value ? (JSON.parse(value) as DirectoryEntry) : undefined;
  }

  async list() {
    const ids = await this.redis.smembers(this.indexKey);
    if (ids.length === 0) return [];
    const values = await this.redis.mget(ids.map((id) => this.key(id)));
    return values.filter((v): v is string => v !== null).map((v) => JSON.parse(v) as DirectoryEntry);
  }

  async watch(listener: (change: DirectoryChange) => void) {
    const subscriber = this.redis.duplicate();
    this.subscribers.add(subscriber);
    subscriber.on("message", (_channel: string, message: string) => {
      try { listener(JSON.parse(message)); } catch { /* a faulty listener must not break the subscription */ }
    });
    await subscriber.subscribe(this.channel);
    return async () => {
      this.subscribers.delete(subscriber);
      subscriber.disconnect();
    };
  }

  async claimDevice(deviceId: string, owner: DeviceOwner): Promise<DeviceClaimResult> {
    const current = await this.redis.eval(
      DEVICE_CLAIM_SCRIPT, 1, this.deviceKey(deviceId), JSON.stringify(owner), owner.roomId, owner.nodeId, `${this.prefix}node:`,
    ) as string | null;
    return current ? { claimed: false, owner: JSON.parse(current) as DeviceOwner } : { claimed: true };
  }

  async releaseDevice(deviceId: string, roomId: string) {
    await this.redis.eval(DEVICE_RELEASE_SCRIPT, 1, this.deviceKey(deviceId), roomId);
  }

  async deviceOwner(deviceId: string) {
    const value = await this.redis.get(this.deviceKey(deviceId));
    return value ? (JSON.parse(value) as DeviceOwner) : undefined;
  }

  async close() {
    for (const subscriber of this.subscribers) subscriber.disconnect();
    this.subscribers.clear();
  }

  private async publish(change: DirectoryChange) {
    await this.redis.publish(this.channel, JSON.stringify(change));
  }
}
