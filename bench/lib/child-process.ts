/**
 * The parent side of a bench child process: `node --import tsx <script>` on this repo,
 * spoken to over the IPC channel (see parent-channel.ts), its stdout and stderr
 * forwarded to our stderr. Every child still running when this process exits, for any
 * reason, is SIGKILLed.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { availableParallelism } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { ChildMessage, ParentCall } from "./parent-channel.ts";
import { CLOCK_ANCHOR_ENV, clockAnchorMs } from "./measure.ts";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

const runningChildren = new Set<ChildProcess>();
process.on("exit", () => {
  // A profiled child is left to exit by itself (the channel closed), or it writes no profile.
  if (process.env.TSUNAGI_BENCH_PROFILE) return;
  for (const child of runningChildren) child.kill("SIGKILL");
});

/**
 * CPU lists (taskset syntax) that give a bench's server under test the first core to
 * itself and its load processes the others; undefined where that cannot be done (one
 * core, or no `taskset`, from util-linux). On a small machine a server and a load that
 * share cores delay each other by the scheduler's time slices, milliseconds each, and a
 * latency tail then measures that contention rather than the server.
 */
export function serverAndLoadCpus(): { server: string; load: string } | undefined {
  const cpus = availableParallelism();
  if (cpus < 2) return undefined;
  const probe = spawnSync("taskset", ["-c", "0", process.execPath, "-e", ""], { stdio: "ignore" });
  if (probe.error || probe.status !== 0) return undefined;
  return { server: "0", load: cpus === 2 ? "1" : `1-${cpus - 1}` };
}

/** How many of a child's last output lines a failure message quotes. */
const quotedOutputLines = 20;

interface Pending<T> {
  resolve(value: T): void;
  reject(error: Error): void;
}

export class BenchChild {
  private readonly pendingCalls = new Map<number, Pending<unknown>>();
  private readonly recentOutput: string[] = [];
  private nextCallId = 1;
  private failure: Error | undefined;

  private constructor(
    readonly label: string,
    private readonly childProcess: ChildProcess,
    private readonly readyWaiter: Pending<unknown>,
  ) {}

  /**
   * Starts `script` (a path relative to the repository root) with `argument` as its one
   * JSON command-line argument, and resolves once the child is ready, with what it sent.
   * With `cpus` (a taskset CPU list, see serverAndLoadCpus) the child runs on those only.
   */
  static async start<Ready>(label: string, script: string, argument: unknown, signal?: AbortSignal, cpus?: string): Promise<{ child: BenchChild; ready: Ready }> {
    signal?.throwIfAborted();
    // TSUNAGI_BENCH_PROFILE=DIR writes a V8 CPU profile of every bench child into DIR, to find where time goes.
    const profile = process.env.TSUNAGI_BENCH_PROFILE ? ["--cpu-prof", "--cpu-prof-dir", process.env.TSUNAGI_BENCH_PROFILE] : [];
    const command = [process.execPath, ...profile, "--import", "tsx", script, JSON.stringify(argument)];
    const pinned = cpus === undefined ? command : ["taskset", "-c", cpus, ...command];
    const childProcess = spawn(pinned[0]!, pinned.slice(1), {
      cwd: repoRoot,
      // every process of the run reads wallClockMs() off the same anchor (see measure.ts)
      env: { ...process.env, [CLOCK_ANCHOR_ENV]: String(clockAnchorMs) },
      stdio: ["ignore", "pipe", "pipe", "ipc"],
    });
    runningChildren.add(childProcess);

    let readyWaiter!: Pending<unknown>;
    const ready = new Promise<unknown>((resolve, reject) => { readyWaiter = { resolve, reject }; });
    const child = new BenchChild(label, childProcess, readyWaiter);
    child.listen(signal);
    return { child, ready: (await ready) as Ready };
  }

  get pid(): number {
    return this.childProcess.pid!;
  }

  /** Calls `method` in the child (with `argument`, JSON-like, if given) and resolves with its result. */
  call<Result>(method: string, argument?: unknown): Promise<Result> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextCallId++;
    return new Promise<Result>((resolve, reject) => {
      this.pendingCalls.set(id, { resolve: resolve as (value: unknown) => void, reject });
      const call: ParentCall = argument === undefined ? { id, method } : { id, method, argument };
      this.childProcess.send(call);
    });
  }

  kill(): void {
    this.fail(new Error(`${this.label} was stopped`));
  }

  private listen(signal: AbortSignal | undefined): void {
    for (const stream of [this.childProcess.stdout!, this.childProcess.stderr!]) {
      createInterface({ input: stream }).on("line", (line) => this.forwardOutput(line));
    }
    this.childProcess.on("message", (message: ChildMessage) => this.receive(message));
    this.childProcess.once("error", (error) => this.fail(new Error(`${this.label} could not run: ${error.message}`)));
    this.childProcess.once("exit", (code, exitSignal) => {
      runningChildren.delete(this.childProcess);
      this.fail(new Error(`${this.label} exited unexpectedly (${exitSignal ?? `code ${code}`}); its last output:\n${this.recentOutput.join("\n")}`));
    });
    signal?.addEventListener("abort", () => this.fail(signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason))), { once: true });
  }

  private receive(message: ChildMessage): void {
    if (message.kind === "ready") {
      this.readyWaiter.resolve(message.data);
      return;
    }
    const pending = this.pendingCalls.get(message.id);
    if (pending === undefined) return;
    this.pendingCalls.delete(message.id);
    if ("error" in message) pending.reject(new Error(`${this.label}: ${message.error}`));
    else pending.resolve(message.result);
  }

  /**
   * Shows a child's line on our stderr, except routine ones: a node's JSON log lines
   * below error, and the Colyseus SDK's reconnection progress. The load makes them by the
   * hundred (an e-stop round logs one warning per device; a killed node, a few lines per
   * client), and relaying them would cost the load's cores while they are measured. A
   * failure still quotes them (recentOutput).
   */
  private forwardOutput(line: string): void {
    if (!isRoutineLogLine(line)) process.stderr.write(`[${this.label}] ${line}\n`);
    this.recentOutput.push(line);
    if (this.recentOutput.length > quotedOutputLines) this.recentOutput.shift();
  }

  /** Kills the child (once) and rejects everything still waiting on it with `error`. */
  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    if (process.env.TSUNAGI_BENCH_PROFILE && this.childProcess.connected) {
      // A profiled child must exit by itself to write its profile: closing the channel does that.
      this.childProcess.disconnect();
      setTimeout(() => this.childProcess.kill("SIGKILL"), 5000).unref();
    } else {
      this.childProcess.kill("SIGKILL");
    }
    this.readyWaiter.reject(error);
    for (const pending of this.pendingCalls.values()) pending.reject(error);
    this.pendingCalls.clear();
  }
}

/** pino's error level: log lines below it are routine during a bench. */
const ERROR_LEVEL = 50;
/** How the Colyseus SDK starts each line about a session's reconnection (@colyseus/sdk Room.ts). */
const SDK_RECONNECTION_PREFIX = "[Colyseus reconnection]";

function isRoutineLogLine(line: string): boolean {
  if (line.startsWith(SDK_RECONNECTION_PREFIX)) return true;
  if (!line.startsWith('{"level":')) return false;
  const level = Number(line.slice(9, line.indexOf(",", 9)));
  return Number.isFinite(level) && level < ERROR_LEVEL;
}
