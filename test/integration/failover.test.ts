/**
 * Region loss: every node of jp-tokyo and its Redis are SIGKILLed while its rooms are
 * live. The rooms come back in jp-osaka (which holds the replica of Tokyo's snapshots)
 * from their newest snapshots; SDK sessions find them through the directory by
 * themselves, with the same room id and session ids, and send again what the restored
 * room had not applied (no request is lost); a teleop machine stopped when its node
 * went, and stays stopped until its operator takes a fresh lease (a failover never keeps
 * one). The cluster store lives in Osaka here. Then the same loss with the directory in
 * etcd, a member in each of three regions: Tokyo's member dies with it, and the two others
 * keep the quorum.
 */
import "../../server/polyfills.ts";
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { startRegions, type RegionsHarness } from "../fixtures/regions.ts";
import { clusterLogs, waitFor, within } from "../fixtures/processes.ts";
import { testToken } from "../fixtures/tokens.ts";
import { enrollDevices, joint, keepLeaseAlive, startAdapter, stopped, type AdapterProcess } from "../fixtures/teleop.ts";
import { OperatorControls } from "../../client-sdk/OperatorControls.ts";
import type { HandoffEvent, RoomSession } from "../../client-sdk/index.ts";
import { ErrorCode } from "../../proto/index.ts";
import type { HandoffRecord } from "../../server/handoff/types.ts";
import { AuditLog } from "../../server/audit/AuditLog.ts";
import { RedisSnapshotStore } from "../../server/handoff/SnapshotStore.ts";
import { Redis } from "ioredis";
import { DelayProxy } from "../fixtures/delay-proxy.ts";

const DEVICE = "ex-survivor";
const SITE = "site-survivor";
let harness: RegionsHarness;
let adapter: AdapterProcess | undefined;
const sessions: RoomSession[] = [];

beforeAll(async () => {
  harness = await startRegions({ regions: ["jp-tokyo", "jp-osaka"], clusterRegion: "jp-osaka" });
}, 90_000);
const cleanups: Array<() => Promise<unknown>> = [];

afterAll(async () => {
  await Promise.allSettled(sessions.map((session) => session.leave(false)));
  await adapter?.stop();
  await Promise.allSettled(cleanups.map((cleanup) => cleanup()));
  await harness?.stop();
});

async function history(nodeUrl: string, roomId: string): Promise<HandoffRecord[]> {
  const response = await fetch(`${nodeUrl}/rooms/${roomId}/handoffs`, { headers: { authorization: `Bearer ${await testToken(harness.clusterName, "admin")}` } });
  return response.ok ? (await response.json()).handoffs : [];
}

