/**
 * Two adapters for one device (a second box started by mistake, a demo started twice),
 * with an operator driving through the first. The gateway pings the connected adapter
 * when the second proves itself; it answers, so the second is refused DEVICE_CONFLICT
 * instead of taking over: the pair settles at once, the operator keeps driving under
 * the same lease, and the loser backs off and says why in its status.
 */
import "../../server/polyfills.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { OperatorControls } from "../../client-sdk/OperatorControls.ts";
import type { RoomSession } from "../../client-sdk/RoomSession.ts";
import { tsunagi } from "../../proto/index.ts";
import { startNode, startRedis, waitFor, type NodeProcess, type RedisProcess } from "../fixtures/processes.ts";
import { enrollDevices, joinTeleop, startAdapter, type AdapterProcess } from "../fixtures/teleop.ts";
// A redis-server of this file's own: nothing another file runs beside it can flush its keys.
let ownRedis: RedisProcess | undefined;
let redisUrl: string;
const clusterName = `duplicate-${randomUUID().slice(0, 8)}`;
const DEVICE = "ex-twin";
const { Status } = tsunagi.v1.CommandAck;

let node: NodeProcess;
let secret: string;
const adapters: AdapterProcess[] = [];
const sessions: RoomSession[] = [];

async function gatewayRefusals(code: string): Promise<number> {
  const text = await (await fetch(`${node.httpUrl}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith("tsunagi_errors_total{") && l.includes(`code="${code}"`) && l.includes('source="gateway"'));
  return line ? Number(line.split(" ").pop()) : 0;
}

beforeAll(async () => {
  ownRedis = await startRedis();
  redisUrl = ownRedis.url;
  secret = (await enrollDevices(redisUrl, clusterName, [[DEVICE, "excavator"]]))[DEVICE];
  node = await startNode({ regionId: "jp-sendai", redisUrl, clusterName });
}, 60_000);

afterAll(async () => {
  await Promise.allSettled(sessions.map((session) => session.leave(false)));
  await Promise.allSettled(adapters.map((adapter) => adapter.stop()));
  await node?.stop();
  await ownRedis?.stop();
});

describe("two adapters for one device", () => {
  it("the pair settles within seconds: the operator keeps driving under the same lease, and the loser reports why", { timeout: 120_000 }, async () => {
    const first = await startAdapter({ deviceId: DEVICE, driver: "sim-excavator", nodes: [node.httpUrl], secret });
    adapters.push(first);
    await first.waitForStatus((s) => s.state === "online", 20_000, "the first adapter online");
    sessions.push(await joinTeleop(node, "site-twin", "supervisor", { devices: [DEVICE], sub: "supervisor-twin" }));
    const session = await joinTeleop(node, "site-twin", "operator", { sub: "driver-twin" });
    sessions.push(session);
    const controls = new OperatorControls(session, { deviceId: DEVICE });
    await waitFor(() => controls.profile && controls.lease?.online, 10_000, "the device online in the room");
    await controls.acquire();
    const leaseEvents: tsunagi.v1.LeaseState[] = [];
    controls.on("lease", (state) => leaseEvents.push(state));
    let applied = 0;
    const refused: string[] = [];
    controls.on("ack", (ack) => { if (ack.status === Status.APPLIED) applied++; else refused.push(Status[ack.status]); });
    controls.start();
    controls.setAxes({ swing: 0.5 });
    // On this shared machine a command can miss its 50 ms budget, or the 200 ms watchdog
    // trip, and the lease end: the operator takes it again, as a person would. What a flip
    // does is different: the device goes offline in the room, and the first adapter reconnects.
    const keepDriving = setInterval(() => {
      if (!controls.lease?.leaseId && !controls.lease?.estopped) controls.acquire().catch(() => {});
    }, 250);
    try {
      await waitFor(() => applied >= 20, 20_000, "the operator driving the machine");

      const second = await startAdapter({ deviceId: DEVICE, driver: "sim-excavator", nodes: [node.httpUrl], secret });
      adapters.push(second);
      const loser = await second.waitForStatus((s) => s.conflict !== undefined, 20_000, "the second adapter to report the conflict");
      expect(loser.lastError).toMatchObject({ codeName: "DEVICE_CONFLICT" });
      expect(loser.conflict!.message).toMatch(/another adapter is connected as device ex-twin/);
      expect(loser.state).not.toBe("online");
      expect(await gatewayRefusals("DEVICE_CONFLICT")).toBeGreaterThanOrEqual(1);

      // Settled: the operator keeps driving through the first adapter, which never left.
      const appliedBefore = applied;
      await waitFor(() => applied >= appliedBefore + 50, 20_000, "50 more APPLIED acks after the conflict");
      expect(leaseEvents.filter((state) => state.cause === "device-offline")).toEqual([]);
      expect(refused.filter((status) => status === "DEVICE_OFFLINE" || status === "UNKNOWN")).toEqual([]);
      const winner = await first.status();
      expect({ state: winner.state, conflict: winner.conflict, reconnects: winner.counters.reconnects, linkLossStops: winner.counters.linkLossStops })
        .toEqual({ state: "online", conflict: undefined, reconnects: 0, linkLossStops: 0 });
      expect((await second.status()).state).not.toBe("online");
    } finally {
      clearInterval(keepDriving);
    }
    controls.dispose();
  });
});
