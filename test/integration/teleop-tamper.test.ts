/**
 * Someone on the device channel's path (issue 11, "The device channel"): a real node, a
 * real adapter process and an operator, with a proxy between the adapter and the gateway
 * that can read, rewrite and inject the frames (the channel runs plain ws:// here, on
 * loopback, so the path sees every byte; over TLS it sees only ciphertext, tls.test.ts).
 * A command injected or altered on the path, a forged reset of an e-stop, or a forged frame
 * toward the gateway moves nothing and is counted, on the adapter or on the node.
 */
import "../../server/polyfills.ts";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { OperatorControls } from "../../client-sdk/OperatorControls.ts";
import type { RoomSession } from "../../client-sdk/RoomSession.ts";
import { SEAL_BYTES } from "../../proto/deviceAuth.ts";
import { decodeEnvelope, encodeEnvelope } from "../../proto/index.ts";
import { freePort, onFreePorts, startNode, startRedis, waitFor, type NodeProcess, type RedisProcess } from "../fixtures/processes.ts";
import { enrollDevices, joinTeleop, joint, keepLeaseAlive, startAdapter, stopped, type AdapterProcess } from "../fixtures/teleop.ts";
import { TamperProxy } from "../fixtures/tamper-proxy.ts";
// A redis-server of this file's own: nothing another file runs beside it can flush its keys.
let ownRedis: RedisProcess | undefined;
let redisUrl: string;
const clusterName = `tamper-${randomUUID().slice(0, 8)}`;
const ROOM = "site-tamper";
const EXCAVATOR = "ex-t";

let node: NodeProcess;
let proxy: TamperProxy;
let excavator: AdapterProcess;
let supervisor: RoomSession;
const sessions: RoomSession[] = [];
const stops: Array<() => void> = [];

/** The node's count of device frames it dropped unread, for `reason`. */
async function refusedOnNode(reason: string): Promise<number> {
  const text = await (await fetch(`${node.httpUrl}/metrics`)).text();
  return Number(text.match(new RegExp(`^tsunagi_device_frames_refused_total\\{reason="${reason}"\\} (\\d+)`, "m"))?.[1] ?? 0);
}

/** An operator holding the excavator's lease (kept alive by heartbeats), its controls, and the lease id. */
async function operatorWithLease(sub: string) {
  const session = await joinTeleop(node, ROOM, "operator", { sub });
  sessions.push(session);
  const controls = new OperatorControls(session, { deviceId: EXCAVATOR, rateHz: 50 });
  await waitFor(() => controls.profile, 5000, "the excavator's profile in the room");
  const lease = await controls.acquire();
  stops.push(keepLeaseAlive(session, controls, lease.leaseId));
  await excavator.waitForStatus((s) => s.safety.lease === lease.leaseId, 5000, "the adapter taking the lease");
  return { session, controls, leaseId: lease.leaseId };
}

/** A command a forger would send: the current lease, a seq far ahead, the boom moving. */
function forgedCommand(leaseId: string, value = 0.4) {
  const now = Date.now();
  return encodeEnvelope({ correlationId: 991, controlCommand: { deviceId: EXCAVATOR, leaseId, seq: 1_000_000_000, issuedAtMs: now, deadlineMs: now + 5000, axes: [{ name: "boom", value }] } });
}

beforeAll(async () => {
  ownRedis = await startRedis();
  redisUrl = ownRedis.url;
  const secrets = await enrollDevices(redisUrl, clusterName, [[EXCAVATOR, "excavator"]]);
  // The proxy sits where /gateway sends adapters; the gateway listens on a port fixed beforehand.
  // (Again on fresh ports if the one fixed beforehand was taken before the node bound it.)
  await onFreePorts(async () => {
    const gatewayPort = await freePort();
    proxy = await TamperProxy.start({ target: { host: "127.0.0.1", port: gatewayPort }, mode: "websocket" });
    node = await startNode({ regionId: "jp-tokyo", redisUrl, clusterName, gatewayPort, extraArgs: ["--gateway-public-address", `127.0.0.1:${proxy.port}`] })
      .catch(async (error) => { await proxy.close(); throw error; });
  });
  excavator = await startAdapter({ deviceId: EXCAVATOR, driver: "sim-excavator", nodes: [node.httpUrl], secret: secrets[EXCAVATOR] });
  await excavator.waitForStatus((s) => s.state === "online", 20_000, "the excavator online through the proxy");
  expect(proxy.openConnections).toBe(1);
  supervisor = await joinTeleop(node, ROOM, "supervisor", { devices: [EXCAVATOR], sub: "site-supervisor" });
  await waitFor(() => supervisor.deviceSnapshot(EXCAVATOR).lease?.online, 10_000, "the excavator online in the room");
}, 60_000);

