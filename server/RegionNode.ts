/**
 * A region node: one process serving rooms for one region. It owns the transport, the
 * Colyseus server, the cluster registry and directory, and the HTTP routes.
 *
 * @example
 *   const node = await RegionNode.start(loadConfig({ argv: ["--port", "0"] }));
 *   console.log(node.httpUrl); // http://127.0.0.1:54321
 *   await node.stop();
 */
import "./polyfills.ts";
import { monitorEventLoopDelay, type IntervalHistogram } from "node:perf_hooks";
import { Server, matchMaker, LocalPresence, LocalDriver, createRouter, createEndpoint, type Presence, type Room } from "@colyseus/core";
import { RedisPresence } from "@colyseus/redis-presence";
import { RedisDriver } from "@colyseus/redis-driver";
import { Redis } from "ioredis";
import type { NodeConfig } from "./config.ts";
import { createLogger, type Logger } from "./observability/logging.ts";
import { NodeMetrics } from "./observability/metrics.ts";
import { TokenService, setAuthority, DEV_SECRET, isRole } from "./auth/tokens.ts";
import { setNodeContext, type NodeContext } from "./context.ts";
import { bindTransport } from "./transport.ts";
import { InMemoryNodeRegistry, RedisNodeRegistry, type NodeRegistry } from "./cluster/NodeRegistry.ts";
import { InMemoryRoomDirectory, RedisRoomDirectory, type RoomDirectory } from "./cluster/RoomDirectory.ts";
import { LatencyRegionSelector } from "./cluster/RegionSelector.ts";
import { RegionTopology } from "./cluster/topology.ts";
import { NodeRpc } from "./cluster/NodeRpc.ts";
import { serveDeviceRequests } from "./gateway/DeviceRequests.ts";
import { ClusterMatchmaker, httpStatusFor } from "./cluster/ClusterMatchmaker.ts";
import type { NodeInfo } from "./cluster/types.ts";
import { installInputGuard, uninstallInputGuard } from "../rooms/shared/InputGuard.ts";
import { LobbyRoom } from "../rooms/lobby/LobbyRoom.ts";
import { SessionRoom } from "../rooms/session/SessionRoom.ts";
import { TeleopRoom } from "../rooms/teleop/TeleopRoom.ts";
import { ExpoRoom } from "../rooms/expo/ExpoRoom.ts";
import { handleExpoRequest, openHall, type OpenedHall } from "../rooms/expo/halls.ts";
import { loadHallLayout } from "../rooms/expo/HallLayout.ts";
import { AuditLog, InMemoryAuditLog, auditStreamKey, type AuditSink } from "../rooms/teleop/AuditLog.ts";
import { DeviceCredentials, InMemoryDeviceRegistry, RedisDeviceRegistry, type DeviceRegistry } from "./auth/DeviceCredentials.ts";
import { DeviceGateway } from "./gateway/DeviceGateway.ts";

/** Room types every node serves, by matchmaking name. */
export const roomTypes: Record<string, new () => Room> = {
  lobby: LobbyRoom,
  session: SessionRoom,
  teleop: TeleopRoom,
  expo: ExpoRoom,
};

export class RegionNode {
  /** `http://host:port` of this node. */
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
  /** `ws://host:port/device`, the address adapters connect to. */
  readonly gatewayUrl: string;

  /** Set once stop() begins; matchmaking refuses new seats from then on. */
  private draining = false;
  /** The in-flight stop(), so concurrent callers share it. */
  private stopping?: Promise<void>;
  /** Registry heartbeat timer. */
  private heartbeatTimer?: NodeJS.Timeout;
  /** Ends this node's answers to other nodes' rooms asking for their devices. */
  private stopServingDeviceRequests?: () => void;
  /** Event-loop delay histogram, reset every heartbeat. */
  private readonly loopDelay: IntervalHistogram;

