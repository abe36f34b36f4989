/**
 * Voice bench: how many Opus audio tracks one Janus (Debian's janus 1.1.2, started by
 * JanusProcess, driven by JanusVoiceBackend exactly as a node does) forwards on this
 * machine before packets are lost, and what that costs it per core.
 *
 * Janus phase: one VideoRoom (JanusVoiceBackend: private, require_pvtid, an allowed
 * list), `speakers` publishers in one load process (lib/voice-load.ts, node-datachannel
 * peers, each with a grant of its own), each sending one Opus track (48000/2, stereo=1;
 * sprop-stereo=1) at 50 packets a second. Then steps: each adds `listeners-per-step`
 * listeners over `load-processes` processes; a listener joins with a publisher handle
 * (its private_id), joins a subscriber with the first feed, answers, `start`s, then
 * subscribes to the other feeds with one `update`. A step forwards speakers × listeners
 * subscriber tracks. After `warmup` s, a `seconds` window counts every track's RTP
 * packets: loss = 1 − received / (50/s × window × tracks). Stepping stops at the first
 * step with loss ≥ 1 % (the knee) or before `max-tracks` would be passed.
 *
 * Defaults: 10 speakers, +10 listeners (100 tracks) a step, up to 2,000 tracks; a 2 s
 * warm-up and a 5 s window a step (about 2 minutes with the baseline on a 2-core machine).
 *
 * - janusCpuPct: Janus' utime + stime (/proc/<pid>/stat, all threads) over the window,
 *   100 = one core; tracksPerCore = tracks / (janusCpuPct / 100). The kernel's work of
 *   moving the packets (softirqs, charged to no process) is reported apart
 *   (softirqCpuPct), and so is the machine's other work (otherCpuPct, a warning above
 *   25 % of a core in a window that matters: on a shared machine the figures drop).
 * - subscribeToFirstPacketP95Ms: from a listener sending its subscriber `join` or its
 *   `update` to the first RTP packet of each track that request added (measured while
 *   the previous step's load runs). The load clients answer Janus' offers DTLS-passive
 *   (lib/voice-protocol.ts offerForPassiveAnswer): answered active, libdatachannel's
 *   first ClientHello reaches Janus before the answer does and is retransmitted only
 *   after 1 s, which would be most of each join's figure.
 *
 * Baseline phase (same run, after Janus is stopped): the same listener clients and packet
 * path without Janus. A fan-out peer (also lib/voice-load.ts) offers each listener one
 * peer carrying every speaker's stream and sends each speaker's packets on all of them:
 * the listeners receive exactly what Janus would send them. Measured at the reported
 * step's size and at the knee's, so the reader sees how much of the machine the load
 * clients take themselves (`loadCpuPct`), whether they lose packets without Janus at
 * the knee (then the knee is theirs, not Janus'), and what the same fan-out costs in
 * libdatachannel (`fanoutCpuPct`) against Janus.
 *
 * Media address: Janus 1.1.2 never gathers ICE candidates on a loopback interface (it
 * skips IFF_LOOPBACK; with `mediaInterfaces: "127.0.0.1"` nothing matches and libnice
 * falls back to every other interface). So media runs on one local address of this
 * machine (`--media-address`, default: its first non-internal IPv4 address), Janus'
 * mediaInterfaces and every client's bind address: packets to a local address never
 * leave the machine (the kernel routes them over `lo`). The APIs stay on 127.0.0.1.
 * With `--pin true` (default on 2+ cores), Janus (or the fan-out peer) gets CPU 0 and
 * the load processes the others.
 *
 * Target (printed, never asserted): tracksPerCore ≥ 500 at lossPct < 1 (mediasoup's
 * per-worker figure).
 *
 * @example
 *   npm run bench -- voice
 *   npm run bench -- voice --speakers 5 --listeners-per-step 4 --max-tracks 20 --seconds 2 --warmup 1
 */
