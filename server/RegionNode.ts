/**
 * A region node: one process serving rooms for one region. It owns the lifecycle of the
 * transport, the Colyseus server, the backends (backends.ts), the device gateway and the
 * registry heartbeat; the room types come from the modules it is handed (rooms/index.ts).
 *
 * @example
 *   const node = await RegionNode.start(loadConfig({ argv: ["--port", "0"] }), roomModules);
 *   console.log(node.httpUrl); // http://127.0.0.1:54321
 *   await node.stop();
 */
import "./polyfills.ts";
import { monitorEventLoopDelay, type IntervalHistogram } from "node:perf_hooks";
import { Server, matchMaker } from "@colyseus/core";
import type { NodeConfig } from "./config.ts";
import { createLogger, type Logger } from "./observability/logging.ts";
import { NodeMetrics } from "./observability/metrics.ts";
import { TokenService, setAuthority } from "./auth/tokens.ts";
import { clusterKeys, clusterSecret } from "./auth/keys.ts";
import { setNodeContext, type NodeContext } from "./context.ts";
import { bindTransport } from "./colyseus/transport.ts";
import { installInputGuard, uninstallInputGuard } from "./colyseus/InputGuard.ts";
import { createBackends, type Backends } from "./backends.ts";
import type { NodeRegistry } from "./cluster/NodeRegistry.ts";
import type { RoomDirectory } from "./cluster/RoomDirectory.ts";
import { LatencyRegionSelector } from "./cluster/RegionSelector.ts";
import { RegionTopology } from "./cluster/topology.ts";
import { PeerProbe, probeIntervalMs } from "./cluster/PeerProbe.ts";
import { startVoice, type NodeVoice } from "./voice/startVoice.ts";
import { NodeRpc, parsePeerRoutes } from "./cluster/NodeRpc.ts";
import { NodeAuth } from "./auth/nodeAuth.ts";
import { Handoffs } from "./handoff/Handoffs.ts";
import { drainRoutes } from "./cluster/drainRoutes.ts";
import { ErrorCode, errorCodeName } from "../proto/index.ts";
import { moverOf } from "./handoff/localRooms.ts";
import { Failover } from "./handoff/Failover.ts";
import { ClusterMatchmaker } from "./cluster/ClusterMatchmaker.ts";
import type { NodeInfo } from "./cluster/types.ts";
import { serveDeviceRequests } from "./gateway/DeviceRequests.ts";
import { readFileSync } from "node:fs";
import { DeviceGateway } from "./gateway/DeviceGateway.ts";
import { CertificateListener } from "./gateway/CertificateListener.ts";
import { DeviceCertificates } from "./auth/DeviceCertificates.ts";
import { DeviceCredentials } from "./auth/DeviceCredentials.ts";
import { nodeRoutes } from "./http/routes.ts";
import { gatewayScheme, httpScheme, listenerTls } from "./tls.ts";
import { HttpEdge } from "./http/HttpEdge.ts";
import { RouteTable } from "./http/RouteTable.ts";
import { CorsPolicy } from "./http/cors.ts";
import type { RoomModule } from "./RoomModule.ts";

export class RegionNode {
  /** `http://host:port` of this node (`https://` with TLS). */
  readonly httpUrl: string;
  readonly nodeId: string;
  readonly regionId: string;
  /** Tokens signed with this node's (cluster-shared) secret. */
  readonly tokens: TokenService;
  readonly logger: Logger;
  readonly metrics: NodeMetrics;
  /** Where edge adapters connect. */
  readonly gateway: DeviceGateway;
  /** Device enrolment (shared by the cluster in Redis mode). */
  readonly devices: DeviceCredentials;
  /** `ws://host:port/device` (`wss://` with TLS), the address adapters connect to. */
  readonly gatewayUrl: string;
  /** The services rooms see (nodeContext()). */
  readonly context: NodeContext;
  readonly registry: NodeRegistry;
  readonly directory: RoomDirectory;