afterEach(async () => {
  proxy.rewrite = undefined;
  for (const stop of stops.splice(0)) stop();
  await Promise.allSettled(sessions.splice(0).map((session) => session.leave()));
  if (supervisor?.deviceSnapshot(EXCAVATOR).lease?.estopped) await supervisor.request({ reset: { deviceId: EXCAVATOR, reason: "test cleanup" } }).catch(() => {});
});

afterAll(async () => {
  await supervisor?.leave().catch(() => {});
  await excavator?.stop();
  await node?.stop();
  await proxy?.close();
  await ownRedis?.stop();
});

describe("a forger on the device channel's path", () => {
  it("injects a command toward the adapter: it moves nothing and is counted", { timeout: 30_000 }, async () => {
    const { leaseId } = await operatorWithLease("driver-inject");
    const before = (await excavator.status()).counters.refusedFrames;
    proxy.inject("toClient", forgedCommand(leaseId));
    const status = await excavator.waitForStatus((s) => s.counters.refusedFrames === before + 1, 10_000, "the injected frame counted");
    expect(joint(status, "boom").velocity).toBe(0);
    expect(status.safety.lastApplied).toBeUndefined();
    expect(status.safety.lease).toBe(leaseId);
  });

  it("alters the operator's commands on the path: none is applied, each is counted, the machine stays still", { timeout: 30_000 }, async () => {
    const { controls } = await operatorWithLease("driver-alter");
    let altered = 0;
    proxy.rewrite = (direction, payload) => {
      if (direction !== "toClient") return undefined;
      const envelope = decodeEnvelope(payload); // a sealed frame reads as an envelope with the seal's two fields
      if (envelope.body !== "controlCommand") return undefined;
      altered++;
      const command = envelope.controlCommand!;
      const rewritten = encodeEnvelope({ correlationId: envelope.correlationId, controlCommand: { ...command, axes: [{ name: "boom", value: 0.4 }] } });
      return Buffer.concat([rewritten, payload.subarray(payload.length - SEAL_BYTES)]);
    };
    const before = (await excavator.status()).counters.refusedFrames;
    controls.start();
    controls.setAxes({ boom: 0.01 });
    const status = await excavator.waitForStatus((s) => s.counters.refusedFrames >= before + 10, 10_000, "ten altered commands counted");
    expect(altered).toBeGreaterThanOrEqual(10);
    expect(status.safety.lastApplied).toBeUndefined();
    expect(stopped(status)).toBe(true);
    controls.stop();
    controls.dispose();
  });

  it("forges a reset of a latched e-stop toward the adapter: the latch holds", { timeout: 30_000 }, async () => {
    await supervisor.request({ estop: { deviceId: EXCAVATOR, reason: "person in the swing radius" } });
    await excavator.waitForStatus((s) => s.safety.estopped, 5000, "the adapter latched");
    const before = (await excavator.status()).counters.refusedFrames;
    proxy.inject("toClient", encodeEnvelope({ correlationId: 0, reset: { deviceId: EXCAVATOR, reason: "forged", by: "supervisor" } }));
    const status = await excavator.waitForStatus((s) => s.counters.refusedFrames === before + 1, 10_000, "the forged reset counted");
    expect(status.safety.estopped).toBe(true);
  });

  it("forges frames toward the gateway: dropped unread and counted on the node", { timeout: 30_000 }, async () => {
    const missing = await refusedOnNode("missing");
    // An e-stop the device never raised, and telemetry it never sent.
    proxy.inject("toServer", encodeEnvelope({ correlationId: 0, estop: { deviceId: EXCAVATOR, reason: "forged" } }));
    proxy.inject("toServer", encodeEnvelope({ correlationId: 0, telemetry: { deviceId: EXCAVATOR, estopped: true } }));
    await waitFor(async () => (await refusedOnNode("missing")) === missing + 2, 10_000, "two refused frames on the node's metric");
    expect(supervisor.deviceSnapshot(EXCAVATOR).lease?.estopped).toBe(false);
    expect((await excavator.status()).state).toBe("online");
  });
});
