/**
 * The latency budget (DESIGN.md, "Teleoperation safety model"): when the measured
 * operator↔device round trip exceeds the device class's budget, the operator is demoted
 * to observer and the device is stopped.
 *
 * A real region node, a real adapter running the simulated excavator, real Redis. The
 * excavator's profile is widened for a busy machine (budget 250 ms, watchdog 1 s, through
 * --driver-config): a loaded test host must not demote the operators who should keep
 * their lease, nor trip the watchdog, and the slowed link (200 ms each way) is still well
 * over the budget. The operator's link is slowed by the userspace delay proxy: the node
 * advertises the proxy as its public address, so the seat reservation sends the
 * operator's WebSocket through it. The adapter, the supervisor and the second operator
 * reach the node directly (their Colyseus client rewrites the proxy's address back to the
 * node's), so only the first operator's link is slow.
 */
import "../../server/polyfills.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join as joinPath } from "node:path";
import { Redis } from "ioredis";
import { OperatorControls, type DemotedEvent } from "../../client-sdk/OperatorControls.ts";
import type { RoomSession } from "../../client-sdk/RoomSession.ts";
import { TsunagiClient } from "../../client-sdk/TsunagiClient.ts";
import type { TsunagiError } from "../../client-sdk/errors.ts";
import { ErrorCode, type tsunagi } from "../../proto/index.ts";
import { AuditLog, auditStreamKey, type AuditEntry } from "../../server/audit/AuditLog.ts";
import type { Role } from "../../server/auth/tokens.ts";
import { DelayProxy } from "../fixtures/delay-proxy.ts";
import { flushRedisDb, freePort, onFreePorts, startNode, waitFor, type NodeProcess } from "../fixtures/processes.ts";
import { enrollDevices, joint, startAdapter, stopped, type AdapterProcess } from "../fixtures/teleop.ts";
import { testToken } from "../fixtures/tokens.ts";
import { testRedisUrl } from "../fixtures/redis.ts";

const redisUrl = testRedisUrl(9);
const clusterName = `teleop-latency-${randomUUID().slice(0, 8)}`;
const ROOM = "site-latency";
const DEVICE = "ex-lat";
/** The simulated excavator's latency budget and watchdog window, set through its driver config. */
const BUDGET_MS = 250;
const WATCHDOG_MS = 1000;
/** The slowed link's delay, each way: its round trip is well over the budget. */
const DELAY_MS = 200;
/** Node flags: a short demotion so the test can wait it out; frequent probes. */
const DEMOTION_MS = 2000;
const PROBE_MS = 100;

let node: NodeProcess;
let proxy: DelayProxy;
let adapter: AdapterProcess;
let configDir: string | undefined;
let supervisor: RoomSession;
const sessions: RoomSession[] = [];
const controlsList: OperatorControls[] = [];

/**
 * Joins the site room as `role`. "proxy": matchmaking and the WebSocket both go through
 * the delay proxy. "direct": both go straight to the node (the seat reservation names the
 * proxy, so the room URL is rewritten to the node's port).
 */
async function join(role: Role, via: "proxy" | "direct", options: { devices?: string[]; sub?: string } = {}): Promise<RoomSession> {
  const proxyPort = String(proxy.port);
  const client = new TsunagiClient({
    url: via === "proxy" ? `http://127.0.0.1:${proxy.port}` : node.httpUrl,
    token: await testToken(clusterName, role, options.sub),
    reconnection: { minUptime: 0, minDelay: 50, maxDelay: 500 },
    clientOptions: via === "direct"
      ? { urlBuilder: (url: URL) => { if (url.port === proxyPort) url.port = String(node.port); return url.toString(); } }
      : undefined,
  });
  const session = options.devices
    ? await client.create("teleop", { roomId: ROOM, devices: options.devices })
    : await client.join("teleop", { roomId: ROOM });
  sessions.push(session);
  return session;
}

/** The port of the session's WebSocket: which way its traffic goes. */
function socketPort(session: RoomSession): string {
  const ws = (session.room.connection as unknown as { transport: { ws: { url: string } } }).transport.ws;
  return new URL(ws.url).port;
}

async function controlsFor(session: RoomSession): Promise<OperatorControls> {
  const controls = new OperatorControls(session, { deviceId: DEVICE, rateHz: 50, onListenerError: (error) => { throw error; } });
  controlsList.push(controls);
  await waitFor(() => controls.profile && controls.lease?.online, 10_000, `${DEVICE}'s profile and online state in the room`);
  return controls;
}

function near(value: number, expected: number): boolean {
  return Math.abs(value - expected) < 1e-6;
}

/** Acquires, retrying while the room still refuses with LATENCY_BUDGET_EXCEEDED (the demotion). */
function acquireAfterDemotion(controls: OperatorControls, timeoutMs: number): Promise<tsunagi.v1.LeaseState> {
  return waitFor(async () => {
    try {
      return await controls.acquire();
    } catch (error) {
      if ((error as TsunagiError).code !== ErrorCode.LATENCY_BUDGET_EXCEEDED) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
      return undefined;
    }
  }, timeoutMs, "the demotion to end (acquire no longer refused with LATENCY_BUDGET_EXCEEDED)");
}

