/**
 * Handoff bench: an expo hall of `clients` walking visitors handed back and forth
 * between two regions, then its node killed `kills` times (DESIGN.md, "Performance
 * targets": the pause p99 ≤ 50 ms + one inter-region RTT, with 0 lost and 0 duplicated
 * inputs; a lost node detected in ≤ 1 s, its rooms back in ≤ 3 s, ≤ 250 ms of state lost).
 *
 * Set-up: the two regions on this machine (test fixtures' startRegions: a node — two
 * with kills, so one of the hall's region is left to restore it — and a redis-server
 * each, the cluster store in the source, every path between regions and from the
 * clients' city through delay proxies with deploy/regions.json's RTTs), a hall of no
 * zones (one room) opened on the source's first node, and `clients` stock SDK
 * ExpoSessions located in the source's city, in `loadProcesses` load processes
 * (lib/handoff-visitors.ts; the proxies stay in this one), each placed at random then
 * random-walking at `moveHz` for the whole run. After `warmup` s, the hall is handed
 * source → target → source … `handoffs` times through POST /rooms/:roomId/handoff?to=REGION
 * (&node= the region's first node) on the node that hosts it, as an admin; each next one
 * once every visitor has followed, `intervalMs` has passed and the node it goes to no
 * longer holds its old copy of the hall (an old copy closes with its last client, at the
 * latest after handoff.seatSeconds; a node also drops its retired copy when the hall
 * comes back, so this wait is short). Then the kill phase (below).
 *
 * Figures:
 * - pauseP50Ms / pauseP99Ms: per visitor and move, its old home's last frame to its new
 *   home's first frame, on the load's monotonic clock (how the two are told apart:
 *   lib/handoff-visitors.ts), over every visitor and every move. Frames come once per
 *   tick (`tickMs`) per visitor, so this includes up to a tick before the Freeze and up
 *   to a tick (the visitor's slice) after it resumes: frameGapP50Ms is the gap without a
 *   move, and `breakdown` says where the pause went (lib/handoff-figures.ts);
 * - lost: numbered inputs never received (tsunagi_room_input_gaps_total, every node)
 *   plus, per visitor, moves after the newest its room acknowledged once the walk stopped;
 * - duplicated: frames whose ackSeq went below one the visitor had been sent (an older
 *   move of its own applied after a newer one); neighbourSeqRegressions is the same seen
 *   by viewers in their neighbours' seq. duplicatesDropped (inputs sent again and dropped
 *   by the room: correct) and resent (the SDK's HandoffEvent.resent) say how much was
 *   sent twice;
 * - handoffMsP50 / P99: Init → Complete of the admin route's records;
 *   (every figure above is of the handoffs alone: taken before the kill phase)
 * - the kill phase (lib/handoff-failover.ts): `kills` rounds, each SIGKILLing the hall's
 *   node while the visitors walk (a node of its region restores it; the killed node is
 *   started again before the next round): detectMs (SIGKILL → the restoring node saw the
 *   loss), rtoMs (SIGKILL → every visitor's first frame from the restored hall; rtoServerMs:
 *   → the hall live), rpoMs (SIGKILL − the time of the snapshot it came back from), each
 *   the worst round's; failoverLost (moves lost over the rounds: the SDK sends again what
 *   the restored hall lacks, so 0); `kills`, each round's figures. With --kills 0: null,
 *   and failover "not run".
 *
 * Targets (printed, never asserted): pauseP99Ms ≤ 50 + rttMs × delayScale, lost =
 * duplicated = 0; detectMs ≤ 1000, rtoMs ≤ 3000, rpoMs ≤ 250, failoverLost = 0.
 *
 * @example
 *   npm run bench -- handoff                                   # 200 visitors, 6 handoffs jp-tokyo ⇄ jp-osaka, 2 kills
 *   npm run bench -- handoff --clients 20 --handoffs 2 --target jp-fukuoka --kills 0
 */
