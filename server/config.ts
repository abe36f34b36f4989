/**
 * Region node configuration: defaults → file → env (`TSUNAGI_*`) → flags, validated once
 * at start with zod. Every bad field is reported by name; `main.ts` exits with code 2.
 *
 * @example
 *   const config = loadConfig({ argv: ["--region-id", "jp-tokyo", "--port", "0"] });
 */
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { z } from "zod";
import { LOG_FORMATS } from "../common/logOutput.ts";

const regionIdPattern = /^[a-z0-9][a-z0-9-]{0,62}$/;

export const configSchema = z.object({
  /** Region this node belongs to; nodes of one region share presence and driver. */
  regionId: z.string().regex(regionIdPattern, "lowercase letters, digits and '-', e.g. jp-tokyo"),
  /** Unique node id inside the cluster. Default: region, host and a random suffix. */
  nodeId: z.string().regex(/^[A-Za-z0-9_.-]{1,100}$/, "letters, digits, '_', '.', '-'").optional(),
  /** Interface the HTTP/WebSocket listener binds to. */
  host: z.string().min(1),
  /** Listen port; 0 picks a free one (tests). */
  port: z.number().int().min(0).max(65535),
  /** `host:port` clients use to reach this node. Default: the bound host and port. */
  publicAddress: z.string().regex(/^[^\s/:]+(:\d{1,5})?(\/[^\s]*)?$/, "host:port, without a scheme").optional(),
  /** WebSocket transport: uWebSockets.js (default) or the `ws` fallback. */
  transport: z.enum(["uws", "ws"]),
  /** Redis of this region (presence, matchmaking driver). Unset: embedded single-node mode. */
  redisUrl: z.string().regex(/^rediss?:\/\//, "a redis:// or rediss:// URL").optional(),
  /** Redis shared by all regions (node registry, room directory). Default: redisUrl. */
  clusterRedisUrl: z.string().regex(/^rediss?:\/\//, "a redis:// or rediss:// URL").optional(),
  /** Names the cluster's keys in the shared Redis, so several clusters can share one server. */
  clusterName: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "letters, digits, '_' and '-'"),
  /** Region topology file (the `regions.json` format): region ids and inter-region RTTs. */
  regionsFile: z.string().min(1).optional(),
  /** HMAC secret for tokens, shared by all nodes of the cluster. Required outside dev mode. */
  authSecret: z.string().min(32, "at least 32 characters").optional(),
  /** Dev mode: `/dev/token` exists and a fixed dev secret is used. Default: on without Redis. */
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
    /** Matchmaking requests one remote address may make per second (burst = 2×). */
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
  }).refine((c) => c.nodeTtlMs >= 2 * c.heartbeatMs, { message: "nodeTtlMs must be at least 2 × heartbeatMs", path: ["nodeTtlMs"] }),
  /** Upper bound of a SIGTERM drain before the process exits anyway. */
  drainTimeoutMs: z.number().int().min(0),
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
  expo: z.object({
    /** One ExpoFrame per visitor every this many ms. */
    tickMs: z.number().int().min(10).max(1000),
    /** The tick's frames go out in this many slices spread over the tick (1: all at once). */
    tickSlices: z.number().int().min(1).max(100),
    /** Visitors see the visitors within this many metres. */
    interestRadius: z.number().min(1).max(1000),
    /** A booth is "near" within this many metres of its area. */
    boothRadius: z.number().min(0).max(1000),
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
  }),
});

export type NodeConfig = z.infer<typeof configSchema> & { nodeId: string; devMode: boolean };
export type ConfigInput = z.input<typeof configSchema>;

