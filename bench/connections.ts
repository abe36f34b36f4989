/**
 * Connections bench: N stock-SDK clients join through matchmaking, each with its own
 * token, into `session` rooms (200 seats) on one region node, and stay connected, idle.
 * In the same run the same load joins the vanilla Colyseus room (no auth, no state) on
 * the same uWS transport: the baseline; and the vanilla room holding the `session` room's
 * participant list (the state baseline), which its clients decode as a `session` room's
 * do, so that ratio isolates what Tsunagi adds to a join (token, scope, directory, guards).
 * Tokens are fetched before the clock starts.
 *
 * Figures: join rate and its ratio to the baseline's, and the server's CPU time per join
 * (the rate swings with whatever else the machine runs; CPU per join much less); memory per connection beyond the
 * empty server (after a warm-up round and full GCs on both sides); /ping's p99 while
 * the clients join (loaded) and once they all sit connected (idle).
 *
 * The node's per-address matchmaking limit is raised above the load: one load process
 * is one address, where a real crowd comes from thousands.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { z } from "zod";
import { defineBench } from "./lib/bench.ts";
import { BenchChild, serverAndLoadCpus } from "./lib/child-process.ts";
import type { ConnectionsLoadConfig, JoinFigures, MemoryFigures } from "./lib/connections-protocol.ts";
import { vanillaRoomName, vanillaStateRoomName } from "./lib/connections-protocol.ts";
import type { NodeReady } from "./lib/control-protocol.ts";
import { log, procCpuMs, round } from "./lib/measure.ts";

const options = z.object({
  connections: z.coerce.number().int().min(10).max(19_000).default(10_000),
  /** Joins in flight at once. */
  concurrency: z.coerce.number().int().min(1).max(1000).default(50),
  /** Clients joined and left before the empty server's memory is taken, so join code and pools are warm on both sides. */
  warmup: z.coerce.number().int().min(0).default(500),
});
type Options = z.output<typeof options>;
type Side = "tsunagi" | "vanilla" | "vanilla-state";
const sideRoomName: Record<Side, string> = { tsunagi: "session", vanilla: vanillaRoomName, "vanilla-state": vanillaStateRoomName };

interface SideFigures {
  joins: JoinFigures;
  joinsPerS: number;
  /** Server CPU time per join, ms: holds on a busy machine, where the join rate does not. */
  cpuMsPerJoin: number;
  /** The load process's CPU time per join, ms: the SDK's side (a stateful room's clients decode its state). */
  loadCpuMsPerJoin: number;
  rssBytesPerConnection: number;
  heapBytesPerConnection: number;
  stillOpen: number;
  pingP99MsLoaded?: number;
  pingP99MsIdle?: number;
}

export const connectionsBench = defineBench({
  description: "N idle clients through matchmaking with tokens on one node, against the vanilla Colyseus room: joins/s, bytes per connection, /ping p99",
  options,
  timeoutSeconds: (o) => 180 + Math.ceil(o.connections / 15),
  async run(o: Options) {
    const baseline = await measureSide("vanilla", o);
    const stateBaseline = await measureSide("vanilla-state", o);
    const tsunagi = await measureSide("tsunagi", o);
    return {
      bench: "connections",
      connections: o.connections,
      joinsPerS: round(tsunagi.joinsPerS, 1),
      baselineJoinsPerS: round(baseline.joinsPerS, 1),
      joinRatio: round(tsunagi.joinsPerS / baseline.joinsPerS, 3),
      cpuMsPerJoin: round(tsunagi.cpuMsPerJoin, 3),
      baselineCpuMsPerJoin: round(baseline.cpuMsPerJoin, 3),
      cpuPerJoinRatio: round(tsunagi.cpuMsPerJoin / baseline.cpuMsPerJoin, 2),
      // Against the vanilla room with the same participant list: the clients do the same decoding on both sides.
      stateBaselineJoinsPerS: round(stateBaseline.joinsPerS, 1),
      stateJoinRatio: round(tsunagi.joinsPerS / stateBaseline.joinsPerS, 3),
      stateBaselineCpuMsPerJoin: round(stateBaseline.cpuMsPerJoin, 3),
      stateCpuPerJoinRatio: round(tsunagi.cpuMsPerJoin / stateBaseline.cpuMsPerJoin, 2),
      loadCpuMsPerJoin: round(tsunagi.loadCpuMsPerJoin, 3),
      baselineLoadCpuMsPerJoin: round(baseline.loadCpuMsPerJoin, 3),
      // The share of one core the load process used while joining: near 100, the rates measure the load generator, not the server.
      loadCpuPct: round(100 * tsunagi.loadCpuMsPerJoin * tsunagi.joinsPerS / 1000, 0),
      baselineLoadCpuPct: round(100 * baseline.loadCpuMsPerJoin * baseline.joinsPerS / 1000, 0),
      rssBytesPerConnection: Math.round(tsunagi.rssBytesPerConnection),
      baselineRssBytesPerConnection: Math.round(baseline.rssBytesPerConnection),
      heapBytesPerConnection: Math.round(tsunagi.heapBytesPerConnection),
      baselineHeapBytesPerConnection: Math.round(baseline.heapBytesPerConnection),
      pingP99MsIdle: tsunagi.pingP99MsIdle,
      pingP99MsLoaded: tsunagi.pingP99MsLoaded,
      joined: tsunagi.joins.joined,
      failed: tsunagi.joins.failed,
      stillOpen: tsunagi.stillOpen,
      baselineJoined: baseline.joins.joined,
      baselineFailed: baseline.joins.failed,
      errors: { ...tsunagi.joins.errors },
      baselineErrors: { ...baseline.joins.errors },
      stateBaselineFailed: stateBaseline.joins.failed,
    };
  },
});

