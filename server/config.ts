/**
 * Region node configuration: defaults → file → env (`TSUNAGI_*`) → flags, validated once
 * at start with zod. Every bad field is reported by name; `main.ts` exits with code 2.
 * Which settings env and flags may set, and their names, are in configSettings.ts.
 *
 * @example
 *   const config = loadConfig({ argv: ["--region-id", "jp-tokyo", "--port", "0"] });
 */
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { isIP } from "node:net";
import { z } from "zod";
import { redisUrlShape } from "./configShapes.ts";
import { RedisAddressError, redactRedisAddress, redisAddressFrom } from "./redisAddress.ts";
import { LOG_FORMATS } from "../common/logOutput.ts";
import { isLoopbackAddress } from "./http/peer.ts";
import { argvSecretWarning, readSecretFile, SecretError } from "../common/secrets.ts";
import { MIN_SECRET_LENGTH } from "./auth/keys.ts";
import { DEFAULT_TOKEN_MAX_AGE_S } from "./auth/tokens.ts";
import { tlsProblems } from "./tls.ts";
import { etcdProblems } from "./cluster/etcd/settings.ts";
import { configSettings, settingsFrom } from "./configSettings.ts";
import { NODE_ID_PATTERN, REGION_ID_PATTERN } from "../proto/ids.ts";
import { failoverDefaults, failoverSettings, handoffDefaults, handoffSettings } from "./handoff/settings.ts";
import { voiceDefaults, voiceSettings } from "./voice/settings.ts";