export const defaults: ConfigInput = {
  regionId: "local",
  host: "127.0.0.1",
  port: 2567,
  transport: "uws",
  clusterName: "tsunagi",
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
    heartbeatMs: 1000,
    nodeTtlMs: 3000,
    forwardTimeoutMs: 3000,
  },
  drainTimeoutMs: 10_000,
  http: {
    corsOrigins: [],
    // Under uWS's own 10 s idle timeout, so a stalled upload is told 408 before uWS drops it.
    readTimeoutMs: 8000,
  },
  gateway: {
    port: 2568,
    helloTimeoutMs: 5000,
    revalidateMs: 5000,
    maxMessagesPerSecond: 2000,
  },
  teleop: {
    leaseTtlMs: 1000,
    telemetryHz: 10,
    defaultLatencyBudgetMs: 150,
    rttProbeMs: 250,
    demotionMs: 10_000,
  },
  expo: {
    // One frame per visitor per 100 ms: the cadence of visitors' moves (10 Hz). At 50 ms the
    // node made twice the socket writes for the same updates (docs/expo.md, "Frame cadence").
    tickMs: 100,
    tickSlices: 10,
    interestRadius: 20,
    boothRadius: 6,
    maxMoveHz: 20,
    chatPerSecond: 1,
    chatBurst: 5,
    hallChatPerSecond: 20,
    blockedWords: [],
    moderationTimeoutMs: 500,
    heatmapCellSize: 5,
    handoffMargin: 1,
    backpressureBytes: 256 * 1024,
  },
};

/** Thrown for invalid configuration; `issues` lists one readable line per bad field. */
export class ConfigError extends Error {
  constructor(public readonly issues: string[]) {
    super(`invalid configuration:\n  ${issues.join("\n  ")}`);
    this.name = "ConfigError";
  }
}

/** One entry per leaf setting: env name, flag name, path in the config object, kind. */
type Kind = "string" | "int" | "number" | "bool" | "list";
const settings: Array<{ path: string[]; kind: Kind; flag: string; env: string; doc: string }> = [];
function setting(path: string, kind: Kind, doc: string) {
  const parts = path.split(".");
  const flag = parts.map((p) => p.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase())).join("-");
  const env = "TSUNAGI_" + flag.replace(/-/g, "_").toUpperCase();
  settings.push({ path: parts, kind, flag, env, doc });
}
setting("regionId", "string", "region id");
setting("nodeId", "string", "node id");
setting("host", "string", "bind address");
setting("port", "int", "listen port (0 = any free port)");
setting("publicAddress", "string", "host:port clients use to reach this node");
setting("transport", "string", "uws or ws");
setting("redisUrl", "string", "region Redis URL");
setting("clusterRedisUrl", "string", "cluster-wide Redis URL");
setting("clusterName", "string", "key namespace in the cluster Redis");
setting("regionsFile", "string", "region topology JSON file");
setting("authSecret", "string", "token HMAC secret (≥ 32 chars)");
setting("devMode", "bool", "enable /dev/token and the dev secret");
setting("demo", "bool", "npm start (demo/main.ts): open the demo rooms, bots and simulated devices");
setting("logLevel", "string", "pino log level");
setting("logFormat", "string", "auto (readable at a terminal, JSON otherwise), json or pretty");
setting("limits.maxFrameBytes", "int", "largest accepted frame in bytes");
setting("limits.maxMessagesPerSecond", "int", "per-client message rate limit");
setting("limits.maxMatchmakePerSecond", "int", "per-address matchmaking rate limit");
setting("limits.maxCcu", "int", "clients before the node counts as overloaded");
setting("limits.maxRooms", "int", "rooms before the node counts as overloaded");
setting("limits.maxEventLoopLagMs", "number", "event-loop lag before the node counts as overloaded");
setting("cluster.heartbeatMs", "int", "registry heartbeat interval");
setting("cluster.nodeTtlMs", "int", "registry entry TTL");
setting("cluster.forwardTimeoutMs", "int", "cross-region request timeout");
setting("drainTimeoutMs", "int", "SIGTERM drain bound");
setting("http.corsOrigins", "list", "web origins allowed to read the public routes (CORS), comma-separated");
setting("http.readTimeoutMs", "int", "a request body must arrive within this, ms (else 408)");
setting("http.metricsToken", "string", "bearer token of GET /metrics (unset: loopback peers only)");
setting("gateway.port", "int", "device gateway listen port (0 = any free port)");
setting("gateway.publicAddress", "string", "host:port adapters use to reach the gateway");
setting("gateway.helloTimeoutMs", "int", "time an adapter has to prove its credential");
setting("gateway.revalidateMs", "int", "how often connected devices' credentials are checked again (revocation)");
setting("gateway.maxMessagesPerSecond", "int", "per-device frame rate limit");
setting("teleop.leaseTtlMs", "int", "control lease lifetime without renewal");
setting("teleop.telemetryHz", "number", "telemetry fan-out rate to participants");
setting("teleop.defaultLatencyBudgetMs", "int", "operator-device round-trip budget when the profile names none");
setting("teleop.rttProbeMs", "int", "lease holder round-trip probe interval");
setting("teleop.demotionMs", "int", "how long a demoted operator may not take a lease");
setting("expo.tickMs", "int", "expo frame interval per visitor, ms");
setting("expo.tickSlices", "int", "slices the tick's frames are spread over");
setting("expo.interestRadius", "number", "metres within which visitors see each other");
setting("expo.boothRadius", "number", "metres from a booth's area within which it is near");
setting("expo.maxMoveHz", "int", "moves per second a visitor may send");
setting("expo.chatPerSecond", "number", "chat messages per second per visitor");
setting("expo.chatBurst", "int", "chat burst per visitor");
setting("expo.hallChatPerSecond", "number", "hall-channel chat messages per second per hall");
setting("expo.moderationTimeoutMs", "int", "bound on the moderation hooks' answer");
setting("expo.heatmapCellSize", "number", "analytics heatmap cell edge, metres");
setting("expo.handoffMargin", "number", "metres past a zone border before the handoff");
setting("expo.backpressureBytes", "int", "unsent bytes above which a visitor skips frames");
setting("expo.hallFile", "string", "hall layout file to open at start");

