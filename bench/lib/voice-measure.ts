/**
 * The voice bench's measuring window, for both phases: every load process counts over
 * the same few seconds (lib/voice-load.ts startWindow/stopWindow) while this process
 * reads CPU times from /proc at both ends (Janus' or the fan-out peer's, each load
 * process', its own, the machine's busy and softirq time), then the loss of the window
 * and each one's CPU share.
 */
import { readFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import type { BenchChild } from "./child-process.ts";
import { machineBusyMs, percentile, procCpuMs, round } from "./measure.ts";
import { PACKETS_PER_S, type LoadWindow, type SubscribeTimes } from "./voice-protocol.ts";

/** The processes of a phase: the forwarder (Janus, or the fan-out peer), the senders, the receivers. */
export interface PhaseProcesses {
  /** Janus' pid, or the fan-out child's. */
  forwarderPid: number;
  /** The speakers process (Janus phase); none in the baseline (the fan-out peer sends). */
  speakers?: BenchChild;
  /** The fan-out child (baseline): counted as the sender. */
  fanout?: BenchChild;
  listeners: BenchChild[];
}

/** What one window measured. */
export interface WindowFigures {
  windowS: number;
  tracks: number;
  /** RTP packets the listeners received in the window, and 50/s × window × tracks. */
  received: number;
  expected: number;
  lossPct: number;
  /** Packets the senders sent per second (speakers: one per speaker; fan-out: one per track). */
  sentPerS: number;
  /** CPU in the window, % of one core: the forwarder (Janus or the fan-out peer), the load processes, the whole machine. */
  forwarderCpuPct: number;
  speakersCpuPct: number | null;
  listenersCpuPct: number[];
  /** All of the load processes together (speakers and listeners; the fan-out peer is the forwarder). */
  loadCpuPct: number;
  machineCpuPct: number;
  /**
   * The kernel's softirq time (% of one core): mostly delivering the loopback UDP packets
   * of the phase, which /proc/<pid>/stat charges to no process, Janus included.
   */
  softirqCpuPct: number;
  /** What of the machine's was neither this bench's processes nor softirqs (other work on a shared machine), % of one core. */
  otherCpuPct: number;
  /** The load processes' worst event-loop delay p99 over the window, ms. */
  loadEventLoopDelayP99Ms: number;
}

interface CpuSample { atMs: number; forwarder: number; speakers: number; listeners: number[]; self: number; machine: number; softirq: number }

/** The machine's time in softirqs, ms (/proc/stat): where the kernel moves loopback UDP packets, charged to no process. */
async function softirqMs(): Promise<number> {
  const cpuLine = (await readFile("/proc/stat", "utf8")).split("\n", 1)[0]!;
  return (Number(cpuLine.split(/\s+/)[7]) / 100) * 1000;
}

async function sampleCpu(processes: PhaseProcesses): Promise<CpuSample> {
  const [forwarder, speakers, listeners, self, machine, softirq] = await Promise.all([
    procCpuMs(processes.forwarderPid),
    processes.speakers ? procCpuMs(processes.speakers.pid) : 0,
    Promise.all(processes.listeners.map((child) => procCpuMs(child.pid))),
    procCpuMs(process.pid),
    machineBusyMs(),
    softirqMs(),
  ]);
  return { atMs: performance.now(), forwarder, speakers, listeners, self, machine, softirq };
}

/** Opens a window on every load process, waits `seconds`, closes them; the window's figures. */
export async function measureWindow(processes: PhaseProcesses, seconds: number): Promise<WindowFigures> {
  const senders = [processes.speakers, processes.fanout].filter((child): child is BenchChild => child !== undefined);
  const loads = [...senders, ...processes.listeners];
  const start = await sampleCpu(processes);
  await Promise.all(loads.map((child) => child.call("startWindow")));
  await sleep(seconds * 1000);
  const windows = await Promise.all(loads.map((child) => child.call<LoadWindow>("stopWindow")));
  const end = await sampleCpu(processes);

  const wallMs = end.atMs - start.atMs;
  const pct = (from: number, to: number) => round(((to - from) / wallMs) * 100, 1);
  const senderWindows = windows.slice(0, senders.length);
  const listenerWindows = windows.slice(senders.length);
  let received = 0;
  let expected = 0;
  let tracks = 0;
  for (const window of listenerWindows) {
    received += window.received;
    expected += (PACKETS_PER_S * window.tracks * window.windowMs) / 1000;
    tracks += window.tracks;
  }
  const sentPerS = senderWindows.reduce((sum, window) => sum + (window.sent * 1000) / window.windowMs, 0);
  const listenersCpuPct = end.listeners.map((ms, i) => pct(start.listeners[i]!, ms));
  const speakersCpuPct = processes.speakers ? pct(start.speakers, end.speakers) : null;
  const forwarderCpuPct = pct(start.forwarder, end.forwarder);
  const loadCpuPct = round((speakersCpuPct ?? 0) + listenersCpuPct.reduce((sum, value) => sum + value, 0), 1);
  const machineCpuPct = pct(start.machine, end.machine);
  return {
    windowS: round(wallMs / 1000, 2),
    tracks,
    received,
    expected: Math.round(expected),
    lossPct: expected > 0 ? round(Math.max(0, (1 - received / expected) * 100), 3) : 0,
    sentPerS: round(sentPerS, 0),
    forwarderCpuPct,
    speakersCpuPct,
    listenersCpuPct,
    loadCpuPct,
    machineCpuPct,
    softirqCpuPct: pct(start.softirq, end.softirq),
    otherCpuPct: round(Math.max(0, machineCpuPct - forwarderCpuPct - loadCpuPct - pct(start.self, end.self) - pct(start.softirq, end.softirq)), 1),
    loadEventLoopDelayP99Ms: round(Math.max(...windows.map((window) => window.eventLoopDelayP99Ms)), 1),
  };
}

/** Subscribe/update request to first packet, over the tracks a step added. */
export interface SubscribeFigures {
  p50Ms: number | null;
  p95Ms: number | null;
  /** The tracks added with the subscriber's join, and with its update. */
  joinP95Ms: number | null;
  updateP95Ms: number | null;
  samples: number;
  /** Tracks with no packet within 10 s (counted in the loss, left out of these times). */
  silent: number;
}

export function subscribeFigures(times: SubscribeTimes[]): SubscribeFigures {
  const sorted = (values: number[]) => Float64Array.from(values).sort();
  const p = (values: Float64Array, at: number) => (values.length ? round(percentile(values, at), 1) : null);
  const join = sorted(times.flatMap((t) => t.join));
  const update = sorted(times.flatMap((t) => t.update));
  const all = sorted([...join, ...update]);
  return {
    p50Ms: p(all, 50), p95Ms: p(all, 95), joinP95Ms: p(join, 95), updateP95Ms: p(update, 95),
    samples: all.length, silent: times.reduce((sum, t) => sum + t.silent, 0),
  };
}