export const configSchema = z.object({
  /** Region this node belongs to; nodes of one region share presence and driver. */
  regionId: z.string().regex(REGION_ID_PATTERN, "lowercase letters, digits and '-', e.g. jp-tokyo"),
  /** Unique node id inside the cluster. Default: region, host and a random suffix. */
  nodeId: z.string().regex(NODE_ID_PATTERN, "letters, digits, '_', '.', '-'").optional(),
  /** Interface the HTTP/WebSocket listener binds to. */
  host: z.string().min(1),
  /** Listen port; 0 picks a free one (tests). */
  port: z.number().int().min(0).max(65535),
  /** `host:port` clients use to reach this node. Default: the bound host and port. */
  publicAddress: z.string().regex(/^[^\s/:]+(:\d{1,5})?(\/[^\s]*)?$/, "host:port, without a scheme").optional(),
  /** WebSocket transport: uWebSockets.js (default) or the `ws` fallback. */
  transport: z.enum(["uws", "ws"]),
  /**
   * Redis of this region (presence, matchmaking driver): a URL, or a Sentinel address
   * (server/redisAddress.ts) whose primary the node follows through a failover. Unset:
   * embedded single-node mode.
   */
  redisUrl: redisUrlShape.optional(),
  /** The sentinels of the region Redis, `host:port` each; with redisMasterName, they make redisUrl's Sentinel form. */
  redisSentinels: z.array(z.string()).optional(),
  /** The name the sentinels monitor the region Redis under. */
  redisMasterName: z.string().optional(),
  /** Redis shared by all regions (node registry, room directory). Default: redisUrl. */
  clusterRedisUrl: redisUrlShape.optional(),
  /** Names the cluster's keys in the shared Redis, so several clusters can share one server. */
  clusterName: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "letters, digits, '_' and '-'"),
  /** Region topology file (the `regions.json` format): region ids and inter-region RTTs. */
  regionsFile: z.string().min(1).optional(),
  /**
   * The cluster secret, shared by all nodes of the cluster; the token, device and
   * room-option keys derive from it (server/auth/keys.ts). Required outside dev mode.
   * Prefer the environment or `authSecretFile`: a flag shows in the process list.
   */
  authSecret: z.string().min(MIN_SECRET_LENGTH, `at least ${MIN_SECRET_LENGTH} characters`).optional(),
  /** A file holding the cluster secret (surrounding whitespace ignored), instead of authSecret. */
  authSecretFile: z.string().min(1).optional(),
  /** Tokens issued (`iat`) longer ago than this are refused, whatever their expiry, s. */
  tokenMaxAgeSeconds: z.number().int().min(60).max(31 * 86_400),
  /**
   * Dev mode: `/dev/token` and `/dev/device` exist and, without authSecret, a fixed dev
   * secret is used. Only without Redis and on a loopback host (the default there);
   * asking for it anywhere else is refused.
   */
  devMode: z.boolean().optional(),
  /** npm start (demo/main.ts) only: open the demo rooms, bots and simulated devices beside the node. */
  demo: z.boolean(),
  logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]),
  /** Log lines as JSON, or human-readable (pino-pretty); `auto`: readable at a terminal, JSON otherwise. */
  logFormat: z.enum(LOG_FORMATS),
  limits: z.object({
    /** Largest WebSocket frame accepted; larger frames close the socket with 1009. */
    maxFrameBytes: z.number().int().min(256).max(16 * 1024 * 1024),
    /** Messages a client may send per second before excess is dropped with RATE_LIMITED. */
    maxMessagesPerSecond: z.number().int().min(1).max(100_000),
    /** Matchmaking requests one client address, and one token subject, may make per second (burst = 2×). */
    maxMatchmakePerSecond: z.number().int().min(1).max(100_000),
    /** Clients this node accepts before it counts as overloaded for placement. */
    maxCcu: z.number().int().min(0),
    /** Rooms this node hosts before it counts as overloaded for placement. */
    maxRooms: z.number().int().min(0),
    /** Event-loop lag above which the node counts as overloaded. */
    maxEventLoopLagMs: z.number().min(1),
  }),
  cluster: z.object({
    /** How often the node refreshes its registry entry. */
    heartbeatMs: z.number().int().min(50),
    /** A node whose entry is older than this is dead. */
    nodeTtlMs: z.number().int().min(150),
    /** Timeout of a request forwarded to another region. */
    forwardTimeoutMs: z.number().int().min(100),
    /**
     * `nodeId=host:port` entries: reach that node at this address instead of the public
     * address it registered, for every node-to-node call (an internal load balancer, a
     * tunnel, or the test harness' delay proxies between regions).
     */
    peerRoutes: z.array(z.string().regex(/^[A-Za-z0-9._-]{1,128}=[^\s/:=]+:\d{1,5}$/, "nodeId=host:port")).max(1000),
  }).refine((c) => c.nodeTtlMs >= 2 * c.heartbeatMs, { message: "nodeTtlMs must be at least 2 × heartbeatMs", path: ["nodeTtlMs"] }),
  /** Rooms moving between nodes and regions, and coming back after a node is lost (server/handoff/settings.ts). */
  handoff: handoffSettings,
  failover: failoverSettings,
  /** Voice on the node's Janus (server/voice/settings.ts). */
  voice: voiceSettings,
  /** Upper bound of a SIGTERM drain before the process exits anyway. */
  drainTimeoutMs: z.number().int().min(0),
  /**
   * TLS of the client listener (https, wss) and, unless the gateway has its own, of the
   * device gateway; and the CA that node-to-node calls trust. Required outside dev mode
   * unless the node binds loopback only (server/tls.ts).
   */
  tls: z.object({
    /** PEM certificate chain of this node (its public address must be in it). */
    certFile: z.string().min(1).optional(),
    /** PEM private key of certFile. */
    keyFile: z.string().min(1).optional(),
    /** PEM CA certificates that other nodes' certificates chain to (node-to-node calls). Default: the system's. */
    caFile: z.string().min(1).optional(),
  }),
  /** The HTTP edge of the client port (server/http/HttpEdge.ts). */
  http: z.object({
    /**
     * Web origins (`https://app.example`) allowed to read the public routes from a browser
     * (CORS); `*` allows any origin, without credentials. Empty: none, or in dev mode the
     * loopback origins (`http://localhost:PORT`, `http://127.0.0.1:PORT`, `http://[::1]:PORT`).
     */
    corsOrigins: z.array(z.string().regex(/^(\*|https?:\/\/[^\s/]+)$/, "an origin such as https://app.example (scheme, host and port; no path), or *")).max(100),
    /** A request body must have arrived whole this long after its headers, or it is refused 408 and the connection closed, ms. */
    readTimeoutMs: z.number().int().min(100).max(600_000),
    /** Bearer token of `GET /metrics`. Unset: /metrics answers loopback peers only. */
    metricsToken: z.string().min(32, "at least 32 characters").optional(),
    /** Addresses of the reverse proxies in front of the node: only from these is `X-Forwarded-For` believed (per-address limits). */
    trustedProxies: z.array(z.string().refine((address) => isIP(address) !== 0, "an IP address")).max(100),
  }),
  /** The device gateway: where edge adapters connect (its own uWS listener). */
  gateway: z.object({
    /** Listen port of the device channel; 0 picks a free one (tests). */
    port: z.number().int().min(0).max(65535),
    /** `host:port` adapters use to reach the gateway. Default: the public host and the bound gateway port. */
    publicAddress: z.string().regex(/^[^\s/:]+(:\d{1,5})?$/, "host:port, without a scheme").optional(),
    /** An adapter that has not proved its credential within this long is disconnected. */
    helloTimeoutMs: z.number().int().min(100).max(60_000),
    /** Online devices' credentials are checked again this often: a revoked device is cut off within it. */
    revalidateMs: z.number().int().min(100).max(600_000),
    /** Frames per second one device connection may send before excess is dropped with RATE_LIMITED. */
    maxMessagesPerSecond: z.number().int().min(10).max(100_000),
    /** PEM certificate chain and key of the gateway's listener (wss), if not the node's (tls.certFile, tls.keyFile). */
    certFile: z.string().min(1).optional(),
    keyFile: z.string().min(1).optional(),
    /** Connections without a completed hello from one address; more are refused RATE_LIMITED (close 4429). */
    maxPendingPerAddress: z.number().int().min(1).max(100_000),
    /** Connections without a completed hello in all; more are refused RATE_LIMITED (close 4429). */
    maxPending: z.number().int().min(1).max(1_000_000),
    /**
     * PEM certificate of the cluster's device CA (npm run devices -- init-ca; never its key).
     * Set: the gateway also runs its certificate listener (CertificateListener), where devices
     * attach with a client certificate the CA issued. Needs the gateway's TLS files.
     */
    deviceCaFile: z.string().min(1).optional(),
    /** Listen port of the certificate listener; 0 picks a free one (tests). */
    certPort: z.number().int().min(0).max(65535),
    /** `host:port` adapters use to reach the certificate listener. Default: the public host and the bound port. */
    certPublicAddress: z.string().regex(/^[^\s/:]+(:\d{1,5})?$/, "host:port, without a scheme").optional(),
  }),
  teleop: z.object({
    /** Control lease lifetime without a command or heartbeat, ms. */
    leaseTtlMs: z.number().int().min(100).max(10_000),
    /** Telemetry fan-out rate to participants, Hz (never above what the device sends). */
    telemetryHz: z.number().min(0.1).max(100),
    /** Operator↔device round-trip budget when the device profile names none, ms. */
    defaultLatencyBudgetMs: z.number().int().min(5).max(10_000),
    /** How often the room measures each lease holder's round trip, ms. */
    rttProbeMs: z.number().int().min(20).max(10_000),
    /** A demoted operator may not take a lease again for this long, ms. */
    demotionMs: z.number().int().min(0).max(3_600_000),
  }),
  session: z.object({
    /**
     * Chat messages per second one `session` room relays from everyone together, and the
     * burst on top: each is broadcast to every participant, so this bounds the room's fan-out.
     */
    chatPerSecond: z.number().min(0.1).max(10_000),
    chatBurst: z.number().int().min(1).max(10_000),
  }),
  lobby: z.object({
    /** `filter` messages per second one lobby client may send (each answers with the whole list), and the burst on top. */
    filterPerSecond: z.number().min(0.1).max(100),
    filterBurst: z.number().int().min(1).max(1000),
  }),
  expo: z.object({
    /** One ExpoFrame per visitor every this many ms. */
    tickMs: z.number().int().min(10).max(1000),
    /** The tick's frames go out in this many slices spread over the tick (1: all at once). */
    tickSlices: z.number().int().min(1).max(100),
    /** Visitors see the visitors within this many metres. */
    interestRadius: z.number().min(1).max(1000),
    /** A booth is "near" within this many metres of its area. */
    boothRadius: z.number().min(0).max(1000),
    /** Proximity voice: a visitor hears the speakers within this many metres (rooms/expo/HallVoice). */
    hearingRadius: z.number().min(1).max(1000),
    /** Moves per second a visitor may send; excess is refused RATE_LIMITED. */
    maxMoveHz: z.number().int().min(1).max(100),
    /** Chat messages per second one visitor may send (sustained), and the burst on top. */
    chatPerSecond: z.number().min(0.01).max(100),
    chatBurst: z.number().int().min(1).max(1000),
    /** Hall-channel chat messages per second one hall accepts from everyone together. */
    hallChatPerSecond: z.number().min(0.1).max(10_000),
    /** Words the built-in moderation hook masks (config file only). */
    blockedWords: z.array(z.string().min(1).max(64)).max(10_000),
    /** The moderation hooks' answer is awaited this long before the chat is refused, ms. */
    moderationTimeoutMs: z.number().int().min(1).max(10_000),
    /** Heatmap cell edge, metres. */
    heatmapCellSize: z.number().min(0.5).max(1000),
    /** A visitor is handed to the next zone this many metres past the border (hysteresis). */
    handoffMargin: z.number().min(0).max(100),
    /** A visitor whose socket holds more than this unsent skips frames until it drains. */
    backpressureBytes: z.number().int().min(1024),
    /** A hall layout file to open when the node starts. */
    hallFile: z.string().min(1).optional(),
    /** A hall's keys (layout, register, bans, analytics...) expire this long after its last open zone last touched them, ms. */
    hallRetentionMs: z.number().int().min(60_000),
  }),
  audit: z.object({
    /** The node's audit journal, anchor file and archive live here (Redis mode). */
    dir: z.string().min(1),
    /** How often each audit log's head is anchored to a file outside Redis (and logged), and long streams archived, ms. */
    anchorMs: z.number().int().min(100).max(3_600_000),
    /** Entries an audit stream keeps in Redis; past this the oldest half is archived to files and trimmed. */
    maxEntries: z.number().int().min(10),
  }),
  /**
   * etcd, the cluster's ownership store (server/cluster/etcd): the node registry, the room
   * directory and device claims, on each node's lease. Without endpoints they stay in the
   * cluster Redis. Needs redisUrl: presence, matchmaking, devices and audit stay in Redis.
   */
  etcd: z.object({
    /** Client URLs of etcd members (`https://host:2379`), ideally members in different regions. */
    endpoints: z.array(z.string().regex(/^https?:\/\/[^\s/?#@]+\/?$/, "an etcd member's client URL, http(s)://host:port")).max(15),
    /** PEM CA that the members' certificates chain to. Default: the system's. */
    caFile: z.string().min(1).optional(),
    /** PEM client certificate and key, when etcd asks for one (--client-cert-auth). */
    certFile: z.string().min(1).optional(),
    keyFile: z.string().min(1).optional(),
    /** Bound on each etcd operation, its retries on other members included: without a quorum, calls fail within it, ms. */
    callTimeoutMs: z.number().int().min(100).max(60_000),
  }),
});

export type NodeConfig = z.infer<typeof configSchema> & {
  nodeId: string;
  devMode: boolean;
  /** Problems that do not stop the node (a secret passed as a flag); RegionNode logs each at start. */
  warnings: string[];
};
export type ConfigInput = z.input<typeof configSchema>;

export const defaults: ConfigInput = {
  regionId: "local",
  host: "127.0.0.1",
  port: 2567,
  transport: "uws",
  clusterName: "tsunagi",
  tokenMaxAgeSeconds: DEFAULT_TOKEN_MAX_AGE_S,
  demo: true,
  logLevel: "info",
  logFormat: "auto",
  limits: {
    maxFrameBytes: 64 * 1024,
    maxMessagesPerSecond: 120,
    maxMatchmakePerSecond: 50,
    maxCcu: 10_000,
    maxRooms: 2_000,
    maxEventLoopLagMs: 200,
  },
  cluster: {
    heartbeatMs: 250,
    nodeTtlMs: 900,
    forwardTimeoutMs: 3000,
    peerRoutes: [],
  },
  handoff: handoffDefaults,
  failover: failoverDefaults,
  voice: voiceDefaults,
  drainTimeoutMs: 10_000,
  tls: {},
  http: {
    corsOrigins: [],
    // Under uWS's own 10 s idle timeout, so a stalled upload is told 408 before uWS drops it.
    readTimeoutMs: 8000,
    trustedProxies: [],
  },
  gateway: {
    port: 2568,
    helloTimeoutMs: 5000,
    revalidateMs: 5000,
    maxMessagesPerSecond: 2000,
    maxPendingPerAddress: 16,
    maxPending: 512,
    // Beside README's two-region example (2567/2568 and 2569/2570).
    certPort: 2571,
  },
  teleop: {
    leaseTtlMs: 1000,
    telemetryHz: 10,
    defaultLatencyBudgetMs: 150,
    rttProbeMs: 250,
    demotionMs: 10_000,
  },
  session: {
    chatPerSecond: 20,
    chatBurst: 40,
  },
  lobby: {
    filterPerSecond: 2,
    filterBurst: 5,
  },
  expo: {
    // One frame per visitor per 100 ms: the cadence of visitors' moves (10 Hz). At 50 ms the
    // node made twice the socket writes for the same updates (docs/expo.md, "Frame cadence").
    tickMs: 100,
    tickSlices: 10,
    interestRadius: 20,
    boothRadius: 6,
    hearingRadius: 10,
    maxMoveHz: 20,
    chatPerSecond: 1,
    chatBurst: 5,
    hallChatPerSecond: 20,
    blockedWords: [],
    moderationTimeoutMs: 500,
    heatmapCellSize: 5,
    handoffMargin: 1,
    backpressureBytes: 256 * 1024,
    hallRetentionMs: 7 * 24 * 3_600_000,
  },
  audit: {
    dir: ".tsunagi/audit",
    anchorMs: 60_000,
    maxEntries: 100_000,
  },
  etcd: {
    endpoints: [],
    callTimeoutMs: 2000,
  },
};

/** Thrown for invalid configuration; `issues` lists one readable line per bad field. */
export class ConfigError extends Error {
  constructor(public readonly issues: string[]) {
    super(`invalid configuration:\n  ${issues.join("\n  ")}`);
    this.name = "ConfigError";
  }
}

function merge(base: Record<string, any>, over: Record<string, any>): Record<string, any> {
  const out: Record<string, any> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    out[key] = value && typeof value === "object" && !Array.isArray(value) && typeof out[key] === "object"
      ? merge(out[key], value)
      : value;
  }
  return out;
}