export const configSettings: ReadonlyArray<{ flag: string; env: string; doc: string }> = settings;

function convert(raw: string, kind: Kind, where: string, issues: string[]): unknown {
  if (kind === "string") return raw;
  if (kind === "list") return raw.split(",").map((item) => item.trim()).filter(Boolean);
  if (kind === "bool") {
    if (/^(1|true|yes|on)$/i.test(raw)) return true;
    if (/^(0|false|no|off)$/i.test(raw)) return false;
    issues.push(`${where}: expected true or false, got "${raw}"`);
    return undefined;
  }
  const value = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(value) || (kind === "int" && !Number.isInteger(value))) {
    issues.push(`${where}: expected ${kind === "int" ? "an integer" : "a number"}, got "${raw}"`);
    return undefined;
  }
  return value;
}

function setPath(target: Record<string, any>, path: string[], value: unknown) {
  let node = target;
  for (const key of path.slice(0, -1)) node = node[key] ??= {};
  node[path[path.length - 1]] = value;
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
  for (const s of settings) flagOptions[s.flag] = { type: "string" };
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

  const fromEnv: Record<string, any> = {};
  const fromFlags: Record<string, any> = {};
  for (const s of settings) {
    const envValue = env[s.env];
    if (envValue !== undefined && envValue !== "") setPath(fromEnv, s.path, convert(envValue, s.kind, s.env, issues));
    const flagValue = flags[s.flag];
    if (typeof flagValue === "string") setPath(fromFlags, s.path, convert(flagValue, s.kind, `--${s.flag}`, issues));
  }
  merged = merge(merge(merge(merged, fromEnv), fromFlags), options.overrides ?? {});
  if (issues.length) throw new ConfigError(issues);

  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`));
  }
  const config = parsed.data;
  const devMode = config.devMode ?? config.redisUrl === undefined;
  if (!devMode && !config.authSecret) {
    throw new ConfigError(["authSecret: required outside dev mode (TSUNAGI_AUTH_SECRET or --auth-secret)"]);
  }
  const nodeId = config.nodeId ?? `${config.regionId}-${hostname().replace(/[^A-Za-z0-9_.-]/g, "")}-${randomBytes(3).toString("hex")}`;
  return { ...config, nodeId, devMode };
}

export function usage(): string {
  const lines = settings.map((s) => `  --${s.flag.padEnd(30)} ${s.env.padEnd(38)} ${s.doc}`);
  return [
    "Usage: npm start -- [--config FILE] [flags]",
    "",
    "  flag                             env                                    meaning",
    ...lines,
    "",
    "Precedence: defaults < config file (--config / TSUNAGI_CONFIG) < env < flags.",
  ].join("\n");
}