  /** Set once stop() begins; matchmaking refuses new seats from then on. */
  private draining = false;
  /** The in-flight stop(), so concurrent callers share it. */
  private stopping?: Promise<void>;
  /** Registry heartbeat timer. */
  private heartbeatTimer?: NodeJS.Timeout;
  /** Timer of the directory sweep (entries of nodes that left the registry). */
  private sweepTimer?: NodeJS.Timeout;
  /** When the cluster Redis last came back: the sweep waits until every node had time to claim again. */
  private clusterBackAt = 0;
  /** Claims asserted again after a failed attempt, a heartbeat later (an etcd directory fences the rooms until they are). */
  private reassertRetry?: NodeJS.Timeout;
  /** Ends the reconnection listener. */
  private stopWatchingRedis?: () => void;
  /** Ends this node's answers to other nodes' rooms asking for their devices. */
  private stopServingDeviceRequests?: () => void;
  /** Where devices attach with a client certificate (gateway.deviceCaFile set), beside the gateway. */
  private certificateListener?: CertificateListener;
  /** Rooms handed to and from other nodes. */
  private handoffs?: Handoffs;
  /** Stops reporting adapters that attach here far from their rooms. */
  private stopRehoming?: () => void;
  /** Stops weighing where rooms' participants are best served. */
  private stopPlacement?: () => void;
  /** Stops looking for lost rooms to restore (Failover). */
  private stopFailover?: () => void;
  private stopProbe?: () => void;
  /** The rooms' voice (its Janus), when `voice.mode` turned it on. */
  private voice?: NodeVoice;
  /** Event-loop delay histogram, reset every heartbeat. */
  private readonly loopDelay: IntervalHistogram;
  /** When this node started, ms since the epoch. */
  private readonly startedAt = Date.now();

  private constructor(
    readonly config: NodeConfig,
    readonly port: number,
    readonly publicAddress: string,
    /** The Colyseus server: rooms, matchmaking, the transport. */
    private readonly server: Server,
    /** Presence, driver, registry, directory, devices and audit, closed on stop. */
    private readonly backends: Backends,
    parts: { logger: Logger; metrics: NodeMetrics; tokens: TokenService; loopDelay: IntervalHistogram; gateway: DeviceGateway; devices: DeviceCredentials; context: NodeContext },
  ) {
    this.nodeId = config.nodeId;
    this.regionId = config.regionId;
    this.httpUrl = `${httpScheme(config)}://${config.host}:${port}`;
    this.logger = parts.logger;
    this.metrics = parts.metrics;
    this.tokens = parts.tokens;
    this.loopDelay = parts.loopDelay;
    this.gateway = parts.gateway;
    this.devices = parts.devices;
    this.context = parts.context;
    this.gatewayUrl = parts.context.gatewayUrl;
    this.registry = backends.registry;
    this.directory = backends.directory;
  }