export interface LoadConfigOptions {
  argv?: string[];
  env?: NodeJS.ProcessEnv;
  /** Overrides applied after flags (tests and embedding). */
  overrides?: Record<string, unknown>;
}

/** Resolves the node configuration or throws ConfigError listing every bad field. */
export function loadConfig(options: LoadConfigOptions = {}): NodeConfig {
  const env = options.env ?? process.env;
  const issues: string[] = [];

  const flagOptions: Record<string, { type: "string" | "boolean" }> = { config: { type: "string" }, help: { type: "boolean" } };
  for (const s of configSettings) flagOptions[s.flag] = { type: "string" };
  let flags: Record<string, string | boolean | undefined> = {};
  try {
    flags = parseArgs({ args: options.argv ?? [], options: flagOptions, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new ConfigError([(error as Error).message]);
  }

  let merged: Record<string, any> = structuredClone(defaults) as Record<string, any>;

  const file = (flags.config as string | undefined) ?? env.TSUNAGI_CONFIG;
  if (file) {
    try {
      merged = merge(merged, JSON.parse(readFileSync(file, "utf8")));
    } catch (error) {
      throw new ConfigError([`config file ${file}: ${(error as Error).message}`]);
    }
  }

  const { fromEnv, fromFlags } = settingsFrom(env, flags, issues);
  merged = merge(merge(merge(merged, fromEnv), fromFlags), options.overrides ?? {});
  if (issues.length) throw new ConfigError(issues);

  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`));
  }
  const config = parsed.data;
  config.redisUrl = regionRedisAddress(config);
  const warnings: string[] = [];
  if (typeof flags["auth-secret"] === "string") {
    warnings.push(argvSecretWarning("--auth-secret", "TSUNAGI_AUTH_SECRET or --auth-secret-file"));
  }
  if (config.authSecretFile !== undefined) {
    if (config.authSecret !== undefined) throw new ConfigError(["authSecretFile: give authSecret or authSecretFile, not both"]);
    config.authSecret = secretFromFile(config.authSecretFile);
  }
  const devMode = resolveDevMode(config);
  if (!devMode && !config.authSecret) {
    throw new ConfigError(["authSecret: required outside dev mode (TSUNAGI_AUTH_SECRET or TSUNAGI_AUTH_SECRET_FILE)"]);
  }
  const tlsIssues = tlsProblems({ host: config.host, devMode, tls: config.tls, gateway: config.gateway });
  if (tlsIssues.length) throw new ConfigError(tlsIssues);
  const etcdIssues = etcdProblems(config.etcd, config.redisUrl);
  if (etcdIssues.length) throw new ConfigError(etcdIssues);
  const nodeId = config.nodeId ?? `${config.regionId}-${hostname().replace(/[^A-Za-z0-9_.-]/g, "")}-${randomBytes(3).toString("hex")}`;
  return { ...config, nodeId, devMode, warnings };
}

/** The region Redis: redisUrl, or the Sentinel address that redisSentinels and redisMasterName make. */
function regionRedisAddress(config: z.infer<typeof configSchema>): string | undefined {
  try {
    return redisAddressFrom({ url: config.redisUrl, sentinels: config.redisSentinels, masterName: config.redisMasterName }, { url: "redisUrl", sentinels: "redisSentinels", masterName: "redisMasterName" });
  } catch (error) {
    if (error instanceof RedisAddressError) throw new ConfigError([error.message]);
    throw error;
  }
}

/** A loopback address, or the name `localhost`. */
export function isLoopbackHost(host: string): boolean {
  return host.toLowerCase() === "localhost" || isLoopbackAddress(host);
}

/**
 * Dev mode (dev routes that mint any token and enrol any device, and the dev secret)
 * runs only on a node nobody else can reach and that shares nothing: without Redis and
 * on a loopback host. That is the default there and only there; asking for it anywhere
 * else is refused, never quietly dropped.
 */
function resolveDevMode(config: z.infer<typeof configSchema>): boolean {
  const redis = config.redisUrl ?? config.clusterRedisUrl;
  const loopback = isLoopbackHost(config.host);
  if (config.devMode === true) {
    const problems: string[] = [];
    if (redis !== undefined) problems.push(`devMode: refused with Redis (${redactRedisAddress(redis)}): dev mode lets anyone mint tokens and enrol devices, and a cluster must not run on it; drop --dev-mode and set an authSecret`);
    if (!loopback) problems.push(`devMode: refused on host ${config.host}: dev mode's routes hand out tokens and device secrets, so only a loopback host (127.0.0.1, ::1, localhost) may run it`);
    if (problems.length) throw new ConfigError(problems);
  }
  return config.devMode ?? (redis === undefined && loopback);
}

/** The cluster secret in `file`. */
function secretFromFile(file: string): string {
  let secret: string;
  try {
    secret = readSecretFile(file, "authSecretFile");
  } catch (error) {
    if (error instanceof SecretError) throw new ConfigError([error.message]);
    throw error;
  }
  if (secret.length < MIN_SECRET_LENGTH) throw new ConfigError([`authSecretFile ${file}: the secret must be at least ${MIN_SECRET_LENGTH} characters`]);
  return secret;
}
