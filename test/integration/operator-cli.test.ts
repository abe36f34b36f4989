/**
 * The operator console (`npm run operator`, cli/operator/main.ts) against a real
 * embedded node running the demo: its adapters attach the simulated excavator and
 * drone, the console is driven through piped stdin, and its prefixed stdout lines are
 * parsed. Also: bad flags exit 2 naming the flag, a failed join exits 1 with a coded error.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { describe, it, expect, beforeAll, afterAll, afterEach } from "vitest";
import { repoRoot, startNode, waitFor, within, type NodeProcess } from "../fixtures/processes.ts";

interface Cli {
  child: ChildProcess;
  /** Complete stdout lines so far. */
  lines: string[];
  output(): string;
  write(line: string): void;
  /** Resolves with the first line (already printed or to come) that satisfies `predicate`, from index `from` on. */
  waitForLine(predicate: (line: string) => boolean, timeoutMs: number, what: string, from?: number): Promise<string>;
  exited: Promise<number | null>;
}

/** Every console started, so each test can stop what it left running. */
const running = new Set<ChildProcess>();

function startCli(args: string[]): Cli {
  const child = spawn(process.execPath, ["--import", "tsx", "cli/operator/main.ts", ...args], {
    cwd: repoRoot,
    env: { ...process.env, TSUNAGI_TOKEN: "" },
    stdio: ["pipe", "pipe", "pipe"],
  });
  running.add(child);
  const lines: string[] = [];
  let stdout = "";
  let stderr = "";
  let pending = "";
  const waiters = new Set<() => void>();
  child.stdout!.on("data", (chunk: Buffer) => {
    stdout += chunk;
    pending += chunk;
    let newline;
    while ((newline = pending.indexOf("\n")) >= 0) {
      lines.push(pending.slice(0, newline));
      pending = pending.slice(newline + 1);
    }
    for (const wake of [...waiters]) wake();
  });
  child.stderr!.on("data", (chunk: Buffer) => { stderr += chunk; });
  child.stdin!.on("error", () => {}); // the console may exit before a write lands
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => { running.delete(child); resolve(code); }));
  let done = false;
  void exited.then(() => { done = true; for (const wake of [...waiters]) wake(); });
  const output = () => `stdout:\n${stdout}\nstderr:\n${stderr}`;

  return {
    child, lines, output, exited,
    write(line) { child.stdin!.write(`${line}\n`); },
    waitForLine(predicate, timeoutMs, what, from = 0) {
      return new Promise((resolve, reject) => {
        let index = from;
        const check = () => {
          for (; index < lines.length; index++) {
            if (predicate(lines[index])) { finish(); resolve(lines[index]); return; }
          }
          if (done) { finish(); reject(new Error(`the console exited while waiting for ${what}\n${output()}`)); }
        };
        const timer = setTimeout(() => { finish(); reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${output()}`)); }, timeoutMs);
        const finish = () => { clearTimeout(timer); waiters.delete(check); };
        waiters.add(check);
        check();
      });
    },
  };
}

/** Resolves with the exit code, or rejects when the process is still running after `timeoutMs`. */
function exitWithin(cli: Cli, timeoutMs: number): Promise<number | null> {
  return within(cli.exited, timeoutMs, "the console to exit", () => cli.output());
}

/** Joint name → { position, velocity } from a status line ("boom 0.12 rad @ +0.20/s"). */
function joints(line: string): Map<string, { position: number; velocity: number }> {
  const found = new Map<string, { position: number; velocity: number }>();
  for (const match of line.matchAll(/(?:^|[|,]\s*)([A-Za-z0-9_.-]+) (-?\d+\.\d+)(?: [A-Za-z/]+)? @ ([+-]\d+\.\d+)\/s/g)) {
    found.set(match[1], { position: Number(match[2]), velocity: Number(match[3]) });
  }
  return found;
}

const isStatus = (line: string) => line.startsWith("status: ");

afterEach(async () => {
  for (const child of [...running]) {
    child.kill("SIGKILL");
    await new Promise((resolve) => child.exitCode !== null || child.signalCode !== null ? resolve(undefined) : child.once("exit", resolve));
  }
});

describe("operator console (npm run operator)", () => {
  let node: NodeProcess;
  beforeAll(async () => {
    node = await startNode({ demo: true });
  }, 60_000);
  afterAll(async () => { await node?.stop(); });

  it("drives the demo excavator: acquire, set boom, e-stop, quit", async () => {
    const cli = startCli(["--node", node.httpUrl, "--room", "teleop-demo", "--device", "excavator-1", "--watch-hz", "5"]);
    // The demo's adapters attach a moment after the node listens.
    await cli.waitForLine((line) => isStatus(line) && line.includes("| online yes |"), 30_000, "a status line with the device online");

    let from = cli.lines.length;
    cli.write("acquire");
    await cli.waitForLine((line) => line.startsWith("lease: held by me"), 10_000, "the lease", from);

    from = cli.lines.length;
    cli.write("set boom 0.3");
    await cli.waitForLine((line) => line === "set: boom +0.300 rad/s", 10_000, "the set confirmation", from);
    const moving = await cli.waitForLine((line) => {
      const boom = isStatus(line) ? joints(line).get("boom") : undefined;
      return !!boom && Math.abs(boom.velocity - 0.3) <= 0.011;
    }, 10_000, "a status line with the boom moving at +0.30/s", from);
    expect(moving).toContain("lease held by me");
    expect(moving).toMatch(/estopped no/);
    expect(moving).toMatch(/ack rtt p50 \d+\.\d ms p99 \d+\.\d ms/);

    from = cli.lines.length;
    cli.write("estop");
    const stopped = await cli.waitForLine((line) => {
      if (!isStatus(line) || !line.includes("estopped yes")) return false;
      const all = [...joints(line).values()];
      return all.length >= 6 && all.every((joint) => joint.velocity === 0);
    }, 10_000, "a status line showing the e-stop and every velocity 0", from);
    expect([...joints(stopped).keys()]).toEqual(expect.arrayContaining(["swing", "boom", "arm", "bucket", "left-track", "right-track"]));
    expect(stopped).toContain("lease free");
    expect(cli.lines.slice(from).some((line) => line.startsWith("estop: excavator-1"))).toBe(true);
    expect(cli.lines.slice(from).some((line) => /^lease: free \(ended \S+: estopped\)/.test(line))).toBe(true);

    cli.write("quit");
    expect(await exitWithin(cli, 10_000)).toBe(0);
    expect(cli.lines).toContain("quit: left room teleop-demo");
  }, 60_000);

  it("flies the demo drone: acquire, do arm, do takeoff, then land", async () => {
    const cli = startCli(["--node", node.httpUrl, "--room", "teleop-demo", "--device", "drone-1", "--watch-hz", "5"]);
    await cli.waitForLine((line) => isStatus(line) && line.includes("| online yes |"), 30_000, "a status line with the drone online");
    let from = cli.lines.length;
    cli.write("axes");
    await cli.waitForLine((line) => line.startsWith("axes: action takeoff VALUE (1.."), 10_000, "the take-off action listed", from);
    cli.write("do takeoff 2");
    await cli.waitForLine((line) => line.startsWith("invalid: ") || line.startsWith("error: LEASE_NOT_HELD"), 10_000, "an action refused without the lease", from);

    cli.write("acquire");
    await cli.waitForLine((line) => line.startsWith("lease: held by me"), 10_000, "the lease", from);
    from = cli.lines.length;
    cli.write("do arm");
    await cli.waitForLine((line) => line === "action: arm: applied", 10_000, "arm applied", from);
    cli.write("do takeoff 2");
    await cli.waitForLine((line) => line === "action: takeoff 2: applied", 10_000, "take-off applied", from);
    await cli.waitForLine((line) => isStatus(line) && line.includes("mode flying"), 20_000, "a status line with the drone flying", from);
    cli.write("do takeoff 2");
    await cli.waitForLine((line) => line.startsWith("action: takeoff: refused by the device"), 10_000, "a second take-off refused by the drone", from);
    cli.write("do land");
    await cli.waitForLine((line) => line === "action: land: applied", 10_000, "land applied", from);
    await cli.waitForLine((line) => isStatus(line) && line.includes("mode landing"), 10_000, "a status line with the drone landing", from);
    cli.write("quit");
    expect(await exitWithin(cli, 10_000)).toBe(0);
  }, 60_000);

  it("the demo also opens an expo hall whose bots walk from booth to booth", async () => {
    const host = await (await fetch(`${node.httpUrl}/dev/token?role=host`)).text();
    const report = await waitFor(async () => {
      const response = await fetch(`${node.httpUrl}/expo/halls/expo-demo/analytics`, { headers: { authorization: `Bearer ${host}` } });
      if (response.status !== 200) return undefined;
      const body = await response.json();
      // the bots have left the spawn point: presence spreads over several heatmap cells
      return body.currentVisitors === 12 && body.heatmap.visitorSeconds.filter((s: number) => s > 0).length >= 3 ? body : undefined;
    }, 30_000, "12 demo bots present and walking");
    expect(report.hallId).toBe("expo-demo");
    expect(report.booths.map((b: { boothId: string }) => b.boothId)).toContain("robotics");
  }, 60_000);

  it("exits 2 naming a bad flag, with the usage on stderr", async () => {
    const unknown = startCli(["--node", node.httpUrl, "--room", "teleop-demo", "--device", "excavator-1", "--bogus"]);
    expect(await exitWithin(unknown, 20_000)).toBe(2);
    expect(unknown.output()).toMatch(/stderr:\n[^]*--bogus[^]*usage: npm run operator/);

    const rate = startCli(["--node", node.httpUrl, "--room", "teleop-demo", "--device", "excavator-1", "--rate-hz", "0"]);
    expect(await exitWithin(rate, 20_000)).toBe(2);
    expect(rate.output()).toMatch(/stderr:\n[^]*--rate-hz[^]*usage: npm run operator/);
  }, 60_000);

  it("exits 1 with a coded error when the room does not exist", async () => {
    const cli = startCli(["--node", node.httpUrl, "--room", "no-such-room", "--device", "excavator-1"]);
    expect(await exitWithin(cli, 20_000)).toBe(1);
    const error = cli.lines.find((line) => line.startsWith("error: "));
    expect(error, cli.output()).toMatch(/^error: [A-Z][A-Z0-9_]+ \S/);
    expect(error).toMatch(/^error: UNKNOWN_ROOM /);
  }, 60_000);
});
