/**
 * The region's Redis restarts in the middle of a teleop session and of an expo hall,
 * once with persistence (append-only file, fsync every second) and once without (it
 * comes back empty). The node survives and reconnects, claims its room, its device and
 * its process listing again, the audit log loses no entry, the machine stops when its
 * link is lost (without persistence its enrolment is gone: DEVICE_UNKNOWN), and clients
 * get coded answers, not hangs. With the audit Redis down, an e-stop still stops the
 * machine at once, and its sender is told it is not stored beyond the node.
 */
import "../../server/polyfills.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { OperatorControls } from "../../client-sdk/OperatorControls.ts";
import type { RoomSession } from "../../client-sdk/RoomSession.ts";
import type { ExpoSession } from "../../client-sdk/ExpoSession.ts";
import { ErrorCode, tsunagi } from "../../proto/index.ts";
import { roomIdOf } from "../../proto/ids.ts";
import { AuditLog, auditStreamKey, type AuditEntry } from "../../server/audit/AuditLog.ts";
import { startNode, startRedis, waitFor, type NodeProcess, type RedisProcess } from "../fixtures/processes.ts";
import { enrollDevices, joinTeleop, startAdapter, stopped, type AdapterProcess } from "../fixtures/teleop.ts";
import { joinExpo, leaveAll, openHall, smallHall, waitForNeighbours } from "../fixtures/expo.ts";

const Status = tsunagi.v1.CommandAck.Status;
const ROOM = "site-restart";
/** The teleop room's id in the directory and the listings (its type, then its name). */
const ROOM_ID = roomIdOf("teleop", ROOM);
const EXCAVATOR = "ex-r1";
const HALL = "hall-restart";

