/**
 * Measuring one phase of the expo bench: the warm-up and the measurement window, the
 * frame accounting around the walk, the window's figures combined over the load
 * processes, and their report with a warning for whatever may have bounded them.
 */
import { availableParallelism } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import type { Redis } from "ioredis";
import type { ExpoBenchOptions, PhaseFigures } from "../expo.ts";
import type { BenchChild } from "./child-process.ts";
import { cpuPct, nodeWindow, progressOf, readCounters, sampleCpu, watch, type NodeWindow, type Server } from "./expo-monitor.ts";
import { walkSpeedMps, type LoadWindow } from "./expo-protocol.ts";
import { log, mergedPercentiles, round } from "./measure.ts";

/** Above this CPU share of one core, a load process rather than the server may bound the figures. */
const generatorSaturatedCpuPct = 90;
/**
 * Above this CPU share of one core used outside the bench's processes, the machine was
 * not quiet (the estimate mixes tick-sampled machine totals with per-process times and
 * reads within about ±20% of a core on a quiet machine, hence the margin).
 */
const busyMachineCpuPct = 50;
/** Above this share of all cores busy, the machine itself bounds the figures. */
const machineSaturatedShare = 0.9;
/** Below this share of the intended send rate, the load's timers are falling behind. */
export const generatorBehindSendShare = 0.95;
/** A load process' event-loop delay above this (p99, ms) delays the receipts it timestamps. */
const generatorLagWarnMs = 10;

export interface MeasureSetup {
  servers: Server[];
  loads: BenchChild[];
  clients: number;
  warnings: string[];
  /** The zoned phase's Redis, whose CPU is reported beside the nodes'. */
  redis?: Redis;
  signal?: AbortSignal;
}

export async function measure(phase: string, options: ExpoBenchOptions, setup: MeasureSetup): Promise<PhaseFigures> {
  const { servers, loads, redis, signal } = setup;
  const accounting = servers.some((server) => server.httpUrl);
  const handoffsSoFar = async () => (await progressOf(loads)).reduce((sum, c) => sum + (c?.handoffs ?? 0), 0);
  const beforeWalk = accounting ? { count: await settledFrameCount(setup), handoffs: await handoffsSoFar() } : undefined;
  if (beforeWalk) reportFrameCount(phase, setup, "after joining", beforeWalk.count, undefined, beforeWalk.handoffs);
  log(`${phase}: moving at ${options.hz} Hz (${walkSpeedMps} m/s random walk); warming up for ${options.warmup} s, then measuring for ${options.seconds} s`);
  await Promise.all(loads.map((load) => load.call("go")));
  if (options.warmup > 0) await watch(phase, "warm-up", options.warmup, servers, loads, redis, signal);
  const countersAtStart = await readCounters(servers);
  const cpuAtStart = await sampleCpu(servers, loads, redis);
  // Region nodes mark the window too (their pauses; TSUNAGI_BENCH_WINDOW_PROFILE profiles it).
  const nodes = servers.filter((server) => server.httpUrl);
  await Promise.all([...loads, ...nodes.map((node) => node.child)].map((child) => child.call("startWindow")));
  await watch(phase, "window", options.seconds, servers, loads, redis, signal);
  const cpuAtEnd = await sampleCpu(servers, loads, redis);
  const windows = await Promise.all(loads.map((load) => load.call<LoadWindow>("stopWindow")));
  await Promise.all(nodes.map((node) => node.child.call("stopWindow")));
  const countersAtEnd = await readCounters(servers);
  const pct = cpuPct(cpuAtStart, cpuAtEnd);
  const figures = combine(windows, pct, options, setup.clients, nodeWindow(countersAtStart, countersAtEnd));
  report(phase, options, figures, windows, setup);
  if (accounting) {
    await Promise.all(loads.map((load) => load.call("halt")));
    const afterWalk = await settledFrameCount(setup);
    reportFrameCount(phase, setup, "after the walk stopped", afterWalk, beforeWalk, await handoffsSoFar());
    if (afterWalk) figures.framesMissing = afterWalk.sent - afterWalk.received;
  }
  return figures;
}

/** Frames the nodes sent since they started, and frames the visitors' ExpoSessions emitted, once both settled. */
interface FrameCount { sent: number; received: number; skipped: number; settled: boolean }