/** Reads the room's audit stream in the cluster Redis, as `npm run audit -- export` does. */
async function withAuditLog<T>(use: (log: AuditLog) => Promise<T>): Promise<T> {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  try {
    return await use(new AuditLog(redis, auditStreamKey(clusterName, ROOM)));
  } finally {
    redis.disconnect();
  }
}

beforeAll(async () => {
  await flushRedisDb(redisUrl);
  const secrets = await enrollDevices(redisUrl, clusterName, [[DEVICE, "excavator"]]);
  // The proxy first, so the node can advertise it as its public address (again on fresh ports if one was taken before the node bound it).
  await onFreePorts(async () => {
    const ports = { port: await freePort(), gatewayPort: await freePort() };
    proxy = await DelayProxy.start({ target: { host: "127.0.0.1", port: ports.port }, delayMs: 0 });
    node = await startNode({
      regionId: "jp-tokyo", redisUrl, clusterName, ...ports,
      extraArgs: ["--public-address", `127.0.0.1:${proxy.port}`, "--teleop-demotion-ms", String(DEMOTION_MS), "--teleop-rtt-probe-ms", String(PROBE_MS)],
    }).catch(async (error) => { await proxy.close(); throw error; });
  });
  // Only the operator's link is slow: the adapter talks to the node directly.
  configDir = await mkdtemp(joinPath(tmpdir(), "tsunagi-latency-"));
  const driverConfig = joinPath(configDir, "excavator.json");
  await writeFile(driverConfig, JSON.stringify({ latencyBudgetMs: BUDGET_MS, watchdogMs: WATCHDOG_MS }));
  adapter = await startAdapter({ deviceId: DEVICE, driver: "sim-excavator", nodes: [node.httpUrl], secret: secrets[DEVICE], extraArgs: ["--driver-config", driverConfig] });
  await adapter.waitForStatus((s) => s.state === "online", 20_000, "the adapter online");
  supervisor = await join("supervisor", "direct", { devices: [DEVICE], sub: "latency-supervisor" });
  await waitFor(() => supervisor.deviceSnapshot(DEVICE).lease?.online, 10_000, "the excavator online in the room");
});

afterAll(async () => {
  for (const controls of controlsList) controls.dispose();
  await Promise.allSettled(sessions.map((session) => session.leave()));
  await adapter?.stop();
  await node?.stop();
  await proxy?.close();
  if (configDir) await rm(configDir, { recursive: true, force: true });
  await flushRedisDb(redisUrl).catch(() => {});
});

