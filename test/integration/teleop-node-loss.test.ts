/**
 * The region node dies under a moving machine (SIGKILL: no drain, no goodbye). The
 * adapter must stop the machine by itself within its watchdog window, reconnect when a
 * node is back, and keep the machine stopped until an operator takes a fresh lease. A
 * frozen node (SIGSTOP: its sockets stay open, nothing comes through them) is the case
 * no socket event reveals: only the adapter's watchdog catches it.
 */
import "../../server/polyfills.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { OperatorControls } from "../../client-sdk/OperatorControls.ts";
import type { RoomSession } from "../../client-sdk/RoomSession.ts";
import { tsunagi } from "../../proto/index.ts";
import { flushRedisDb, freePort, onFreePorts, startNode, waitFor, type NodeProcess } from "../fixtures/processes.ts";
import { enrollDevices, joinTeleop, joint, startAdapter, stopped, type AdapterProcess } from "../fixtures/teleop.ts";
import { testRedisUrl } from "../fixtures/redis.ts";

const redisUrl = testRedisUrl(7);
const clusterName = `node-loss-${randomUUID().slice(0, 8)}`;
const DEVICE = "ex-loss";
const Status = tsunagi.v1.CommandAck.Status;

let node: NodeProcess;
let adapter: AdapterProcess;
let ports: { port: number; gatewayPort: number };
const sessions: RoomSession[] = [];

function start() {
  // The same ports each time: the adapter knows its region node by address.
  return startNode({ regionId: "jp-osaka", redisUrl, clusterName, ...ports, extraArgs: ["--cluster-node-ttl-ms", "600", "--cluster-heartbeat-ms", "200"] });
}

/**
 * Opens the site room as its supervisor; after the node's loss the restarted node may
 * have restored it from its snapshot already (failover): then joins it there.
 */
async function openSite(): Promise<RoomSession> {
  const session = await waitFor(async () => {
    try {
      return await joinTeleop(node, "site-b", "supervisor", { devices: [DEVICE], sub: "supervisor-b" });
    } catch (error) {
      if ((error as { code?: number }).code !== 4406) throw error;
      // ROOM_CONFLICT: restored by failover (join it), or the old entry has not lapsed yet (again).
      return joinTeleop(node, "site-b", "supervisor", { sub: "supervisor-b" }).catch(() => undefined);
    }
  }, 15_000, "the site room opened");
  sessions.push(session);
  return session;
}

async function operator(): Promise<{ session: RoomSession; controls: OperatorControls }> {
  const session = await joinTeleop(node, "site-b", "operator", { sub: "driver-b" });
  sessions.push(session);
  const controls = new OperatorControls(session, { deviceId: DEVICE });
  await waitFor(() => controls.profile && controls.lease?.online, 10_000, "the device online in the room");
  return { session, controls };
}

beforeAll(async () => {
  await flushRedisDb(redisUrl);
  const secrets = await enrollDevices(redisUrl, clusterName, [[DEVICE, "excavator"]]);
  // (Again on fresh ports if one was taken before the node bound it; the restarts below keep them.)
  node = await onFreePorts(async () => {
    ports = { port: await freePort(), gatewayPort: await freePort() };
    return start();
  });
  adapter = await startAdapter({ deviceId: DEVICE, driver: "sim-excavator", nodes: [node.httpUrl], secret: secrets[DEVICE] });
  await adapter.waitForStatus((s) => s.state === "online", 20_000, "the adapter online");
});

afterAll(async () => {
  await Promise.allSettled(sessions.map((session) => session.leave(false)));
  await adapter?.stop();
  await node?.stop();
  await flushRedisDb(redisUrl).catch(() => {});
});

