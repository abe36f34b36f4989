/**
 * The node's settings table: one row per leaf setting that env and flags may set, its
 * path in the config object and its kind. A row's flag (`--gateway-max-pending`) and env
 * name (`TSUNAGI_GATEWAY_MAX_PENDING`) follow from its path, so both are written once;
 * `usage()` prints the table, and `settingsFrom` turns env and flag text into config
 * values by kind. The schema, the defaults and their checks are config.ts's.
 *
 * @example
 *   setting("gateway.maxPending", "int", "device connections without a completed hello in all");
setting("gateway.deviceCaFile", "string", "PEM device CA: runs the certificate listener, where devices attach with a client certificate it issued");
setting("gateway.certPort", "int", "certificate listener port (0 = any free port); only with gateway.deviceCaFile");
setting("gateway.certPublicAddress", "string", "host:port adapters use to reach the certificate listener");
 *   const { fromEnv, fromFlags } = settingsFrom(process.env, flags, issues);
 */

/** How a setting's text is read: as is, an integer, a number, true/false, or a comma-separated list. */
type Kind = "string" | "int" | "number" | "bool" | "list";

/** One leaf setting: its path in the config object, its kind, its flag and env names, and a line for `--help`. */
export interface ConfigSetting {
  readonly path: readonly string[];
  readonly kind: Kind;
  readonly flag: string;
  readonly env: string;
  readonly doc: string;
}

