/**
 * Watching an expo bench phase: the nodes' own counters (GET /metrics), the CPU time of
 * every process involved (servers, loads, this process, Redis, the machine), and the
 * loads' progress, printed once a second while they run.
 */
import { availableParallelism } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import type { Redis } from "ioredis";
import type { BenchChild } from "./child-process.ts";
import { log, machineBusyMs, procCpuMs, round } from "./measure.ts";

const progressEveryMs = 1000;

interface Progress { sent: number; frames: number; updates: number; handoffs: number; lost: number; errors: Record<string, number> }
/** A server process under test; a region node also has its /metrics read at both ends of the window. */
export interface Server { label: string; child: BenchChild; httpUrl?: string }

/** The expo counters of a node's /metrics (server/observability/metrics.ts). */
interface NodeCounters {
  frames: number; framesSkipped: number; updates: number; ticks: number; tickSeconds: number; moves: number; movesRefused: number;
  handoffsReserved: number; handoffsFailed: number;
}

async function nodeCounters(httpUrl: string): Promise<NodeCounters | undefined> {
  try {
    const response = await fetch(`${httpUrl}/metrics`, { signal: AbortSignal.timeout(2000) });
    const text = await response.text();
    const value = (name: string) => {
      const match = text.match(new RegExp(`^${name} ([0-9.e+-]+)$`, "m"));
      return match ? Number(match[1]) : 0;
    };
    return {
      frames: value("tsunagi_expo_frames_total"), framesSkipped: value("tsunagi_expo_frames_skipped_total"),
      updates: value("tsunagi_expo_updates_total"), ticks: value("tsunagi_expo_ticks_total"), tickSeconds: value("tsunagi_expo_tick_seconds_total"),
      moves: value("tsunagi_expo_moves_total"), movesRefused: value("tsunagi_expo_moves_refused_total"),
      handoffsReserved: value('tsunagi_expo_handoffs_total\\{outcome="reserved"\\}'), handoffsFailed: value('tsunagi_expo_handoffs_total\\{outcome="failed"\\}'),
    };
  } catch {
    return undefined; // a busy node: its counters are left out of the report
  }
}

export async function readCounters(servers: Server[]): Promise<Array<NodeCounters | undefined>> {
  return Promise.all(servers.map((server) => (server.httpUrl ? nodeCounters(server.httpUrl) : Promise.resolve(undefined))));
}

/** What the nodes counted themselves during the window (summed over the nodes); undefined without nodes or when a read failed. */
export interface NodeWindow {
  /** Frames sent to visitors, and not sent to a backpressured one. */
  frames: number;
  framesSkipped: number;
  /** Neighbour entries sent: appeared + moved + gone. */
  updates: number;
  moves: number;
  movesRefused: number;
  handoffsReserved: number;
  handoffsFailed: number;
  /** Mean duration of one tick (every visitor's frame built and queued), per node, ms. */
  tickMsMean: number[];
}

export function nodeWindow(start: Array<NodeCounters | undefined>, end: Array<NodeCounters | undefined>): NodeWindow | undefined {
  if (start.length === 0 || start.some((c) => !c) || end.some((c) => !c)) return undefined;
  const deltas = end.map((after, i) => {
    const before = start[i]!;
    return Object.fromEntries(Object.entries(after!).map(([key, value]) => [key, value - before[key as keyof NodeCounters]])) as unknown as NodeCounters;
  });
  const sum = (key: keyof NodeCounters) => deltas.reduce((total, d) => total + d[key], 0);
  return {
    frames: sum("frames"), framesSkipped: sum("framesSkipped"), updates: sum("updates"), moves: sum("moves"), movesRefused: sum("movesRefused"),
    handoffsReserved: sum("handoffsReserved"), handoffsFailed: sum("handoffsFailed"),
    tickMsMean: deltas.map((d) => round(d.ticks ? (d.tickSeconds * 1000) / d.ticks : Number.NaN, 2)),
  };
}

/** Redis' own CPU time (INFO cpu), ms: the whole server, whoever else uses it. */
async function redisCpuMs(redis: Redis | undefined): Promise<number> {
  if (!redis) return 0;
  try {
    const info = await redis.info("cpu");
    const seconds = (name: string) => Number(info.match(new RegExp(`^${name}:([0-9.]+)`, "m"))?.[1] ?? 0);
    return (seconds("used_cpu_sys") + seconds("used_cpu_user")) * 1000;
  } catch {
    return Number.NaN;
  }
}

