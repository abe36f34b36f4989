/**
 * The node's etcd backends (backends.ts takes them when `etcd.endpoints` is set): the
 * session, checked reachable at start, and the registry and directory on it. A lost
 * lease is logged and counted (tsunagi_cluster_ownership_events_total); a fresh lease granted after a loss calls `leaseBack`, which the node
 * answers as it does a cluster Redis that came back: it claims its rooms and devices
 * again (reassert), which moves them onto the fresh lease under new tokens. A node
 * taken as dead by the registry's silence rule (EtcdNodeRegistry) is logged.
 */
import type { NodeConfig } from "../../config.ts";
import type { Logger } from "../../observability/logging.ts";
import type { NodeMetrics } from "../../observability/metrics.ts";
import { EtcdSession, clusterPrefix } from "./EtcdSession.ts";
import { EtcdNodeRegistry } from "./EtcdNodeRegistry.ts";
import { EtcdRoomDirectory } from "./EtcdRoomDirectory.ts";
import { etcdCredentials } from "./settings.ts";

export interface EtcdBackends {
  session: EtcdSession;
  registry: EtcdNodeRegistry;
  directory: EtcdRoomDirectory;
  /** Revokes the node's lease (its keys vanish at once) and closes the client. */
  close(): Promise<void>;
}

/** Opens the session; fails with a clear message when etcd does not answer with a quorum. */
export async function openEtcd(config: NodeConfig, logger: Logger, leaseBack: () => void, metrics?: NodeMetrics): Promise<EtcdBackends> {
  const log = logger.child({ component: "etcd" });
  const session = new EtcdSession({
    endpoints: config.etcd.endpoints,
    credentials: etcdCredentials(config.etcd),
    callTimeoutMs: config.etcd.callTimeoutMs,
    defaultTtlMs: config.cluster.nodeTtlMs,
    prefix: clusterPrefix(config.clusterName),
  }, (error, source) => log.error({ err: error }, `an etcd session ${source} failed`));
  try {
    await session.assertReachable();
  } catch (error) {
    await session.close();
    throw error;
  }
  session.events.on("lost", (nodeId, reason) => {
    metrics?.ownership.inc({ event: "lease_lost" });
    log.error({ nodeId, reason }, `etcd lease of node ${nodeId} lost (${reason}): its rooms and device claims are no longer confirmed as its own; a fresh lease is asked for at the next heartbeat`);
  });
  session.events.on("granted", (nodeId, afterLoss) => {
    if (!afterLoss) return;
    metrics?.ownership.inc({ event: "lease_regained" });
    log.info({ nodeId }, `etcd lease of node ${nodeId} granted again: claiming its rooms and devices again`);
    leaseBack();
  });
  session.events.on("silent", (nodeId, silentMs) => {
    metrics?.ownership.inc({ event: "peer_taken_dead" });
    log.warn({ nodeId, silentMs }, `node ${nodeId} is taken as dead: its registry entry did not change for ${silentMs} ms, so it was removed (its rooms and devices can be claimed now; its lease may outlive it by seconds)`);
  });
  return {
    session,
    registry: new EtcdNodeRegistry(session, config.cluster.nodeTtlMs),
    directory: new EtcdRoomDirectory(session, config.etcd.callTimeoutMs),
    close: () => session.close(),
  };
}