/**
 * Waits until the visitors' frame counts stop changing (the visitors stand still, so the
 * rooms soon have nothing left to say; lingering handed-off visitors and ghosts expire
 * within about 2 s), then reads what the nodes sent. undefined when a node's /metrics
 * does not answer.
 */
async function settledFrameCount(setup: MeasureSetup): Promise<FrameCount | undefined> {
  const startedAt = performance.now();
  // A zone keeps a handed-off visitor in view up to 2 s (then says it is gone): wait past that.
  const atLeastMs = setup.servers.length > 1 ? 2500 : 1000;
  let previous = -1;
  let stableFor = 0;
  let received = 0;
  while (performance.now() - startedAt < 15_000) {
    await sleep(400, undefined, { signal: setup.signal });
    const counts = await progressOf(setup.loads);
    if (counts.some((c) => !c)) continue;
    received = counts.reduce((sum, c) => sum + c!.frames, 0);
    stableFor = received === previous ? stableFor + 1 : 0;
    previous = received;
    if (stableFor >= 2 && performance.now() - startedAt > atLeastMs) break;
  }
  const counters = await readCounters(setup.servers);
  if (counters.some((c) => !c)) return undefined;
  return {
    sent: counters.reduce((sum, c) => sum + c!.frames, 0), received, settled: stableFor >= 2,
    skipped: counters.reduce((sum, c) => sum + c!.framesSkipped, 0),
  };
}

/**
 * End-to-end frame accounting: every frame a node sends should become a `frame` event of
 * the visitor's ExpoSession. Counted twice: once everyone has joined and been placed
 * (before walking), and once the walk has stopped, so losses at joining and losses while
 * walking show apart. Both must match exactly, zoned or not: the SDK ignores the old
 * zone once it has the new zone's welcome, so the new zone tells the old one of the
 * arrival before it sends that welcome, and the old zone sends the visitor no frame from
 * then on. A frame missing after handoffs means such a notice did not get through in
 * time (the new zone's node logs "did not take note of visitor N's arrival").
 */