describe("a region is lost", () => {
  it("brings its rooms back in another region, with their sessions; the machine stays stopped until a fresh lease", { timeout: 120_000 }, async () => {
    const tokyo = harness.region("jp-tokyo").nodes[0];
    const osaka = harness.region("jp-osaka").nodes[0];
    const city = await harness.locate("jp-tokyo");
    const reconnection = { minUptime: 0, minDelay: 50, maxDelay: 500 };
    // Placed in Tokyo whatever a busy machine's probes say.
    const rttHints = { "jp-tokyo": 1, "jp-osaka": 10 };

    // A session room in Tokyo, its members sending requests all along.
    const members: RoomSession[] = [];
    for (let i = 0; i < 4; i++) {
      const client = city.client(await testToken(harness.clusterName, "host", `member-${i}`), { reconnection });
      members.push(await client.joinOrCreate("session", { roomId: "survivor-1", rttHints }));
    }
    sessions.push(...members);
    const roomId = members[0].roomId;
    const sessionIds = members.map((m) => m.sessionId);
    const moved = members.map((m) => new Promise<HandoffEvent>((resolve) => m.on("handoff", resolve)));
    const left: number[] = [];
    for (const member of members) member.on("leave", ({ code }) => left.push(code));
    let sending = true;
    const replies = members.map(async (member) => {
      let answered = 0;
      try {
        for (let n = 0; sending; n++) {
          const reply = await member.request({ ping: { clientTimeMs: n } }, 20_000);
          if (reply.pong?.clientTimeMs !== n) return `request ${n} answered ${JSON.stringify(reply)}`;
          answered++;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      } catch (error) {
        return `request ${answered} failed: ${(error as Error).message}`;
      }
      return answered;
    });

    // A teleop site in Tokyo: its machine driven by an operator.
    const secrets = await enrollDevices(harness.clusterStore.urls()[0], harness.clusterName, [[DEVICE, "excavator"]]);
    // The machine is near Tokyo; Osaka, its fallback, is far enough that a busy machine's probes never prefer it.
    const farOsaka = await DelayProxy.start({ target: () => ({ host: "127.0.0.1", port: Number(new URL(osaka.httpUrl).port) }), delayMs: 40 });
    cleanups.push(() => farOsaka.close());
    adapter = await startAdapter({ deviceId: DEVICE, driver: "sim-excavator", nodes: [`http://127.0.0.1:${city.proxyFor(tokyo.nodeId).port}`, `http://127.0.0.1:${farOsaka.port}`], secret: secrets[DEVICE] });
    await adapter.waitForStatus((s) => s.connection?.nodeId === tokyo.nodeId && s.state === "online", 15_000, "the adapter on Tokyo's gateway");
    const supervisor = await city.client(await testToken(harness.clusterName, "supervisor", "survivor-supervisor"), { reconnection }).create("teleop", { roomId: SITE, devices: [DEVICE], rttHints });
    sessions.push(supervisor);
    const controls = new OperatorControls(supervisor, { deviceId: DEVICE });
    expect(new URL(supervisor.room.connection.url!).port).toBe(String(city.proxyFor(tokyo.nodeId).port));
    await waitFor(() => controls.lease?.online, 15_000, "the device online in the room");
    await controls.acquire();
    controls.start();
    controls.setAxes({ boom: 0.2 });
    await adapter.waitForStatus((s) => Math.abs(joint(s, "boom").velocity - 0.2) < 1e-6, 10_000, "the boom moving");
    const keepAlive = keepLeaseAlive(supervisor, controls, controls.lease!.leaseId);
    const supervisorMoved = new Promise<HandoffEvent>((resolve) => supervisor.on("handoff", resolve));

    // Snapshots are written every 100 ms: the site's newest one holds the lease before the loss.
    const tokyoRedis = new Redis(harness.region("jp-tokyo").redis.url, { maxRetriesPerRequest: 1 });
    try {
      const snapshots = new RedisSnapshotStore(tokyoRedis, `${harness.clusterName}:`, 60_000);
      await waitFor(async () => {
        const state = (await snapshots.read(`teleop__${SITE}`))?.state as { devices?: Array<{ holder?: unknown }> } | undefined;
        return state?.devices?.[0]?.holder !== undefined;
      }, 5000, "a snapshot of the site with its lease");
    } finally {
      tokyoRedis.disconnect();
    }
    const killedAt = Date.now();
    await harness.region("jp-tokyo").kill();

    // The machine stops at once: its link is gone, its watchdog fires.
    await adapter.waitForStatus((s) => stopped(s), 5000, "the machine stopped when its node was lost");

    // Every session follows its room to Osaka, with its own session id.
    const events = await within(Promise.all(moved), 30_000, "every session to follow its room to Osaka", () => clusterLogs(harness.nodes));
    for (const [i, event] of events.entries()) {
      expect(event).toMatchObject({ roomId, sessionId: sessionIds[i], toRegionId: "jp-osaka", reason: "failover" });
    }
    expect(left).toEqual([]);
    sending = false;
    const answered = await Promise.all(replies); // every request answered, none lost
    for (const count of answered) expect(typeof count === "number" && count > 0, String(count)).toBe(true);
    expect(members.map((m) => m.sessionId)).toEqual(sessionIds);

    // The room's history in Osaka tells the failover: from which snapshot, found when.
    const record = (await history(osaka.httpUrl, roomId)).at(-1)!;
    expect(record).toMatchObject({ reason: "failover", outcome: "complete", from: { regionId: "jp-tokyo", nodeId: tokyo.nodeId }, to: { regionId: "jp-osaka", nodeId: osaka.nodeId }, sessions: 4 });
    const back = record.transitions.at(-1)!.at - killedAt;
    const lost = killedAt - record.failover!.snapshotTakenAt;
    console.log(`failover figures: room back ${back} ms after the kill, detected ${record.failover!.detectedAt - killedAt} ms after it, snapshot ${lost} ms older than the kill`);
    expect(back).toBeGreaterThan(0);
    expect(lost).toBeGreaterThanOrEqual(0);

    // The teleop room is back too; the lease did not survive, the machine stays stopped.
    await within(supervisorMoved, 30_000, "the supervisor to follow the site to Osaka", () => clusterLogs(harness.nodes));
    keepAlive();
    await adapter.waitForStatus((s) => s.connection?.nodeId === osaka.nodeId && s.state === "online", 20_000, "the adapter on Osaka's gateway");
    await waitFor(() => controls.lease?.online && !controls.holding, 10_000, "the device online in the restored room, with no lease");
    controls.setAxes({ boom: 0.5 });
    for (let i = 0; i < 10; i++) {
      expect(stopped(await adapter.status())).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // A fresh lease drives it again.
    await controls.acquire();
    controls.setAxes({ boom: -0.3 });
    await adapter.waitForStatus((s) => Math.abs(joint(s, "boom").velocity + 0.3) < 1e-6, 10_000, "the boom moving under a fresh lease");
    controls.stop();
    controls.dispose();

    // The site's audit log (in the cluster store's Redis, outside the lost region) holds
    // what was recorded before the loss, the failover, and what came after, one chain.
    const redis = new Redis(harness.clusterStore.urls()[0]!, { maxRetriesPerRequest: 1 });
    try {
      const audit = new AuditLog(redis, `${harness.clusterName}:audit:${SITE}`);
      const entries = await waitFor(async () => {
        const all = await audit.export();
        return all.some((e) => e.type === "lease.granted" && e.at > killedAt) && all;
      }, 10_000, "the fresh lease in the audit log");
      const types = entries.map((e) => e.type);
      expect(types.indexOf("lease.granted")).toBeLessThan(types.indexOf("room.failed-over"));
      expect(entries.find((e) => e.type === "room.failed-over")!.data).toEqual({ leasesEnded: [DEVICE] });
      // No lease between the loss and the operator's fresh one.
      expect(entries.filter((e) => e.type === "lease.granted" && e.at > killedAt)).toHaveLength(1);
      // Verified once no append is in flight (a summary is flushed every second).
      await waitFor(async () => (await audit.verify()).ok, 10_000, "the audit chain to verify");
    } finally {
      redis.disconnect();
    }
  });
});

describe("POST /sessions/resume refuses bad input", () => {
  it("answers a missing token, a forged one, a body that is not JSON, a bad room or session id, and a room open nowhere, each with its code", { timeout: 30_000 }, async () => {
    const osaka = harness.region("jp-osaka").nodes[0];
    const token = await testToken(harness.clusterName, "visitor", "prober");
    const resume = async (body: string, authorization?: string) => {
      const response = await fetch(`${osaka.httpUrl}/sessions/resume`, { method: "POST", headers: { "content-type": "application/json", ...(authorization ? { authorization } : {}) }, body });
      return { status: response.status, code: (await response.json()).code as number };
    };
    const good = JSON.stringify({ roomId: "session__nowhere", sessionId: "abc123" });
    expect(await resume(good)).toMatchObject({ code: ErrorCode.TOKEN_MISSING });
    expect(await resume(good, "Bearer not-a-token")).toMatchObject({ code: ErrorCode.TOKEN_INVALID });
    expect(await resume("{not json", `Bearer ${token}`)).toMatchObject({ code: ErrorCode.WRONG_TYPE });
    expect(await resume(JSON.stringify({ roomId: "no spaces allowed", sessionId: "abc123" }), `Bearer ${token}`)).toMatchObject({ code: ErrorCode.WRONG_TYPE });
    expect(await resume(JSON.stringify({ roomId: "session__nowhere", sessionId: 42 }), `Bearer ${token}`)).toMatchObject({ code: ErrorCode.WRONG_TYPE });
    expect(await resume(good, `Bearer ${token}`)).toMatchObject({ status: 404, code: ErrorCode.UNKNOWN_ROOM });
    expect((await resume("x".repeat(5000), `Bearer ${token}`)).code).toBe(ErrorCode.FRAME_TOO_LARGE);
    // The node goes on: it still answers a well-formed question.
    expect(await resume(good, `Bearer ${token}`)).toMatchObject({ code: ErrorCode.UNKNOWN_ROOM });
  });
});

describe("a region is lost, with the directory in etcd", () => {
  let etcdHarness: RegionsHarness | undefined;
  const members: RoomSession[] = [];
  afterAll(async () => {
    await Promise.allSettled(members.map((session) => session.leave(false)));
    await etcdHarness?.stop();
  });

  it("SIGKILL of Tokyo's node, Redis and etcd member: its room is back in Osaka with its sessions", { timeout: 120_000 }, async () => {
    etcdHarness = await startRegions({ regions: ["jp-tokyo", "jp-osaka", "jp-sapporo"], directory: "etcd" });
    const city = await etcdHarness.locate("jp-tokyo");
    const rttHints = { "jp-tokyo": 1, "jp-osaka": 10, "jp-sapporo": 20 };
    for (let i = 0; i < 3; i++) {
      const client = city.client(await testToken(etcdHarness.clusterName, "host", `etcd-member-${i}`), { reconnection: { minUptime: 0, minDelay: 50, maxDelay: 500 } });
      members.push(await client.joinOrCreate("session", { roomId: "etcd-survivor", rttHints }));
    }
    const roomId = members[0].roomId;
    const sessionIds = members.map((m) => m.sessionId);
    const moved = members.map((m) => new Promise<HandoffEvent>((resolve) => m.on("handoff", resolve)));
    const tokyoRedis = new Redis(etcdHarness.region("jp-tokyo").redis.url, { maxRetriesPerRequest: 1 });
    try {
      const snapshots = new RedisSnapshotStore(tokyoRedis, `${etcdHarness.clusterName}:`, 60_000);
      await waitFor(async () => ((await snapshots.read(roomId))?.sessions.length ?? 0) === 3, 5000, "a snapshot with the three sessions");
    } finally {
      tokyoRedis.disconnect();
    }

    // Whether Tokyo's member leads: then etcd elects another first, and renews every lease in full.
    const { address } = etcdHarness.clusterStore.members[0]!;
    const status = await (await fetch(`http://${address.host}:${address.port}/v3/maintenance/status`, { method: "POST", body: "{}" })).json() as { header: { member_id: string }; leader: string };
    const leaderLost = status.header.member_id === status.leader;
    const killedAt = Date.now();
    await etcdHarness.region("jp-tokyo").kill();
    const events = await within(Promise.all(moved), 30_000, "every session to follow its room to Osaka", () => clusterLogs(etcdHarness!.nodes));
    for (const [i, event] of events.entries()) expect(event).toMatchObject({ roomId, sessionId: sessionIds[i], reason: "failover", toRegionId: "jp-osaka" });
    // A survivor's own etcd lease may lapse again on a loaded machine (keep-alives late): its
    // rooms then refuse inputs (NOT_ROOM_OWNER) until it is confirmed again, as they must. The
    // session asks again then; any other refusal fails the test.
    const ping = async (member: RoomSession) => {
      for (;;) {
        try {
          return await member.request({ ping: { clientTimeMs: 7 } }, 10_000);
        } catch (error) {
          if ((error as { code?: number }).code !== ErrorCode.NOT_ROOM_OWNER) throw error;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
    };
    const replies = await within(Promise.all(members.map(ping)), 15_000, "every session's first request after the move", () => clusterLogs(etcdHarness!.nodes));
    expect(replies.map((r) => r.pong?.clientTimeMs)).toEqual([7, 7, 7]);
    const osaka = etcdHarness.region("jp-osaka").nodes[0];
    const response = await fetch(`${osaka.httpUrl}/rooms/${roomId}/handoffs`, { headers: { authorization: `Bearer ${await testToken(etcdHarness.clusterName, "admin")}` } });
    const record = ((await response.json()).handoffs as HandoffRecord[]).at(-1)!;
    expect(record).toMatchObject({ reason: "failover", outcome: "complete", to: { regionId: "jp-osaka" }, sessions: 3 });
    // No survivor was taken as dead (the silence rule) when its heartbeats waited for an election; Tokyo's node
    // may have been (or its lease expired first, on a busy machine whose watching had gaps).
    const survivors = ["jp-osaka", "jp-sapporo"].flatMap((id) => etcdHarness!.region(id).nodes);
    const takenAsDead = survivors.flatMap((node) => [...node.output().matchAll(/node (\S+) is taken as dead/g)].map((m) => m[1]));
    const tokyoNodes = etcdHarness.region("jp-tokyo").nodes.map((node) => node.nodeId);
    expect(takenAsDead.filter((nodeId) => !tokyoNodes.includes(nodeId!)), clusterLogs(etcdHarness.nodes)).toEqual([]);
    // The direct heartbeats (PeerProbe) found Tokyo's node down, and no survivor.
    const unanswering = survivors.flatMap((node) => [...node.output().matchAll(/node (\S+) answered no direct heartbeat/g)].map((m) => m[1]));
    expect(unanswering.length, clusterLogs(etcdHarness.nodes)).toBeGreaterThan(0);
    expect(unanswering.filter((nodeId) => !tokyoNodes.includes(nodeId!)), clusterLogs(etcdHarness.nodes)).toEqual([]);
    console.log(`failover figures (etcd${leaderLost ? ", the etcd leader lost with it" : ""}): room back ${record.transitions.at(-1)!.at - killedAt} ms after the kill, detected ${record.failover!.detectedAt - killedAt} ms after it, snapshot ${killedAt - record.failover!.snapshotTakenAt} ms older than the kill; claimed ${record.transitions[1]!.at - record.transitions[0]!.at} ms after the detection, live ${record.transitions[2]!.at - record.transitions[1]!.at} ms after the claim`);
  });
});