  private constructor(
    readonly config: NodeConfig,
    readonly port: number,
    readonly publicAddress: string,
    private readonly server: Server,
    readonly registry: NodeRegistry,
    readonly directory: RoomDirectory,
    /** Redis connections this node opened itself (not Colyseus'), closed on stop. */
    private readonly ownedRedis: Redis[],
    parts: { logger: Logger; metrics: NodeMetrics; tokens: TokenService; loopDelay: IntervalHistogram; gateway: DeviceGateway; devices: DeviceCredentials; gatewayUrl: string },
  ) {
    this.nodeId = config.nodeId;
    this.regionId = config.regionId;
    this.httpUrl = `http://${config.host}:${port}`;
    this.logger = parts.logger;
    this.metrics = parts.metrics;
    this.tokens = parts.tokens;
    this.loopDelay = parts.loopDelay;
    this.gateway = parts.gateway;
    this.devices = parts.devices;
    this.gatewayUrl = parts.gatewayUrl;
  }

  static async start(config: NodeConfig): Promise<RegionNode> {
    const logger = createLogger({ level: config.logLevel, regionId: config.regionId, nodeId: config.nodeId });
    const roomCounts: Record<string, number> = {};
    let gatewayForMetrics: DeviceGateway | undefined;
    const metrics = new NodeMetrics({
      connections: () => matchMaker.stats.local.ccu,
      roomsByType: () => roomCounts,
      devicesOnline: () => gatewayForMetrics?.onlineDevices().length ?? 0,
    });
    const tokens = new TokenService({ secret: config.authSecret ?? DEV_SECRET });
    const topology = config.regionsFile ? RegionTopology.fromFile(config.regionsFile) : undefined;

    if (config.redisUrl) {
      await assertRedisReachable("redisUrl", config.redisUrl);
      if (config.clusterRedisUrl) await assertRedisReachable("clusterRedisUrl", config.clusterRedisUrl);
    }

    const bound = await bindTransport(config.transport, config.host, config.port, config.limits.maxFrameBytes);
    const publicAddress = config.publicAddress ?? `${config.host}:${bound.port}`;

    const ownedRedis: Redis[] = [];
    let presence: Presence;
    let driver: matchMaker.MatchMakerDriver;
    let registry: NodeRegistry;
    let directory: RoomDirectory;
    let deviceRegistry: DeviceRegistry;
    let audit: (roomId: string) => AuditSink;
    if (config.redisUrl) {
      presence = new RedisPresence(config.redisUrl);
      driver = new RedisDriver(config.redisUrl);
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
      ownedRedis.push(cluster);
      const prefix = `${config.clusterName}:`;
      registry = new RedisNodeRegistry(cluster, prefix);
      directory = new RedisRoomDirectory(cluster, prefix);
      deviceRegistry = new RedisDeviceRegistry(cluster, prefix);
      audit = (roomId) => new AuditLog(cluster, auditStreamKey(config.clusterName, roomId));
    } else {
      presence = new LocalPresence();
      driver = new LocalDriver();
      registry = new InMemoryNodeRegistry();
      directory = new InMemoryRoomDirectory(async (nodeId) => (await registry.get(nodeId)) !== undefined);
      deviceRegistry = new InMemoryDeviceRegistry();
      const logs = new Map<string, InMemoryAuditLog>();
      audit = (roomId) => {
        let log = logs.get(roomId);
        if (!log) logs.set(roomId, (log = new InMemoryAuditLog(auditStreamKey(config.clusterName, roomId))));
        return log;
      };
    }
    const devices = new DeviceCredentials(config.authSecret ?? DEV_SECRET, deviceRegistry);
    const gateway = await DeviceGateway.start({
      host: config.host, port: config.gateway.port, regionId: config.regionId, nodeId: config.nodeId,
      credentials: devices, tokens, logger: logger.child({ component: "gateway" }), metrics,
      maxFrameBytes: config.limits.maxFrameBytes, maxMessagesPerSecond: config.gateway.maxMessagesPerSecond,
      helloTimeoutMs: config.gateway.helloTimeoutMs, revalidateMs: config.gateway.revalidateMs,
    }).catch((error) => {
      bound.transport.shutdown();
      for (const redis of ownedRedis) redis.disconnect();
      throw error;
    });
    gatewayForMetrics = gateway;
    const gatewayAddress = config.gateway.publicAddress ?? `${publicAddress.split(":")[0]}:${gateway.port}`;
    const gatewayUrl = `ws://${gatewayAddress}/device`;

    let node: RegionNode | undefined;
    const context: NodeContext = {
      config, nodeId: config.nodeId, regionId: config.regionId, publicAddress, logger, metrics, registry, directory,
      gateway, gatewayUrl, devices, audit,
      isDraining: () => node?.draining ?? false,
    };
    setNodeContext(context);
    setAuthority(tokens);
    installInputGuard({ logger, metrics, maxMessagesPerSecond: config.limits.maxMessagesPerSecond, maxFrameBytes: config.limits.maxFrameBytes });

    const clusterMatchmaker = new ClusterMatchmaker(
      context,
      new LatencyRegionSelector(topology),
      new NodeRpc(config.nodeId, config.cluster.forwardTimeoutMs),
    );

    const server = new Server({
      transport: bound.transport,
      presence,
      driver,
      publicAddress,
      selectProcessIdToCreateRoom: clusterMatchmaker.selectProcessId,
      gracefullyShutdown: false,
      greet: false,
      logger: colyseusLogger(logger),
    });

    for (const [name, klass] of Object.entries(roomTypes)) {
      const handler = server.define(name, klass);
      roomCounts[name] = 0;
      handler.on("create", () => { roomCounts[name]++; });
      handler.on("dispose", () => { roomCounts[name]--; });
    }

    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
    node = new RegionNode(config, bound.port, publicAddress, server, registry, directory, ownedRedis, { logger, metrics, tokens, loopDelay, gateway, devices, gatewayUrl });

    node.stopServingDeviceRequests = await serveDeviceRequests({ presence, gateway, directory, nodeId: config.nodeId, clusterName: config.clusterName, logger: logger.child({ component: "gateway" }) });
    server.router = node.routes(clusterMatchmaker) as any;
    await server.listen(bound.port, config.host);
    await node.heartbeat();
    node.heartbeatTimer = setInterval(() => void node!.heartbeat(), config.cluster.heartbeatMs);
    node.heartbeatTimer.unref();
    node.context = context;
    if (config.expo.hallFile) {
      try {
        await node.openHall(loadHallLayout(config.expo.hallFile), config.expo.hallFile);
      } catch (error) {
        await node.stop("the hall file could not be opened");
        throw error;
      }
    }

    logger.info({
      httpUrl: node.httpUrl, publicAddress, transport: config.transport,
      mode: config.redisUrl ? "redis" : "embedded", devMode: config.devMode,
    }, `region node ${config.nodeId} of ${config.regionId} listening on ${node.httpUrl}`);
    return node;
  }