  /** Starts a node serving the room types of `modules`; rejects (having released everything) when it cannot. */
  static async start(config: NodeConfig, modules: readonly RoomModule[]): Promise<RegionNode> {
    const logger = createLogger({ level: config.logLevel, format: config.logFormat, regionId: config.regionId, nodeId: config.nodeId });
    const roomCounts: Record<string, number> = {};
    let gatewayForMetrics: DeviceGateway | undefined;
    const metrics = new NodeMetrics({
      connections: () => matchMaker.stats.local.ccu,
      roomsByType: () => roomCounts,
      devicesOnline: () => gatewayForMetrics?.onlineDevices().length ?? 0,
    });
    for (const warning of config.warnings) logger.warn(warning);
    const keys = clusterKeys(clusterSecret(config));
    const tokens = new TokenService({ key: keys.token, audience: config.clusterName, maxAgeSeconds: config.tokenMaxAgeSeconds });
    const topology = config.regionsFile ? RegionTopology.fromFile(config.regionsFile) : undefined;

    const backends = await createBackends(config, logger, metrics);
    const tls = listenerTls(config);
    const bound = await bindTransport(config.transport, config.host, config.port, config.limits.maxFrameBytes, tls.client)
      .catch((error) => { backends.abandon(); throw error; });
    const publicAddress = config.publicAddress ?? `${config.host}:${bound.port}`;

    const devices = new DeviceCredentials(keys.device, backends.deviceRegistry);
    const gateway = await DeviceGateway.start({
      host: config.host, port: config.gateway.port, regionId: config.regionId, nodeId: config.nodeId,
      credentials: devices, tokens, logger: logger.child({ component: "gateway" }), metrics,
      maxFrameBytes: config.limits.maxFrameBytes, maxMessagesPerSecond: config.gateway.maxMessagesPerSecond,
      helloTimeoutMs: config.gateway.helloTimeoutMs, revalidateMs: config.gateway.revalidateMs, tls: tls.gateway,
      maxPending: { perAddress: config.gateway.maxPendingPerAddress, total: config.gateway.maxPending },
      defaultLatencyBudgetMs: config.teleop.defaultLatencyBudgetMs,
      certificates: new DeviceCertificates(backends.certificateRegistry),
    }).catch((error) => {
      bound.transport.shutdown();
      backends.abandon();
      throw error;
    });
    gatewayForMetrics = gateway;
    const gatewayAddress = config.gateway.publicAddress ?? `${publicAddress.split(":")[0]}:${gateway.port}`;
    // tlsProblems() made sure the gateway's TLS files exist when a device CA is set.
    const certificateListener = config.gateway.deviceCaFile && tls.gateway
      ? await CertificateListener.start({
        host: config.host, port: config.gateway.certPort, tls: tls.gateway, deviceCaPem: readFileSync(config.gateway.deviceCaFile, "utf8"),
        maxFrameBytes: config.limits.maxFrameBytes, gateway, logger: logger.child({ component: "gateway" }),
      }).catch(async (error) => {
        await gateway.close();
        bound.transport.shutdown();
        backends.abandon();
        throw error;
      })
      : undefined;
    const certAddress = certificateListener && (config.gateway.certPublicAddress ?? `${publicAddress.split(":")[0]}:${certificateListener.port}`);

    let node: RegionNode | undefined;
    const context: NodeContext = {
      config, nodeId: config.nodeId, regionId: config.regionId, publicAddress, logger, metrics,
      registry: backends.registry, directory: backends.directory,
      gateway, gatewayUrl: `${gatewayScheme(config)}://${gatewayAddress}/device`, devices,
      certGatewayUrl: certAddress && `wss://${certAddress}/device`, roomOptionsKey: keys.roomOptions, audit: backends.audit, snapshots: backends.snapshots,
      isDraining: () => node?.draining ?? false,
      ownsItsRooms: () => {
        const until = backends.directory.validUntil?.(config.nodeId);
        return until === undefined || performance.now() < until;
      },
    };
    setNodeContext(context);
    setAuthority(tokens);
    installInputGuard({ logger, metrics, maxMessagesPerSecond: config.limits.maxMessagesPerSecond, maxFrameBytes: config.limits.maxFrameBytes });

    const selector = new LatencyRegionSelector(topology);
    const nodeRpc = new NodeRpc(config.nodeId, config.cluster.forwardTimeoutMs, { scheme: httpScheme(config), caFile: config.tls.caFile }, parsePeerRoutes(config.cluster.peerRoutes));
    const clusterMatchmaker = new ClusterMatchmaker(context, selector, nodeRpc);
    const nodeAuth = new NodeAuth(keys.node, config.nodeId);
    const handoffs = new Handoffs(context, nodeRpc, nodeAuth, selector);
    const probe = backends.registry.watchPeers && new PeerProbe(nodeRpc, config.nodeId, probeIntervalMs(config.cluster.heartbeatMs, config.cluster.nodeTtlMs), config.cluster.nodeTtlMs, (nodeId, silentMs) => {
      metrics.ownership.inc({ event: "peer_unanswering" });
      logger.warn({ peer: nodeId, silentMs }, `node ${nodeId} answered no direct heartbeat for ${silentMs} ms: it is down, or cut off from this node (the registry drops it only once its entry has not changed for the TTL too)`);
    });
    if (probe) backends.registry.watchPeers?.(probe);
    const failover = backends.snapshots && new Failover(context, nodeRpc, nodeAuth, backends.snapshots, probe);

    const server = new Server({
      transport: bound.transport,
      presence: backends.presence,
      driver: backends.driver,
      publicAddress,
      selectProcessIdToCreateRoom: clusterMatchmaker.selectProcessId,
      gracefullyShutdown: false,
      greet: false,
      logger: colyseusLogger(logger),
    });

    for (const module of modules) {
      for (const [name, klass] of Object.entries(module.rooms)) {
        const handler = server.define(name, klass);
        roomCounts[name] = 0;
        handler.on("create", () => { roomCounts[name]++; });
        handler.on("dispose", () => { roomCounts[name]--; });
      }
    }

    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
    node = new RegionNode(config, bound.port, publicAddress, server, backends, { logger, metrics, tokens, loopDelay, gateway, devices, context });
    node.certificateListener = certificateListener;
    node.handoffs = handoffs;
    node.stopRehoming = handoffs.rehoming.watch(gateway);
    node.stopPlacement = handoffs.startPlacement();
    node.stopFailover = failover?.start();
    node.stopProbe = probe?.start();

    node.stopServingDeviceRequests = await serveDeviceRequests({ presence: backends.presence, gateway, directory: backends.directory, nodeId: config.nodeId, clusterName: config.clusterName, logger: logger.child({ component: "gateway" }) });
    bound.transport.serveHttp(new HttpEdge({
      routes: new RouteTable([...nodeRoutes(node, clusterMatchmaker, modules), ...handoffs.routes(), ...(failover?.routes() ?? []), ...drainRoutes({
        nodeId: config.nodeId, regionId: config.regionId,
        listNodes: () => backends.registry.list(),
        forward: (target, path, authorization) => nodeRpc.post(target, path, undefined, authorization),
        drainSelf: (reason) => node!.requestDrain(reason),
        refused: (code, error) => {
          if (code === ErrorCode.INTERNAL) logger.error({ err: error }, "drain route failed");
          metrics.errors.inc({ code: errorCodeName(code), source: "drain" });
        },
      })]),
      cors: new CorsPolicy(config.http.corsOrigins, config.devMode),
      tokens, nodeAuth, readTimeoutMs: config.http.readTimeoutMs, metricsToken: config.http.metricsToken,
      logger: logger.child({ component: "http" }), metrics,
    }));
    await server.listen(bound.port, config.host);
    await node.heartbeat();
    node.heartbeatTimer = setInterval(() => void node!.heartbeat(), config.cluster.heartbeatMs);
    node.heartbeatTimer.unref();
    node.stopWatchingRedis = backends.onReconnect((which) => {
      // The registry's store came back, possibly without the entries that expired meanwhile: Redis' only (an etcd
      // registry keeps each node's entry on its own lease, and this node's lease granted again says nothing of the others').
      if (which === "cluster" && config.etcd.endpoints.length === 0) failover?.redisBack();
      void (which === "cluster" ? node!.reassertCluster() : node!.reassertRegion());
    });
    node.sweepTimer = setInterval(() => void node!.sweepDirectory(), sweepIntervalMs(config));
    node.sweepTimer.unref();
    try {
      node.voice = await startVoice(config, logger.child({ component: "voice" }), metrics);
    } catch (error) {
      await node.stop("voice could not start");
      throw error;
    }
    context.voice = node.voice?.backend;
    context.cameras = node.voice?.cameras;
    for (const module of modules) {
      try {
        await module.started?.(context);
      } catch (error) {
        await node.stop(`the ${module.name} rooms could not start`);
        throw error;
      }
    }

    logger.info({
      httpUrl: node.httpUrl, publicAddress, transport: config.transport,
      mode: config.redisUrl ? "redis" : "embedded", devMode: config.devMode, tls: Boolean(tls.client),
    }, `region node ${config.nodeId} of ${config.regionId} listening on ${node.httpUrl}`);
    return node;
  }

