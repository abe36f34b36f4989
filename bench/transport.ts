/**
 * Transport bench: one vanilla Colyseus broadcast room, N clients each sending at `hz`,
 * every message broadcast to all N clients, run once on the uWS transport and once on
 * the ws transport. Server, load generator and this orchestrator are separate processes.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { z } from "zod";
import { defineBench } from "./lib/bench.ts";
import type { LoadConfig, LoadWindow, ServerReady, TransportKind } from "./lib/broadcast-protocol.ts";
import { BenchChild } from "./lib/child-process.ts";
import { machineBusyMs, procCpuMs, round } from "./lib/measure.ts";

export const transportBenchOptions = z.object({
  clients: z.coerce.number().int().min(1).default(50),
  hz: z.coerce.number().positive().max(1000).default(20),
  /** Length of the measurement window, per transport. */
  seconds: z.coerce.number().positive().default(5),
  /** Sending before the measurement window, per transport. */
  warmup: z.coerce.number().min(0).default(2),
});

export type TransportBenchOptions = z.output<typeof transportBenchOptions>;

export interface TransportFigures {
  deliveredPerS: number;
  p50Ms: number;
  p99Ms: number;
  serverCpuPct: number;
}

export interface TransportBenchResult {
  bench: "transport";
  clients: number;
  hz: number;
  seconds: number;
  uws: TransportFigures;
  ws: TransportFigures;
  ratioDelivered: number;
}

/** Above this CPU share of one core, the generator rather than the server may bound the figures. */
const generatorSaturatedCpuPct = 90;
/**
 * Above this CPU share of one core used outside the bench's processes, the machine was
 * not quiet. The estimate mixes tick-sampled machine totals with per-process times and
 * reads within about ±20% of a core on a quiet machine, hence the margin.
 */
const busyMachineCpuPct = 50;
/** Below this share of the intended send rate, the generator's timers are falling behind. */
const generatorBehindSendShare = 0.95;

export async function runTransportBench(options: Partial<TransportBenchOptions> = {}, signal?: AbortSignal): Promise<TransportBenchResult> {
  const resolved = transportBenchOptions.parse(options);
  const uws = await measureTransport("uws", resolved, signal);
  const ws = await measureTransport("ws", resolved, signal);
  return {
    bench: "transport",
    clients: resolved.clients,
    hz: resolved.hz,
    seconds: resolved.seconds,
    uws,
    ws,
    ratioDelivered: round(uws.deliveredPerS / ws.deliveredPerS),
  };
}

async function measureTransport(kind: TransportKind, options: TransportBenchOptions, signal?: AbortSignal): Promise<TransportFigures> {
  const started: BenchChild[] = [];
  try {
    log(`${kind}: starting server`);
    const server = await BenchChild.start<ServerReady>(`${kind} server`, "bench/lib/broadcast-server.ts", kind, signal);
    started.push(server.child);

    log(`${kind}: joining ${options.clients} clients on port ${server.ready.port}`);
    const loadConfig: LoadConfig = { url: `ws://127.0.0.1:${server.ready.port}`, clients: options.clients, hz: options.hz };
    const load = await BenchChild.start<null>(`${kind} load`, "bench/lib/broadcast-load.ts", loadConfig, signal);
    started.push(load.child);

    log(`${kind}: warming up for ${options.warmup} s, then measuring for ${options.seconds} s`);
    await sleep(options.warmup * 1000, undefined, { signal });
    // CPU times come from /proc: an overloaded child's event loop can stall for seconds, IPC included.
    const cpuAtStart = await sampleCpu(server.child.pid, load.child.pid);
    await load.child.call("startWindow");
    await sleep(options.seconds * 1000, undefined, { signal });
    const cpuAtEnd = await sampleCpu(server.child.pid, load.child.pid);
    const window = await load.child.call<LoadWindow>("stopWindow");

    if (window.delivered === 0) throw new Error(`${kind}: no message was delivered during the measurement window`);
    const cpuPct = cpuPercentages(cpuAtStart, cpuAtEnd);
    reportWindow(kind, options, window, cpuPct);
    return {
      deliveredPerS: round(window.delivered / (window.windowMs / 1000)),
      p50Ms: round(window.p50Ms),
      p99Ms: round(window.p99Ms),
      serverCpuPct: round(cpuPct.server),
    };
  } finally {
    for (const child of started) child.kill();
  }
}

