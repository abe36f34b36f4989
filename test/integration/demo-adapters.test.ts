/**
 * The demo's adapters do not outlive `npm start`: killed with SIGKILL, the node cannot
 * stop them, so each watches its parent (TSUNAGI_ADAPTER_PARENT_PID) and stops its
 * device and exits by itself. Otherwise the next start adds a second adapter per device,
 * and the two fight over it.
 */
import { readFileSync, readdirSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { startNode, waitFor, type NodeProcess } from "../fixtures/processes.ts";

/** Adapter processes seen by the test, killed after it whatever happened. */
const adapterPids = new Set<number>();
let node: NodeProcess | undefined;

afterEach(async () => {
  await node?.kill();
  node = undefined;
  for (const pid of adapterPids) if (running(pid)) process.kill(pid, "SIGKILL");
  adapterPids.clear();
});

/** Whether `pid` is a live process (a zombie waiting for its reaper is not). */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

/** The adapter processes (devices/adapter/main.ts) whose parent is `parentPid`. */
function adaptersOf(parentPid: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid !== parentPid) continue;
      if (readFileSync(`/proc/${entry}/cmdline`, "utf8").includes("devices/adapter/main.ts")) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

describe("npm start's adapters", () => {
  it("exit when npm start is killed with SIGKILL", { timeout: 90_000 }, async () => {
    node = await startNode({ demo: true });
    const nodePid = node.child.pid!;
    const pids = await waitFor(() => {
      const found = adaptersOf(nodePid);
      for (const pid of found) adapterPids.add(pid);
      return found.length === 2 && found;
    }, 30_000, "the demo's two adapter processes");

    await node.kill();
    await waitFor(() => pids.every((pid) => !running(pid)), 20_000, `adapters ${pids.join(", ")} to exit after their parent was killed`);
    expect(pids.filter(running)).toEqual([]);
  });
});
