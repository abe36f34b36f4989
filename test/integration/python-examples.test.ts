/**
 * The Python examples (examples/python/): a second, independent client of the contract,
 * written from the `.proto` files and docs/protocol.md alone, run against a real node
 * (real Redis) and checked from both sides: what the Python prints, and what TypeScript
 * SDK sessions in the same rooms see of it.
 *
 * - expo_walk.py joins a hall and walks; a TypeScript visitor sees it appear, move step by
 *   step and go, and the walker sees the TypeScript visitor.
 * - device_adapter.py runs an enrolled device; an operator through the SDK takes the lease
 *   and drives it (acks and telemetry from the Python device), then goes silent so that
 *   only the Python adapter's watchdog can stop it, then e-stops it; a supervisor resets.
 *
 * The examples run on Debian's /usr/bin/python3 (python3-protobuf, python3-websockets):
 * the python3 first on PATH may be another interpreter without those modules.
 */
import "../../server/polyfills.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import path from "node:path";
import { OperatorControls } from "../../client-sdk/OperatorControls.ts";
import type { RoomSession } from "../../client-sdk/RoomSession.ts";
import { tsunagi, type Envelope } from "../../proto/index.ts";
import { repoRoot, startNode, waitFor, within, type NodeProcess } from "../fixtures/processes.ts";
import { testToken } from "../fixtures/tokens.ts";
import { ExpoLog, joinExpo, leaveAll, openHall, smallHall } from "../fixtures/expo.ts";
import { EnvelopeLog, enrollDevices, joinTeleop, leaseStateOf, telemetryOf } from "../fixtures/teleop.ts";
import { deleteKeys, testRedisUrl } from "../fixtures/redis.ts";

const Status = tsunagi.v1.CommandAck.Status;
const Origin = tsunagi.v1.CommandAck.Origin;
const PYTHON = "/usr/bin/python3";
const EXAMPLES = path.join(repoRoot, "examples", "python");
/** Database 0: this file keeps to keys of its own (its cluster's and its hall's) and deletes them after. */
const redisUrl = testRedisUrl();
const clusterName = `pyex-${randomUUID().slice(0, 8)}`;
const HALL = `py-hall-${randomUUID().slice(0, 6)}`;
const ROOM = "py-site";
const DEVICE = "py-excavator";
const AXES = ["swing", "boom", "arm", "bucket", "left-track", "right-track"];

let node: NodeProcess;
let supervisor: RoomSession;
let supervisorLog: EnvelopeLog;
let secret: string;

// ---------------------------------------------------------------------------------------
// Python processes
// ---------------------------------------------------------------------------------------

interface PythonRun {
  child: ChildProcess;
  stdout(): string;
  /** stdout and stderr, for failure messages. */
  output(): string;
  exited: Promise<number | null>;
  /** Resolves with the first stdout line matching `pattern` (now or later); fails if the process exits first. */
  line(pattern: RegExp, timeoutMs: number, what: string): Promise<RegExpMatchArray>;
  /** SIGTERM, SIGKILL after `graceMs`; the exit code. */
  stop(graceMs?: number): Promise<number | null>;
}

const pythons = new Set<ChildProcess>();
process.once("exit", () => { for (const child of pythons) child.kill("SIGKILL"); });

