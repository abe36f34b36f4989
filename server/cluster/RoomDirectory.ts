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

export type ClaimResult = { claimed: true; token: string } | { claimed: false; owner: DirectoryEntry };
/** What claim() takes: an entry without its token, which the directory assigns. */
export type ClaimRequest = Omit<DirectoryEntry, "token"> & { token?: string };

/** Compares two fencing tokens (decimal integers of any size): negative when `a` is older. */
export function compareTokens(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}
export type DeviceClaimResult = { claimed: true } | { claimed: false; owner: DeviceOwner };

export interface RoomDirectory {
  /**
   * Claims `entry.roomId` for `entry.nodeId` unless another live node already holds it;
   * a claim held by `entry.nodeId` itself is claimed again. Resolves with the claim's
   * fencing token, or the current owner.
   */
  claim(entry: ClaimRequest): Promise<ClaimResult>;
  /**
   * A handoff's Switch: the room passes to `entry.nodeId` (the caller) if the current
   * claim's token is `fromToken`, and gets a new token. Otherwise nothing changes:
   * `{ claimed: false, owner }` names the claim that holds the room now, and a room with
   * no entry at all (released, or its owner's lease gone) rejects with a TransferError.
   */
  transfer(entry: ClaimRequest, fromToken: string): Promise<ClaimResult>;
  /** Refreshes listing data (ccu, metadata); ignored unless `entry.token` is the current claim's. */
  update(entry: DirectoryEntry): Promise<void>;
  /** Drops the entry if `token` is the current claim's. */
  release(roomId: string, token: string): Promise<void>;
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
  /**
   * Claims again every room and device this directory claimed and still holds: the
   * store came back without them (a Redis restarted empty or from an older snapshot).
   * What another live node took meanwhile is reported as lost and no longer held here.
   */
  reassert(): Promise<ReassertReport>;
  /** Removes room entries and device claims held by nodes no longer in the registry; resolves with how many. */
  sweep(): Promise<{ rooms: number; devices: number }>;
  /**
   * Until when (performance.now() ms) `nodeId`'s claims are certainly its own: a store
   * that arbitrates by leases (etcd) knows; past it, the node's rooms take no inputs,
   * since a quorum it cannot reach may have given them to another node. Absent: always
   * (an in-memory or Redis directory cannot tell).
   */
  validUntil?(nodeId: string): number;
  close(): Promise<void>;
}

/** What reassert() claimed again, and what other nodes hold now. */
export interface ReassertReport {
  rooms: number;
  /**
   * Each room claimed again, with the token it is held under now: the one it had where
   * the store can put a claim back as it was (Redis), a new one where it cannot (etcd,
   * whose revisions only grow); the node hands it to the room.
   */
  reclaimed: Array<{ roomId: string; token: string }>;
  devices: number;
  lostRooms: DirectoryEntry[];
  lostDevices: Array<{ deviceId: string; owner: DeviceOwner }>;
}

type IsAlive = (nodeId: string) => boolean | Promise<boolean>;

/** transfer() of a room the directory has no entry for. */
export class TransferError extends Error {
  constructor(roomId: string) {
    super(`room "${roomId}" has no directory entry: nothing to transfer`);
    this.name = "TransferError";
  }
}

/** Embedded default: one process. */
export class InMemoryRoomDirectory implements RoomDirectory {
  /** Entries by room id. */
  private readonly entries = new Map<string, DirectoryEntry>();
  /** Device owners by device id. */
  private readonly devices = new Map<string, DeviceOwner>();
  /** Change listeners, each isolated from the others' exceptions. */
  private readonly listeners = new SafeEmitter<{ change: (change: DirectoryChange) => void }>(() => { /* a faulty listener must not break the directory */ });

  /** The last fencing token handed out. */
  private fence = 0n;

  constructor(private readonly isAlive: IsAlive = () => true) {}