import { randomBytes } from "node:crypto";
import { spawnSync } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { pino } from "pino";
import { z } from "zod";
import { defineBench } from "./lib/bench.ts";
import { BenchChild, serverAndLoadCpus } from "./lib/child-process.ts";
import { log, round } from "./lib/measure.ts";
import { withTimeout } from "./lib/tasks.ts";
import { measureWindow, subscribeFigures, type SubscribeFigures, type WindowFigures } from "./lib/voice-measure.ts";
import type { LoadConfig, SpeakersReady, SubscribeTimes } from "./lib/voice-protocol.ts";
import { JanusProcess } from "../server/voice/JanusProcess.ts";
import { JanusVoiceBackend } from "../server/voice/JanusVoiceBackend.ts";
import { MAX_GRANT_TTL_MS, type VoiceGrant } from "../server/voice/VoiceBackend.ts";
import { machineAddress, mediaInterfacesProblem } from "../server/voice/settings.ts";

const booleanFlag = z.union([z.boolean(), z.enum(["true", "false"]).transform((flag) => flag === "true")], { error: "must be true or false" });

export const voiceBenchOptions = z.object({
  /** Publishers, each one Opus track at 50 packets/s. */
  speakers: z.coerce.number().int().min(1).max(100).default(10),
  /** Listeners added at each step; each subscribes to every speaker. */
  listenersPerStep: z.coerce.number().int().min(1).max(500).default(10),
  /** No step beyond this many forwarded tracks (speakers × listeners). */
  maxTracks: z.coerce.number().int().min(1).default(2000),
  /** Measuring window of each step, s. */
  seconds: z.coerce.number().positive().default(5),
  /** Load before each window, s. */
  warmup: z.coerce.number().min(0).default(2),
  /** Processes the listeners are spread over. */
  loadProcesses: z.coerce.number().int().min(1).max(8).default(2),
  /** Listener joins in flight at once, per load process. */
  joinConcurrency: z.coerce.number().int().min(1).max(100).default(10),
  /** The local address media runs on (Janus' mediaInterfaces, the clients' bind address); auto: the first non-internal IPv4. */
  mediaAddress: z.string().default("auto"),
  /** Janus (or the fan-out peer) on CPU 0, the load processes on the others. */
  pin: booleanFlag.default(true),
  /** Run the baseline phase (no Janus). */
  baseline: booleanFlag.default(true),
});

export type VoiceBenchOptions = z.output<typeof voiceBenchOptions>;

/** Janus' media ports (one per peer connection). */
const RTP_PORT_RANGE = "20000-29999";
const TARGET_TRACKS_PER_CORE = 500;
const LOSS_LIMIT_PCT = 1;
/** Other work on the machine (not this bench, not softirqs) above this, % of a core, during a window that matters: a warning. */
const BUSY_OTHER_PCT = 25;

export interface StepFigures extends Omit<WindowFigures, "forwarderCpuPct"> {
  step: number;
  speakers: number;
  listeners: number;
  janusCpuPct: number;
  tracksPerCore: number | null;
  subscribe: SubscribeFigures;
  /** Joining the step's listeners until each track had its first packet, s. */
  setupS: number;
}

export interface BaselineStep extends Omit<WindowFigures, "forwarderCpuPct" | "speakersCpuPct"> {
  listeners: number;
  /** The fan-out peer's CPU (it does what Janus does, in libdatachannel), % of one core. */
  fanoutCpuPct: number;
  silent: number;
}

function resolveMediaAddress(option: string): string {
  const address = option === "auto" ? machineAddress() : option;
  const problem = mediaInterfacesProblem(address);
  if (problem) throw new Error(`--media-address ${option}: ${problem}`);
  return address;
}

/** Puts every thread of `pid` (and those it starts) on `cpus`. */
function pin(pid: number, cpus: string): void {
  const result = spawnSync("taskset", ["-a", "-p", "-c", cpus, String(pid)], { stdio: "ignore" });
  if (result.status !== 0) throw new Error(`taskset could not pin Janus (pid ${pid}) to CPU ${cpus}`);
}

function range(count: number): number[] {
  return Array.from({ length: count }, (_, i) => i);
}

async function startListeners(phase: string, options: VoiceBenchOptions, runId: string, mediaAddress: string, cpus: string | undefined): Promise<BenchChild[]> {
  return (await Promise.all(range(options.loadProcesses).map((i) => BenchChild.start(`${phase} listeners ${i + 1}`, "bench/lib/voice-load.ts",
    { role: "listeners", runId, label: `listener${i + 1}`, mediaAddress } satisfies LoadConfig, undefined, cpus)))).map((started) => started.child);
}

