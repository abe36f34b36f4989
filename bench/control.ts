/**
 * Control bench: how much latency a region node adds to teleoperation commands, and how
 * fast an e-stop crosses it, under a realistic control load.
 *
 * N devices, each alone in its TeleopRoom with one operator holding its lease: every
 * operator sends ControlCommands at `hz`, every adapter acks each one APPLIED and sends
 * Telemetry at 10 Hz, and the room probes each operator's round trip. What is measured
 * is the operator→adapter latency of the commands (adapter receive time minus the
 * command's issued_at_ms, one wall clock: all processes run on this machine) and, after
 * the command phase, of the e-stops: `estopRounds` rounds in which every operator in turn
 * (spread over 1 s) raises an EStop for its device while the others go on commanding,
 * then resets it and takes its lease again. So e-stops cross the node under load, and
 * their p99 rests on devices × rounds samples rather than on one per device.
 *
 * The same load, the same encoded envelopes, also runs through a bare uWebSockets.js
 * relay that forwards frames verbatim between each operator and its device. Its latency
 * is what sockets, the loopback and the load processes cost on their own; the node's
 * latency minus the relay's is what the node adds: Colyseus framing and rooms, the
 * command pipeline (lease, deadline, seq, bounds), the device gateway and its link.
 *
 * The two paths take turns, `rounds` times each, in the order node, relay, relay, node,
 * node, relay…, each turn with fresh processes; the figures pool every turn of a path.
 * On a shared machine the tail of a ten-second window is set by a few stalls of the
 * whole machine, and how often they come drifts over a minute: taking turns puts both
 * paths under the same drift, so the difference is the node's and not the minute's.
 *
 * Processes: the server under test (region node or relay), the device load, the operator
 * load and this orchestrator, all on 127.0.0.1. The node runs embedded (no Redis) in dev
 * mode, like `npm start -- --demo false`, with client rate limits raised above the load.
 * The server under test gets the first core to itself and the rest run on the others
 * (`--pin false` to let them share): sharing cores, the server and the load delay each
 * other, and the tails measure that contention more than the server. A teleop node in
 * production gets a core of its own for the same reason.
 *
 * @example
 *   npm run bench -- control                              # 100 devices, 50 Hz, 3 turns of 5 s per path
 *   npm run bench -- control --devices 20 --hz 100 --rounds 1 --seconds 10
 */
import { setTimeout as sleep } from "node:timers/promises";
import { z } from "zod";
import { defineBench } from "./lib/bench.ts";
import { BenchChild, serverAndLoadCpus } from "./lib/child-process.ts";
import {
  deviceIdOf, relayDevicePath, relayOperatorPath,
  type ControlPath, type DeviceLoadConfig, type DeviceWindow, type EStopsReceived, type EStopsSent,
  type NodeReady, type OperatorLoadConfig, type OperatorWindow, type RelayReady,
} from "./lib/control-protocol.ts";
import { machineBusyMs, mergedPercentiles, percentile, procCpuMs, round, type HistogramData, type PauseFigures } from "./lib/measure.ts";
import { httpText } from "./lib/tasks.ts";

export const controlBenchOptions = z.object({
  /** Devices, each in its own room with its own operator. */
  devices: z.coerce.number().int().min(1).max(1000).default(100),
  /** Commands per second of each operator. */
  hz: z.coerce.number().positive().max(500).default(50),
  /** Turns of each path; the figures pool them. */
  rounds: z.coerce.number().int().min(1).max(20).default(3),
  /** Length of the measurement window of each turn. */
  seconds: z.coerce.number().positive().default(5),
  /** Commanding before the measurement window, each turn. */
  warmup: z.coerce.number().min(0).default(2),
  /** E-stop rounds after each turn's window: one e-stop per device each. */
  estopRounds: z.coerce.number().int().min(1).max(100).default(2),
  /** Give the server under test a core of its own, the load the others (see serverAndLoadCpus). */
  pin: z.union([z.boolean(), z.enum(["true", "false"]).transform((flag) => flag === "true")], { error: "must be true or false" }).default(true),
});

export type ControlBenchOptions = z.output<typeof controlBenchOptions>;