const settings: ConfigSetting[] = [];
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
setting("redisUrl", "string", "region Redis: redis://, rediss:// or redis-sentinel://[:password@]host:port,.../masterName");
setting("redisSentinels", "list", "the sentinels watching the region Redis, host:port,... (with redisMasterName, instead of redisUrl)");
setting("redisMasterName", "string", "the name the sentinels monitor the region Redis under");
setting("clusterRedisUrl", "string", "cluster-wide Redis URL");
setting("clusterName", "string", "key namespace in the cluster Redis and etcd");
setting("regionsFile", "string", "region topology JSON file");
setting("authSecret", "string", "cluster secret (≥ 32 chars); prefer the env or --auth-secret-file");
setting("authSecretFile", "string", "file holding the cluster secret");
setting("tokenMaxAgeSeconds", "int", "tokens issued longer ago are refused, s");
setting("devMode", "bool", "dev routes and dev secret; loopback host without Redis only");
setting("demo", "bool", "npm start (demo/main.ts): open the demo rooms, bots and simulated devices");
setting("logLevel", "string", "pino log level");
setting("logFormat", "string", "auto (readable at a terminal, JSON otherwise), json or pretty");
setting("limits.maxFrameBytes", "int", "largest accepted frame in bytes");
setting("limits.maxMessagesPerSecond", "int", "per-client message rate limit");
setting("limits.maxMatchmakePerSecond", "int", "matchmaking rate limit per client address and per token subject");
setting("http.trustedProxies", "list", "comma-separated proxy addresses whose X-Forwarded-For is believed");
setting("limits.maxCcu", "int", "clients before the node counts as overloaded");
setting("limits.maxRooms", "int", "rooms before the node counts as overloaded");
setting("limits.maxEventLoopLagMs", "number", "event-loop lag before the node counts as overloaded");
setting("cluster.heartbeatMs", "int", "registry heartbeat interval");
setting("cluster.nodeTtlMs", "int", "registry entry TTL");
setting("cluster.peerRoutes", "list", "comma-separated nodeId=host:port: reach those nodes there instead of their public address");
setting("cluster.forwardTimeoutMs", "int", "cross-region request timeout");
setting("failover.snapshotMs", "int", "how often each room writes its snapshot for failover, ms (0: never)");
setting("failover.checkMs", "int", "how often each node looks for rooms whose node stopped heartbeating, ms (0: never)");
setting("failover.fallbackMs", "int", "how long the node chosen to restore a lost room has before any node of its region may, ms");
setting("failover.replicaRedisUrl", "string", "a Redis in another region keeping a replica of this region's snapshots");
setting("failover.snapshotTtlMs", "int", "how long a room's snapshot outlives its last write, ms");
setting("voice.mode", "string", "off, on (start Janus; fail without it) or auto (on when Janus is installed); npm start: auto");
setting("voice.host", "string", "where Janus' APIs listen: a loopback or private address");
setting("voice.rtpPortRange", "string", "Janus' media ports, min-max");
setting("voice.mediaInterfaces", "string", "where Janus gathers media candidates: interface names or address prefixes, comma-separated (\"\": all)");
setting("voice.janusUrl", "string", "an external Janus' API (ws://, private address); empty: the node starts its own");
setting("voice.janusAdminUrl", "string", "the external Janus' Admin API");
setting("voice.janusSecretsFile", "string", "a JSON file with the external Janus' apiSecret, adminSecret and adminKey");
setting("voice.grantTtlMs", "int", "how long a voice grant admits its holder, ms (≤ 60000)");
setting("handoff.seatSeconds", "int", "how long a moved session's seat in the room's new home waits for its client, s");
setting("handoff.rpcTimeoutMs", "int", "bound of each node-to-node handoff call, ms");
setting("handoff.maxSnapshotBytes", "int", "largest room snapshot sent or accepted, bytes");
setting("handoff.prepareTimeoutMs", "int", "how long a room opened from a snapshot waits for its Switch, ms");
setting("handoff.arrivalWaitMs", "int", "how long a handoff waits, before freezing the room, for its clients to take their seats in the target, ms");
setting("handoff.deviceSettleMs", "int", "how long a device stays on another region's gateway before its room follows it, ms");
setting("handoff.cooldownMs", "int", "least time between two moves of a room for the same cause, ms");
setting("handoff.placementCheckMs", "int", "how often rooms weigh their participants' round trips, ms (0: never move for them)");
setting("handoff.placementWindowMs", "int", "how long another region must stay better for a room's participants before it moves, ms");
setting("handoff.placementMinGainMs", "number", "least gain in the participants' mean round trip for a move, ms");
setting("handoff.placementMinGainRatio", "number", "least gain as a share of the current mean round trip");
setting("drainTimeoutMs", "int", "SIGTERM drain bound");
setting("tls.certFile", "string", "PEM certificate chain of the client listener (https/wss); and the gateway's unless it has its own");
setting("tls.keyFile", "string", "PEM private key of tls.certFile");
setting("tls.caFile", "string", "PEM CA that node-to-node calls trust (default: the system's)");
setting("http.corsOrigins", "list", "web origins allowed to read the public routes (CORS), comma-separated");
setting("http.readTimeoutMs", "int", "a request body must arrive within this, ms (else 408)");
setting("http.metricsToken", "string", "bearer token of GET /metrics (unset: loopback peers only)");
setting("gateway.port", "int", "device gateway listen port (0 = any free port)");
setting("gateway.publicAddress", "string", "host:port adapters use to reach the gateway");
setting("gateway.helloTimeoutMs", "int", "time an adapter has to prove its credential");
setting("gateway.revalidateMs", "int", "how often connected devices' credentials are checked again (revocation)");
setting("gateway.maxMessagesPerSecond", "int", "per-device frame rate limit");
setting("gateway.certFile", "string", "PEM certificate chain of the device gateway (wss), if not tls.certFile");
setting("gateway.keyFile", "string", "PEM private key of gateway.certFile");
setting("gateway.maxPendingPerAddress", "int", "device connections without a completed hello from one address");
setting("gateway.maxPending", "int", "device connections without a completed hello in all");
setting("gateway.deviceCaFile", "string", "PEM device CA: runs the certificate listener, where devices attach with a client certificate it issued");
setting("gateway.certPort", "int", "certificate listener port (0 = any free port); only with gateway.deviceCaFile");
setting("gateway.certPublicAddress", "string", "host:port adapters use to reach the certificate listener");
setting("teleop.leaseTtlMs", "int", "control lease lifetime without renewal");
setting("teleop.telemetryHz", "number", "telemetry fan-out rate to participants");
setting("teleop.defaultLatencyBudgetMs", "int", "operator-device round-trip budget when the profile names none");
setting("teleop.rttProbeMs", "int", "lease holder round-trip probe interval");
setting("teleop.demotionMs", "int", "how long a demoted operator may not take a lease");
setting("session.chatPerSecond", "number", "chat messages per second a session room relays from everyone together");
setting("session.chatBurst", "int", "chat burst of a session room");
setting("lobby.filterPerSecond", "number", "lobby filter messages per second per client");
setting("lobby.filterBurst", "int", "lobby filter burst per client");
setting("expo.tickMs", "int", "expo frame interval per visitor, ms");
setting("expo.tickSlices", "int", "slices the tick's frames are spread over");
setting("expo.interestRadius", "number", "metres within which visitors see each other");
setting("expo.boothRadius", "number", "metres from a booth's area within which it is near");
setting("expo.hearingRadius", "number", "metres within which visitors hear each other (proximity voice)");
setting("expo.maxMoveHz", "int", "moves per second a visitor may send");
setting("expo.chatPerSecond", "number", "chat messages per second per visitor");
setting("expo.chatBurst", "int", "chat burst per visitor");
setting("expo.hallChatPerSecond", "number", "hall-channel chat messages per second per hall");
setting("expo.moderationTimeoutMs", "int", "bound on the moderation hooks' answer");
setting("expo.heatmapCellSize", "number", "analytics heatmap cell edge, metres");
setting("expo.handoffMargin", "number", "metres past a zone border before the handoff");
setting("expo.backpressureBytes", "int", "unsent bytes above which a visitor skips frames");
setting("expo.hallFile", "string", "hall layout file to open at start");
setting("expo.hallRetentionMs", "int", "how long a closed (or abandoned) hall's keys stay in Redis, ms");
setting("audit.dir", "string", "directory of the node's audit journal, anchor file and archive");
setting("audit.anchorMs", "int", "how often audit heads are anchored to a file (and long streams archived), ms");
setting("audit.maxEntries", "int", "entries an audit stream keeps in Redis before the oldest half is archived and trimmed");
setting("etcd.endpoints", "list", "comma-separated etcd client URLs (https://host:2379): the cluster's registry, directory and device claims");
setting("etcd.caFile", "string", "PEM CA that etcd's certificates chain to (default: the system's)");
setting("etcd.certFile", "string", "PEM client certificate for etcd");
setting("etcd.keyFile", "string", "PEM private key of etcd.certFile");
setting("etcd.callTimeoutMs", "int", "bound on each etcd operation, ms: without quorum, calls fail within it");

export const configSettings: ReadonlyArray<ConfigSetting> = settings;

/**
 * The values env and flags set, by setting, as partial config objects (flags given as
 * text, by flag name). A value that does not read as its kind adds a line to `issues`.
 */
export function settingsFrom(env: NodeJS.ProcessEnv, flags: Record<string, string | boolean | undefined>, issues: string[]): { fromEnv: Record<string, any>; fromFlags: Record<string, any> } {
  const fromEnv: Record<string, any> = {};
  const fromFlags: Record<string, any> = {};
  for (const s of settings) {
    const envValue = env[s.env];
    if (envValue !== undefined && envValue !== "") setPath(fromEnv, s.path, convert(envValue, s.kind, s.env, issues));
    const flagValue = flags[s.flag];
    if (typeof flagValue === "string") setPath(fromFlags, s.path, convert(flagValue, s.kind, `--${s.flag}`, issues));
  }
  return { fromEnv, fromFlags };
}

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

function setPath(target: Record<string, any>, path: readonly string[], value: unknown) {
  let node = target;
  for (const key of path.slice(0, -1)) node = node[key] ??= {};
  node[path[path.length - 1]] = value;
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