describe.each([
  ["without persistence (Redis comes back empty)", false],
  ["with persistence (appendonly yes, appendfsync everysec)", true],
])("the region Redis restarts %s", (_name, persistent) => {
  const clusterName = `restart-${randomUUID().slice(0, 8)}`;
  let dir: string;
  let redis: RedisProcess;
  let client: Redis;
  let node: NodeProcess;
  let excavator: AdapterProcess;
  let supervisor: RoomSession;
  let operator: RoomSession;
  let controls: OperatorControls;
  let visitors: ExpoSession[];

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "tsunagi-restart-"));
    redis = await startRedis(persistent ? { persistDir: dir } : {});
    client = new Redis(redis.url, { maxRetriesPerRequest: 1, retryStrategy: () => 100 });
    client.on("error", () => {});
    const secrets = await enrollDevices(redis.url, clusterName, [[EXCAVATOR, "excavator"]]);
    node = await startNode({
      redisUrl: redis.url, clusterName, nodeId: `${clusterName}-a`,
      extraArgs: ["--gateway-revalidate-ms", "500", "--audit-anchor-ms", "500"],
    });
    excavator = await startAdapter({ deviceId: EXCAVATOR, driver: "sim-excavator", nodes: [node.httpUrl], secret: secrets[EXCAVATOR] });
    await excavator.waitForStatus((s) => s.state === "online", 20_000, "the excavator online");
    supervisor = await joinTeleop(node, ROOM, "supervisor", { devices: [EXCAVATOR], sub: "restart-supervisor" });
    await waitFor(() => supervisor.deviceSnapshot(EXCAVATOR).lease?.online, 10_000, "the excavator online in the room");
    operator = await joinTeleop(node, ROOM, "operator", { sub: "restart-operator" });
    controls = new OperatorControls(operator, { deviceId: EXCAVATOR, rateHz: 50, onListenerError: (error) => { throw error; } });
    await waitFor(() => controls.profile, 5000, "the excavator's profile");
    const opened = await openHall(node, smallHall(HALL));
    expect(opened.status, JSON.stringify(opened.body)).toBe(201);
    visitors = [await joinExpo(node, HALL)];
  }, 90_000);

  afterAll(async () => {
    controls?.dispose();
    await leaveAll();
    await Promise.allSettled([operator?.leave(), supervisor?.leave()]);
    await excavator?.stop();
    await node?.stop();
    client?.disconnect();
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it("the node survives and reconnects; rooms, device claim and listings are claimed again; no audit entry is lost; the machine stops if its link is lost", async () => {
    const auditLog = new AuditLog(client, auditStreamKey(clusterName, ROOM));
    await controls.acquire();
    controls.start();
    controls.setAxes({ boom: 0.2 });
    await excavator.waitForStatus((s) => s.joints.some((j) => j.name === "boom" && Math.abs(j.velocity - 0.2) < 1e-6), 10_000, "the boom moving");
    // At least one command summary in Redis before the restart.
    const before = await waitFor(async () => {
      const entries = await auditLog.export();
      return entries.some((e) => e.type === "commands.summary") && entries;
    }, 10_000, "a command summary in the audit log");
    await redis.restart();
    const restartedAt = Date.now();

    // --- the node survived, said so, and no client lacked an error listener ---------------
    await waitFor(() => node.output().includes("cluster Redis reachable again"), 20_000, "the node to reconnect");
    expect(node.child.exitCode).toBeNull();
    expect(node.output()).not.toContain("Unhandled error event");

    // --- its registry entry, its room, its device claim and its room listings are back -------
    await waitFor(async () => (await client.exists(`${clusterName}:node:${node.nodeId}`)) === 1, 10_000, "the registry entry");
    const room = await waitFor(async () => (await client.get(`${clusterName}:room:${ROOM_ID}`)) ?? undefined, 10_000, "the room's directory entry");
    expect(JSON.parse(room)).toMatchObject({ nodeId: node.nodeId });
    const owner = await waitFor(async () => (await client.get(`${clusterName}:device-owner:${EXCAVATOR}`)) ?? undefined, 10_000, "the device claim");
    expect(JSON.parse(owner)).toMatchObject({ roomId: ROOM_ID, nodeId: node.nodeId });
    await waitFor(async () => (await client.hexists("roomcaches", ROOM_ID)) === 1 && (await client.hexists("roomcaches", HALL)) === 1, 10_000, "the rooms' listings");

    // --- the machine: without its enrolment the gateway cuts it off and it stops -----------
    if (!persistent) {
      await excavator.waitForStatus((s) => s.state !== "online" && stopped(s), 20_000, "the excavator cut off and stopped");
      await waitFor(() => supervisor.deviceSnapshot(EXCAVATOR).lease?.online === false, 10_000, "the room to see the device offline");
      // The operator is told (a LeaseState: no lease, device offline), and a request is answered, not left hanging.
      await waitFor(() => operator.deviceSnapshot(EXCAVATOR).lease?.leaseId === "" && operator.deviceSnapshot(EXCAVATOR).lease?.online === false, 10_000, "the operator told the lease ended, the device offline");
      const answer = await Promise.race([
        controls.acquire().then(() => "granted", (error) => `refused ${(error as { code?: number }).code}`),
        new Promise<string>((resolve) => setTimeout(() => resolve("no answer"), 10_000)),
      ]);
      expect(answer).not.toBe("no answer");
      expect(answer).not.toBe("refused undefined");
    } else {
      // Enrolment persisted: the machine keeps answering to its operator (a lease lost to
      // the busy machine's latency meanwhile is taken again: what counts is the device).
      let applied = 0;
      controls.on("ack", (ack) => { if (ack.status === Status.APPLIED && Date.now() > restartedAt) applied++; });
      await waitFor(async () => {
        if (!controls.holding) await controls.acquire().catch(() => {});
        return applied >= 5;
      }, 20_000, "commands applied by the excavator after the restart");
      expect((await excavator.status()).state).toBe("online");
    }
    controls.stop();
    await controls.release().catch(() => {});

    // --- the audit log: every entry from before is there, the chain verifies ---------------
    const after = await waitFor(async () => {
      const entries = await auditLog.export();
      return entries.some((e) => e.type === "lease.released" || e.type === "lease.revoked") && entries;
    }, 15_000, "the lease's end in the audit log");
    const hashes = new Set(after.map((e: AuditEntry) => e.hash));
    for (const entry of before) expect(hashes.has(entry.hash), `entry ${entry.seq} (${entry.type}) kept`).toBe(true);
    expect(after[0].seq).toBe(1);
    expect(after.map((e: AuditEntry) => e.type)).toContain("room.opened");
    expect(await auditLog.verify()).toMatchObject({ ok: true });

    // --- the expo hall: the visitor still gets frames, a new visitor joins and is seen -------
    const newcomer = await joinExpo(node, HALL);
    visitors.push(newcomer);
    expect(newcomer.visitorId).not.toBe(visitors[0].visitorId);
    await waitForNeighbours(visitors[0], [newcomer.visitorId], "the first visitor to see the newcomer", 10_000);
    await waitForNeighbours(newcomer, [visitors[0].visitorId], "the newcomer to see the first visitor", 10_000);
  }, 120_000);

  // Once: the device's enrolment must outlive the restart for the room to be whole after it.
  it.runIf(persistent)("with the audit Redis down, an e-stop stops the machine at once; its sender gets the notice, then REGION_UNAVAILABLE (not stored beyond this node), and the entry is there once Redis is back", async () => {
    const auditLog = new AuditLog(client, auditStreamKey(clusterName, ROOM));
    const notices: string[] = [];
    controls.on("estop", (estop) => notices.push(estop.reason));
    let answer: unknown;
    await redis.restart({
      whileDown: async () => {
        const pressed = controls.estop("audit Redis down");
        await excavator.waitForStatus((s) => s.safety.estopped && stopped(s), 5000, "the excavator e-stopped while Redis is down");
        answer = await pressed.then(() => "acknowledged", (error: { code?: number }) => error.code);
      },
    });
    expect(answer).toBe(ErrorCode.REGION_UNAVAILABLE);
    expect(notices).toContain("audit Redis down");
    await waitFor(async () => (await auditLog.export()).some((e) => e.type === "lease.estopped" && e.data.reason === "audit Redis down"), 15_000, "the e-stop's entry in the audit log once Redis is back");
    expect(await auditLog.verify()).toMatchObject({ ok: true });
    await supervisor.request({ reset: { deviceId: EXCAVATOR, reason: "test cleanup" } });
  }, 60_000);
});