/** What one path (node or relay) measured, pooled over its turns. */
export interface PathFigures {
  /** Operator→adapter latency of the commands delivered in the window, ms. */
  p50Ms: number;
  p99Ms: number;
  /** Commands delivered to adapters per second of the window. */
  deliveredPerS: number;
  /** Commands of the window acked APPLIED by their adapter, as the operators saw it. */
  acked: number;
  /** Commands of the window not applied: refused on the way, or never answered. */
  lost: number;
  /** Operator→adapter latency of the e-stops, ms. */
  estopP50Ms: number;
  estopP99Ms: number;
  /** E-stops that reached their device, and those that did not within the grace period. */
  estops: number;
  estopsLost: number;
  /** CPU of the server process during the window, % of one core. */
  serverCpuPct: number;
}

export interface ControlBenchResult {
  bench: "control";
  devices: number;
  hz: number;
  /** Turns of each path, and the measurement window of each, s. */
  rounds: number;
  seconds: number;
  /** Whether the server under test had a core to itself (both paths alike). */
  pinned: boolean;
  /** Node p50 − relay p50: the command latency the node adds at the median, ms. */
  addedP50Ms: number;
  /** Node p99 − relay p99: the command latency the node adds at the tail, ms. */
  addedP99Ms: number;
  /** The node path's operator→adapter e-stop p99, ms. */
  estopP99Ms: number;
  /** Commands delivered to adapters per second through the node. */
  commandsPerS: number;
  /** The node's CPU during the window, % of one core. */
  serverCpuPct: number;
  /** The node's CPU per command delivered over the relay's (target ≤ 1.5). */
  cpuPerCommandRatio: number;
  /** The relay's CPU during its window, % of one core. */
  baselineCpuPct: number;
  /** Command latency through the relay, ms. */
  baseline: { p50Ms: number; p99Ms: number };
  /** Through the node: command and e-stop latency, ms; commands of the window applied and not. */
  node: { p50Ms: number; p99Ms: number; estopP50Ms: number; estopP99Ms: number; acked: number; lost: number; estops: number; estopsLost: number };
  /** The relay path's operator→adapter e-stop p99, ms. */
  estopBaselineP99Ms: number;
}

/** Above this CPU share of one core, a load process rather than the server may bound the figures. */
const generatorSaturatedCpuPct = 90;
/**
 * Above this CPU share of one core used outside the bench's processes, the machine was
 * not quiet (the estimate reads within about ±20% of a core on a quiet one).
 */
const busyMachineCpuPct = 50;
/** Below this share of the intended command rate, the operators' timers are falling behind. */
const generatorBehindSendShare = 0.95;
/** After the last e-stop is sent, how long it may take to arrive. */
const estopGraceMs = 500;
/** Steady commanding before each e-stop round. */
const estopSettleMs = 500;

/** Region node flags: as `npm start` runs, embedded and in dev mode, on ephemeral ports, quiet. */
function nodeFlags(options: ControlBenchOptions): string[] {
  // Client limits well above the load, so the figures show the node's cost, not its rate limits.
  const messagesPerSecond = String(Math.max(1000, Math.ceil(options.hz * 4)));
  return [
    "--port", "0", "--gateway-port", "0", "--host", "127.0.0.1", "--demo", "false", "--dev-mode", "true",
    "--log-level", "warn",
    "--limits-max-messages-per-second", messagesPerSecond,
    "--gateway-max-messages-per-second", messagesPerSecond,
    "--limits-max-matchmake-per-second", String(Math.max(100, options.devices * 2)),
  ];
}