/** Cumulative CPU times in ms (server, generator, whole machine), read at `atMs`. */
interface CpuSample {
  atMs: number;
  server: number;
  generator: number;
  machine: number;
}

/** CPU time / wall time × 100 between two samples: 100 is one core. */
type CpuPercentages = Omit<CpuSample, "atMs">;

async function sampleCpu(serverPid: number, generatorPid: number): Promise<CpuSample> {
  const [server, generator, machine] = await Promise.all([procCpuMs(serverPid), procCpuMs(generatorPid), machineBusyMs()]);
  return { atMs: performance.now(), server, generator, machine };
}

function cpuPercentages(start: CpuSample, end: CpuSample): CpuPercentages {
  const percentOfWindow = (key: keyof CpuPercentages) => ((end[key] - start[key]) / (end.atMs - start.atMs)) * 100;
  return { server: percentOfWindow("server"), generator: percentOfWindow("generator"), machine: percentOfWindow("machine") };
}

/**
 * Logs what the JSON line leaves out: how close the load came to the intended load, and
 * how much CPU the rest of the machine took from the bench.
 */
function reportWindow(kind: TransportKind, options: TransportBenchOptions, window: LoadWindow, cpuPct: CpuPercentages): void {
  const otherCpuPct = cpuPct.machine - cpuPct.server - cpuPct.generator;
  const windowS = window.windowMs / 1000;
  const intendedSentPerS = options.clients * options.hz;
  const sentPerS = window.sent / windowS;
  const expectedDeliveredPerS = sentPerS * options.clients;
  const deliveredPerS = window.delivered / windowS;
  log(`${kind}: sent ${sentPerS.toFixed(0)}/s of ${intendedSentPerS}/s intended; delivered ${deliveredPerS.toFixed(0)}/s `
    + `of ${expectedDeliveredPerS.toFixed(0)}/s expected; p50 ${window.p50Ms.toFixed(2)} ms, p99 ${window.p99Ms.toFixed(2)} ms; `
    + `generator CPU ${cpuPct.generator.toFixed(0)}%, event-loop delay p99 ${window.eventLoopDelayP99Ms.toFixed(2)} ms; `
    + `rest of the machine ≈${otherCpuPct.toFixed(0)}% of a core`);
  if (cpuPct.generator > generatorSaturatedCpuPct || sentPerS < intendedSentPerS * generatorBehindSendShare) {
    log(`${kind}: WARNING the load generator looks saturated (CPU ${cpuPct.generator.toFixed(0)}% of a core, `
      + `sending ${((sentPerS / intendedSentPerS) * 100).toFixed(0)}% of the intended rate): figures may be bounded by it, not by the server`);
  }
  if (otherCpuPct > busyMachineCpuPct) {
    log(`${kind}: WARNING other work used ${otherCpuPct.toFixed(0)}% of a core during the window: figures are unreliable, rerun on a quiet machine`);
  }
  if (window.clientsLost > 0) log(`${kind}: WARNING ${window.clientsLost} client connection(s) dropped or left during the run`);
}

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

export const transportBench = defineBench({
  description: "broadcast room, N clients at hz, uWS vs ws transport",
  options: transportBenchOptions,
  // Per transport: two child processes to start (tsx compiles on start), clients to join, warm-up and window.
  timeoutSeconds: (options) => 2 * (60 + options.warmup + options.seconds),
  run: (options) => runTransportBench(options),
});
