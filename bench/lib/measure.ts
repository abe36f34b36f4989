/** Small measuring helpers shared by benches and their child processes. */
import inspector from "node:inspector";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { readFile } from "node:fs/promises";
import { monitorEventLoopDelay, PerformanceObserver, type PerformanceEntry } from "node:perf_hooks";
import { setFlagsFromString, writeHeapSnapshot } from "node:v8";
import { runInNewContext } from "node:vm";

/** The machine's monotonic clock (CLOCK_MONOTONIC), ms: one clock for every process, never stepped or slewed apart. */
function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** Environment variable through which a bench hands its children its clock anchor. */
export const CLOCK_ANCHOR_ENV = "TSUNAGI_BENCH_CLOCK_ANCHOR_MS";

/**
 * Wall clock minus monotonic clock, ms: the bench's own, taken once at start, or the one
 * its parent handed down, so that every process of a run maps the shared monotonic clock
 * to the same wall-clock time.
 */
export const clockAnchorMs: number = Number(process.env[CLOCK_ANCHOR_ENV]) || Date.now() - monotonicMs();

/**
 * Wall-clock milliseconds with sub-millisecond precision, comparable across the
 * processes of one bench run. Not `performance.timeOrigin + performance.now()`: each
 * process anchors that at its own start, and a wall clock being slewed (NTP) puts
 * processes started seconds apart a millisecond or more apart.
 */
export function wallClockMs(): number {
  return monotonicMs() + clockAnchorMs;
}

/** Clock ticks per second of /proc/<pid>/stat times: USER_HZ, 100 on Linux (fixed by its ABI). */
const procStatTicksPerSecond = 100;

/**
 * User + system CPU time (all threads) of process `pid`, in milliseconds, read from
 * /proc (Linux only) so that it does not depend on that process' event loop answering.
 */
export async function procCpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  // Fields after the ")" that closes the command name: state is the first, utime the 12th, stime the 13th.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) / procStatTicksPerSecond) * 1000;
}

/**
 * CPU time the whole machine spent busy (all cores, any process, interrupts, and time
 * stolen by the hypervisor), in milliseconds, from /proc/stat (Linux only).
 */
export async function machineBusyMs(): Promise<number> {
  const cpuLine = (await readFile("/proc/stat", "utf8")).split("\n", 1)[0]!;
  const [user, nice, system, _idle, _iowait, irq, softirq, steal] = cpuLine.split(/\s+/).slice(1).map(Number);
  return ((user! + nice! + system! + irq! + softirq! + steal!) / procStatTicksPerSecond) * 1000;
}

/** Nearest-rank percentile (0 < p ≤ 100) of ascending `sorted`; NaN when it is empty. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length, Math.ceil((p / 100) * sorted.length)) - 1]!;
}

export function round(value: number, decimals = 2): number {
  const scale = 10 ** decimals;
  return Math.round(value * scale) / scale;
}

/**
 * This process' event-loop delay over a window. A load generator's own lag delays every
 * receive it timestamps, so it is part of each latency it records; report it alongside.
 */
export class LoopDelayWindow {
  private static readonly resolutionMs = 10;
  private readonly histogram = monitorEventLoopDelay({ resolution: LoopDelayWindow.resolutionMs });

  start(): void {
    this.histogram.reset();
    this.histogram.enable();
  }

  /** Stops sampling; the p99 lag of the window, ms. */
  stopP99Ms(): number {
    this.histogram.disable();
    // The histogram holds whole sampling intervals (lag + resolution): keep the lag only.
    return this.histogram.percentile(99) / 1e6 - LoopDelayWindow.resolutionMs;
  }
}

/**
 * One measurement window of a load process: latencies recorded while it is open (in a
 * LatencyHistogram: percentiles to 0.05 ms below 2 s), and the process' own event-loop
 * delay over it (part of every latency it timestamps).
 *
 * @example
 *   const window = new LatencyWindow();
 *   window.start();
 *   onMessage(() => window.record(wallClockMs() - sentAtMs));
 *   const { windowMs, delivered, p50Ms, p99Ms, eventLoopDelayP99Ms } = window.stop();
 */
export class LatencyWindow {
  /** Whether the window is open: record() keeps samples only then. */
  measuring = false;
  /** performance.now() when the window opened. */
  private startedAt = 0;
  private readonly loopDelay = new LoopDelayWindow();
  /** Samples of the open window, mergeable with other windows' (several turns, several processes). */
  private readonly histogram = new LatencyHistogram();