describe("latency budget", () => {
  it("an operator whose round trip exceeds the budget is demoted and the machine stopped; another operator may drive meanwhile; after the demotion the first drives again", { timeout: 60_000 }, async () => {
    expect(socketPort(supervisor)).toBe(String(node.port));

    // --- 1. delay 0: the operator drives ---------------------------------------------
    const slowSession = await join("operator", "proxy", { sub: "far-operator" });
    expect(socketPort(slowSession)).toBe(String(proxy.port));
    expect(proxy.connections).toBeGreaterThanOrEqual(1);
    const slow = await controlsFor(slowSession);
    expect(slow.profile!.latencyBudgetMs).toBe(BUDGET_MS);
    const demotions: DemotedEvent[] = [];
    const errors: TsunagiError[] = [];
    slow.on("demoted", (event) => demotions.push(event));
    slow.on("error", (error) => errors.push(error));

    const first = await slow.acquire();
    slow.start();
    slow.setAxes({ boom: 0.3 });
    await adapter.waitForStatus((s) => near(joint(s, "boom").velocity, 0.3) && s.safety.lease === first.leaseId, 5000, "the boom moving under the first lease");
    // Within budget, probe after probe (over three probe periods): no demotion.
    await new Promise((resolve) => setTimeout(resolve, 5 * PROBE_MS));
    expect(demotions).toEqual([]);
    expect(slow.holding).toBe(true);
    expect(near(joint(await adapter.status(), "boom").velocity, 0.3)).toBe(true);

    // --- 2. 200 ms each way: 400 ms round trip > 250 ms budget → demoted, machine stopped
    const slowedAt = Date.now();
    proxy.setDelay(DELAY_MS);
    await waitFor(() => demotions.length > 0 || errors.some((e) => e.code === ErrorCode.LATENCY_BUDGET_EXCEEDED), 10_000, "the demotion notice");
    await waitFor(() => demotions.length > 0, 10_000, 'the "demoted" event');
    expect(demotions[0]).toMatchObject({ deviceId: DEVICE, endedLeaseId: first.leaseId });
    expect(demotions[0].message).toMatch(new RegExp(`above its ${BUDGET_MS} ms budget`));
    expect(errors.filter((e) => e.code === ErrorCode.LATENCY_BUDGET_EXCEEDED)).toHaveLength(1);
    expect(slow.lease).toMatchObject({ leaseId: "", endedLeaseId: first.leaseId, cause: "latency-budget" });
    expect(slow.holding).toBe(false);
    // Everyone in the room saw the lease end for that reason.
    await waitFor(() => supervisor.deviceSnapshot(DEVICE).lease?.endedLeaseId === first.leaseId, 5000, "the supervisor told of the lease's end");
    expect(supervisor.deviceSnapshot(DEVICE).lease).toMatchObject({ leaseId: "", cause: "latency-budget" });

    const stoppedStatus = await adapter.waitForStatus((s) => stopped(s) && s.safety.lease === undefined, 5000, "the excavator stopped, no lease");
    expect(stoppedStatus.lastStop!.reason).toMatch(/latency-budget/);
    expect(stoppedStatus.lastStop!.at).toBeGreaterThanOrEqual(slowedAt);

    // --- 3. while demoted: the slow operator may not acquire; a direct one may drive --
    await expect(slow.acquire()).rejects.toMatchObject({ code: ErrorCode.LATENCY_BUDGET_EXCEEDED });
    // Leaving and joining again, even over a good link, does not lift it: it belongs to the operator.
    const rejoined = await join("operator", "direct", { sub: "far-operator" });
    const rejoinedControls = await controlsFor(rejoined);
    await expect(rejoinedControls.acquire()).rejects.toMatchObject({ code: ErrorCode.LATENCY_BUDGET_EXCEEDED });
    rejoinedControls.dispose();
    await rejoined.leave();
    const nearSession = await join("operator", "direct", { sub: "near-operator" });
    expect(socketPort(nearSession)).toBe(String(node.port));
    const nearby = await controlsFor(nearSession);
    const second = await nearby.acquire();
    expect(second.leaseId).not.toBe(first.leaseId);
    nearby.start();
    nearby.setAxes({ boom: 0.2 });
    await adapter.waitForStatus((s) => near(joint(s, "boom").velocity, 0.2) && s.safety.lease === second.leaseId, 5000, "the boom moving under the second operator's lease");
    nearby.stop();
    await adapter.waitForStatus(stopped, 5000, "stopped by the second operator");
    await nearby.release();
    await adapter.waitForStatus((s) => s.safety.lease === undefined, 5000, "the second lease released");

    // --- 4. delay back to 0: after the demotion the first operator drives again -------
    proxy.setDelay(0);
    const fresh = await acquireAfterDemotion(slow, 10_000);
    expect(fresh.leaseId).not.toBe(first.leaseId);
    expect(fresh.leaseId).not.toBe(second.leaseId);
    expect(fresh.holderSessionId).toBe(slowSession.sessionId);
    // The demotion lasted its period: the acquire above was refused until then.
    expect(Date.now() - slowedAt).toBeGreaterThanOrEqual(DEMOTION_MS);
    expect(slow.started).toBe(true); // the loop survived the demotion, with a neutral setpoint
    slow.setAxes({ boom: -0.3 });
    await adapter.waitForStatus((s) => near(joint(s, "boom").velocity, -0.3) && s.safety.lease === fresh.leaseId, 5000, "the boom moving under the fresh lease");
    // Within budget again: it keeps the lease.
    await new Promise((resolve) => setTimeout(resolve, 5 * PROBE_MS));
    expect(slow.holding).toBe(true);
    expect(demotions).toHaveLength(1);
    slow.stop();
    await adapter.waitForStatus(stopped, 5000, "stopped again");
    await slow.release();

    // --- 5. the audit log records the demotion -----------------------------------------
    const entries = await waitFor(async () => {
      const all: AuditEntry[] = await withAuditLog((log) => log.export());
      return all.some((e) => e.type === "latency.demoted") && all.some((e) => e.type === "lease.released" && e.data.leaseId === fresh.leaseId) && all;
    }, 5000, "the demotion and the last release in the audit log");
    const demoted = entries.filter((e) => e.type === "latency.demoted");
    expect(demoted).toHaveLength(1);
    expect(demoted[0].data).toMatchObject({ deviceId: DEVICE, sessionId: slowSession.sessionId, subject: "far-operator", budgetMs: BUDGET_MS });
    // What the room measured is over the budget, and at least the one-way delay (a probe in flight
    // when the link slowed may have been delayed only on its way back).
    expect(demoted[0].data.rttMs as number).toBeGreaterThan(BUDGET_MS);
    expect(demoted[0].data.rttMs as number).toBeGreaterThanOrEqual(DELAY_MS);
    const revoked = entries.filter((e) => e.type === "lease.revoked" && e.data.deviceId === DEVICE);
    expect(revoked).toEqual([expect.objectContaining({ data: expect.objectContaining({ leaseId: first.leaseId, cause: "latency-budget", sessionId: slowSession.sessionId }) })]);
    // Demotion first, then the revocation it caused.
    expect(entries.indexOf(revoked[0])).toBeGreaterThan(entries.indexOf(demoted[0]));
    // The grants, in order: the first lease, the second operator's, the fresh one.
    expect(entries.filter((e) => e.type === "lease.granted" && e.data.deviceId === DEVICE).map((e) => e.data.leaseId)).toEqual([first.leaseId, second.leaseId, fresh.leaseId]);
    expect(await withAuditLog((log) => log.verify())).toMatchObject({ ok: true });
  });
});
