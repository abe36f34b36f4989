/**
 * The mqtt bench's own Mosquitto on a free 127.0.0.1 port: test/fixtures/mosquitto.ts'
 * ownMosquitto, but with what a bench needs besides: the broker's pid (its CPU time is
 * read from /proc), pinning to a CPU list (taskset), and only the tail of its log kept.
 * Mosquitto's defaults otherwise (max_inflight_messages 20, max_queued_messages 1000 per
 * client), as a site broker installed from the package runs. SIGKILLed, and its config
 * removed, when this process exits, however it exits.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort, waitFor } from "../../test/fixtures/processes.ts";
import { listening } from "../../test/fixtures/mosquitto.ts";

export interface BenchBroker {
  url: string;
  port: number;
  pid: number;
  /** The broker's last log lines, for failure messages. */
  output(): string;
  /** SIGKILL (nothing of it is worth a clean stop), and its config removed. */
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
/** Config directories of brokers not stopped yet. */
const dirs = new Set<string>();
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL");
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Starts Mosquitto on a free port (tried again on another if that port was taken meanwhile); `cpus`: a taskset CPU list. */
export async function startBroker(runId: string, cpus?: string): Promise<BenchBroker> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOn(await freePort(), runId, cpus);
    } catch (error) {
      if (attempt >= 3) throw error;
    }
  }
}

async function startOn(port: number, runId: string, cpus: string | undefined): Promise<BenchBroker> {
  const dir = mkdtempSync(path.join(tmpdir(), `tsunagi-bench-mqtt-${runId}-`));
  dirs.add(dir);
  const config = path.join(dir, "mosquitto.conf");
  writeFileSync(config, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\n`);
  const command = cpus === undefined ? ["mosquitto", "-c", config] : ["taskset", "-c", cpus, "mosquitto", "-c", config];
  const child = spawn(command[0]!, command.slice(1), { stdio: ["ignore", "ignore", "pipe"] });
  running.add(child);
  let lines: string[] = [];
  let gone = false;
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => { lines = [...lines, ...chunk.split("\n").filter(Boolean)].slice(-40); });
  child.once("error", (error) => { lines.push(`${error.message}: install mosquitto`); });
  const exited = new Promise<void>((resolve) => child.once("exit", () => { gone = true; running.delete(child); resolve(); }));
  const output = () => lines.join("\n");
  const stop = async () => {
    child.kill("SIGKILL");
    await exited;
    rmSync(dir, { recursive: true, force: true });
    dirs.delete(dir);
  };
  try {
    await waitFor(async () => {
      if (gone) throw new Error(`mosquitto on port ${port} exited at start: ${output()}`);
      return output().includes(`listen socket on port ${port}`) && (await listening(port));
    }, 10_000, `mosquitto listening on ${port}`, 20);
  } catch (error) {
    await stop();
    throw error;
  }
  return { url: `mqtt://127.0.0.1:${port}`, port, pid: child.pid!, output, stop };
}