  start(): void {
    this.histogram.reset();
    this.startedAt = performance.now();
    this.loopDelay.start();
    this.measuring = true;
  }

  /** Keeps one latency, when the window is open. */
  record(latencyMs: number): void {
    if (this.measuring) this.histogram.record(latencyMs);
  }

  stop(): { windowMs: number; delivered: number; p50Ms: number; p99Ms: number; eventLoopDelayP99Ms: number; latency: HistogramData } {
    this.measuring = false;
    const eventLoopDelayP99Ms = this.loopDelay.stopP99Ms();
    const windowMs = performance.now() - this.startedAt;
    const latency = this.histogram.toData();
    const [p50Ms, p99Ms] = mergedPercentiles([latency], [50, 99]) as [number, number];
    return { windowMs, delivered: latency.count, p50Ms, p99Ms, eventLoopDelayP99Ms, latency };
  }
}

/** What stalled a server process over a window: its event loop, and garbage collection. */
export interface PauseFigures {
  /** Event-loop delay, ms (at LoopDelayWindow's resolution). */
  eventLoopDelayP99Ms: number;
  eventLoopDelayMaxMs: number;
  /** Collections in the window, their total and longest pause, ms. */
  gcCount: number;
  gcTotalMs: number;
  gcMaxMs: number;
}

/**
 * A server process' pauses over a window, as `startWindow` / `stopWindow` calls for
 * serveParent: every message that arrives during a pause waits it out, so these bound
 * how much of a latency tail the server itself caused.
 */
export function pauseWindowMethods(): { startWindow: () => void; stopWindow: () => PauseFigures } {
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  const profiler = windowProfiler();
  let gcs: number[] = [];
  const observer = new PerformanceObserver((list) => { for (const entry of list.getEntries() as PerformanceEntry[]) gcs.push(entry.duration); });
  return {
    startWindow: () => {
      gcs = [];
      loopDelay.reset();
      loopDelay.enable();
      observer.observe({ entryTypes: ["gc"] });
      profiler?.start();
    },
    stopWindow: () => {
      profiler?.stop();
      loopDelay.disable();
      observer.disconnect();
      return {
        eventLoopDelayP99Ms: round(loopDelay.percentile(99) / 1e6 - 10),
        eventLoopDelayMaxMs: round(loopDelay.max / 1e6 - 10),
        gcCount: gcs.length,
        gcTotalMs: round(gcs.reduce((sum, ms) => sum + ms, 0)),
        gcMaxMs: round(Math.max(0, ...gcs)),
      };
    },
  };
}

/** A histogram as sent over IPC: sparse [bucket, count] pairs. */
export interface HistogramData {
  buckets: Array<[number, number]>;
  count: number;
  /** Samples below 0 ms (clocks disagree: the figures are invalid). */
  negative: number;
}

/** 0.05 ms buckets below 2 s, 5 ms buckets from 2 s to 120 s, one bucket above. */
const fineMs = 0.05;
const fineLimitMs = 2000;
const coarseMs = 5;
const coarseLimitMs = 120_000;
const fineBuckets = fineLimitMs / fineMs;
const bucketCount = fineBuckets + (coarseLimitMs - fineLimitMs) / coarseMs + 1;

/** Latencies of one process' window, mergeable across processes (percentiles of the whole run). */
export class LatencyHistogram {
  private counts = new Uint32Array(bucketCount);
  private total = 0;
  private negative = 0;

  record(ms: number): void {
    if (ms < 0) this.negative++;
    const bucket = ms < fineLimitMs
      ? Math.max(0, Math.floor(ms / fineMs))
      : Math.min(bucketCount - 1, fineBuckets + Math.floor((ms - fineLimitMs) / coarseMs));
    this.counts[bucket]!++;
    this.total++;
  }

  reset(): void {
    this.counts.fill(0);
    this.total = 0;
    this.negative = 0;
  }

  toData(): HistogramData {
    const buckets: Array<[number, number]> = [];
    for (let i = 0; i < this.counts.length; i++) if (this.counts[i]) buckets.push([i, this.counts[i]!]);
    return { buckets, count: this.total, negative: this.negative };
  }
}