import { randomBytes } from "node:crypto";
import { availableParallelism } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { z } from "zod";
import { defineBench } from "./lib/bench.ts";
import type { BenchChild } from "./lib/child-process.ts";
import { handoffMs, pauseFigures, spread, type PauseBreakdown, type PerHandoff } from "./lib/handoff-figures.ts";
import { failoverMet, failoverTargets, measureFailover, type FailoverFigures, type KillFigures } from "./lib/handoff-failover.ts";
import { followTimeoutMs, loadLagWarnMs, mergeResults, startLoads, waitUntilFollowed } from "./lib/handoff-loads.ts";
import type { HandoffLoadResults } from "./lib/handoff-protocol.ts";
import { cpuPct, handOff, openBenchHall, sampleCpu, startHarness, waitUntilNoHall } from "./lib/handoff-setup.ts";
import { inputCounters } from "../test/fixtures/handoffs.ts";
import { log, round } from "./lib/measure.ts";
import { loadTopology } from "../test/fixtures/regions/topology.ts";
import type { RegionsHarness } from "../test/fixtures/regions.ts";
import type { HandoffRecord } from "../server/handoff/types.ts";

export const handoffBenchOptions = z.object({
  /** Visitors in the hall. */
  clients: z.coerce.number().int().min(2).max(5000).default(200),
  /** The region the hall opens in (and the visitors' city), and the one it is handed to. */
  source: z.string().min(1).default("jp-tokyo"),
  target: z.string().min(1).default("jp-osaka"),
  /** Handoffs: source → target, target → source, … */
  handoffs: z.coerce.number().int().min(1).max(100).default(6),
  /** Moves a second per visitor. */
  moveHz: z.coerce.number().positive().max(50).default(5),
  /** Wait after every visitor followed one handoff, before the next, ms. */
  intervalMs: z.coerce.number().int().min(0).max(60_000).default(1500),
  /** Walking before the first handoff, s. */
  warmup: z.coerce.number().min(0).max(60).default(2),
  /** The nodes' --expo-tick-ms: one frame per visitor per tick. */
  tickMs: z.coerce.number().int().min(10).max(1000).default(100),
  /**
   * The nodes' --handoff-seat-seconds (their default): how long a moved session's seat
   * waits for its client, and so how long the old home keeps its copy of the hall, which
   * a handoff back to it must wait out.
   */
  seatSeconds: z.coerce.number().int().min(1).max(120).default(15),
  /** The nodes' --failover-snapshot-ms (their default, 100): how often the hall writes its snapshot; 0 turns them off (and failover with them: no kills then). */
  snapshotMs: z.coerce.number().int().min(0).max(60_000).default(100),
  /** Multiplies every delay of the harness; 0: no delays. */
  delayScale: z.coerce.number().min(0).max(100).default(1),
  /**
   * Processes the visitors are split over. A handoff sends every visitor to the new home
   * at once: in one process their reconnections queue behind each other on its one
   * event loop (no real client waits for 199 others), which is part of what it stamps.
   */
  loadProcesses: z.coerce.number().int().min(1).max(16).default(1),
  /** Joins in flight at once, per load process. */
  joinConcurrency: z.coerce.number().int().min(1).max(500).default(25),
  /** Seed of the visitors' walks. */
  seed: z.coerce.number().int().min(0).default(1),
  /** Rounds of the kill phase, each SIGKILLing the hall's node (0: none, and one node a region). */
  kills: z.coerce.number().int().min(0).max(20).default(2),
})
  .refine((options) => knownRegions().includes(options.source), { path: ["source"], message: `not a region of deploy/regions.json (${knownRegions().join(", ")})` })
  .refine((options) => knownRegions().includes(options.target), { path: ["target"], message: `not a region of deploy/regions.json (${knownRegions().join(", ")})` })
  .refine((options) => options.source !== options.target, { path: ["target"], message: "must differ from --source: a handoff needs two regions" })
  .refine((options) => options.snapshotMs > 0 || options.kills === 0, { path: ["kills"], message: "needs snapshots (--snapshot-ms above 0): nothing restores a killed node's hall without them" });

/** The regions of the reference topology. */
function knownRegions(): string[] {
  return loadTopology().regions.map((region) => region.id);
}

export type HandoffBenchOptions = z.output<typeof handoffBenchOptions>;

