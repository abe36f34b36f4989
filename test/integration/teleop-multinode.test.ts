/**
 * A region of two nodes. An adapter picks its node by round trip, not by room, so it may
 * connect to the node that does not host its device's room. The room's node asks for
 * it, the holding node sends it over (GatewayRedirect), and the operator drives it
 * through the room's node. A machine answers to one room in the whole cluster, and a
 * request from anything but that room moves nothing.
 */
import "../../server/polyfills.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import type { RoomSession } from "../../client-sdk/RoomSession.ts";
import { ErrorCode, tsunagi } from "../../proto/index.ts";
import type { DeviceOwner } from "../../server/cluster/types.ts";
import { deviceWantedChannel } from "../../server/gateway/DeviceRequests.ts";
import { toPresence } from "../../proto/clusterCodec.ts";
import { flushRedisDb, startNode, waitFor, type NodeProcess } from "../fixtures/processes.ts";
import { driveOnce, enrollDevices, joinTeleop, startAdapter, stopped, type AdapterProcess } from "../fixtures/teleop.ts";
import { testRedisUrl } from "../fixtures/redis.ts";

const redisUrl = testRedisUrl(14);
const clusterName = `multinode-${randomUUID().slice(0, 8)}`;
const DEVICE = "ex-far";
const SITE = "site-far";

let redis: Redis;
let nodes: NodeProcess[] = [];
let adapter: AdapterProcess | undefined;
const sessions: RoomSession[] = [];

beforeAll(async () => {
  await flushRedisDb(redisUrl);
  redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  const extraArgs = ["--cluster-heartbeat-ms", "200"];
  nodes = await Promise.all([
    startNode({ regionId: "jp-tokyo", nodeId: "tokyo-a", redisUrl, clusterName, extraArgs }),
    startNode({ regionId: "jp-tokyo", nodeId: "tokyo-b", redisUrl, clusterName, extraArgs }),
  ]);
}, 60_000);

afterAll(async () => {
  await Promise.allSettled(sessions.map((session) => session.leave(false)));
  await adapter?.stop();
  await Promise.allSettled(nodes.map((node) => node.stop()));
  await flushRedisDb(redisUrl).catch(() => {});
  redis?.disconnect();
});

async function owner(): Promise<DeviceOwner | undefined> {
  const value = await redis.get(`${clusterName}:device-owner:${DEVICE}`);
  return value ? (JSON.parse(value) as DeviceOwner) : undefined;
}

describe("devices across the nodes of a region", () => {
  it("an adapter connected to the other node is sent to its room's node and driven there; the device answers to one room", { timeout: 90_000 }, async () => {
    const secrets = await enrollDevices(redisUrl, clusterName, [[DEVICE, "excavator"]]);
    sessions.push(await joinTeleop(nodes[0]!, SITE, "supervisor", { devices: [DEVICE], sub: "site-supervisor" }));
    const claim = await waitFor(owner, 5000, "the device's claim in the directory");
    const host = nodes.find((node) => node.nodeId === claim.nodeId)!;
    const other = nodes.find((node) => node.nodeId !== claim.nodeId)!;
    expect(claim).toMatchObject({ roomId: `teleop__${SITE}`, nodeId: host.nodeId, gatewayUrl: host.gatewayUrl });

    // The adapter knows only the node that does not host the room.
    adapter = await startAdapter({ deviceId: DEVICE, driver: "sim-excavator", nodes: [other.httpUrl], secret: secrets[DEVICE] });
    const online = await adapter.waitForStatus((s) => s.state === "online" && s.connection?.nodeId === host.nodeId, 20_000, "the adapter online at the room's node");
    expect(online.counters.redirects).toBe(1);
    expect(stopped(online)).toBe(true);
    expect(online.safety.lease).toBeUndefined();
    await waitFor(() => other.output().includes(`device ${DEVICE} sent to node ${host.nodeId}`), 5000, "the holding node's log line");

    // Driven through the room's node, from whichever node the operator joins by.
    const session = await joinTeleop(other, SITE, "operator", { sub: "far-operator" });
    sessions.push(session);
    await driveOnce(session, adapter, DEVICE, "swing", 0.5);

    // One room per machine in the cluster: a second room on either node is refused.
    for (const node of nodes) {
      await expect(joinTeleop(node, `site-steal-${node.nodeId}`, "supervisor", { devices: [DEVICE] }))
        .rejects.toMatchObject({ code: ErrorCode.ROOM_CONFLICT, message: expect.stringContaining(`room "teleop__${SITE}"`) });
    }
    expect((await owner())?.roomId).toBe(`teleop__${SITE}`);

    // A request from a room the device does not answer to moves nothing (written as presence
    // writes it: the cluster message's text, JSON-quoted).
    const forged = toPresence(tsunagi.v1.DeviceWanted, { deviceId: DEVICE, roomId: "impostor", nodeId: other.nodeId });
    await redis.publish(deviceWantedChannel(clusterName), JSON.stringify(forged));
    await waitFor(() => host.output().includes(`room impostor asked for device ${DEVICE}, which does not answer to it`), 5000, "the refusal in the log");
    const after = await adapter.status();
    expect(after.state).toBe("online");
    expect(after.connection?.nodeId).toBe(host.nodeId);
    expect(after.counters.redirects).toBe(1);

    // Past the node's flood limit (120 messages/s here), an e-stop still goes through.
    const flooded: number[] = [];
    session.on("error", (error) => flooded.push(error.code));
    const now = Date.now();
    for (let i = 0; i < 300; i++) session.sendEnvelope({ correlationId: 0, heartbeat: { deviceId: DEVICE, leaseId: "none", seq: i + 1, sentAtMs: now } });
    session.sendEnvelope({ correlationId: 0, estop: { deviceId: DEVICE, reason: "stop past the flood limit", raisedAtMs: now } });
    const latched = await adapter.waitForStatus((s) => s.safety.estopped, 5000, "the e-stop latched at the adapter despite the flood");
    expect(latched.counters.estops).toBe(1);
    // The refusal comes over the session, the latch over the adapter's status: either may be seen first.
    await waitFor(() => flooded.includes(ErrorCode.RATE_LIMITED), 5000, "the flood's RATE_LIMITED");
  });
});