async function runJanusPhase(options: VoiceBenchOptions, runId: string, mediaAddress: string, cpus: { server: string; load: string } | undefined, warnings: string[])
  : Promise<{ steps: StepFigures[]; janusCandidates: string[]; janusPid: number }> {
  const logger = pino({ level: "warn" }, pino.destination(2));
  const children: BenchChild[] = [];
  let janus: JanusProcess | undefined;
  let backend: JanusVoiceBackend | undefined;
  let janusExited = false;
  try {
    janus = await JanusProcess.start({
      rtpPortRange: RTP_PORT_RANGE, mediaInterfaces: mediaAddress, serverName: "bench-voice", logger, debugLevel: 3, onExit: () => { janusExited = true; },
    });
    if (cpus) pin(janus.pid!, cpus.server);
    backend = await JanusVoiceBackend.connect(janus.endpoint, { logger, grantTtlMs: MAX_GRANT_TTL_MS, maxSpeakers: options.speakers });
    const room = `bench-voice-${runId}`;
    const grant = async (sessionId: string, speak: boolean) => backend!.grant(room, { sessionId, display: sessionId, speak });
    log(`janus: pid ${janus.pid}${cpus ? ` on CPU ${cpus.server}` : ""}, media on ${mediaAddress}; ${options.speakers} speakers publishing`);

    const speakerGrants: VoiceGrant[] = [];
    for (const i of range(options.speakers)) speakerGrants.push(await grant(`speaker-${i + 1}`, true));
    const speakers = await BenchChild.start<SpeakersReady>("voice speakers", "bench/lib/voice-load.ts",
      { role: "speakers", runId, label: "speaker", mediaAddress, grants: speakerGrants } satisfies LoadConfig, undefined, cpus?.load);
    children.push(speakers.child);
    const { feeds, janusCandidates } = speakers.ready;
    if (janusCandidates.some((address) => address !== mediaAddress)) {
      warnings.push(`Janus offered ICE candidates on ${janusCandidates.join(", ")}, not only on the media address ${mediaAddress}`);
    }
    const listeners = await startListeners("janus", options, runId, mediaAddress, cpus?.load);
    children.push(...listeners);

    const steps: StepFigures[] = [];
    let listenerCount = 0;
    for (let step = 1; ; step++) {
      const target = step * options.listenersPerStep;
      if (step > 1 && target * options.speakers > options.maxTracks) break;
      const grants: VoiceGrant[] = [];
      for (let i = listenerCount; i < target; i++) grants.push(await grant(`listener-${i + 1}`, false));
      const setupStartedAt = performance.now();
      const times = await Promise.all(listeners.map((child, p) => child.call<SubscribeTimes>("addListeners", {
        grants: grants.filter((_, i) => i % listeners.length === p), feeds, concurrency: options.joinConcurrency,
      })));
      const setupS = round((performance.now() - setupStartedAt) / 1000, 1);
      listenerCount = target;
      await sleep(options.warmup * 1000);
      const window = await measureWindow({ forwarderPid: janus.pid!, speakers: speakers.child, listeners }, options.seconds);
      if (janusExited) throw new Error("Janus exited during the step: its figures are void");
      const { forwarderCpuPct, ...rest } = window;
      const figures: StepFigures = {
        step, speakers: options.speakers, listeners: target, ...rest, janusCpuPct: forwarderCpuPct,
        tracksPerCore: forwarderCpuPct > 0 ? Math.round(window.tracks / (forwarderCpuPct / 100)) : null,
        subscribe: subscribeFigures(times), setupS,
      };
      steps.push(figures);
      log(`janus step ${step}: ${target} listeners × ${options.speakers} speakers = ${window.tracks} tracks: loss ${window.lossPct}%, `
        + `Janus ${forwarderCpuPct}% CPU (${figures.tracksPerCore ?? "-"} tracks/core), load ${window.loadCpuPct}% (speakers ${window.speakersCpuPct}%, listeners ${window.listenersCpuPct.join(" + ")}%), `
        + `machine ${window.machineCpuPct}% (softirq ${window.softirqCpuPct}%, other ${window.otherCpuPct}%); subscribe→first packet p95 ${figures.subscribe.p95Ms} ms (join ${figures.subscribe.joinP95Ms}, update ${figures.subscribe.updateP95Ms}), `
        + `${figures.subscribe.silent} silent; set-up ${setupS} s`);
      if (window.lossPct >= LOSS_LIMIT_PCT) break;
    }
    return { steps, janusCandidates, janusPid: janus.pid! };
  } finally {
    for (const child of children) child.kill();
    if (backend) await withTimeout(backend.close(), 10_000, "closing the voice backend").catch((error: Error) => log(`janus: ${error.message}`));
    await janus?.stop();
  }
}

