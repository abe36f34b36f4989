/**
 * The mqtt bench's system under test, set up as test/integration/mqtt-sensors.test.ts
 * does, from the same test fixtures: a region node (server/main.ts) on a Redis database
 * it shares with others, under a cluster name of the run's own (`bench-mqtt-<runId>`),
 * a sensors device enrolled there, and its adapter process (devices/adapter/main.ts,
 * `--driver mqtt-sensors --driver-config FILE` with `{ site, url }`) on the bench's broker.
 *
 * Everything is undone by close(): the adapter and the node stopped, the driver config
 * removed, the cluster's Redis keys deleted. When the process exits without it
 * (`--timeout`, Ctrl-C), the fixtures SIGKILL the node and the adapter, and the exit
 * handler removes the config and deletes the keys (by a short Node process, waited for).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { enrollDevices, startAdapter, type AdapterProcess } from "../../test/fixtures/teleop.ts";
import { repoRoot, startNode, type NodeProcess } from "../../test/fixtures/processes.ts";
import { deleteKeys } from "../../test/fixtures/redis.ts";
import { testToken } from "../../test/fixtures/tokens.ts";
import { log } from "./measure.ts";

export const SENSORS_DEVICE = "site-sensors";

export interface RigOptions {
  runId: string;
  redisUrl: string;
  brokerUrl: string;
  adapterHz: number;
  roomHz: number;
  /** taskset CPU list for the node and the adapter; undefined: unpinned. */
  cpus?: string;
}

export interface Rig {
  clusterName: string;
  site: string;
  node: NodeProcess;
  adapter: AdapterProcess;
  /** A supervisor's token for the run's cluster. */
  supervisorToken(): Promise<string>;
  /** The driver's counters, from the adapter's status endpoint. */
  driverCounters(): Promise<DriverCounters>;
  close(): Promise<void>;
}

export interface DriverCounters {
  messages: number;
  malformed: number;
  refused: number;
}

/** Only loopback addresses take the bench's load or its keys. */
export function loopbackRedisUrl(url: string): string {
  const { protocol, hostname } = new URL(url);
  if (protocol !== "redis:" || !["127.0.0.1", "localhost", "[::1]"].includes(hostname)) {
    throw new Error(`--redis-url ${url}: a redis:// URL on a loopback address (127.0.0.1) only`);
  }
  return url;
}

export async function startRig(options: RigOptions): Promise<Rig> {
  const { runId, redisUrl } = options;
  const clusterName = `bench-mqtt-${runId}`;
  const site = `bench-${runId}`;
  const dir = mkdtempSync(path.join(tmpdir(), `tsunagi-bench-mqtt-${runId}-`));
  let node: NodeProcess | undefined;
  let adapter: AdapterProcess | undefined;
  // the fixtures' exit handlers, registered before this one, have SIGKILLed the node and the adapter by then
  const cleanUpAtExit = () => {
    rmSync(dir, { recursive: true, force: true });
    deleteKeysNow(redisUrl, `${clusterName}:*`);
  };
  process.once("exit", cleanUpAtExit);
  const close = async () => {
    await adapter?.stop(3000).catch(() => {});
    await node?.stop(5000).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
    await deleteKeys(redisUrl, [`${clusterName}:*`]);
    process.off("exit", cleanUpAtExit);
  };
  try {
    const secrets = await enrollDevices(redisUrl, clusterName, [[SENSORS_DEVICE, "sensors"]]);
    log(`setup: cluster ${clusterName} on ${redisUrl}; starting a node (room telemetry ${options.roomHz} Hz)`);
    node = await startNode({
      regionId: "jp-tokyo", redisUrl, clusterName, env: { TSUNAGI_LOG_LEVEL: "warn" }, extraArgs: ["--teleop-telemetry-hz", String(options.roomHz)],
    });
    if (options.cpus) pin(node.child.pid!, options.cpus, "the node");
    const driverConfig = path.join(dir, "driver.json");
    writeFileSync(driverConfig, JSON.stringify({ site, url: options.brokerUrl }));
    log(`setup: node ${node.nodeId} at ${node.httpUrl}; starting the adapter (mqtt-sensors, telemetry ${options.adapterHz} Hz)`);
    adapter = await startAdapter({
      deviceId: SENSORS_DEVICE, driver: "mqtt-sensors", nodes: [node.httpUrl], secret: secrets[SENSORS_DEVICE], telemetryHz: options.adapterHz,
      extraArgs: ["--driver-config", driverConfig],
    });
    if (options.cpus) pin(adapter.child.pid!, options.cpus, "the adapter");
    await adapter.waitForStatus((s) => s.state === "online" && (s.device as { connects?: number } | undefined)?.connects === 1, 30_000, "the adapter online and its driver subscribed");
  } catch (error) {
    await close().catch(() => {});
    throw error;
  }
  const started = { node, adapter };
  return {
    clusterName, site, ...started,
    supervisorToken: () => testToken(clusterName, "supervisor", `bench-supervisor-${runId}`),
    driverCounters: async () => countersOf((await started.adapter.status()).device),
    close,
  };
}

function countersOf(device: object | undefined): DriverCounters {
  const counters = device as { messages?: number; malformed?: Record<string, number>; refused?: Record<string, number> } | undefined;
  if (typeof counters?.messages !== "number") throw new Error(`the adapter's status has no driver counters: ${JSON.stringify(device)}`);
  const sum = (record: Record<string, number> | undefined) => Object.values(record ?? {}).reduce((total, n) => total + n, 0);
  return { messages: counters.messages, malformed: sum(counters.malformed), refused: sum(counters.refused) };
}

/** Puts every thread of `pid` (and those it starts) on `cpus`. */
export function pin(pid: number, cpus: string, what: string): void {
  const result = spawnSync("taskset", ["-a", "-p", "-c", cpus, String(pid)], { stdio: "ignore" });
  if (result.status !== 0) throw new Error(`taskset could not pin ${what} (pid ${pid}) to CPU ${cpus}`);
}

/** Deletes the keys matching `pattern` before this process is gone: a Node process of its own, waited for (5 s at most). */
function deleteKeysNow(redisUrl: string, pattern: string): void {
  const script = `import { Redis } from "ioredis";
const redis = new Redis(${JSON.stringify(redisUrl)}, { maxRetriesPerRequest: 1, connectTimeout: 2000 });
const keys = await redis.keys(${JSON.stringify(pattern)});
if (keys.length) await redis.del(...keys);
redis.disconnect();`;
  spawnSync(process.execPath, ["--input-type=module", "-e", script], { cwd: repoRoot, stdio: "ignore", timeout: 5000 });
}
