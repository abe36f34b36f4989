/**
 * A region node's voice (`--voice-mode`): on, it starts its own Janus (loopback only) and
 * says so in /healthz, and stops it when it drains, or dies with it when SIGKILLed; on without Janus installed, it does
 * not start and says how to install it; auto without Janus, it starts without voice and
 * says why; a public address for Janus' APIs is refused.
 */
import { afterAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { janusInfo } from "../../server/voice/JanusProcess.ts";
import { metricValue, repoRoot, startNode, waitFor, type NodeProcess } from "../fixtures/processes.ts";

const nodes: NodeProcess[] = [];
afterAll(async () => { await Promise.allSettled(nodes.map((node) => node.stop())); });

/** A PATH holding node and nothing else: no janus on it. */
function pathWithoutJanus(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), "tsunagi-nojanus-"));
  symlinkSync(process.execPath, path.join(dir, "node"));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Runs a node with `args` and `PATH` to its end (it is expected not to start, or is stopped by the caller). */
function run(args: string[], env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("TSUNAGI_")));
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", "server/main.ts", "--port", "0", "--gateway-port", "0", "--demo", "false", ...args], { cwd: repoRoot, env: { ...clean, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d) => { output += d; });
    child.stderr.on("data", (d) => { output += d; });
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.on("close", (code) => { clearTimeout(timer); resolve({ code, output }); });
  });
}

describe("a node's voice", () => {
  it("on: starts its own Janus, reports it in /healthz and /metrics, starts it again if it dies, and stops it when the node stops", { timeout: 60_000 }, async () => {
    const node = await startNode({ extraArgs: ["--voice-mode", "on"] });
    nodes.push(node);
    const health = await (await fetch(`${node.httpUrl}/healthz`)).json();
    expect(health.voice).toEqual({ up: true, rooms: 0, participants: 0 });
    const apiUrl = await waitFor(() => /Janus started for voice on (ws:\/\/127\.0\.0\.1:\d+)/.exec(node.output())?.[1], 10_000, "the log naming Janus' address");
    expect(await janusInfo(apiUrl, 2000)).toBe(true);
    const metric = (name: string) => metricValue(node, name);
    expect([await metric("tsunagi_voice_up"), await metric("tsunagi_voice_rooms"), await metric("tsunagi_voice_janus_restarts_total")]).toEqual([1, 0, 0]);

    // Janus dies: the node starts it again on the same address, counts it, and its voice is up again.
    const pid = Number(/"pid":(\d+),"msg":"Janus started for voice/.exec(node.output())?.[1]);
    expect(pid).toBeGreaterThan(0);
    process.kill(pid, "SIGKILL");
    await waitFor(async () => (await metric("tsunagi_voice_janus_restarts_total")) === 1 && (await metric("tsunagi_voice_up")) === 1, 20_000, "Janus started again, counted, voice up");
    expect(await janusInfo(apiUrl, 2000)).toBe(true);
    expect((await (await fetch(`${node.httpUrl}/healthz`)).json()).voice).toMatchObject({ up: true });

    await node.stop();
    await waitFor(async () => !(await janusInfo(apiUrl, 500)), 10_000, "Janus gone with its node");
  });

  it("a SIGKILLed node leaves no Janus behind", { timeout: 60_000 }, async () => {
    const node = await startNode({ extraArgs: ["--voice-mode", "on"] });
    nodes.push(node);
    const apiUrl = await waitFor(() => /Janus started for voice on (ws:\/\/127\.0\.0\.1:\d+)/.exec(node.output())?.[1], 10_000, "the log naming Janus' address");
    expect(await janusInfo(apiUrl, 2000)).toBe(true);
    await node.kill();
    await waitFor(async () => !(await janusInfo(apiUrl, 500)), 10_000, "Janus gone with its SIGKILLed node");
  });

  it("off (the default): no Janus, and /healthz says so", { timeout: 60_000 }, async () => {
    const node = await startNode();
    nodes.push(node);
    expect((await (await fetch(`${node.httpUrl}/healthz`)).json()).voice).toBe("off");
    expect(node.output()).not.toMatch(/Janus started/);
  });

  it("on without Janus installed: the node does not start, and says how to install it; auto: starts without voice, saying why", { timeout: 60_000 }, async () => {
    const { dir, cleanup } = pathWithoutJanus();
    try {
      const on = await run(["--voice-mode", "on"], { PATH: dir });
      expect(on.code).toBe(1);
      expect(on.output).toMatch(/Janus is not installed .*apt-get install janus/);
      const auto = await startNode({ extraArgs: ["--voice-mode", "auto"], env: { PATH: dir } });
      nodes.push(auto);
      // (The log is written asynchronously: it may follow the ready line.)
      await waitFor(() => /voice is off: Janus is not installed .*apt-get install janus/.test(auto.output()), 10_000, "the log saying why voice is off");
      expect((await (await fetch(`${auto.httpUrl}/healthz`)).json()).voice).toBe("off");
    } finally {
      cleanup();
    }
  });

  it("refuses a public address for Janus' APIs, and a bad mode, naming the setting", { timeout: 30_000 }, async () => {
    const { code, output } = await run(["--voice-mode", "sometimes", "--voice-host", "8.8.8.8"], {});
    expect(code).toBe(2);
    expect(output).toMatch(/voice\.mode/);
    expect(output).toMatch(/voice\.host: a loopback or private address/);
  });
});