  async claim(request: ClaimRequest): Promise<ClaimResult> {
    for (;;) {
      const current = this.entries.get(request.roomId);
      if (current && current.nodeId !== request.nodeId) {
        const alive = await this.isAlive(current.nodeId);
        if (this.entries.get(request.roomId) !== current) continue; // changed meanwhile: decide again
        if (alive) return { claimed: false, owner: structuredClone(current) };
      }
      return { claimed: true, token: this.put(request) };
    }
  }
  async transfer(request: ClaimRequest, fromToken: string): Promise<ClaimResult> {
    const current = this.entries.get(request.roomId);
    if (!current) throw new TransferError(request.roomId);
    if (current.token !== fromToken) return { claimed: false, owner: structuredClone(current) };
    return { claimed: true, token: this.put(request) };
  }
  async update(entry: DirectoryEntry) {
    if (this.entries.get(entry.roomId)?.token !== entry.token) return;
    this.entries.set(entry.roomId, structuredClone(entry));
    this.emit({ kind: "upsert", entry });
  }
  async release(roomId: string, token: string) {
    if (this.entries.get(roomId)?.token !== token) return;
    this.entries.delete(roomId);
    this.emit({ kind: "remove", roomId });
  }
  /** Stores `request` under a new token; returns the token. */
  private put(request: ClaimRequest): string {
    const entry: DirectoryEntry = { ...structuredClone(request), token: String(++this.fence) };
    this.entries.set(entry.roomId, entry);
    this.emit({ kind: "upsert", entry });
    return entry.token;
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
  /** Nothing to claim again: the entries live in this process. */
  async reassert(): Promise<ReassertReport> {
    const reclaimed = [...this.entries.values()].map(({ roomId, token }) => ({ roomId, token }));
    return { rooms: this.entries.size, reclaimed, devices: this.devices.size, lostRooms: [], lostDevices: [] };
  }
  async sweep() {
    let rooms = 0;
    let devices = 0;
    for (const [roomId, entry] of [...this.entries]) {
      if (await this.isAlive(entry.nodeId)) continue;
      if (this.entries.get(roomId) !== entry) continue;
      this.entries.delete(roomId);
      this.emit({ kind: "remove", roomId });
      rooms++;
    }
    for (const [deviceId, owner] of [...this.devices]) {
      if (await this.isAlive(owner.nodeId)) continue;
      if (this.devices.get(deviceId) === owner) { this.devices.delete(deviceId); devices++; }
    }
    return { rooms, devices };
  }
  async close() { this.listeners.removeAll(); }

  private emit(change: DirectoryChange) {
    const copy = structuredClone(change);
    this.listeners.emit("change", copy);
  }
}

// An entry JSON (ARGV) without its token, with `token` appended: the client writes the
// entry, the script its token, so no JSON is re-encoded here (cjson would turn [] into {}).
const WITH_TOKEN = `
local function with_token(json, token)
  return string.sub(json, 1, -2) .. ',"token":"' .. token .. '"}'
end
`;

// Atomic claim: free, ours, or held by a node whose registry entry has expired → take it,
// under a new token from the cluster's fence counter.
const CLAIM_SCRIPT = WITH_TOKEN + `
local current = redis.call('GET', KEYS[1])
if current then
  local owner = cjson.decode(current)
  if owner.nodeId ~= ARGV[2] and redis.call('EXISTS', ARGV[3] .. owner.nodeId) == 1 then
    return {0, current}
  end
end
local token = tostring(redis.call('INCR', KEYS[3]))
redis.call('SET', KEYS[1], with_token(ARGV[1], token))
redis.call('SADD', KEYS[2], ARGV[4])
return {1, token}
`;

// A handoff's Switch: compare-and-set on the current claim's token.
const TRANSFER_SCRIPT = WITH_TOKEN + `
local current = redis.call('GET', KEYS[1])
if not current then return {-1} end
if cjson.decode(current).token ~= ARGV[2] then return {0, current} end
local token = tostring(redis.call('INCR', KEYS[2]))
redis.call('SET', KEYS[1], with_token(ARGV[1], token))
return {1, token}
`;

// A claim put back as it was (reassert, after the store lost it): free, ours, or held by a
// dead node → set, with its own token, and the fence counter raised past it.
const RESTORE_SCRIPT = `
local current = redis.call('GET', KEYS[1])
if current then
  local owner = cjson.decode(current)
  if owner.token ~= ARGV[3] and owner.nodeId ~= ARGV[2] and redis.call('EXISTS', ARGV[4] .. owner.nodeId) == 1 then
    return current
  end
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[5])
local fence = tonumber(redis.call('GET', KEYS[3]) or '0')
if fence < tonumber(ARGV[3]) then redis.call('SET', KEYS[3], ARGV[3]) end
return false
`;

// Compare-and-set / compare-and-delete on the claim's token.
const UPDATE_SCRIPT = `
local current = redis.call('GET', KEYS[1])
if not current or cjson.decode(current).token ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
`;
const RELEASE_SCRIPT = `
local current = redis.call('GET', KEYS[1])
if not current or cjson.decode(current).token ~= ARGV[1] then return 0 end
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
// Sweeps: remove the entry (and its index member) only if its node has left the registry.
const SWEEP_ROOM_SCRIPT = `
local current = redis.call('GET', KEYS[1])
if not current then redis.call('SREM', KEYS[2], ARGV[2]) return 0 end
if redis.call('EXISTS', ARGV[1] .. cjson.decode(current).nodeId) == 1 then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[2])
return 1
`;
const SWEEP_DEVICE_SCRIPT = `
local current = redis.call('GET', KEYS[1])
if not current or redis.call('EXISTS', ARGV[1] .. cjson.decode(current).nodeId) == 1 then return 0 end
redis.call('DEL', KEYS[1])
return 1
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
 *   <prefix>fence              the fencing-token counter: every claim and transfer takes the next
 *   <prefix>directory          pub/sub channel of DirectoryChange
 *   <prefix>device-owner:<id>  JSON DeviceOwner: the teleop room a device answers to
 */
