/**
 * The node's swappable seam: where presence, matchmaking, the cluster's registry and
 * directory, device enrolment and the audit log live. With a region Redis (`redisUrl`)
 * every piece is shared through Redis; without one (the embedded default of `npm start`)
 * every piece lives in this process's memory. With `etcd.endpoints` too, the registry
 * and the directory (rooms and device claims) live in etcd, on the node's lease.
 *
 * @example
 *   const backends = await createBackends(config, logger);
 *   const directory = backends.directory;   // RedisRoomDirectory or InMemoryRoomDirectory
 *   await backends.close();
 */
import { LocalDriver, LocalPresence, matchMaker, type Presence } from "@colyseus/core";
import { RedisPresence } from "@colyseus/redis-presence";
import type { Redis } from "ioredis";
import { REMOTE_COMMAND_TIMEOUT_MS, followConnection } from "./redisConnection.ts";
import type { NodeConfig } from "./config.ts";
import type { Logger } from "./observability/logging.ts";
import { InMemoryNodeRegistry, RedisNodeRegistry, type NodeRegistry } from "./cluster/NodeRegistry.ts";
import { InMemoryRoomDirectory, RedisRoomDirectory, type RoomDirectory } from "./cluster/RoomDirectory.ts";
import { openEtcd } from "./cluster/etcd/openEtcd.ts";
import { InMemoryDeviceRegistry, RedisDeviceRegistry, type DeviceRegistry } from "./auth/DeviceCredentials.ts";
import { InMemoryCertificateRegistry, RedisCertificateRegistry, type CertificateRegistry } from "./auth/DeviceCertificates.ts";
import { auditStreamKey } from "./audit/AuditLog.ts";
import { InMemoryAuditLog, type AuditSink } from "./audit/AuditSink.ts";
import { AuditLogs } from "./audit/AuditLogs.ts";
import type { NodeMetrics } from "./observability/metrics.ts";
import { SafeEmitter } from "../common/SafeEmitter.ts";
import { RedisSnapshotStore, ReplicatedSnapshotStore, type SnapshotStore } from "./handoff/SnapshotStore.ts";
import { ListingDriver } from "./cluster/ListingDriver.ts";
import { connectedTo, openRedis, redactRedisAddress } from "./redisAddress.ts";

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
  /** Issued device certificates by serial (revocation), cluster-wide. */
  certificateRegistry: CertificateRegistry;
  /** The audit log of a teleop room. */
  audit(roomId: string): AuditSink;
  /** Rooms' snapshots for failover: the region's Redis and the replica region's (failover.replicaRedisUrl); none in embedded mode. */
  snapshots?: SnapshotStore;
  /**
   * Calls `listener` each time a Redis connection is back after an outage ("cluster":
   * registry, directory, devices, audit; "region": presence and driver), so the node can
   * claim again what a restarted Redis lost; and ("cluster") each time etcd granted the
   * node a fresh lease after losing one. Returns an unsubscribe.
   */
  onReconnect(listener: (which: "cluster" | "region") => void): () => void;
  /** Closes the connections these backends opened themselves (not Colyseus', which closes presence and driver). */
  close(): Promise<void>;
  /** Closes everything, presence and driver too: for a start that failed before Colyseus took them over. */
  abandon(): void;
}