function reportFrameCount(phase: string, setup: MeasureSetup, at: string, count: FrameCount | undefined,
  before: { count: FrameCount | undefined; handoffs: number } | undefined, handoffs: number): void {
  const warn = (message: string) => { setup.warnings.push(`${phase}: ${message}`); log(`${phase}: WARNING ${message}`); };
  const nodes = `node${setup.servers.length > 1 ? "s" : ""}`;
  if (!count) {
    log(`${phase}: (frame accounting ${at} skipped: a node's /metrics did not answer)`);
    return;
  }
  const missing = count.sent - count.received;
  // Only what is new since the previous count is judged here: the earlier losses were reported then.
  const newMissing = before?.count ? missing - (before.count.sent - before.count.received) : missing;
  const newHandoffs = before ? handoffs - before.handoffs : handoffs;
  log(`${phase}: frame accounting ${at}: the ${nodes} sent ${count.sent} frames since the start, the visitors' ExpoSessions got ${count.received}: `
    + `${missing} missing${before ? ` (${newMissing} of them since the walk began)` : ""}${handoffs ? `, over ${handoffs} handoffs so far` : ""}; `
    + `${count.skipped} skipped for backpressure`);
  if (!count.settled) warn(`the visitors were still receiving frames 15 s after they stopped (${at}): frame accounting is incomplete`);
  if (newMissing > 0) {
    warn(`${newMissing} frames the ${nodes} sent never reached a visitor's ExpoSession (${before ? "while walking" : "while joining and being placed"}`
      + `${newHandoffs ? `, over ${newHandoffs} handoffs: see the nodes' logs for arrival notices that did not get through` : ""})`);
  }
  if (missing < 0) warn(`the visitors received ${-missing} more frames than the ${nodes} counted as sent (${at})`);
}

function combine(windows: LoadWindow[], pct: ReturnType<typeof cpuPct>, options: ExpoBenchOptions, clients: number, node: NodeWindow | undefined): PhaseFigures {
  const windowS = windows.reduce((sum, w) => sum + w.windowMs, 0) / windows.length / 1000;
  const updates = windows.reduce((sum, w) => sum + w.updates, 0);
  const [p50Ms, p99Ms] = mergedPercentiles(windows.map((w) => w.latency), [50, 99]);
  const errors: Record<string, number> = {};
  for (const w of windows) for (const [key, count] of Object.entries(w.errors)) errors[key] = (errors[key] ?? 0) + count;
  const alive = windows.reduce((sum, w) => sum + w.alive, 0);
  const sum = (key: "frames" | "appeared" | "moved" | "gone" | "handoffs" | "handoffsTotal" | "sessionsLost" | "sent") => windows.reduce((total, w) => total + w[key], 0);
  return {
    p50Ms: p50Ms!,
    p99Ms: p99Ms!,
    updatesPerS: updates / windowS,
    sentPerS: sum("sent") / windowS,
    intendedSentPerS: clients * options.hz,
    cpuPerUpdate: updates > 0 ? (pct.serverMs * 1000) / updates : Number.NaN,
    serverCpuPct: pct.servers.map((p) => round(p, 1)),
    generatorCpuPct: pct.loads.map((p) => round(p, 1)),
    machineCpuPct: round(pct.machine, 0),
    otherCpuPct: round(Math.max(0, pct.other), 0),
    redisCpuPct: Number.isFinite(pct.redis) ? round(pct.redis, 1) : Number.NaN,
    frames: sum("frames"),
    appeared: sum("appeared"),
    moved: sum("moved"),
    gone: sum("gone"),
    handoffs: sum("handoffs"),
    handoffsTotal: sum("handoffsTotal"),
    neighboursMean: alive ? windows.reduce((total, w) => total + w.neighboursMean * w.alive, 0) / alive : 0,
    errors,
    sessionsLost: sum("sessionsLost"),
    latencySamples: windows.reduce((total, w) => total + w.latency.count, 0),
    node,
  };
}

/** Logs the window, and adds a warning for whatever may have bounded it other than the server. */
function report(phase: string, options: ExpoBenchOptions, figures: PhaseFigures, windows: LoadWindow[], setup: MeasureSetup): void {
  const warn = (message: string) => { setup.warnings.push(`${phase}: ${message}`); log(`${phase}: WARNING ${message}`); };
  if (figures.frames === 0 || figures.updatesPerS === 0) throw new Error(`${phase}: no update was delivered during the measurement window`);
  const clients = setup.clients;
  const cores = availableParallelism();
  const what = phase === "baseline" ? "messages" : "neighbour updates";
  log(`${phase}: sent ${figures.sentPerS.toFixed(0)}/s of ${figures.intendedSentPerS}/s intended; delivered ${figures.updatesPerS.toFixed(0)} ${what}/s`
    + (phase === "baseline" ? ` of ${(clients * options.hz * clients).toLocaleString("en")}/s asked for` : "")
    + `; latency p50 ${figures.p50Ms.toFixed(2)} ms, p99 ${figures.p99Ms.toFixed(2)} ms (${figures.latencySamples} samples)`);
  log(`${phase}: server CPU ${figures.serverCpuPct.map((p) => `${p.toFixed(0)}%`).join(", ")} of a core → ${figures.cpuPerUpdate.toFixed(3)} µs per update delivered; `
    + `load CPU ${figures.generatorCpuPct.map((p) => `${p.toFixed(0)}%`).join(" / ")}, event-loop delay p99 ${windows.map((w) => `${w.eventLoopDelayP99Ms.toFixed(1)} ms`).join(" / ")}`
    + (setup.redis ? `; redis ${figures.redisCpuPct.toFixed(0)}% (the whole Redis server)` : "")
    + `; machine ${figures.machineCpuPct}% of ${cores * 100}%, other work ≈${figures.otherCpuPct}%`);
  if (phase !== "baseline") {
    log(`${phase}: clients received ${figures.frames} frames (${figures.appeared} appeared, ${figures.moved} moved, ${figures.gone} gone); `
      + `${figures.neighboursMean.toFixed(1)} neighbours per visitor at the end; handoffs ${figures.handoffs} in the window, ${figures.handoffsTotal} in all`);
  }
  const node = figures.node;
  if (node && phase !== "baseline") {
    const lag = Math.max(...windows.map((w) => w.eventLoopDelayP99Ms));
    log(`${phase}: a move's latency = waiting for the next tick (0 to ${options["tick-ms"]} ms) + the tick's own run (mean ${Math.max(...node.tickMsMean).toFixed(1)} ms: `
      + `a tick's frames leave one after the other over it) + transit and decoding + the load's own lag (event-loop delay p99 ${lag.toFixed(1)} ms)`);
  }
  if (node) {
    log(`${phase}: the node${setup.servers.length > 1 ? "s" : ""} counted ${node.frames} frames sent (${node.framesSkipped} skipped for backpressure), `
      + `${node.updates} entries, ${node.moves} moves applied (${node.movesRefused} refused), handoffs reserved ${node.handoffsReserved} / failed ${node.handoffsFailed}; `
      + `mean tick ${node.tickMsMean.map((ms) => `${ms.toFixed(1)} ms`).join(", ")} (of ${options["tick-ms"]} ms)`);
    const clientEntries = figures.appeared + figures.moved + figures.gone;
    // Not a loss check: the node's counts span the window plus the IPC around it, and whole ticks
    // (a frame for every visitor at once) fall on either side; a lagging load reads late frames
    // after the window. Losses are what the frame accounting after the walk finds.
    log(`${phase}: in the window the visitors got ${((figures.frames / Math.max(1, node.frames)) * 100).toFixed(1)}% of the frames and `
      + `${((clientEntries / Math.max(1, node.updates)) * 100).toFixed(1)}% of the entries the node${setup.servers.length > 1 ? "s" : ""} sent in it`);
    if (node.framesSkipped > 0) warn(`${node.framesSkipped} frames were skipped by the node for backpressure (slow clients)`);
    if (node.handoffsFailed > 0) warn(`${node.handoffsFailed} handoffs failed on the node side (and were retried)`);
    if (node.movesRefused > 0) warn(`${node.movesRefused} moves were refused by the node`);
  } else if (setup.servers.some((server) => server.httpUrl)) {
    log(`${phase}: (a node's /metrics could not be read at both ends of the window: its own counts are left out)`);
  }
  if (Object.keys(figures.errors).length) log(`${phase}: coded errors since the start: ${JSON.stringify(figures.errors)}`);

  const saturatedLoads = figures.generatorCpuPct.filter((p) => p > generatorSaturatedCpuPct);
  if (saturatedLoads.length || figures.sentPerS < figures.intendedSentPerS * generatorBehindSendShare) {
    warn(`the load processes look saturated (CPU ${figures.generatorCpuPct.map((p) => `${p.toFixed(0)}%`).join(" / ")} of a core, `
      + `sending ${((figures.sentPerS / figures.intendedSentPerS) * 100).toFixed(0)}% of the intended rate): figures may be bounded by them, not by the server`);
  }
  if (figures.machineCpuPct > machineSaturatedShare * cores * 100) {
    warn(`the machine was saturated (${figures.machineCpuPct}% of ${cores * 100}% busy, of which other work ≈${figures.otherCpuPct}%): `
      + "server and load processes competed for the cores, so the figures are bounded by the machine");
  }
  if (figures.otherCpuPct > busyMachineCpuPct) {
    warn(`other work used ≈${figures.otherCpuPct}% of a core during the window: figures are unreliable, rerun on a quiet machine`);
  }
  const laggy = windows.filter((w) => w.eventLoopDelayP99Ms > generatorLagWarnMs);
  if (laggy.length) {
    warn(`load event-loop delay p99 up to ${Math.max(...laggy.map((w) => w.eventLoopDelayP99Ms)).toFixed(1)} ms: latencies include up to that much of the load's own lag`);
  }
  if (figures.p50Ms < 0) warn(`negative latencies (p50 ${figures.p50Ms.toFixed(2)} ms): the processes' clocks disagree; latency figures are invalid`);
  const negatives = windows.reduce((sum, w) => sum + w.latency.negative, 0);
  if (negatives > 0) warn(`${negatives} latency samples were negative (clocks disagree by that much)`);
  if (figures.sessionsLost > 0) warn(`${figures.sessionsLost} client session(s) ended or dropped during the run`);
  if (Object.keys(figures.errors).length) warn(`coded errors during the run: ${JSON.stringify(figures.errors)}`);
}