  get isDraining() { return this.draining; }

  /** The services rooms see (nodeContext()). */
  private context!: NodeContext;

  /** Opens an expo hall in this region (zones spread over its nodes). */
  openHall(layout: unknown, source?: string): Promise<OpenedHall> {
    return openHall(this.context, layout, source);
  }

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
  private readonly startedAt = Date.now();

  private async heartbeat() {
    try {
      await this.registry.heartbeat(this.info(), this.config.cluster.nodeTtlMs);
    } catch (error) {
      this.logger.error({ err: error }, "registry heartbeat failed; other nodes will see this node as dead if it persists");
    } finally {
      this.loopDelay.reset();
    }
  }

  /** HTTP routes of the node; `/matchmake/*` is answered by the cluster matchmaker. */
  private routes(clusterMatchmaker: ClusterMatchmaker) {
    const node = this;
    const text = (status: number, body: string, type = "text/plain; charset=utf-8") =>
      new Response(body, { status, headers: { "content-type": type, "cache-control": "no-store" } });
    const json = (status: number, body: unknown) => text(status, JSON.stringify(body), "application/json");

    const endpoints: Record<string, any> = {
      healthz: createEndpoint("/healthz", { method: "GET" }, async () => json(node.draining ? 503 : 200, {
        status: node.draining ? "draining" : "ok", regionId: node.regionId, nodeId: node.nodeId,
        publicAddress: node.publicAddress, load: node.info().load,
      })),
      // Clients probe RTT with this; keep it trivial. CORS comes from the transport.
      ping: createEndpoint("/ping", { method: "GET" }, async () => new Response("pong", {
        status: 200, headers: { "content-type": "text/plain", "cache-control": "no-store", "x-tsunagi-region": node.regionId },
      })),
      metrics: createEndpoint("/metrics", { method: "GET" }, async () => {
        const { contentType, body } = await node.metrics.render();
        return text(200, body, contentType);
      }),
      // Adapters ask where to connect after picking this region by RTT.
      gateway: createEndpoint("/gateway", { method: "GET" }, async () => json(node.draining ? 503 : 200, {
        url: node.gatewayUrl, regionId: node.regionId, nodeId: node.nodeId,
      })),
      regions: createEndpoint("/regions", { method: "GET" }, async () => {
        const nodes = await node.registry.list();
        const regions: Record<string, Array<{ nodeId: string; url: string; draining: boolean; overloaded: boolean }>> = {};
        for (const n of nodes) {
          (regions[n.regionId] ??= []).push({ nodeId: n.nodeId, url: `http://${n.publicAddress}`, draining: n.draining, overloaded: n.load.overloaded });
        }
        return json(200, { regions: Object.entries(regions).map(([id, list]) => ({ id, nodes: list })) });
      }),
    };
    if (this.config.devMode) {
      endpoints.devToken = createEndpoint("/dev/token", { method: "GET" }, async (ctx: any) => {
        const role = ctx.query?.role ?? "visitor";
        if (!isRole(role)) return json(400, { code: 4402, error: `unknown role "${String(role).slice(0, 40)}"` });
        const sub = typeof ctx.query?.sub === "string" ? ctx.query.sub.slice(0, 64) : `${role}-${Math.random().toString(36).slice(2, 8)}`;
        const rooms = typeof ctx.query?.room === "string" ? [ctx.query.room] : undefined;
        const ttl = Number(ctx.query?.ttl ?? 3600);
        const ttlSeconds = Number.isFinite(ttl) && ttl > 0 && ttl <= 86_400 ? ttl : 3600;
        return text(200, await node.tokens.issue({ sub, role, rooms }, ttlSeconds));
      });
      // Enrols a device and returns its secret, for demos and benches without a provisioning tool.
      endpoints.devDevice = createEndpoint("/dev/device", { method: "GET" }, async (ctx: any) => {
        const id = String(ctx.query?.id ?? "");
        const deviceClass = String(ctx.query?.class ?? "other").slice(0, 32);
        try {
          const { record, deviceSecret } = await node.devices.enroll(id, deviceClass);
          return json(200, { deviceId: record.deviceId, deviceClass: record.deviceClass, version: record.version, deviceSecret });
        } catch (error) {
          return json(400, { code: 4402, error: `[4402 WRONG_TYPE] ${(error as Error).message}` });
        }
      });
    }
    return createRouter(endpoints, {
      openapi: { disabled: true },
      onRequest: async (request: Request) => {
        const pathname = new URL(request.url).pathname;
        if (request.method === "POST" && pathname.startsWith("/matchmake/")) {
          return clusterMatchmaker.handle(request);
        }
        if (pathname.startsWith("/expo/")) return handleExpoRequest(node.context, request, httpStatusFor);
        return undefined;
      },
    } as any);
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
    this.logger.info({ reason }, `draining node ${this.nodeId}`);
    await this.heartbeat();
    clearInterval(this.heartbeatTimer);

    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<"timeout">((resolve) => { timer = setTimeout(() => resolve("timeout"), this.config.drainTimeoutMs); });
    this.stopServingDeviceRequests?.();
    const outcome = await Promise.race([this.server.gracefullyShutdown(false).then(() => "drained" as const), bound]);
    clearTimeout(timer);
    if (outcome === "timeout") {
      this.logger.warn({ drainTimeoutMs: this.config.drainTimeoutMs }, "drain timed out; closing what is left");
      try { this.server.transport.shutdown(); } catch { /* already closed */ }
    }
    await this.gateway.close();

    await this.registry.remove(this.nodeId).catch(() => {});
    await this.directory.close().catch(() => {});
    await this.registry.close().catch(() => {});
    for (const redis of this.ownedRedis) redis.disconnect();
    this.loopDelay.disable();
    uninstallInputGuard();
    setNodeContext(undefined);
    setAuthority(undefined);
    this.logger.info({ outcome }, `node ${this.nodeId} stopped`);
  }
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
