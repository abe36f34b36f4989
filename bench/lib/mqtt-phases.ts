/**
 * One step of the mqtt bench at one offered rate, as two phases under the same load
 * from the same publisher: through Tsunagi (broker → driver → adapter → node → the site
 * room's client) and the baseline (broker → a plain subscriber). Each phase: warm-up,
 * the measuring window (CPU of every process, and for Tsunagi the driver's counters, at
 * its ends), then a drain until the receiver has seen every sensor's last reading (or
 * the drain bound passes; what has not arrived by then is lost).
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { BenchChild } from "./child-process.ts";
import { machineBusyMs, procCpuMs, round } from "./measure.ts";
import { baselineFigures, deliveryFigures, type BaselineFigures, type DeliveryFigures } from "./mqtt-figures.ts";
import type { Advances, BaselineWindow, PublishRun } from "./mqtt-protocol.ts";
import type { DriverCounters } from "./mqtt-setup.ts";

export interface PhaseContext {
  publisher: BenchChild;
  observer: BenchChild;
  driverCounters(): Promise<DriverCounters>;
  /** The processes whose CPU is reported, by name. */
  pids: Record<string, number>;
  tsunagiPrefix: string;
  baselinePrefix: string;
  warmupMs: number;
  windowMs: number;
  drainMs: number;
}

/** CPU over a window, % of one core, by process name, `machine` (every core, anything) and `other` (the machine less those). */
export type CpuFigures = Record<string, number>;

export interface TsunagiPhase extends DeliveryFigures {
  /** Readings per second published in the window. */
  offered: number;
  /** Published in the whole phase (warm-up included) and counted by the driver by the end of the drain. */
  published: number;
  ingested: number;
  /** The driver's count of messages per second over the window, by its counters at the window's ends. */
  ingestedPerSec: number;
  malformed: number;
  refused: number;
  publishErrors: number;
  framesPerSec: number;
  drainMs: number;
  cpuPct: CpuFigures;
  publisherLoopDelayP99Ms: number;
  observerLoopDelayP99Ms: number;
}

export interface BaselinePhase extends BaselineFigures {
  offered: number;
  publishErrors: number;
  drainMs: number;
  cpuPct: CpuFigures;
  subscriberLoopDelayP99Ms: number;
}

export async function tsunagiPhase(ctx: PhaseContext, rate: number): Promise<TsunagiPhase> {
  const before = await ctx.driverCounters();
  await ctx.observer.call("startRecording");
  const running = ctx.publisher.call<PublishRun>("run", { prefix: ctx.tsunagiPrefix, rate, warmupMs: ctx.warmupMs, windowMs: ctx.windowMs });
  await sleep(ctx.warmupMs);
  const [atStart, cpuStart] = await Promise.all([timed(ctx.driverCounters()), sampleCpu(ctx.pids)]);
  await sleep(Math.max(0, ctx.windowMs - (performance.now() - cpuStart.atMs)));
  const [atEnd, cpuEnd] = await Promise.all([timed(ctx.driverCounters()), sampleCpu(ctx.pids)]);
  const run = await running;
  const drainMs = await drain(ctx, run, false);
  const after = await ctx.driverCounters();
  const observed = await ctx.observer.call<Advances>("stopRecording");
  const windowS = ctx.windowMs / 1000;
  return {
    offered: round(run.sent / windowS), published: run.sentTotal, ingested: after.messages - before.messages,
    ingestedPerSec: round((atEnd.value.messages - atStart.value.messages) / ((atEnd.atMs - atStart.atMs) / 1000)),
    malformed: after.malformed - before.malformed, refused: after.refused - before.refused, publishErrors: run.errors,
    ...deliveryFigures(run, observed),
    framesPerSec: round(observed.frames / (observed.recordingMs / 1000), 1),
    drainMs, cpuPct: cpuPct(cpuStart, cpuEnd),
    publisherLoopDelayP99Ms: run.eventLoopDelayP99Ms, observerLoopDelayP99Ms: observed.eventLoopDelayP99Ms,
  };
}

export async function baselinePhase(ctx: PhaseContext, rate: number): Promise<BaselinePhase> {
  await ctx.observer.call("startBaseline");
  const running = ctx.publisher.call<PublishRun>("run", { prefix: ctx.baselinePrefix, rate, warmupMs: ctx.warmupMs, windowMs: ctx.windowMs });
  await sleep(ctx.warmupMs);
  const cpuStart = await sampleCpu(ctx.pids);
  await sleep(Math.max(0, ctx.windowMs - (performance.now() - cpuStart.atMs)));
  const cpuEnd = await sampleCpu(ctx.pids);
  const run = await running;
  const drainMs = await drain(ctx, run, true);
  const window = await ctx.observer.call<BaselineWindow>("baselineWindow", { fromMs: run.windowStartMs, toMs: run.windowEndMs });
  return {
    offered: round(run.sent / (ctx.windowMs / 1000)), publishErrors: run.errors, ...baselineFigures(run, window),
    drainMs, cpuPct: cpuPct(cpuStart, cpuEnd), subscriberLoopDelayP99Ms: window.eventLoopDelayP99Ms,
  };
}

/** Waits until the receiver has seen every sensor's last reading of `run`, at most drainMs; how long it waited, ms. */
async function drain(ctx: PhaseContext, run: PublishRun, baseline: boolean): Promise<number> {
  const startedAt = performance.now();
  for (;;) {
    const seen = await ctx.observer.call<number[]>("maxSeen", { baseline });
    if (run.lastSeq.every((last, i) => last < 0 || seen[i]! >= last)) break;
    if (performance.now() - startedAt > ctx.drainMs) break;
    await sleep(20);
  }
  return Math.round(performance.now() - startedAt);
}

async function timed<T>(promise: Promise<T>): Promise<{ value: T; atMs: number }> {
  const value = await promise;
  return { value, atMs: performance.now() };
}

interface CpuSample { atMs: number; byName: Record<string, number>; machine: number }

async function sampleCpu(pids: Record<string, number>): Promise<CpuSample> {
  const names = Object.keys(pids);
  const [times, machine] = await Promise.all([Promise.all(names.map((name) => procCpuMs(pids[name]!))), machineBusyMs()]);
  return { atMs: performance.now(), byName: Object.fromEntries(names.map((name, i) => [name, times[i]!])), machine };
}

function cpuPct(start: CpuSample, end: CpuSample): CpuFigures {
  const wallMs = end.atMs - start.atMs;
  const pct = (from: number, to: number) => round(((to - from) / wallMs) * 100, 1);
  const figures: CpuFigures = {};
  for (const name of Object.keys(start.byName)) figures[name] = pct(start.byName[name]!, end.byName[name]!);
  figures.machine = pct(start.machine, end.machine);
  // the rest of the machine: this orchestrator, Redis, the kernel's softirqs, anything else running
  figures.other = round(Math.max(0, figures.machine - Object.keys(start.byName).reduce((sum, name) => sum + figures[name]!, 0)), 1);
  return figures;
}