/** The backends `config` asks for; fails with a clear message when a Redis is unreachable. */
export async function createBackends(config: NodeConfig, logger: Logger, metrics?: NodeMetrics): Promise<Backends> {
  if (!config.redisUrl) return inMemoryBackends(config);
  await assertRedisReachable("redisUrl", config.redisUrl);
  if (config.clusterRedisUrl) await assertRedisReachable("clusterRedisUrl", config.clusterRedisUrl);

  const reconnected = new SafeEmitter<{ back: (which: "cluster" | "region") => void }>((error) => logger.error({ err: error }, "a Redis reconnection listener failed"));
  const etcd = config.etcd.endpoints.length > 0 ? await openEtcd(config, logger, () => reconnected.emit("back", "cluster"), metrics) : undefined;
  const cluster = openRedis(config.clusterRedisUrl ?? config.redisUrl, { maxRetriesPerRequest: 2 });
  watchRedis(cluster, "cluster", "registry, directory, device and audit calls fail (audit entries wait in the journal) until it is back", logger, metrics, () => reconnected.emit("back", "cluster"));
  // Every client gets an error listener (an EventEmitter without one throws "Unhandled
  // error event"); presence adds its own too, the driver none.
  const presenceClient = openRedis(config.redisUrl);
  watchRedis(presenceClient, "region", "presence and matchmaking fail until it is back", logger, metrics, () => reconnected.emit("back", "region"));
  const driverClient = openRedis(config.redisUrl);
  driverClient.on("error", () => { /* reported through the presence connection, to the same server */ });
  const prefix = `${config.clusterName}:`;
  const presence = new RedisPresence(presenceClient);
  // Listings written and removed only by the room's current node (a room handed within the region keeps its id).
  const driver = new ListingDriver(driverClient, () => matchMaker.processId);
  // Snapshots and audit streams: the region's Redis (audit: the cluster Redis if any), and a replica in another region's.
  const replicaClient = config.failover.replicaRedisUrl ? followConnection(openRedis(config.failover.replicaRedisUrl, { maxRetriesPerRequest: 1, commandTimeout: REMOTE_COMMAND_TIMEOUT_MS })) : undefined;
  replicaClient?.on("error", () => { /* failed writes are counted (snapshots) or retried from the journal (audit) */ });
  const auditLogs = new AuditLogs({
    redis: cluster, replica: replicaClient, clusterName: config.clusterName, nodeId: config.nodeId, dir: config.audit.dir,
    anchorMs: config.audit.anchorMs, maxEntries: config.audit.maxEntries, logger: logger.child({ component: "audit" }), metrics,
  });
  auditLogs.replay();
  reconnected.on("back", (which) => { if (which === "cluster") auditLogs.kick(); });
  const regionSnapshots = followConnection(openRedis(config.redisUrl, { maxRetriesPerRequest: 1 }));
  regionSnapshots.on("error", () => { /* a failed write is counted (tsunagi_room_snapshots_total) and the next one retries */ });
  const snapshotClients = [regionSnapshots, ...(replicaClient ? [replicaClient] : [])];
  const snapshots = new ReplicatedSnapshotStore(snapshotClients.map((client) => new RedisSnapshotStore(client, prefix, config.failover.snapshotTtlMs)));
  const closeCluster = async () => {
    await auditLogs.close();
    cluster.disconnect();
    for (const client of snapshotClients) client.disconnect();
    await etcd?.close();
  };
  return {
    presence,
    driver,
    registry: etcd?.registry ?? new RedisNodeRegistry(cluster, prefix),
    directory: etcd?.directory ?? new RedisRoomDirectory(cluster, prefix),
    deviceRegistry: new RedisDeviceRegistry(cluster, prefix),
    certificateRegistry: new RedisCertificateRegistry(cluster, prefix),
    audit: (roomId) => auditLogs.log(roomId),
    snapshots,
    onReconnect: (listener) => reconnected.on("back", listener),
    close: closeCluster,
    abandon: () => {
      void closeCluster();
      void Promise.resolve(presence.shutdown()).catch(() => { /* closing: nothing left to tell */ });
      void Promise.resolve(driver.shutdown()).catch(() => { /* likewise */ });
    },
  };
}

/**
 * Logs an outage of `client` once, and its end, counts both (and a return to another
 * server: a Sentinel failover), and calls `back` each time it is reachable again after
 * losing its connection.
 */
function watchRedis(client: Redis, which: "cluster" | "region", consequence: string, logger: Logger, metrics: NodeMetrics | undefined, back: () => void) {
  const name = `${which} Redis`;
  // ioredis reconnects by itself; say so once per outage instead of once per attempt.
  let reported = false;
  // A Redis restarted quickly is back at the first attempt, with no error in between: the
  // closed connection, not an error, is what says it may have come back empty.
  let lost = false;
  let server: string | undefined;
  client.on("close", () => {
    if (!lost) metrics?.redis.inc({ connection: which, event: "lost" });
    lost = true;
  });
  client.on("error", (error) => {
    if (!reported) logger.error({ err: error }, `${name} unreachable; ${consequence}`);
    reported = true;
  });
  client.on("ready", () => {
    const previous = server;
    server = connectedTo(client);
    if (!lost) return;
    lost = false;
    reported = false;
    const moved = previous !== undefined && server !== undefined && server !== previous;
    metrics?.redis.inc({ connection: which, event: moved ? "failover" : "back" });
    if (moved) logger.warn({ from: previous, to: server }, `${name} reachable again on a new primary (${server}, was ${previous}): the sentinels failed it over`);
    else logger.info(`${name} reachable again`);
    back();
  });
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
    certificateRegistry: new InMemoryCertificateRegistry(),
    audit: (roomId) => {
      let log = logs.get(roomId);
      if (!log) logs.set(roomId, (log = new InMemoryAuditLog(auditStreamKey(config.clusterName, roomId))));
      return log;
    },
    onReconnect: () => () => {},
    close: async () => {},
    abandon: () => {},
  };
}

/** Fails start-up with a clear message instead of retrying an unreachable Redis forever. */
async function assertRedisReachable(setting: string, url: string, timeoutMs = 5000) {
  const probe = openRedis(url, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: timeoutMs, retryStrategy: () => null });
  let cause: Error | undefined;
  probe.on("error", (error) => { cause ??= error; }); // reported below, once
  try {
    await probe.connect();
    await probe.ping();
  } catch (error) {
    const reason = (cause ?? (error as Error)).message;
    throw new Error(`${setting} ${redactRedisAddress(url)}: Redis not reachable (${reason})`);
  } finally {
    probe.disconnect();
  }
}