async function runBaselinePhase(options: VoiceBenchOptions, runId: string, mediaAddress: string, cpus: { server: string; load: string } | undefined, sizes: number[]): Promise<BaselineStep[]> {
  const children: BenchChild[] = [];
  try {
    const fanout = await BenchChild.start("baseline fan-out", "bench/lib/voice-load.ts",
      { role: "fanout", runId, label: "fanout", mediaAddress, speakers: options.speakers } satisfies LoadConfig, undefined, cpus?.server);
    children.push(fanout.child);
    const listeners = await startListeners("baseline", options, runId, mediaAddress, cpus?.load);
    children.push(...listeners);
    log(`baseline: no Janus; a fan-out peer${cpus ? ` on CPU ${cpus.server}` : ""} sends ${options.speakers} speakers' streams to each listener directly`);

    const steps: BaselineStep[] = [];
    let listenerCount = 0;
    for (const size of sizes) {
      const added = range(size - listenerCount).map((i) => listenerCount + i);
      const perProcess = listeners.map((_, p) => added.filter((i) => i % listeners.length === p));
      await Promise.all(perProcess.map(async (indexes, p) => {
        for (const _ of indexes) {
          const offer = await fanout.child.call<{ id: number; sdp: string }>("offer");
          const answer = await listeners[p]!.call<string>("answerOffer", offer);
          await fanout.child.call("answered", { id: offer.id, sdp: answer });
        }
      }));
      listenerCount = size;
      const silent = (await Promise.all(listeners.map((child) => child.call<number>("baselineFirstPackets")))).reduce((sum, n) => sum + n, 0);
      await sleep(options.warmup * 1000);
      const window = await measureWindow({ forwarderPid: fanout.child.pid, fanout: fanout.child, listeners }, options.seconds);
      const { forwarderCpuPct, speakersCpuPct: _, ...rest } = window;
      steps.push({ listeners: size, ...rest, fanoutCpuPct: forwarderCpuPct, silent });
      log(`baseline: ${size} listeners × ${options.speakers} speakers = ${window.tracks} tracks: loss ${window.lossPct}%, fan-out peer ${forwarderCpuPct}% CPU, `
        + `listeners ${window.listenersCpuPct.join(" + ")}%, machine ${window.machineCpuPct}% (softirq ${window.softirqCpuPct}%, other ${window.otherCpuPct}%)${silent ? `, ${silent} silent tracks` : ""}`);
    }
    return steps;
  } finally {
    for (const child of children) child.kill();
  }
}