export class RedisRoomDirectory implements RoomDirectory {
  /** Subscriber connections opened by watch(), closed by close(). */
  private readonly subscribers = new Set<Redis>();
  /** The rooms this directory claimed and holds, by room id: what reassert() claims again. */
  private readonly heldRooms = new Map<string, DirectoryEntry>();
  /** The devices this directory claimed and holds, by device id. */
  private readonly heldDevices = new Map<string, DeviceOwner>();

  constructor(private readonly redis: Redis, private readonly prefix: string) {}

  private key(roomId: string) { return `${this.prefix}room:${roomId}`; }
  private get indexKey() { return `${this.prefix}rooms`; }
  private get channel() { return `${this.prefix}directory`; }
  private get fenceKey() { return `${this.prefix}fence`; }
  private deviceKey(deviceId: string) { return `${this.prefix}device-owner:${deviceId}`; }

  async claim(request: ClaimRequest): Promise<ClaimResult> {
    const [won, value] = await this.redis.eval(
      CLAIM_SCRIPT, 3, this.key(request.roomId), this.indexKey, this.fenceKey,
      entryJson(request), request.nodeId, `${this.prefix}node:`, request.roomId,
    ) as [number, string];
    if (won !== 1) return { claimed: false, owner: JSON.parse(value) };
    this.hold({ ...request, token: value });
    this.announce({ kind: "upsert", entry: { ...request, token: value } });
    return { claimed: true, token: value };
  }

  async transfer(request: ClaimRequest, fromToken: string): Promise<ClaimResult> {
    const [won, value] = await this.redis.eval(
      TRANSFER_SCRIPT, 2, this.key(request.roomId), this.fenceKey, entryJson(request), fromToken,
    ) as [number, string?];
    if (won === -1) throw new TransferError(request.roomId);
    if (won !== 1) return { claimed: false, owner: JSON.parse(value!) };
    this.hold({ ...request, token: value! });
    this.announce({ kind: "upsert", entry: { ...request, token: value! } });
    return { claimed: true, token: value! };
  }

  async update(entry: DirectoryEntry) {
    const updated = await this.redis.eval(UPDATE_SCRIPT, 1, this.key(entry.roomId), JSON.stringify(entry), entry.token);
    if (this.heldRooms.get(entry.roomId)?.token === entry.token) this.hold(entry);
    if (updated === 1) await this.publish({ kind: "upsert", entry });
  }