export async function runControlBench(options: Partial<ControlBenchOptions> = {}, signal?: AbortSignal): Promise<ControlBenchResult> {
  const resolved = controlBenchOptions.parse(options);
  const cpus = resolved.pin ? serverAndLoadCpus() : undefined;
  if (cpus) log(`the server under test runs on CPU ${cpus.server}, the load on CPU ${cpus.load} (--pin false to share them)`);
  else log(`the server under test shares the CPUs with the load${resolved.pin ? " (pinning needs 2 cores and taskset)" : ""}: the two then delay each other, and the tails measure that contention`);
  const turns: Record<ControlPath, TurnFigures[]> = { node: [], relay: [] };
  for (let round = 0; round < resolved.rounds; round++) {
    // node, relay, relay, node, …: a drift in the machine's load over the run weighs on both alike.
    const order: ControlPath[] = round % 2 === 0 ? ["node", "relay"] : ["relay", "node"];
    for (const path of order) {
      log(`--- round ${round + 1} of ${resolved.rounds}: ${path}`);
      turns[path].push(await measurePath(path, resolved, cpus, signal));
    }
  }
  const node = pooled("node", turns.node);
  const relay = pooled("relay", turns.relay);
  return {
    bench: "control",
    devices: resolved.devices,
    hz: resolved.hz,
    rounds: resolved.rounds,
    seconds: resolved.seconds,
    pinned: cpus !== undefined,
    addedP50Ms: round(node.p50Ms - relay.p50Ms),
    addedP99Ms: round(node.p99Ms - relay.p99Ms),
    estopP99Ms: round(node.estopP99Ms),
    commandsPerS: round(node.deliveredPerS),
    serverCpuPct: round(node.serverCpuPct),
    cpuPerCommandRatio: round((node.serverCpuPct / node.deliveredPerS) / (relay.serverCpuPct / relay.deliveredPerS), 3),
    baselineCpuPct: round(relay.serverCpuPct),
    baseline: { p50Ms: round(relay.p50Ms), p99Ms: round(relay.p99Ms) },
    node: {
      p50Ms: round(node.p50Ms), p99Ms: round(node.p99Ms), estopP50Ms: round(node.estopP50Ms), estopP99Ms: round(node.estopP99Ms),
      acked: node.acked, lost: node.lost, estops: node.estops, estopsLost: node.estopsLost,
    },
    estopBaselineP99Ms: round(relay.estopP99Ms),
  };
}