export interface HandoffBenchResult {
  bench: "handoff";
  clients: number;
  source: string;
  target: string;
  regions: string[];
  /** The reference RTT source ↔ target (deploy/regions.json), ms; the harness applies it × delayScale. */
  rttMs: number;
  delayScale: number;
  moveHz: number;
  tickMs: number;
  /** The nodes' failover.snapshotMs. */
  snapshotMs: number;
  pauseP50Ms: number;
  pauseP99Ms: number;
  pauseMaxMs: number;
  /** Visitor × move pairs with both ends of the pause stamped (clients × handoffs when all went well). */
  pauseSamples: number;
  lost: number;
  duplicated: number;
  /** lost, in parts: the nodes' gap counter, and moves still unacknowledged once the walk stopped. */
  inputGaps: number;
  unackedAtEnd: number;
  neighbourSeqRegressions: number;
  duplicatesDropped: number;
  resent: number;
  /** Inputs that reached an old home after its Switch (sent again by the SDK to the new one). */
  inputsAfterSwitch: number;
  handoffs: number;
  handoffMsP50: number;
  handoffMsP99: number;
  /** The kill phase (lib/handoff-failover.ts): the worst round's figures, ms; null with --kills 0. */
  detectMs: number | null;
  rtoMs: number | null;
  rtoServerMs: number | null;
  rpoMs: number | null;
  failoverLost: number;
  failover: FailoverFigures["failover"];
  kills: KillFigures[];
  /** The SDK's RoomHandoff → SessionResumed (HandoffEvent.pauseMs). */
  sdkPauseP50Ms: number;
  sdkPauseP99Ms: number;
  /** Frames' usual spacing per visitor (one home, no move), ms. */
  frameGapP50Ms: number;
  frameGapP99Ms: number;
  breakdown: PauseBreakdown;
  perHandoff: PerHandoff[];
  /** CPU over the handoffs, % of one core: the visitor load (every process), this process (the delay proxies), each node, the machine, other work. */
  loadCpuPct: number;
  cpuPct: { nodes: Record<string, number>; loads: number[]; proxies: number; machine: number; other: number };
  loadEventLoopDelayP99Ms: number;
  movesSent: number;
  framesReceived: number;
  sessionsLost: number;
  errors: Record<string, number>;
  targets: { pauseP99Ms: number; lost: 0; duplicated: 0; detectMs: number; rtoMs: number; rpoMs: number; failoverLost: 0; met: boolean };
  warnings: string[];
}

/** Above this CPU share of one core, a load process (one core at most) may bound the figures. */
const loadSaturatedCpuPct = 90;
/** Above this share of all cores busy, processes waited for a core. */
const machineBusyShare = 0.8;