  get isDraining() { return this.draining; }

  /** This node as other nodes see it in the registry. */
  info(): NodeInfo {
    const limits = this.config.limits;
    const ccu = matchMaker.stats.local.ccu;
    const rooms = matchMaker.stats.local.roomCount;
    const lagMs = Number.isFinite(this.loopDelay.mean) ? this.loopDelay.mean / 1e6 : 0;
    return {
      nodeId: this.nodeId,
      regionId: this.regionId,
      publicAddress: this.publicAddress,
      processId: matchMaker.processId,
      load: {
        ccu, rooms, eventLoopLagMs: Math.round(lagMs * 10) / 10,
        overloaded: ccu >= limits.maxCcu || rooms >= limits.maxRooms || lagMs > limits.maxEventLoopLagMs,
      },
      draining: this.draining,
      startedAt: this.startedAt,
      heartbeatAt: Date.now(),
    };
  }

  private async heartbeat() {
    try {
      await this.registry.heartbeat(this.info(), this.config.cluster.nodeTtlMs);
    } catch (error) {
      this.logger.error({ err: error }, "registry heartbeat failed; other nodes will see this node as dead if it persists");
    } finally {
      this.loopDelay.reset();
    }
  }

  /**
   * The cluster Redis is back, perhaps empty or rolled back (restarted without
   * persistence, or from an older snapshot): this node's registry entry first, then the
   * directory entries of its rooms and the claims of its rooms' devices, so no other node
   * opens a second copy of a room or takes its machines. What another node took meanwhile
   * is logged and counted (ROOM_CONFLICT); that node's room then wins the device's adapter
   * through the directory, and this room sees the device go offline (the machine stops).
   */
  private async reassertCluster() {
    clearTimeout(this.reassertRetry);
    this.reassertRetry = undefined;
    this.clusterBackAt = Date.now();
    if (this.draining) return;
    await this.heartbeat();
    try {
      const report = await this.directory.reassert();
      for (const { roomId, token } of report.reclaimed) moverOf(matchMaker.getLocalRoomById(roomId))?.claimRenewed(token);
      this.logger.info({ rooms: report.rooms, devices: report.devices }, `cluster Redis back: registry entry, ${report.rooms} rooms and ${report.devices} device claims asserted again`);
      for (const owner of report.lostRooms) {
        // Another node holds it now: this copy stops at once, before it takes any input, and its clients join that one.
        moverOf(matchMaker.getLocalRoomById(owner.roomId))?.claimLost(owner);
        this.metrics.errors.inc({ code: "ROOM_CONFLICT", source: "directory" });
        this.logger.error({ roomId: owner.roomId, owner: owner.nodeId }, `room ${owner.roomId}: node ${owner.nodeId} claimed it while the cluster Redis was away; this node's copy is no longer in the directory`);
      }
      for (const { deviceId, owner } of report.lostDevices) {
        this.metrics.errors.inc({ code: "ROOM_CONFLICT", source: "directory" });
        this.logger.error({ deviceId, owner }, `device ${deviceId}: room ${owner.roomId} on node ${owner.nodeId} claimed it while the cluster Redis was away`);
      }
    } catch (error) {
      this.logger.error({ err: error }, "cluster Redis back, but claiming this node's rooms and devices again failed; trying again in a heartbeat");
      this.reassertRetry ??= setTimeout(() => { this.reassertRetry = undefined; void this.reassertCluster(); }, this.config.cluster.heartbeatMs);
      this.reassertRetry.unref();
    }
  }