/** Runs an example with Debian's Python, killed after `timeoutMs` whatever happens. */
function runPython(script: string, args: string[], env: Record<string, string>, timeoutMs: number): PythonRun {
  const child = spawn(PYTHON, [path.join(EXAMPLES, script), ...args], {
    cwd: EXAMPLES,
    env: { ...process.env, ...env, PYTHONUNBUFFERED: "1", PYTHONDONTWRITEBYTECODE: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  pythons.add(child);
  let stdout = "";
  let output = "";
  const waiters = new Set<() => void>();
  const changed = () => { for (const waiter of waiters) waiter(); };
  child.stdout!.on("data", (chunk: Buffer) => { stdout += chunk; output += chunk; changed(); });
  child.stderr!.on("data", (chunk: Buffer) => { output += chunk; });
  const killer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  // "close", not "exit": every byte of its output has been read by then.
  const exited = new Promise<number | null>((resolve) => child.once("close", (code) => {
    clearTimeout(killer);
    pythons.delete(child);
    resolve(code);
    changed();
  }));
  let done = false;
  void exited.then(() => { done = true; });
  return {
    child, exited,
    stdout: () => stdout,
    output: () => output,
    line(pattern, lineTimeoutMs, what) {
      return within(new Promise<RegExpMatchArray>((resolve, reject) => {
        const check = () => {
          const match = stdout.match(new RegExp(pattern.source, pattern.flags.includes("m") ? pattern.flags : `${pattern.flags}m`));
          if (match) { waiters.delete(check); resolve(match); return; }
          if (done) { waiters.delete(check); reject(new Error(`${script} exited before printing ${what}`)); }
        };
        waiters.add(check);
        check();
      }), lineTimeoutMs, what, () => `${script} printed:\n${output.slice(-4000)}`);
    },
    async stop(graceMs = 5000) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
        void exited.then(() => clearTimeout(timer));
      }
      return exited;
    },
  };
}

// ---------------------------------------------------------------------------------------
// The node
// ---------------------------------------------------------------------------------------

beforeAll(async () => {
  // The examples generate their protobuf code from proto/ on first use: once here, so the
  // timed runs below do not each race to do it.
  const generate = runPython("tsunagi_wire.py", [], {}, 60_000);
  expect(await within(generate.exited, 60_000, "generating the Python code", generate.output), generate.output()).toBe(0);
  secret = (await within(enrollDevices(redisUrl, clusterName, [[DEVICE, "excavator"]]), 10_000, "enrolling the device"))[DEVICE]!;
  node = await startNode({ regionId: "jp-tokyo", redisUrl, clusterName });
  const opened = await within(openHall(node, smallHall(HALL)), 10_000, "opening the hall");
  expect(opened.status, JSON.stringify(opened.body)).toBe(201);
  supervisor = await within(joinTeleop(node, ROOM, "supervisor", { devices: [DEVICE], sub: "py-supervisor" }), 10_000, "the supervisor opening the teleop room");
  supervisorLog = new EnvelopeLog(supervisor);
}, 60_000);

afterAll(async () => {
  for (const child of pythons) child.kill("SIGKILL");
  await within(leaveAll(), 5000, "the visitors leaving").catch(() => {});
  if (supervisor) await within(supervisor.leave(), 5000, "the supervisor leaving").catch(() => {});
  await node?.stop(10_000);
  await deleteKeys(redisUrl, [`${clusterName}:*`, `expo:${HALL}:*`]);
}, 30_000);

// ---------------------------------------------------------------------------------------
// Expo
// ---------------------------------------------------------------------------------------

describe("expo_walk.py", () => {
  it("walks the hall as a visitor: it prints its welcome, its acked moves and the TypeScript visitor; the TypeScript visitor sees it move and go", async () => {
    const watcher = await within(joinExpo(node, HALL, { name: "ts-watcher", sub: "ts-watcher" }), 10_000, "the TypeScript visitor joining");
    const log = new ExpoLog(watcher);
    const token = await testToken(clusterName, "visitor", "py-walker");
    // The spawn point is (50, 2): eight moves of 1 m north end at (50, 10), within the watcher's 20 m.
    const walk = runPython("expo_walk.py", ["--node", node.httpUrl, "--hall", HALL, "--name", "py-walker", "--steps", "8", "--rate-hz", "10", "--timeout", "20"],
      { TSUNAGI_TOKEN: token }, 25_000);
    const code = await within(walk.exited, 25_000, "expo_walk.py to finish", walk.output);
    expect(code, walk.output()).toBe(0);

    const out = walk.stdout();
    const welcome = out.match(new RegExp(`^welcome: visitor (\\d+) \\(visitor\\) in hall "Test hall ${HALL}" \\(${HALL}\\), 100 x 60 m, 2 booths, 1 areas; placed at \\(50\\.0, 2\\.0\\)`, "m"));
    expect(welcome, out).not.toBeNull();
    const pythonId = Number(welcome![1]);
    expect(pythonId).toBeGreaterThan(0);
    expect(out).toMatch(new RegExp(`^see: visitor ${watcher.visitorId} "ts-watcher" \\(visitor\\) appeared at \\(50\\.0, 2\\.0\\)$`, "m"));
    expect(out).toMatch(/^me: move 8 applied, at \(50\.0, 10\.0\)$/m);
    expect(out).toMatch(/^left: close code 4000$/m);

    // The TypeScript side: the Python visitor appeared under its name, moved in order to the end of its path, and went.
    const changes = log.of("neighbours");
    const appeared = changes.flatMap((c) => c.appeared).find((n) => n.visitorId === pythonId);
    expect(appeared, JSON.stringify(changes)).toMatchObject({ name: "py-walker", role: "visitor" });
    await log.waitFor("neighbours", (c) => c.gone.includes(pythonId), "the Python visitor gone from view after it left");
    const seen = changes.flatMap((c) => [...c.appeared, ...c.moved]).filter((n) => n.visitorId === pythonId);
    expect(seen.length).toBeGreaterThan(2);
    const seqs = seen.map((n) => n.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(seen.at(-1)).toMatchObject({ x: 50, y: 10, seq: 8 });
    for (const state of seen) expect(state.y).toBe(2 + state.seq);
    expect(log.errors()).toEqual([]);
    await within(watcher.leave(), 5000, "the TypeScript visitor leaving");
  }, 40_000);

  it("exits non-zero with the server's code and message when the join is refused", async () => {
    const walk = runPython("expo_walk.py", ["--node", node.httpUrl, "--hall", "no-such-hall", "--timeout", "10"], { TSUNAGI_TOKEN: await testToken(clusterName, "visitor") }, 15_000);
    expect(await within(walk.exited, 15_000, "expo_walk.py to give up", walk.output)).toBe(1);
    expect(walk.output()).toMatch(/^error: \[4404 UNKNOWN_ROOM\] /m);
    const forged = runPython("expo_walk.py", ["--node", node.httpUrl, "--hall", HALL, "--timeout", "10"], { TSUNAGI_TOKEN: "not-a-token" }, 15_000);
    expect(await within(forged.exited, 15_000, "expo_walk.py to give up", forged.output)).toBe(1);
    expect(forged.output()).toMatch(/^error: \[4411 TOKEN_INVALID\] /m);
  }, 30_000);
});

// ---------------------------------------------------------------------------------------
// Teleoperation
// ---------------------------------------------------------------------------------------

describe("device_adapter.py", () => {
  it("is driven by an operator through the SDK, stops by its own watchdog when commands stop, and latches an e-stop until a reset", async () => {
    const adapter = runPython("device_adapter.py", ["--node", node.httpUrl, "--device", DEVICE, "--telemetry-hz", "50"],
      { TSUNAGI_DEVICE_SECRET: secret, TSUNAGI_ADAPTER_PARENT_PID: String(process.pid) }, 50_000);
    try {
      await adapter.line(/^welcome: device py-excavator on node .* latency budget 150 ms \(the server default\)$/, 15_000, "the gateway's welcome");
      const session = await within(joinTeleop(node, ROOM, "operator", { sub: "py-driver" }), 10_000, "the operator joining");
      const velocity = (t: tsunagi.v1.Telemetry, name: string) => t.joints.find((j) => j.name === name)?.velocity ?? Number.NaN;
      const position = (t: tsunagi.v1.Telemetry, name: string) => t.joints.find((j) => j.name === name)?.position ?? Number.NaN;
      const still = (t: tsunagi.v1.Telemetry) => t.joints.length === AXES.length && t.joints.every((j) => j.velocity === 0);
      const telemetrySince = (from: number) => supervisorLog.envelopes.slice(from).map((e) => telemetryOf(e, DEVICE)).filter((t): t is tsunagi.v1.Telemetry => t !== undefined);

      // 1. Driving: the profile the Python device published, its acks, its telemetry.
      const controls = new OperatorControls(session, { deviceId: DEVICE, rateHz: 50 });
      await waitFor(() => controls.profile && controls.lease?.online, 10_000, "the Python device's profile, and the device online in the room");
      expect(controls.profile!.axes.map((a) => a.name)).toEqual(AXES);
      expect(controls.profile).toMatchObject({ driver: "py-sim-excavator", deviceClass: tsunagi.v1.DeviceClass.DEVICE_CLASS_EXCAVATOR, watchdogWindowMs: 200, telemetryRateHz: 50 });
      const telemetry: tsunagi.v1.Telemetry[] = [];
      controls.on("telemetry", (t) => telemetry.push(t));
      const acks: tsunagi.v1.CommandAck[] = [];
      controls.on("ack", (ack) => acks.push(ack));
      const lease = await within(controls.acquire(), 5000, "the lease");
      await adapter.line(new RegExp(`^lease: ${lease.leaseId} granted to operator`), 5000, "the adapter told of the lease");
      controls.start();
      controls.setAxes({ swing: 0.5, "left-track": 0.6 });
      const moving = await waitFor(() => telemetry.find((t) => velocity(t, "swing") === 0.5 && velocity(t, "left-track") === 0.6), 5000, "telemetry showing the commanded motion");
      const later = await waitFor(() => telemetry.find((t) => t.sampledAtMs > moving.sampledAtMs + 300 && velocity(t, "swing") === 0.5), 5000, "a sample 0.3 s later");
      const seconds = (later.sampledAtMs - moving.sampledAtMs) / 1000;
      expect(position(later, "swing") - position(moving, "swing")).toBeCloseTo(0.5 * seconds, 1);
      expect((later.pose?.x ?? 0) - (moving.pose?.x ?? 0)).toBeGreaterThan(0); // one track forward: the base moves
      expect(later.leaseId).toBe(lease.leaseId);
      controls.stop();
      await waitFor(() => telemetry.find((t) => t.sampledAtMs > later.sampledAtMs && still(t)), 5000, "the machine still after stop()");
      expect(acks.filter((ack) => ack.status === Status.APPLIED).length).toBeGreaterThan(10);
      const notApplied = acks.filter((ack) => !(ack.status === Status.APPLIED && ack.origin === Origin.ADAPTER));
      expect(notApplied.map((ack) => `seq ${ack.seq}: ${Status[ack.status]} from ${Origin[ack.origin]} (${ack.detail})`)).toEqual([]);
      expect(acks.every((ack) => ack.leaseId === lease.leaseId && ack.deviceId === DEVICE)).toBe(true);
      await within(controls.release(), 5000, "the release");
      controls.dispose();

      // 2. The watchdog: one command, then only heartbeats stamped 10 s old. The room renews
      // the lease on them; the adapter must not count them, so its watchdog alone stops the machine.
      let from = supervisorLog.length;
      const answers: Envelope[] = [];
      const unsubscribe = session.onEnvelope((e) => { answers.push(e); });
      session.sendEnvelope({ correlationId: 0, leaseRequest: { deviceId: DEVICE, action: tsunagi.v1.LeaseRequest.Action.ACQUIRE } });
      const granted = await supervisorLog.next((e) => leaseStateOf(e, DEVICE)?.holderSessionId === session.sessionId, 5000, "the second lease granted", from);
      const leaseId = granted.leaseState!.leaseId;
      const now = Date.now();
      session.sendEnvelope({ correlationId: 0, controlCommand: { deviceId: DEVICE, leaseId, seq: 1, issuedAtMs: now, deadlineMs: now + 1000, axes: [{ name: "swing", value: 0.4 }] } });
      let seq = 1;
      const staleHeartbeats = setInterval(() => {
        try { session.sendEnvelope({ correlationId: 0, heartbeat: { deviceId: DEVICE, leaseId, seq: ++seq, sentAtMs: Date.now() - 10_000 } }); } catch { /* closing */ }
      }, 50);
      try {
        const ack = await waitFor(() => answers.find((e) => e.body === "commandAck" && Number(e.commandAck!.seq) === 1 && e.commandAck!.leaseId === leaseId), 5000, "the command's ack");
        expect(ack.commandAck).toMatchObject({ status: Status.APPLIED, origin: Origin.ADAPTER });
        const appliedAt = ack.commandAck!.appliedAtMs!;
        await waitFor(() => telemetrySince(from).find((t) => velocity(t, "swing") === 0.4), 5000, "telemetry showing the swing moving");
        const tripped = await waitFor(() => telemetrySince(from).find((t) => t.watchdogTripped), 5000, "telemetry showing the watchdog tripped");
        expect(still(tripped), JSON.stringify(tripped.joints)).toBe(true);
        expect(tripped).toMatchObject({ leaseId, estopped: false });
        // It waited the window from the last command, and not much longer.
        const firstStill = telemetrySince(from).find((t) => t.sampledAtMs > appliedAt && still(t))!;
        expect(firstStill.sampledAtMs - appliedAt).toBeGreaterThanOrEqual(200);
        expect(firstStill.sampledAtMs - appliedAt).toBeLessThan(1000);
        // The room sees the trip in the telemetry and ends the lease.
        const ended = await supervisorLog.next((e) => leaseStateOf(e, DEVICE)?.endedLeaseId === leaseId, 5000, "the lease ended", from);
        expect(ended.leaseState).toMatchObject({ leaseId: "", cause: "watchdog" });
        await adapter.line(new RegExp(`^watchdog: tripped, no valid command or heartbeat within 200 ms; motion zeroed, lease ${leaseId} ended here$`), 1000, "the adapter's watchdog line");
      } finally {
        clearInterval(staleHeartbeats);
        unsubscribe();
      }

      // 3. E-stop: latched at the adapter, nothing moves until a supervisor's reset, then a fresh lease drives again.
      const driver = new OperatorControls(session, { deviceId: DEVICE, rateHz: 50 });
      await waitFor(() => driver.profile, 5000, "the profile");
      const fresh = await within(driver.acquire(), 5000, "a fresh lease");
      from = supervisorLog.length;
      driver.start();
      driver.setAxes({ boom: 0.2 });
      await waitFor(() => telemetrySince(from).find((t) => velocity(t, "boom") === 0.2 && !t.watchdogTripped), 5000, "the boom moving under a fresh lease");
      from = supervisorLog.length;
      await within(driver.estop("python example e-stop"), 5000, "the e-stop's confirmation");
      const latched = await waitFor(() => telemetrySince(from).find((t) => t.estopped), 5000, "telemetry showing the e-stop latched");
      expect(still(latched), JSON.stringify(latched.joints)).toBe(true);
      await adapter.line(new RegExp(`^estop: latched \\(python example e-stop, by .*\\); motion zeroed, lease ${fresh.leaseId} ended; commands refused until a reset$`), 2000, "the adapter's e-stop line");
      // Still latched and still a while later: nothing restarts it.
      const latchedFrom = supervisorLog.length;
      await waitFor(() => telemetrySince(latchedFrom).length >= 10, 5000, "ten more samples");
      expect(telemetrySince(latchedFrom).every((t) => t.estopped && still(t))).toBe(true);
      driver.dispose();

      from = supervisorLog.length;
      await within(supervisor.request({ reset: { deviceId: DEVICE, reason: "python example test" } }), 5000, "the supervisor's reset");
      const cleared = await waitFor(() => telemetrySince(from).find((t) => !t.estopped), 5000, "telemetry showing the e-stop cleared");
      expect(still(cleared)).toBe(true);
      expect(cleared.leaseId).toBe(""); // a reset forgets the last applied command
      await adapter.line(/^reset: e-stop cleared by .*; motion needs a fresh lease$/m, 2000, "the adapter's reset line");

      const again = new OperatorControls(session, { deviceId: DEVICE, rateHz: 50 });
      await waitFor(() => again.profile, 5000, "the profile");
      await within(again.acquire(), 5000, "a lease granted after the reset");
      from = supervisorLog.length;
      again.start();
      again.setAxes({ "right-track": -0.3 });
      await waitFor(() => telemetrySince(from).find((t) => velocity(t, "right-track") === -0.3), 5000, "the machine moving again under a lease granted after the reset");

      // 4. The adapter stopping while driven: it zeroes motion as its link closes, and the room ends the lease.
      from = supervisorLog.length;
      expect(await within(adapter.stop(), 10_000, "the adapter to stop", adapter.output)).toBe(0);
      const offline = await supervisorLog.next((e) => leaseStateOf(e, DEVICE)?.online === false, 5000, "the device offline in the room", from);
      expect(offline.leaseState!.leaseId).toBe("");
      expect(adapter.stdout()).toMatch(/^stop: motion zeroed \(connection closed\)$/m);
      expect(adapter.stdout()).toMatch(/^stopped: motion zeroed; /m);
      again.dispose();
      await within(session.leave(), 5000, "the operator leaving");
    } finally {
      await adapter.stop(1000);
    }
  }, 50_000);

  it("exits 2 with the gateway's code and message when its proof is refused", async () => {
    const adapter = runPython("device_adapter.py", ["--node", node.httpUrl, "--device", DEVICE],
      { TSUNAGI_DEVICE_SECRET: "00".repeat(32), TSUNAGI_ADAPTER_PARENT_PID: String(process.pid) }, 20_000);
    expect(await within(adapter.exited, 20_000, "the refused adapter to exit", adapter.output)).toBe(2);
    expect(adapter.output()).toMatch(/^error: the gateway refused device py-excavator: \[525 AUTH_FAILED\] /m);
  }, 30_000);
});
