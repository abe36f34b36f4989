/**
 * Colyseus' Redis matchmaking driver, with each room's listing written and removed only by
 * the node that hosts the room now.
 *
 * A room handed to another node of the same region keeps its id, so both copies name the
 * same listing (one field of the region's `roomcaches` hash). The new copy writes it when
 * it opens; the old copy, closing after the move, would then remove it (and its last
 * client counts would overwrite it), and the room would vanish from the lobby, from
 * matchmaking by name and from its node's drain. Here, opening a room takes its listing
 * over, and every later write or removal goes through only while the stored listing names
 * the writer's process: an atomic check in Redis (a Lua script), so no copy can race the
 * other between a read and a write.
 *
 * @example
 *   const driver = new ListingDriver(openRedis(config.redisUrl), () => matchMaker.processId);
 */
import type { IRoomCache } from "@colyseus/core";
import { RedisDriver } from "@colyseus/redis-driver";
import type { Redis } from "ioredis";

/** RedisDriver's hash of listings, by room id. */
const LISTINGS_KEY = "roomcaches";

/** KEYS[1] the hash; ARGV: room id, writer's process id, the listing's JSON. 1 written, 0 another process' listing. */
const WRITE_IF_OURS = `
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  local ok, listing = pcall(cjson.decode, current)
  if ok and type(listing) == 'table' and listing.processId ~= nil and listing.processId ~= ARGV[2] then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1`;

/** KEYS[1] the hash; ARGV: room id, remover's process id. 1 removed, 0 absent or another process' listing. */
const REMOVE_IF_OURS = `
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then return 0 end
local ok, listing = pcall(cjson.decode, current)
if ok and type(listing) == 'table' and listing.processId ~= nil and listing.processId ~= ARGV[2] then return 0 end
return redis.call('HDEL', KEYS[1], ARGV[1])`;

type Operations = Partial<{ $set: Partial<IRoomCache>; $inc: Partial<IRoomCache> }>;

export class ListingDriver extends RedisDriver {
  constructor(private readonly redis: Redis, private readonly processId: () => string) {
    super(redis);
  }

  /** A room opening (`create`) takes its listing over; any other write only while the listing is this process'. */
  override async persist(room: IRoomCache, create = false): Promise<boolean> {
    if (!room.roomId) return false;
    if (create) return super.persist(room, create);
    return this.writeIfOurs(room);
  }

  override async update(room: IRoomCache, operations: Operations): Promise<boolean> {
    const fields = room as unknown as Record<string, unknown>;
    for (const [field, value] of Object.entries(operations.$set ?? {})) fields[field] = value;
    for (const [field, value] of Object.entries(operations.$inc ?? {})) fields[field] = Number(fields[field] ?? 0) + Number(value);
    return this.writeIfOurs(room);
  }

  override async remove(roomId: string): Promise<boolean> {
    return (await this.redis.eval(REMOVE_IF_OURS, 1, LISTINGS_KEY, roomId, this.processId())) === 1;
  }

  private async writeIfOurs(room: IRoomCache): Promise<boolean> {
    const writer = String((room as { processId?: string }).processId ?? this.processId());
    return (await this.redis.eval(WRITE_IF_OURS, 1, LISTINGS_KEY, room.roomId, writer, JSON.stringify(room))) === 1;
  }
}
