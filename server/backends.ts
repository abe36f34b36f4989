/**
 * The node's swappable seam: where presence, matchmaking, the cluster's registry and
 * directory, device enrolment and the audit log live. With a region Redis (`redisUrl`)
 * every piece is shared through Redis; without one (the embedded default of `npm start`)
 * every piece lives in this process's memory.
 *
 * @example
 *   const backends = await createBackends(config, logger);
 *   const directory = backends.directory;   // RedisRoomDirectory or InMemoryRoomDirectory
 *   backends.close();
 */
import { LocalDriver, LocalPresence, type matchMaker, type Presence } from "@colyseus/core";
import { RedisDriver } from "@colyseus/redis-driver";
import { RedisPresence } from "@colyseus/redis-presence";
import { Redis } from "ioredis";
import type { NodeConfig } from "./config.ts";
import type { Logger } from "./observability/logging.ts";
import { InMemoryNodeRegistry, RedisNodeRegistry, type NodeRegistry } from "./cluster/NodeRegistry.ts";
import { InMemoryRoomDirectory, RedisRoomDirectory, type RoomDirectory } from "./cluster/RoomDirectory.ts";
import { InMemoryDeviceRegistry, RedisDeviceRegistry, type DeviceRegistry } from "./auth/DeviceCredentials.ts";
import { AuditLog, InMemoryAuditLog, auditStreamKey, type AuditSink } from "./audit/AuditLog.ts";

export interface Backends {
  /** Colyseus presence: the region's pub/sub and shared keys. */
  presence: Presence;
  /** Colyseus matchmaking driver: the region's room listings and seat reservations. */
  driver: matchMaker.MatchMakerDriver;
  /** Live nodes of every region. */
  registry: NodeRegistry;
  /** Which node holds which room and device, cluster-wide. */
  directory: RoomDirectory;
  /** Enrolled devices, cluster-wide. */
  deviceRegistry: DeviceRegistry;
  /** The audit log of a teleop room. */
  audit(roomId: string): AuditSink;
  /** Closes the connections these backends opened themselves (not Colyseus', which closes presence and driver). */
  close(): void;
  /** Closes everything, presence and driver too: for a start that failed before Colyseus took them over. */
  abandon(): void;
}

/** The backends `config` asks for; fails with a clear message when a Redis is unreachable. */
export async function createBackends(config: NodeConfig, logger: Logger): Promise<Backends> {
  if (!config.redisUrl) return inMemoryBackends(config);
  await assertRedisReachable("redisUrl", config.redisUrl);
  if (config.clusterRedisUrl) await assertRedisReachable("clusterRedisUrl", config.clusterRedisUrl);

  const cluster = new Redis(config.clusterRedisUrl ?? config.redisUrl, { maxRetriesPerRequest: 2 });
  // ioredis reconnects by itself; say so once per outage instead of once per attempt.
  let clusterDown = false;
  cluster.on("error", (error) => {
    if (!clusterDown) logger.error({ err: error }, "cluster Redis unreachable; registry and directory calls fail until it is back");
    clusterDown = true;
  });
  cluster.on("ready", () => {
    if (clusterDown) logger.info("cluster Redis reachable again");
    clusterDown = false;
  });
  const prefix = `${config.clusterName}:`;
  const presence = new RedisPresence(config.redisUrl);
  const driver = new RedisDriver(config.redisUrl);
  return {
    presence,
    driver,
    registry: new RedisNodeRegistry(cluster, prefix),
    directory: new RedisRoomDirectory(cluster, prefix),
    deviceRegistry: new RedisDeviceRegistry(cluster, prefix),
    audit: (roomId) => new AuditLog(cluster, auditStreamKey(config.clusterName, roomId)),
    close: () => cluster.disconnect(),
    abandon: () => {
      cluster.disconnect();
      void Promise.resolve(presence.shutdown()).catch(() => { /* closing: nothing left to tell */ });
      void Promise.resolve(driver.shutdown()).catch(() => { /* likewise */ });
    },
  };
}

function inMemoryBackends(config: NodeConfig): Backends {
  const registry = new InMemoryNodeRegistry();
  const logs = new Map<string, InMemoryAuditLog>();
  return {
    presence: new LocalPresence(),
    driver: new LocalDriver(),
    registry,
    directory: new InMemoryRoomDirectory(async (nodeId) => (await registry.get(nodeId)) !== undefined),
    deviceRegistry: new InMemoryDeviceRegistry(),
    audit: (roomId) => {
      let log = logs.get(roomId);
      if (!log) logs.set(roomId, (log = new InMemoryAuditLog(auditStreamKey(config.clusterName, roomId))));
      return log;
    },
    close: () => {},
    abandon: () => {},
  };
}

/** Fails start-up with a clear message instead of retrying an unreachable Redis forever. */
async function assertRedisReachable(setting: string, url: string, timeoutMs = 5000) {
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: timeoutMs, retryStrategy: () => null });
  let cause: Error | undefined;
  probe.on("error", (error) => { cause ??= error; }); // reported below, once
  try {
    await probe.connect();
    await probe.ping();
  } catch (error) {
    const reason = (cause ?? (error as Error)).message;
    throw new Error(`${setting} ${url.replace(/\/\/[^@/]*@/, "//***@")}: Redis not reachable (${reason})`);
  } finally {
    probe.disconnect();
  }
}