export async function runVoiceBench(input: Partial<VoiceBenchOptions> = {}) {
  const options = voiceBenchOptions.parse(input);
  const runId = randomBytes(4).toString("hex");
  const mediaAddress = resolveMediaAddress(options.mediaAddress);
  const cpus = options.pin ? serverAndLoadCpus() : undefined;
  const warnings: string[] = [];
  log(`voice bench ${runId}: ${options.speakers} speakers, +${options.listenersPerStep} listeners a step up to ${options.maxTracks} tracks; `
    + `warm-up ${options.warmup} s, window ${options.seconds} s; target (reported, not asserted): tracksPerCore ≥ ${TARGET_TRACKS_PER_CORE} at loss < ${LOSS_LIMIT_PCT}%`);

  const { steps, janusCandidates, janusPid } = await runJanusPhase(options, runId, mediaAddress, cpus, warnings);
  const passed = steps.filter((step) => step.lossPct < LOSS_LIMIT_PCT);
  const best = passed[passed.length - 1];
  const knee = steps.find((step) => step.lossPct >= LOSS_LIMIT_PCT);
  if (!knee) log(`janus: no knee up to ${steps[steps.length - 1]!.tracks} tracks (--max-tracks ${options.maxTracks})`);

  const sizes = [...new Set([best?.listeners, knee?.listeners].filter((size): size is number => size !== undefined))];
  const baselineSteps = options.baseline ? await runBaselinePhase(options, runId, mediaAddress, cpus, sizes) : [];
  const baselineAtBest = baselineSteps[0];
  for (const step of baselineSteps) {
    if (step.lossPct >= LOSS_LIMIT_PCT) {
      warnings.push(`the load clients lose ${step.lossPct}% at ${step.tracks} tracks without Janus: the knee there is theirs, not Janus'`);
    }
  }
  for (const [what, window] of [["the reported step", best], ["the knee", knee], ...baselineSteps.map((step) => [`the baseline at ${step.tracks} tracks`, step] as const)] as const) {
    if (window && window.otherCpuPct > BUSY_OTHER_PCT) {
      warnings.push(`other work on this machine took ${window.otherCpuPct}% of a core during ${what}'s window: its figures may be low`);
    }
  }

  const tracksPerCore = best?.tracksPerCore ?? null;
  const met = tracksPerCore !== null && tracksPerCore >= TARGET_TRACKS_PER_CORE;
  log(`result: ${best?.tracks ?? 0} tracks at ${best?.lossPct ?? "-"}% loss, Janus ${best?.janusCpuPct ?? "-"}% CPU: ${tracksPerCore ?? "-"} tracks/core `
    + `(target ≥ ${TARGET_TRACKS_PER_CORE}: ${met ? "met" : "NOT met"}); knee ${knee ? `${knee.tracks} tracks (${knee.lossPct}% loss)` : "not reached"}`);
  for (const warning of warnings) log(`WARNING ${warning}`);

  return {
    bench: "voice",
    runId,
    mediaAddress,
    /** Janus' pid while it ran (stopped before the baseline). */
    janusPid,
    pinned: cpus !== undefined,
    speakers: options.speakers,
    seconds: options.seconds,
    tracks: best?.tracks ?? 0,
    lossPct: best?.lossPct ?? null,
    janusCpuPct: best?.janusCpuPct ?? null,
    tracksPerCore,
    subscribeToFirstPacketP95Ms: best?.subscribe.p95Ms ?? null,
    kneeTracks: knee?.tracks ?? null,
    target: { tracksPerCore: TARGET_TRACKS_PER_CORE, lossPctBelow: LOSS_LIMIT_PCT, met },
    steps,
    baseline: baselineAtBest ? {
      tracks: baselineAtBest.tracks,
      lossPct: baselineAtBest.lossPct,
      loadCpuPct: baselineAtBest.loadCpuPct,
      /** The Janus phase's load (speakers and listeners) at the same size, side by side. */
      loadCpuPctWithJanus: steps.find((step) => step.tracks === baselineAtBest.tracks)?.loadCpuPct ?? null,
      listenersCpuPct: baselineAtBest.listenersCpuPct,
      fanoutCpuPct: baselineAtBest.fanoutCpuPct,
      machineCpuPct: baselineAtBest.machineCpuPct,
      steps: baselineSteps,
    } : null,
    janusCandidates,
    warnings,
  };
}

export const voiceBench = defineBench({
  description: "Opus tracks one Janus forwards (speakers × listeners, stepped up to 1% loss): tracks per Janus core, subscribe→first packet; baseline without Janus",
  options: voiceBenchOptions,
  // Janus and the processes' start-up, then per step: joining its listeners, warm-up and window; the baseline at two sizes.
  timeoutSeconds: (options) => {
    const steps = Math.max(1, Math.floor(options.maxTracks / (options.speakers * options.listenersPerStep)));
    const perStep = 20 + options.warmup + options.seconds;
    return Math.ceil(60 + steps * perStep + (options.baseline ? 30 + 2 * perStep : 0));
  },
  run: (options) => runVoiceBench(options),
});