export async function runHandoffBench(options: Partial<HandoffBenchOptions> = {}): Promise<HandoffBenchResult> {
  const resolved = handoffBenchOptions.parse(options);
  const { source, target, clients, handoffs, moveHz, tickMs, delayScale, seatSeconds } = resolved;
  const rttMs = loadTopology().rttMs(source, target);
  const pauseTarget = 50 + rttMs * delayScale;
  const warnings: string[] = [];
  const warn = (message: string) => { warnings.push(message); log(`WARNING ${message}`); };
  const hallId = `bench-handoff-${randomBytes(4).toString("hex")}`;
  log(`handoff bench: ${clients} visitors walking at ${moveHz} Hz in ${source}'s city, ${handoffs} handoffs ${source} ⇄ ${target} (RTT ${rttMs} ms × ${delayScale}), tick ${tickMs} ms`);
  log(`target (reported, not asserted): pause p99 ≤ ${pauseTarget} ms (50 + RTT), 0 lost, 0 duplicated`
    + (resolved.kills ? `; ${resolved.kills} kills: loss seen ≤ ${failoverTargets.detectMs} ms, back ≤ ${failoverTargets.rtoMs} ms, state lost ≤ ${failoverTargets.rpoMs} ms, 0 moves lost` : ""));

  const harness = await startHarness({ source, target, tickMs, moveHz, delayScale, clients, seatSeconds, nodesPerRegion: resolved.kills > 0 ? 2 : 1, snapshotMs: resolved.snapshotMs });
  let loads: BenchChild[] = [];
  try {
    const sourceNode = harness.region(source).nodes[0]!;
    const { roomId, side } = await openBenchHall(sourceNode, hallId, clients);
    const city = await harness.locate(source);
    log(`joining ${clients} visitors located in ${source} (${resolved.loadProcesses} load process(es), ${resolved.joinConcurrency} at a time each)`);
    loads = await startLoads(harness, city, {
      hallId: roomId, total: clients, moveHz, width: side, height: side, joinConcurrency: resolved.joinConcurrency, seed: resolved.seed,
    }, resolved.loadProcesses);
    const loadPids = loads.map((load) => load.pid);
    const before = await inputCounters(harness.nodes);
    await Promise.all(loads.map((load) => load.call("go")));
    log(`walking; warming up for ${resolved.warmup} s`);
    await sleep(resolved.warmup * 1000);

    const cpuAtStart = await sampleCpu(harness.nodes, loadPids);
    const records = await handOffRepeatedly(harness, loads, roomId, resolved, warn);
    const cpuAtEnd = await sampleCpu(harness.nodes, loadPids);
    const settled = await Promise.all(loads.map((load) => load.call<{ waitedMs: number; unackedVisitors: number }>("settle")));
    log(`walk stopped; last moves acknowledged after ${Math.max(...settled.map((s) => s.waitedMs))} ms `
      + `(${settled.reduce((sum, s) => sum + s.unackedVisitors, 0)} visitors still unacknowledged)`);
    const after = await inputCounters(harness.nodes);
    const results = mergeResults(await Promise.all(loads.map((load) => load.call<HandoffLoadResults>("results"))));
    const failover = await measureFailover({
      harness, city, loads, roomId, owner: records.at(-1)!.to.nodeId, moves: records.length, kills: resolved.kills, intervalMs: resolved.intervalMs, warn,
    });

    const figures = pauseFigures(records, results);
    const cpu = cpuPct(harness.nodes, cpuAtStart, cpuAtEnd);
    const inputGaps = after.gaps - before.gaps;
    const unackedAtEnd = results.unacked.reduce((sum, n) => sum + n, 0);
    const lost = inputGaps + unackedAtEnd;
    const duplicated = results.ackRegressions;
    const handoffSpread = spread(records.map(handoffMs));
    const loadCpu = round(cpu.loads.reduce((sum, pct) => sum + pct, 0), 1);
    const met = figures.pause.p99 <= pauseTarget && lost === 0 && duplicated === 0 && failoverMet(failover);

    if (figures.pause.n < clients * records.length) warn(`${clients * records.length - figures.pause.n} of ${clients * records.length} visitor moves have no pause stamped (a visitor lost, or no frame from a home)`);
    if (results.mismatched) warn(`${results.mismatched} visitors saw a different number of room changes in their frames than \`moved\` events`);
    if (results.sessionsLost) warn(`${results.sessionsLost} sessions ended during the run`);
    if (results.neighbourRegressions) warn(`viewers saw a neighbour's seq go backwards ${results.neighbourRegressions} times (an older move applied after a newer one)`);
    if (cpu.loads.some((pct) => pct > loadSaturatedCpuPct)) warn(`a visitor load process used over ${loadSaturatedCpuPct}% of a core (${cpu.loads.join(", ")}%): its own delays are part of the pauses it stamps`);
    if (cpu.machine > machineBusyShare * 100 * availableParallelism()) warn(`the machine was ${cpu.machine}% busy of ${100 * availableParallelism()}% (${cpu.other}% not this bench's processes): every figure includes waiting for a core`);
    if (results.eventLoopDelayP99Ms > loadLagWarnMs) warn(`the visitor load's event loop lagged ${round(results.eventLoopDelayP99Ms)} ms (p99): part of every pause it stamps`);
    log(`result: pause p50 ${figures.pause.p50} ms, p99 ${figures.pause.p99} ms (target ≤ ${pauseTarget}: ${figures.pause.p99 <= pauseTarget ? "met" : "NOT met"}; `
      + `frames normally ${figures.frameGapP50Ms} ms apart); lost ${lost}, duplicated ${duplicated}; handoff p50 ${handoffSpread.p50} ms`);
    if (failover.failover !== "not run") {
      log(`kills: loss seen ≤ +${failover.detectMs} ms, every visitor back ≤ +${failover.rtoMs} ms (hall live ≤ +${failover.rtoServerMs} ms), `
        + `state lost ≤ ${failover.rpoMs} ms, ${failover.failoverLost} moves lost (targets ${failoverTargets.detectMs}, ${failoverTargets.rtoMs}, ${failoverTargets.rpoMs}, 0: ${failoverMet(failover) ? "met" : "NOT met"})`);
    }

    return {
      bench: "handoff", clients, source, target, regions: [...harness.regionIds], rttMs, delayScale, moveHz, tickMs, snapshotMs: resolved.snapshotMs,
      pauseP50Ms: figures.pause.p50, pauseP99Ms: figures.pause.p99, pauseMaxMs: figures.pause.max, pauseSamples: figures.pause.n,
      lost, duplicated, inputGaps, unackedAtEnd, neighbourSeqRegressions: results.neighbourRegressions,
      duplicatesDropped: after.duplicates - before.duplicates, resent: figures.resent, inputsAfterSwitch: after.afterHandoff - before.afterHandoff,
      handoffs: records.length, handoffMsP50: handoffSpread.p50, handoffMsP99: handoffSpread.p99,
      detectMs: failover.detectMs, rtoMs: failover.rtoMs, rtoServerMs: failover.rtoServerMs, rpoMs: failover.rpoMs,
      failoverLost: failover.failoverLost, failover: failover.failover, kills: failover.kills,
      sdkPauseP50Ms: figures.sdkPause.p50, sdkPauseP99Ms: figures.sdkPause.p99,
      frameGapP50Ms: figures.frameGapP50Ms, frameGapP99Ms: figures.frameGapP99Ms,
      breakdown: figures.breakdown, perHandoff: figures.perHandoff,
      loadCpuPct: loadCpu, cpuPct: cpu, loadEventLoopDelayP99Ms: round(results.eventLoopDelayP99Ms),
      movesSent: results.sent, framesReceived: results.frames, sessionsLost: results.sessionsLost, errors: results.errors,
      targets: { pauseP99Ms: pauseTarget, lost: 0, duplicated: 0, ...failoverTargets, failoverLost: 0, met },
      warnings,
    };
  } finally {
    for (const load of loads) load.kill();
    await harness.stop();
  }
}