async function measureSide(side: Side, o: Options): Promise<SideFigures> {
  const cpus = serverAndLoadCpus();
  const started: BenchChild[] = [];
  try {
    log(`${side}: starting the server`);
    const { url, server } = await startServer(side, o, cpus?.server);
    started.push(server);
    const loadConfig = (connections: number): ConnectionsLoadConfig => ({
      url, connections, concurrency: o.concurrency,
      roomName: sideRoomName[side],
      tokenUrl: side === "tsunagi" ? `${url}/dev/token` : undefined,
    });

    if (o.warmup > 0) {
      log(`${side}: warm-up, ${o.warmup} clients join and leave`);
      const warm = await BenchChild.start<null>(`${side} warm-up`, "bench/lib/connections-load.ts", loadConfig(o.warmup), undefined, cpus?.load);
      started.push(warm.child);
      await warm.child.call("joinAll");
      await warm.child.call("leaveAll");
      warm.child.kill();
      await sleep(2000); // the rooms empty and dispose
    }
    const empty = await server.call<MemoryFigures>("memory");

    log(`${side}: fetching ${o.connections} tokens`);
    const load = await BenchChild.start<null>(`${side} load`, "bench/lib/connections-load.ts", loadConfig(o.connections), undefined, cpus?.load);
    started.push(load.child);

    log(`${side}: joining ${o.connections} clients, ${o.concurrency} at a time`);
    const loadedPings = side === "tsunagi" ? pingWhile(url) : undefined;
    const cpuBefore = await procCpuMs(server.pid);
    const loadCpuBefore = await procCpuMs(load.child.pid);
    const joins = await load.child.call<JoinFigures>("joinAll");
    const cpuMs = await procCpuMs(server.pid) - cpuBefore;
    const loadCpuMs = await procCpuMs(load.child.pid) - loadCpuBefore;
    const pingP99MsLoaded = await loadedPings?.stop();
    log(`${side}: ${joins.joined} joined in ${joins.seconds.toFixed(1)} s, ${joins.failed} failed`);

    await sleep(2000); // settle: seat reservations expire, listings are written
    const pingP99MsIdle = side === "tsunagi" ? await pingIdle(url, 300) : undefined;
    const full = await server.call<MemoryFigures>("memory");
    const stillOpen = await load.child.call<number>("open");
    const joined = Math.max(1, joins.joined);
    return {
      joins,
      joinsPerS: joins.joined / joins.seconds,
      cpuMsPerJoin: cpuMs / joined,
      loadCpuMsPerJoin: loadCpuMs / joined,
      rssBytesPerConnection: (full.rss - empty.rss) / joined,
      heapBytesPerConnection: (full.heapUsed + full.external - empty.heapUsed - empty.external) / joined,
      stillOpen,
      pingP99MsLoaded,
      pingP99MsIdle,
    };
  } finally {
    for (const child of started.reverse()) child.kill();
  }
}

async function startServer(side: Side, o: Options, cpus?: string): Promise<{ url: string; server: BenchChild }> {
  if (side !== "tsunagi") {
    const { child, ready } = await BenchChild.start<{ port: number }>("vanilla server", "bench/lib/vanilla-room-server.ts", null, undefined, cpus);
    return { url: `http://127.0.0.1:${ready.port}`, server: child };
  }
  const flags = ["--port", "0", "--gateway-port", "0", "--host", "127.0.0.1", "--transport", "uws", "--demo", "false", "--log-level", "warn",
    "--limits-max-ccu", String(o.connections * 2), "--limits-max-rooms", String(Math.ceil(o.connections / 100) + 100),
    "--limits-max-matchmake-per-second", "100000"];
  const { child, ready } = await BenchChild.start<NodeReady>("node", "bench/lib/region-node.ts", flags, undefined, cpus);
  return { url: ready.httpUrl, server: child };
}

async function pingOnce(url: string): Promise<number> {
  const sent = performance.now();
  const response = await fetch(`${url}/ping`, { signal: AbortSignal.timeout(10_000) });
  await response.text();
  return performance.now() - sent;
}

/** /ping every 20 ms until stopped; resolves with the p99, ms. */
function pingWhile(url: string): { stop(): Promise<number> } {
  const samples: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      samples.push(await pingOnce(url).catch(() => 10_000));
      await sleep(20);
    }
  })();
  return { async stop() { running = false; await loop; return p99(samples); } };
}

async function pingIdle(url: string, count: number): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    samples.push(await pingOnce(url));
    await sleep(10);
  }
  return p99(samples);
}

function p99(samples: number[]): number {
  if (!samples.length) return 0;
  const sorted = [...samples].sort((a, b) => a - b);
  return round(sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]);
}