/** Upper edge of a bucket, ms. */
function bucketUpperMs(bucket: number): number {
  if (bucket < fineBuckets) return (bucket + 1) * fineMs;
  if (bucket === bucketCount - 1) return Number.POSITIVE_INFINITY;
  return fineLimitMs + (bucket - fineBuckets + 1) * coarseMs;
}

/** Nearest-rank percentiles (0 < p ≤ 100) of several merged histograms, ms; NaN when empty. */
export function mergedPercentiles(histograms: HistogramData[], ps: number[]): number[] {
  const merged = new Map<number, number>();
  let total = 0;
  for (const histogram of histograms) {
    for (const [bucket, count] of histogram.buckets) merged.set(bucket, (merged.get(bucket) ?? 0) + count);
    total += histogram.count;
  }
  if (total === 0) return ps.map(() => Number.NaN);
  const sorted = [...merged.entries()].sort((a, b) => a[0] - b[0]);
  return ps.map((p) => {
    const rank = Math.min(total, Math.ceil((p / 100) * total));
    let seen = 0;
    for (const [bucket, count] of sorted) {
      seen += count;
      if (seen >= rank) return bucketUpperMs(bucket);
    }
    return bucketUpperMs(sorted[sorted.length - 1]![0]);
  });
}

/**
 * A load process's measuring window: whether it is open, how long it was, the latencies
 * recorded in it and the process's own event-loop delay over it.
 */
export class LoadMeasureWindow {
  /** Latencies recorded while the window is open. */
  readonly latency = new LatencyHistogram();
  /** The process's own event-loop delay over the window. */
  private readonly loopDelay = new LoopDelayWindow();
  /** When the window opened, performance.now() ms. */
  private startedAt = 0;
  /** Whether the window is open: counters count only then. */
  measuring = false;

  start(): void {
    this.latency.reset();
    this.loopDelay.start();
    this.startedAt = performance.now();
    this.measuring = true;
  }

  /** Closes the window: its length, its latencies and the event-loop delay p99 over it. */
  stop(): { windowMs: number; latency: ReturnType<LatencyHistogram["toData"]>; eventLoopDelayP99Ms: number } {
    this.measuring = false;
    return { windowMs: performance.now() - this.startedAt, latency: this.latency.toData(), eventLoopDelayP99Ms: this.loopDelay.stopP99Ms() };
  }
}

/**
 * `memory`: this process's memory after full garbage collections, for a bench child.
 * The collector is reached without `--expose-gc` on the command line (a bench child is
 * started as `node --import tsx`), by setting the flag and reading `gc` from a new context.
 */
export function memoryMethods(): { memory: () => { rss: number; heapUsed: number; external: number; arrayBuffers: number } } {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  return {
    memory: () => {
      gc();
      gc();
      const { rss, heapUsed, external, arrayBuffers } = process.memoryUsage();
      // TSUNAGI_BENCH_HEAP=DIR also writes a heap snapshot there at every figure, to find what a connection holds.
      if (process.env.TSUNAGI_BENCH_HEAP) writeHeapSnapshot(path.join(process.env.TSUNAGI_BENCH_HEAP, `${process.pid}-${Date.now()}.heapsnapshot`));
      return { rss, heapUsed, external, arrayBuffers };
    },
  };
}

/** A load process's progress line, on stderr (the orchestrator relays it). */
export function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

/**
 * TSUNAGI_BENCH_WINDOW_PROFILE=DIR: a V8 CPU profile of the measuring window alone (no
 * start-up, no warm-up) of each server child, written to DIR, to find where the time goes.
 */
function windowProfiler(): { start(): void; stop(): void } | undefined {
  const dir = process.env.TSUNAGI_BENCH_WINDOW_PROFILE;
  if (!dir) return undefined;
  const session = new inspector.Session();
  session.connect();
  return {
    start: () => {
      session.post("Profiler.enable", () => session.post("Profiler.setSamplingInterval", { interval: 1000 }, () => session.post("Profiler.start")));
    },
    stop: () => {
      session.post("Profiler.stop", (error, result) => {
        if (error) { log(`window profile failed: ${error.message}`); return; }
        mkdirSync(dir, { recursive: true });
        const file = path.join(dir, `window-${process.pid}-${Date.now()}.cpuprofile`);
        writeFileSync(file, JSON.stringify(result.profile));
        log(`window profile written to ${file}`);
      });
    },
  };
}