async function measurePath(path: ControlPath, options: ControlBenchOptions, cpus: { server: string; load: string } | undefined, signal?: AbortSignal): Promise<TurnFigures> {
  const started: BenchChild[] = [];
  const deviceIds = Array.from({ length: options.devices }, (_, index) => deviceIdOf(index));
  try {
    log(`${path}: starting the server`);
    let server: BenchChild;
    let deviceConfig: DeviceLoadConfig;
    let operatorConfig: OperatorLoadConfig;
    if (path === "node") {
      const node = await BenchChild.start<NodeReady>("node", "bench/lib/region-node.ts", nodeFlags(options), signal, cpus?.server);
      started.push((server = node.child));
      log(`node: enrolling ${options.devices} devices at ${node.ready.httpUrl}`);
      const devices = await Promise.all(deviceIds.map((deviceId) => enrol(node.ready.httpUrl, deviceId)));
      deviceConfig = { path, url: node.ready.gatewayUrl, devices, hz: options.hz };
      const token = await httpText(`${node.ready.httpUrl}/dev/token?role=supervisor&sub=bench-operator`);
      operatorConfig = { path, url: node.ready.httpUrl, token, deviceIds, hz: options.hz };
    } else {
      const relay = await BenchChild.start<RelayReady>("relay", "bench/lib/control-relay.ts", null, signal, cpus?.server);
      started.push((server = relay.child));
      const base = `ws://127.0.0.1:${relay.ready.port}`;
      deviceConfig = { path, url: `${base}${relayDevicePath}`, devices: deviceIds.map((deviceId) => ({ deviceId })), hz: options.hz };
      operatorConfig = { path, url: `${base}${relayOperatorPath}`, deviceIds, hz: options.hz };
    }

    log(`${path}: connecting ${options.devices} devices`);
    const devices = await BenchChild.start<null>(`${path} devices`, "bench/lib/control-devices.ts", deviceConfig, signal, cpus?.load);
    started.push(devices.child);
    log(`${path}: connecting ${options.devices} operators${path === "node" ? " (room, lease)" : ""}`);
    const operators = await BenchChild.start<null>(`${path} operators`, "bench/lib/control-operators.ts", operatorConfig, signal, cpus?.load);
    started.push(operators.child);

    log(`${path}: commanding at ${options.hz} Hz; warming up for ${options.warmup} s, then measuring for ${options.seconds} s`);
    await sleep(options.warmup * 1000, undefined, { signal });
    const pids = { server: server.pid, devices: devices.child.pid, operators: operators.child.pid };
    // CPU times come from /proc: an overloaded child's event loop can stall for seconds, IPC included.
    const cpuAtStart = await sampleCpu(pids);
    await Promise.all([server.call("startWindow"), devices.child.call("startWindow"), operators.child.call("startWindow")]);
    await sleep(options.seconds * 1000, undefined, { signal });
    const cpuAtEnd = await sampleCpu(pids);
    const [deviceWindow, operatorWindow, serverPauses] = await Promise.all([
      devices.child.call<DeviceWindow>("stopWindow"),
      operators.child.call<OperatorWindow>("stopWindow"),
      server.call<PauseFigures>("stopWindow"),
    ]);
    if (deviceWindow.delivered === 0) throw new Error(`${path}: no command reached a device during the measurement window`);
    const cpuPct = cpuPercentages(cpuAtStart, cpuAtEnd);
    reportWindow(path, options, deviceWindow, operatorWindow, cpuPct);
    log(`${path}: server pauses: event-loop delay p99 ${serverPauses.eventLoopDelayP99Ms.toFixed(2)} ms, max ${serverPauses.eventLoopDelayMaxMs.toFixed(2)} ms; `
      + `${serverPauses.gcCount} GCs, ${serverPauses.gcTotalMs.toFixed(1)} ms in all, longest ${serverPauses.gcMaxMs.toFixed(2)} ms`);

    log(`${path}: ${options.estopRounds} e-stop rounds, each e-stopping every device over 1 s while the others command`);
    const estopLatenciesMs: number[] = [];
    let estopsSentTotal = 0;
    for (let round = 0; round < options.estopRounds; round++) {
      // Back to steady commanding first: the rounds measure e-stops under command load, not
      // under the burst of a hundred resets and lease grants the previous round ended with.
      await sleep(estopSettleMs, undefined, { signal });
      const estopsSent = await operators.child.call<EStopsSent>("estop");
      await sleep(estopGraceMs, undefined, { signal });
      const estopsReceived = await devices.child.call<EStopsReceived>("estops");
      estopLatenciesMs.push(...estopLatencies(path, estopsSent, estopsReceived));
      estopsSentTotal += Object.keys(estopsSent).length;
      await operators.child.call("recover");
    }
    const estop = estopFigures(path, estopLatenciesMs, estopsSentTotal);

    return {
      p50Ms: deviceWindow.p50Ms,
      p99Ms: deviceWindow.p99Ms,
      latency: deviceWindow.latency,
      estopLatenciesMs,
      windowMs: deviceWindow.windowMs,
      deliveredPerS: deviceWindow.delivered / (deviceWindow.windowMs / 1000),
      acked: operatorWindow.applied,
      lost: operatorWindow.sent - operatorWindow.applied,
      estops: estopLatenciesMs.length,
      estopsLost: estopsSentTotal - estopLatenciesMs.length,
      estopP50Ms: estop.p50Ms,
      estopP99Ms: estop.p99Ms,
      serverCpuPct: cpuPct.server,
    };
  } finally {
    for (const child of started) child.kill();
  }
}

/** What one turn of a path measured: its figures, and the samples to pool with other turns'. */
interface TurnFigures extends PathFigures {
  /** Operator→adapter latency of the window's commands. */
  latency: HistogramData;
  /** Operator→adapter latency of each e-stop delivered, ms. */
  estopLatenciesMs: number[];
  /** Length of the measurement window, ms. */
  windowMs: number;
}