  /** The region Redis is back: Colyseus' record of this process and its rooms' listings, which a restarted Redis lost. */
  private async reassertRegion() {
    if (this.draining) return;
    try {
      await matchMaker.stats.persist(true);
      await matchMaker.restoreMissingRoomCaches();
      this.logger.info("region Redis back: this node's process and room listings asserted again");
    } catch (error) {
      this.logger.error({ err: error }, "region Redis back, but restoring this node's room listings failed");
    }
  }

  /** Removes directory entries and device claims of nodes that left the registry (crashed), so they do not pile up. */
  private async sweepDirectory() {
    if (this.draining || Date.now() - this.clusterBackAt < 2 * this.config.cluster.nodeTtlMs) return;
    try {
      const swept = await this.directory.sweep();
      if (swept.rooms || swept.devices) this.logger.info(swept, `directory: removed ${swept.rooms} rooms and ${swept.devices} device claims of nodes gone from the registry`);
    } catch (error) {
      this.logger.warn({ err: error }, "directory sweep failed; tried again later");
    }
  }

  /**
   * What an admin's drain (POST /nodes/:nodeId/drain) runs: the process' own shutdown when
   * it set one (server/main.ts: the drain, then exit, as after SIGTERM); otherwise stop().
   */
  onDrainRequested?: (reason: string) => void;