/** The handoffs, each from the node hosting the hall, each next one once every visitor followed and intervalMs passed. */
async function handOffRepeatedly(harness: RegionsHarness, loads: BenchChild[], roomId: string, options: HandoffBenchOptions, warn: (message: string) => void): Promise<HandoffRecord[]> {
  const records: HandoffRecord[] = [];
  let owner = harness.region(options.source).nodes[0]!;
  for (let k = 0; k < options.handoffs; k++) {
    const to = k % 2 === 0 ? options.target : options.source;
    const waitedMs = await waitUntilNoHall(harness.region(to).nodes[0]!, (options.seatSeconds + 10) * 1000);
    if (waitedMs > 0) log(`handoff ${k + 1}: waited ${waitedMs} ms for ${to}'s old copy of the hall to close (it lingers handoff.seatSeconds)`);
    const record = await handOff(harness, owner, roomId, to, harness.region(to).nodes[0]!.nodeId);
    records.push(record);
    owner = harness.node(record.to.nodeId);
    const steps = record.transitions.map((t) => `${t.state} ${t.ms}`).join(", ");
    const followedMs = await waitUntilFollowed(loads, k + 1, followTimeoutMs);
    log(`handoff ${k + 1}/${options.handoffs}: ${record.from.nodeId} → ${record.to.nodeId} in ${handoffMs(record)} ms (${steps}); `
      + `${record.sessions} sessions, ${record.carriedInputs} inputs carried; every visitor followed within ${followedMs === undefined ? "NOT all" : `${followedMs}`} ms of the answer`);
    if (followedMs === undefined) warn(`handoff ${k + 1}: not every visitor followed within ${followTimeoutMs} ms`);
    await sleep(options.intervalMs);
  }
  return records;
}

export const handoffBench = defineBench({
  description: "an expo hall of walking visitors handed between two regions, then its node killed: the pause per visitor, inputs lost or applied twice, handoff time; loss detection, recovery time and state lost",
  options: handoffBenchOptions,
  // Starting the regions (tsx compiles each node), joining at ~20 a second, the handoffs (each
  // back to a node waits out its old copy: seatSeconds), the settle; each kill (the walk, the
  // visitors back, the settle, the killed node started again).
  timeoutSeconds: (options) => Math.ceil(90 + options.clients / 20 + options.warmup + options.handoffs * (options.intervalMs / 1000 + options.seatSeconds + 10) + 30
    + options.kills * (options.intervalMs / 1000 + 90)),
  run: (options) => runHandoffBench(options),
});