/** One path's turns as one: latencies pooled, counts summed, CPU over the total window. */
function pooled(path: ControlPath, turns: TurnFigures[]): PathFigures {
  const sum = (figure: (turn: TurnFigures) => number) => turns.reduce((total, turn) => total + figure(turn), 0);
  const windowMs = sum((turn) => turn.windowMs);
  const [p50Ms, p99Ms] = mergedPercentiles(turns.map((turn) => turn.latency), [50, 99]) as [number, number];
  const estopLatenciesMs = turns.flatMap((turn) => turn.estopLatenciesMs);
  const estops = Float64Array.from(estopLatenciesMs).sort();
  const figures: PathFigures = {
    p50Ms, p99Ms,
    deliveredPerS: sum((turn) => turn.deliveredPerS * turn.windowMs) / windowMs,
    acked: sum((turn) => turn.acked),
    lost: sum((turn) => turn.lost),
    estops: estopLatenciesMs.length,
    estopsLost: sum((turn) => turn.estopsLost),
    estopP50Ms: percentile(estops, 50),
    estopP99Ms: percentile(estops, 99),
    serverCpuPct: sum((turn) => turn.serverCpuPct * turn.windowMs) / windowMs,
  };
  const each = (figure: (turn: TurnFigures) => number) => turns.map((turn) => figure(turn).toFixed(2)).join(", ");
  log(`${path}, ${turns.length} turn(s) pooled: commands p50 ${p50Ms.toFixed(2)} ms, p99 ${p99Ms.toFixed(2)} ms (p99 of each turn: ${each((turn) => turn.p99Ms)}); `
    + `e-stops ${figures.estops}, p99 ${figures.estopP99Ms.toFixed(2)} ms (each turn: ${each((turn) => turn.estopP99Ms)}); server CPU ${figures.serverCpuPct.toFixed(0)}%`);
  return figures;
}

/** Enrols a device through the node's dev route; its secret signs the adapter's challenge. */
async function enrol(httpUrl: string, deviceId: string): Promise<{ deviceId: string; deviceSecret: string }> {
  const body = JSON.parse(await httpText(`${httpUrl}/dev/device?id=${encodeURIComponent(deviceId)}&class=excavator`)) as { deviceSecret?: unknown };
  if (typeof body.deviceSecret !== "string") throw new Error(`enrolling ${deviceId}: no deviceSecret in ${JSON.stringify(body)}`);
  return { deviceId, deviceSecret: body.deviceSecret };
}

/**
 * E-stop latency per device: the adapter's receive time minus the operator's send time
 * (both wallClockMs). An arrival counts only if it carries this round's raised_at_ms
 * (the relay forwards it verbatim, the room keeps a plausible one): one that came after
 * the previous round's grace is that round's, late, not this one's.
 */
function estopLatencies(path: ControlPath, sent: EStopsSent, received: EStopsReceived): number[] {
  const latencies: number[] = [];
  let stale = 0;
  for (const [deviceId, sentAtMs] of Object.entries(sent)) {
    const arrival = received[deviceId];
    if (!arrival) continue;
    if (arrival.raisedAtMs !== sentAtMs) { stale++; continue; }
    latencies.push(arrival.receivedAtMs - sentAtMs);
  }
  const missing = Object.keys(sent).length - latencies.length;
  if (missing > 0) log(`${path}: WARNING ${missing} of ${Object.keys(sent).length} e-stops did not reach their device within ${estopGraceMs} ms of the last`);
  if (stale > 0) log(`${path}: WARNING ${stale} device(s) reported an e-stop of an earlier round (it came after that round's grace), not this round's`);
  return latencies;
}

function estopFigures(path: ControlPath, latencies: number[], sent: number): { p50Ms: number; p99Ms: number } {
  const sorted = Float64Array.from(latencies).sort();
  const figures = { p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99) };
  log(`${path}: e-stops delivered ${latencies.length}/${sent}; p50 ${figures.p50Ms.toFixed(2)} ms, p99 ${figures.p99Ms.toFixed(2)} ms`);
  return figures;
}

/** Cumulative CPU times in ms (server, each load process, whole machine), read at `atMs`. */
interface CpuSample {
  atMs: number;
  server: number;
  devices: number;
  operators: number;
  machine: number;
}

/** CPU time / wall time × 100 between two samples: 100 is one core. */
type CpuPercentages = Omit<CpuSample, "atMs">;

async function sampleCpu(pids: { server: number; devices: number; operators: number }): Promise<CpuSample> {
  const [server, devices, operators, machine] = await Promise.all([procCpuMs(pids.server), procCpuMs(pids.devices), procCpuMs(pids.operators), machineBusyMs()]);
  return { atMs: performance.now(), server, devices, operators, machine };
}