  requestDrain(reason: string): void {
    this.logger.warn({ reason }, `${reason}: draining node ${this.nodeId}`);
    if (this.onDrainRequested) this.onDrainRequested(reason);
    else void this.stop(reason);
  }

  /**
   * Drains and stops: no new seats, every client told to reconnect elsewhere, rooms
   * closed, registry entry removed. Bounded by `drainTimeoutMs`.
   */
  stop(reason = "stop requested"): Promise<void> {
    this.stopping ??= this.drain(reason);
    return this.stopping;
  }

  private async drain(reason: string) {
    this.draining = true;
    this.stopPlacement?.();
    this.stopFailover?.();
    this.stopProbe?.();
    this.logger.info({ reason }, `draining node ${this.nodeId}`);
    await this.heartbeat();
    clearInterval(this.heartbeatTimer);
    clearInterval(this.sweepTimer);
    clearTimeout(this.reassertRetry);
    this.stopWatchingRedis?.();

    // Rooms that can move go on elsewhere, their sessions intact: half the drain's time at most.
    const drainStarted = performance.now();
    if (this.handoffs) await this.handoffs.drainRooms(this.config.drainTimeoutMs / 2).catch((error) => this.logger.error({ err: error }, "drain: handing rooms to other nodes failed"));
    const left = Math.max(0, this.config.drainTimeoutMs - (performance.now() - drainStarted));
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<"timeout">((resolve) => { timer = setTimeout(() => resolve("timeout"), left); });
    this.stopServingDeviceRequests?.();
    const outcome = await Promise.race([this.server.gracefullyShutdown(false).then(() => "drained" as const), bound]);
    clearTimeout(timer);
    if (outcome === "timeout") {
      this.logger.warn({ drainTimeoutMs: this.config.drainTimeoutMs }, "drain timed out; closing what is left");
      try { this.server.transport.shutdown(); } catch { /* already closed */ }
    }
    this.stopRehoming?.();
    this.handoffs?.close();
    await this.gateway.close();
    await this.certificateListener?.close();
    await this.voice?.stop();

    await this.registry.remove(this.nodeId).catch(() => {});
    await this.directory.close().catch(() => {});
    await this.registry.close().catch(() => {});
    await this.backends.close();
    this.loopDelay.disable();
    uninstallInputGuard();
    setNodeContext(undefined);
    setAuthority(undefined);
    this.logger.info({ outcome }, `node ${this.nodeId} stopped`);
  }
}

/** How often a node sweeps the directory: rarely (each node does it), long after a node's entry would have expired. */
export function sweepIntervalMs(config: NodeConfig): number {
  return Math.max(30_000, 10 * config.cluster.nodeTtlMs);
}

/** Colyseus logs through this, so its lines are JSON like ours. */
function colyseusLogger(logger: Logger) {
  const child = logger.child({ component: "colyseus" });
  const join = (args: unknown[]) => args.map((a) => (typeof a === "string" ? a : a instanceof Error ? a.stack : JSON.stringify(a))).join(" ");
  return {
    debug: (...args: unknown[]) => child.debug(join(args)),
    info: (...args: unknown[]) => child.info(join(args)),
    warn: (...args: unknown[]) => child.warn(join(args)),
    error: (...args: unknown[]) => child.error(join(args)),
    trace: (...args: unknown[]) => child.trace(join(args)),
  };
}