/** Cumulative CPU times, ms, of the servers, the loads, this process, Redis and the machine, read at `atMs`. */
export interface CpuSample { atMs: number; servers: number[]; loads: number[]; self: number; redis: number; machine: number }

export async function sampleCpu(servers: Server[], loads: BenchChild[], redis?: Redis): Promise<CpuSample> {
  const [serverMs, loadMs, self, redisMs, machine] = await Promise.all([
    Promise.all(servers.map((server) => procCpuMs(server.child.pid))),
    Promise.all(loads.map((load) => procCpuMs(load.pid))),
    procCpuMs(process.pid),
    redisCpuMs(redis),
    machineBusyMs(),
  ]);
  return { atMs: performance.now(), servers: serverMs, loads: loadMs, self, redis: redisMs, machine };
}

/** CPU time / wall time × 100 between two samples: 100 is one core. */
export function cpuPct(start: CpuSample, end: CpuSample) {
  const wallMs = end.atMs - start.atMs;
  const pct = (a: number, b: number) => ((b - a) / wallMs) * 100;
  const servers = end.servers.map((ms, i) => pct(start.servers[i]!, ms));
  const loads = end.loads.map((ms, i) => pct(start.loads[i]!, ms));
  const self = pct(start.self, end.self);
  const redis = pct(start.redis, end.redis);
  const machine = pct(start.machine, end.machine);
  const sum = (values: number[]) => values.reduce((total, value) => total + value, 0);
  return {
    servers, loads, self, redis, machine,
    /** Everything busy that is not a process of this bench (nor, in the zoned phase, Redis). */
    other: machine - sum(servers) - sum(loads) - self - (Number.isFinite(redis) ? redis : 0),
    serverMs: end.servers.reduce((total, ms, i) => total + ms - start.servers[i]!, 0),
  };
}

/** Asks every load for its counters, without waiting more than a second for a busy one. */
export async function progressOf(loads: BenchChild[]): Promise<Array<Progress | undefined>> {
  return Promise.all(loads.map((load) => Promise.race([
    load.call<Progress>("progress").catch(() => undefined),
    sleep(progressEveryMs, undefined).then(() => undefined),
  ])));
}

/** Loads for `seconds`, printing rates and CPU once a second. */
export async function watch(phase: string, what: string, seconds: number, servers: Server[], loads: BenchChild[], redis: Redis | undefined, signal?: AbortSignal): Promise<void> {
  const endAt = performance.now() + seconds * 1000;
  let cpu = await sampleCpu(servers, loads, redis);
  let counts = await progressOf(loads);
  let countsAt = performance.now();
  while (performance.now() < endAt - 50) {
    await sleep(Math.min(progressEveryMs, endAt - performance.now()), undefined, { signal });
    const [nextCpu, nextCounts] = await Promise.all([sampleCpu(servers, loads, redis), progressOf(loads)]);
    const nowMs = performance.now();
    const pct = cpuPct(cpu, nextCpu);
    const rate = (key: "sent" | "updates") => {
      let sum = 0;
      for (let i = 0; i < loads.length; i++) {
        const [a, b] = [counts[i], nextCounts[i]];
        if (!a || !b) return "?";
        sum += b[key] - a[key];
      }
      return Math.round(sum / ((nowMs - countsAt) / 1000)).toLocaleString("en");
    };
    const handoffs = nextCounts.every((c) => c) ? `; handoffs so far ${nextCounts.reduce((sum, c) => sum + c!.handoffs, 0)}` : "";
    log(`${phase} ${what}: sent ${rate("sent")}/s, delivered ${rate("updates")}/s${phase === "zones" ? handoffs : ""}; `
      + `CPU ${servers.map((s, i) => `${s.label} ${pct.servers[i]!.toFixed(0)}%`).join(", ")}; load ${pct.loads.map((p) => `${p.toFixed(0)}%`).join(" / ")}`
      + (redis ? `; redis ${pct.redis.toFixed(0)}%` : "")
      + `; machine ${pct.machine.toFixed(0)}% of ${availableParallelism() * 100}% (other work ≈${Math.max(0, pct.other).toFixed(0)}%)`
      + (nextCounts.some((c) => c === undefined) ? " (a load process did not answer within 1 s: it is busy)" : ""));
    cpu = nextCpu;
    if (nextCounts.every((c) => c !== undefined)) { counts = nextCounts; countsAt = nowMs; }
  }
}