  async release(roomId: string, token: string) {
    if (this.heldRooms.get(roomId)?.token === token) this.heldRooms.delete(roomId);
    const released = await this.redis.eval(RELEASE_SCRIPT, 2, this.key(roomId), this.indexKey, token, roomId);
    if (released === 1) await this.publish({ kind: "remove", roomId });
  }

  /** Remembers a claim this directory holds, for reassert(). */
  private hold(entry: DirectoryEntry) {
    this.heldRooms.set(entry.roomId, structuredClone(entry));
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
    // ioredis reconnects (and resubscribes) by itself; the cluster connection reports outages.
    subscriber.on("error", () => {});
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
    if (current) return { claimed: false, owner: JSON.parse(current) as DeviceOwner };
    this.heldDevices.set(deviceId, structuredClone(owner));
    return { claimed: true };
  }

  async releaseDevice(deviceId: string, roomId: string) {
    if (this.heldDevices.get(deviceId)?.roomId === roomId) this.heldDevices.delete(deviceId);
    await this.redis.eval(DEVICE_RELEASE_SCRIPT, 1, this.deviceKey(deviceId), roomId);
  }

  async deviceOwner(deviceId: string) {
    const value = await this.redis.get(this.deviceKey(deviceId));
    return value ? (JSON.parse(value) as DeviceOwner) : undefined;
  }

  async reassert(): Promise<ReassertReport> {
    const report: ReassertReport = { rooms: 0, reclaimed: [], devices: 0, lostRooms: [], lostDevices: [] };
    for (const entry of [...this.heldRooms.values()]) {
      // Put back with its own token, which the room holds and writes with.
      const other = await this.redis.eval(
        RESTORE_SCRIPT, 3, this.key(entry.roomId), this.indexKey, this.fenceKey,
        JSON.stringify(entry), entry.nodeId, entry.token, `${this.prefix}node:`, entry.roomId,
      ) as string | null;
      if (!other) { report.rooms++; report.reclaimed.push({ roomId: entry.roomId, token: entry.token }); continue; }
      this.heldRooms.delete(entry.roomId);
      report.lostRooms.push(JSON.parse(other));
    }
    for (const [deviceId, owner] of [...this.heldDevices]) {
      const claim = await this.claimDevice(deviceId, owner);
      if (claim.claimed) { report.devices++; continue; }
      this.heldDevices.delete(deviceId);
      report.lostDevices.push({ deviceId, owner: claim.owner });
    }
    return report;
  }

  async sweep() {
    const nodePrefix = `${this.prefix}node:`;
    let rooms = 0;
    for (const roomId of await this.redis.smembers(this.indexKey)) {
      if (await this.redis.eval(SWEEP_ROOM_SCRIPT, 2, this.key(roomId), this.indexKey, nodePrefix, roomId) === 1) {
        rooms++;
        await this.publish({ kind: "remove", roomId });
      }
    }
    let devices = 0;
    let cursor = "0";
    do {
      const [next, keys] = await this.redis.scan(cursor, "MATCH", this.deviceKey("*"), "COUNT", 200);
      cursor = next;
      for (const key of keys) if (await this.redis.eval(SWEEP_DEVICE_SCRIPT, 1, key, nodePrefix) === 1) devices++;
    } while (cursor !== "0");
    return { rooms, devices };
  }

  async close() {
    for (const subscriber of this.subscribers) subscriber.disconnect();
    this.subscribers.clear();
  }

  /**
   * Tells the watchers without waiting: a claim or a Switch (on a handoff's critical path)
   * does not wait one more round trip to the cluster store for the lobby's news, which
   * also refreshes from the directory itself.
   */
  private announce(change: DirectoryChange) {
    void this.publish(change).catch(() => { /* the watchers' periodic refresh catches up */ });
  }

  private async publish(change: DirectoryChange) {
    await this.redis.publish(this.channel, JSON.stringify(change));
  }
}

/** An entry's JSON without its token (the claim scripts append the one they assign). */
function entryJson(request: ClaimRequest): string {
  const { token: _ignored, ...entry } = request;
  return JSON.stringify(entry);
}