describe("losing the region node", () => {
  it("SIGKILL of the node: the adapter zeroes motion within its window, and after reconnecting stays stopped until a fresh lease", { timeout: 90_000 }, async () => {
    await openSite();
    const first = await operator();
    const oldLease = await first.controls.acquire();
    first.controls.start();
    first.controls.setAxes({ swing: 0.8, boom: 0.3 });
    await adapter.waitForStatus((s) => joint(s, "swing").velocity > 0.79, 5000, "the machine swinging");

    const killedAt = Date.now();
    await node.kill();
    const offline = await adapter.waitForStatus((s) => s.state !== "online" && stopped(s), 5000, "the adapter offline and stopped");
    expect(offline.lastStop!.reason).toBe("connection closed");
    expect(offline.lastStop!.at - killedAt).toBeLessThanOrEqual(offline.watchdogWindowMs);
    expect(offline.safety.lease).toBeUndefined();
    // The operator's SDK is still trying to reconnect to the dead node; it must not matter.
    first.controls.dispose();

    node = await start();
    await openSite();
    const back = await adapter.waitForStatus((s) => s.state === "online", 20_000, "the adapter back online");
    expect(back.counters.reconnects).toBeGreaterThanOrEqual(1);
    expect(back.safety.lease).toBeUndefined();
    expect(stopped(back)).toBe(true);

    // Stays stopped: nothing moves for a while, even with an operator in the room sending under the old lease.
    const second = await operator();
    const acks: tsunagi.v1.CommandAck[] = [];
    second.controls.on("ack", (ack) => acks.push(ack));
    const now = second.controls.clock;
    await now.ready(5000);
    second.session.sendEnvelope({ correlationId: 0, controlCommand: {
      deviceId: DEVICE, leaseId: oldLease.leaseId, seq: 1_000_000, issuedAtMs: now.now(), deadlineMs: now.now() + 40, axes: [{ name: "swing", value: 0.8 }],
    } });
    expect((await waitFor(() => acks[0], 5000, "the ack under the old lease")).status).toBe(Status.NO_LEASE);
    const before = await adapter.status();
    await new Promise((resolve) => setTimeout(resolve, 500));
    const still = await adapter.status();
    expect(stopped(still)).toBe(true);
    expect(joint(still, "swing").position).toBe(joint(before, "swing").position);
    expect(still.safety.lease).toBeUndefined();

    // A fresh lease, and the machine answers again.
    const fresh = await second.controls.acquire();
    expect(fresh.leaseId).not.toBe(oldLease.leaseId);
    second.controls.start();
    second.controls.setAxes({ swing: -0.4 });
    await adapter.waitForStatus((s) => Math.abs(joint(s, "swing").velocity + 0.4) < 1e-6, 5000, "the machine swinging back under the fresh lease");
    second.controls.stop();
    await adapter.waitForStatus(stopped, 5000, "stopped");
    await second.controls.release();
    second.controls.dispose();
  });

  it("a frozen node (SIGSTOP, sockets open but silent): the adapter's watchdog stops the machine, and the stale lease never moves it again", { timeout: 60_000 }, async () => {
    const { controls } = await operator();
    const frozenLease = await controls.acquire();
    controls.start();
    controls.setAxes({ boom: 0.3 });
    await adapter.waitForStatus((s) => Math.abs(joint(s, "boom").velocity - 0.3) < 1e-6, 5000, "the boom moving");

    const frozenAt = Date.now();
    process.kill(node.child.pid!, "SIGSTOP");
    let tripped;
    try {
      tripped = await adapter.waitForStatus((s) => s.safety.watchdogTripped && stopped(s), 5000, "the watchdog tripped");
    } finally {
      process.kill(node.child.pid!, "SIGCONT");
    }
    expect(tripped.state).toBe("online"); // the socket never closed: only the watchdog noticed
    expect(tripped.lastStop!.reason).toBe("watchdog");
    // The last command arrived just before the freeze; the watchdog polls every 20 ms. The
    // margin is for the scheduler of a loaded machine, not for the device.
    expect(tripped.lastStop!.at - frozenAt).toBeLessThanOrEqual(tripped.watchdogWindowMs + 100);

    // The node wakes with a backlog of the operator's commands: none of it moves the machine,
    // and the room ends the lease the watchdog killed.
    await waitFor(() => controls.lease?.endedLeaseId === frozenLease.leaseId, 10_000, "the room ending the frozen lease");
    expect(controls.lease!.cause).toMatch(/watchdog|expired/);
    const after = await adapter.status();
    expect(stopped(after)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(stopped(await adapter.status())).toBe(true);

    const fresh = await controls.acquire();
    expect(fresh.leaseId).not.toBe(frozenLease.leaseId);
    controls.setAxes({ boom: -0.3 });
    await adapter.waitForStatus((s) => Math.abs(joint(s, "boom").velocity + 0.3) < 1e-6, 5000, "moving again under a fresh lease");
    controls.stop();
    await adapter.waitForStatus(stopped, 5000, "stopped");
    controls.dispose();
  });
});