function cpuPercentages(start: CpuSample, end: CpuSample): CpuPercentages {
  const percentOfWindow = (key: keyof CpuPercentages) => ((end[key] - start[key]) / (end.atMs - start.atMs)) * 100;
  return { server: percentOfWindow("server"), devices: percentOfWindow("devices"), operators: percentOfWindow("operators"), machine: percentOfWindow("machine") };
}

/**
 * Logs what the JSON line leaves out: how close the load came to the intended load, how
 * each command of the window was answered, what the node refused, and how much CPU the
 * load and the rest of the machine took.
 */
function reportWindow(path: ControlPath, options: ControlBenchOptions, devices: DeviceWindow, operators: OperatorWindow, cpuPct: CpuPercentages): void {
  const otherCpuPct = cpuPct.machine - cpuPct.server - cpuPct.devices - cpuPct.operators;
  const intendedSentPerS = options.devices * options.hz;
  const sentPerS = operators.sent / (operators.windowMs / 1000);
  const deliveredPerS = devices.delivered / (devices.windowMs / 1000);
  log(`${path}: sent ${sentPerS.toFixed(0)}/s of ${intendedSentPerS}/s intended; delivered ${deliveredPerS.toFixed(0)}/s; `
    + `p50 ${devices.p50Ms.toFixed(2)} ms, p99 ${devices.p99Ms.toFixed(2)} ms; server CPU ${cpuPct.server.toFixed(0)}%`);
  // Latencies cross processes on one anchored monotonic clock (measure.ts); negative ones
  // mean a process did not get the anchor, and every figure is shifted.
  if (devices.latency.negative > 0) {
    log(`${path}: WARNING ${devices.latency.negative} negative latencies: the load processes' clocks disagree; the figures are invalid`);
  }
  log(`${path}: of ${operators.sent} commands sent in the window: ${operators.applied} applied, `
    + `refused ${JSON.stringify(operators.refused)}, ${operators.unanswered} unanswered; `
    + `${operators.ticksWithoutLease} send ticks skipped without a lease`);
  log(`${path}: load CPU: devices ${cpuPct.devices.toFixed(0)}%, operators ${cpuPct.operators.toFixed(0)}% of a core; `
    + `event-loop delay p99: devices ${devices.eventLoopDelayP99Ms.toFixed(2)} ms, operators ${operators.eventLoopDelayP99Ms.toFixed(2)} ms; `
    + `rest of the machine ≈${otherCpuPct.toFixed(0)}% of a core`);
  if (Object.keys(operators.errors).length > 0) log(`${path}: coded errors to operators since the start: ${JSON.stringify(operators.errors)}`);
  if (Object.keys(devices.errors).length > 0) log(`${path}: coded errors to devices since the start: ${JSON.stringify(devices.errors)}`);
  if (Object.keys(operators.leasesLost).length > 0) log(`${path}: WARNING leases lost (and acquired again) since the start, by cause: ${JSON.stringify(operators.leasesLost)}`);
  const saturated = Math.max(cpuPct.devices, cpuPct.operators);
  if (saturated > generatorSaturatedCpuPct || sentPerS < intendedSentPerS * generatorBehindSendShare) {
    log(`${path}: WARNING the load looks saturated (busiest load process at ${saturated.toFixed(0)}% of a core, `
      + `sending ${((sentPerS / intendedSentPerS) * 100).toFixed(0)}% of the intended rate): figures may be bounded by it, not by the server`);
  }
  if (otherCpuPct > busyMachineCpuPct) {
    log(`${path}: WARNING other work used ${otherCpuPct.toFixed(0)}% of a core during the window: figures are unreliable, rerun on a quiet machine`);
  }
  const lost = devices.connectionsLost + operators.clientsLost;
  if (lost > 0) log(`${path}: WARNING ${devices.connectionsLost} device and ${operators.clientsLost} operator connection(s) lost during the run`);
}

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

export const controlBench = defineBench({
  description: "teleop commands and e-stops through a region node vs a raw uWS relay: added latency",
  options: controlBenchOptions,
  // Per path: three child processes to start (tsx compiles on start), devices and rooms to
  // set up, warm-up, window, ack grace and the e-stop phase.
  timeoutSeconds: (options) => 2 * options.rounds * (90 + options.warmup + options.seconds + 2 * options.estopRounds),
  run: (options) => runControlBench(options),
});
