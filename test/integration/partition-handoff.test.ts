/**
 * Partitions with the directory in etcd, through the multi-region harness (Tokyo, Osaka,
 * Sapporo; an etcd member in each): never two live copies of a room taking inputs.
 *
 * - A session room moving from Tokyo to Osaka while the link between the two is cut
 *   (nodes, store paths and etcd members alike; both keep a quorum through Sapporo):
 *   cut before the Switch, the handoff rolls back and the room goes on in Tokyo; cut once
 *   Osaka has switched but before its answer reached Tokyo, the directory tells Tokyo,
 *   and the room goes on in Osaka (or, when Osaka's etcd lease lapsed behind the cut and
 *   its claim with it before Tokyo asked, Tokyo takes the room back: checked by Osaka's
 *   lease-lost count).
 * - Sapporo cut off from both: its member in the minority, its node cannot confirm its
 *   lease and its room refuses inputs (NOT_ROOM_OWNER) instead of running. The quorum's
 *   side gets the room, restored from Sapporo's replicated snapshot once its silent node
 *   is taken as dead, or opened afresh once its lease expired, whichever comes first, and
 *   it takes inputs there while Sapporo's copy still refuses. At the heal Sapporo's copy
 *   closes (NOT_ROOM_OWNER): each session resumes on the live copy where it holds the
 *   session's seat, and otherwise joins again (ROOM_MOVED). No input is applied on
 *   Sapporo's copy from its fencing on (counted by the connection each pong came over).
 *
 * Throughout, every client sends numbered inputs (pings carrying their number, echoed in
 * the pong), and a refused one is sent again. Checked each time: every input applied
 * exactly once (one pong each, never two, none missing), one node holding the room, and
 * the directory naming that node under the token its live copy holds (the copy's listing
 * updates, which etcd takes only under the current token, reach the entry).
 */
import "../../server/polyfills.ts";
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { startRegions, type LocatedClient, type RegionsHarness } from "../fixtures/regions.ts";
import { clusterLogs, waitFor } from "../fixtures/processes.ts";
import { liveNodes } from "../fixtures/cluster.ts";
import { testToken } from "../fixtures/tokens.ts";
import { adminHandoff, handoffHistory, inputCounters, ownershipEvents } from "../fixtures/handoffs.ts";
import { EtcdSession, clusterPrefix } from "../../server/cluster/etcd/EtcdSession.ts";
import { EtcdRoomDirectory } from "../../server/cluster/etcd/EtcdRoomDirectory.ts";
import type { DirectoryEntry } from "../../server/cluster/types.ts";
import { ErrorCode } from "../../proto/index.ts";
import type { RoomSession } from "../../client-sdk/index.ts";

const SOURCE = "jp-tokyo";
const TARGET = "jp-osaka";
const THIRD = "jp-sapporo";
const CLIENTS = 3;
/** Each stream sends an input this often, ms. */
const INPUT_MS = 25;
/** One-way delay of Tokyo's route to Osaka's node during a handoff: each handoff call takes 0.8 s, so a cut lands between two. */
const SLOW_ROUTE_MS = 400;
const TTL_MS = 3000;

let harness: RegionsHarness;
/** This test's own view of the directory, straight from the members. */
let observer: EtcdSession;
let directory: EtcdRoomDirectory;
const streams: InputStream[] = [];

beforeAll(async () => {
  harness = await startRegions({
    regions: [SOURCE, TARGET, THIRD],
    directory: "etcd",
    nodeArgs: [
      "--cluster-heartbeat-ms", "500", "--cluster-node-ttl-ms", String(TTL_MS), "--etcd-call-timeout-ms", "1000",
      "--handoff-rpc-timeout-ms", "3000", "--handoff-prepare-timeout-ms", "5000", "--handoff-seat-seconds", "30",
      // Rooms move only when told to.
      "--handoff-placement-check-ms", "0",
    ],
  });
  observer = new EtcdSession({ endpoints: harness.clusterStore.urls(), callTimeoutMs: 2000, defaultTtlMs: TTL_MS, prefix: clusterPrefix(harness.clusterName) });
  directory = new EtcdRoomDirectory(observer, 2000);
}, 120_000);

afterAll(async () => {
  await Promise.allSettled(streams.map((stream) => stream.stop()));
  await Promise.allSettled(streams.map((stream) => stream.session.leave()));
  await observer?.close();
  await harness?.stop();
}, 60_000);

/**
 * One session's numbered inputs: a ping every INPUT_MS carrying its number `k` (echoed
 * in the pong), without waiting for the reply; a refused one (NOT_ROOM_OWNER: the room
 * did not take it) is sent again in the next slot, before any new one. Every pong the
 * session receives counts for its `k`: a reply, or one that came late or twice.
 */
class InputStream {
  /** Pongs received, by input number. */
  readonly pongs = new Map<number, number>();
  /** Pongs received, by the port of the connection they came over. */
  private readonly via = new Map<string, number>();
  /** Inputs refused NOT_ROOM_OWNER (each sent again), and those waiting to go again. */
  refusals = 0;
  private readonly retry: number[] = [];
  /** Inputs that got neither a pong nor a refusal (a timeout, another error), with why. */
  readonly failures: string[] = [];
  /** Inputs still unsettled when the session ended: told to the application, not applied. */
  readonly endedWith: number[] = [];
  /** The last input number given out. */
  sent = 0;
  private readonly inFlight = new Set<Promise<void>>();
  private timer?: NodeJS.Timeout;

  constructor(readonly session: RoomSession) {
    session.onEnvelope((envelope) => { if (envelope.body === "pong") this.count(envelope.pong!.clientTimeMs!); });
    this.timer = setInterval(() => this.next(), INPUT_MS);
    streams.push(this);
  }

  applied(): number { return this.pongs.size; }

  /** Stops sending and waits for every input in flight to settle. */
  async stop() {
    clearInterval(this.timer);
    while (this.inFlight.size) await Promise.all([...this.inFlight]);
  }

  /** Inputs applied other than exactly once (none missing, none twice), refused ones still waiting to go again excepted. */
  notOnce(): string[] {
    const waiting = new Set([...this.retry, ...this.endedWith]);
    const wrong: string[] = [];
    for (let k = 1; k <= this.sent; k++) {
      const pongs = this.pongs.get(k) ?? 0;
      if (pongs > 1 || (pongs === 0 && !waiting.has(k))) wrong.push(`input ${k}: ${pongs} pongs`);
    }
    return wrong;
  }

  private next() {
    if (this.session.closed) return;
    const k = this.retry.shift() ?? ++this.sent;
    const settled = this.session.request({ ping: { clientTimeMs: k } }, 45_000).then(
      (reply) => { this.count(reply.pong!.clientTimeMs!); },
      (error: { code?: number; message?: string }) => {
        if (error.code === ErrorCode.NOT_ROOM_OWNER) {
          this.refusals++;
          this.retry.push(k);
        } else if (this.session.closed) {
          this.endedWith.push(k);
        } else {
          this.failures.push(`input ${k}: ${error.code} ${error.message}`);
        }
      },
    ).finally(() => this.inFlight.delete(settled));
    this.inFlight.add(settled);
  }

  private count(k: number) {
    this.pongs.set(k, (this.pongs.get(k) ?? 0) + 1);
    const port = new URL(this.session.room.connection.url!).port;
    this.via.set(port, (this.via.get(port) ?? 0) + 1);
  }

  /** Pongs that came over a connection to `proxyPort` (a node's proxy for the stream's city): inputs that node's copy applied. */
  appliedVia(proxyPort: number): number { return this.via.get(String(proxyPort)) ?? 0; }
}

/** `count` host sessions of `city` in session room `name`, placed in `region`, each with its input stream. */
async function joinStreams(city: LocatedClient, region: string, name: string, count = CLIENTS): Promise<InputStream[]> {
  const rttHints = Object.fromEntries(harness.regionIds.map((id) => [id, id === region ? 1 : 100]));
  const joined: InputStream[] = [];
  for (let i = 0; i < count; i++) {
    const client = city.client(await testToken(harness.clusterName, "host", `${name}-${i}`));
    joined.push(new InputStream(await client.joinOrCreate("session", { roomId: name, rttHints })));
  }
  return joined;
}

/** Whether each etcd member answers /health with a leader, by region. */
async function memberHealth(): Promise<Record<string, boolean>> {
  return Object.fromEntries(await Promise.all(harness.clusterStore.members.map(async (member, i) => [
    member.regionId,
    await fetch(`${harness.clusterStore.urls()[i]}/health`, { signal: AbortSignal.timeout(2000) })
      .then(async (response) => ((await response.json()) as { health?: string }).health === "true", () => false),
  ])));
}

/** Every member with a leader and every node seeing the others: the cluster as it was before the last cut. */
async function settled() {
  await waitFor(async () => {
    if (!Object.values(await memberHealth()).every(Boolean)) return false;
    const seen = await Promise.all(harness.nodes.map((node) => liveNodes(node).catch((): string[] => [])));
    return seen.every((ids) => ids.length === harness.nodes.length);
  }, 30_000, "every etcd member with a leader, every node seeing every other");
}

/** The room's directory entry as the members have it (undefined: none), read again while a read fails. */
async function entryOf(roomId: string): Promise<DirectoryEntry | undefined> {
  const deadline = Date.now() + 20_000;
  let renewAt = Date.now() + 5000;
  for (;;) {
    try {
      return await directory.get(roomId);
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`no read of ${roomId}'s directory entry for 20 s (members' health ${JSON.stringify(await memberHealth())}): ${(error as Error).message}`);
      if (Date.now() > renewAt) {
        // This test's own client can stay stuck on a member a heal left behind: a fresh one, every 5 s of failures.
        renewAt = Date.now() + 5000;
        const stale = observer;
        observer = new EtcdSession({ endpoints: harness.clusterStore.urls(), callTimeoutMs: 2000, defaultTtlMs: TTL_MS, prefix: clusterPrefix(harness.clusterName) });
        directory = new EtcdRoomDirectory(observer, 2000);
        void stale.close().catch(() => {});
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/**
 * The room once the dust has settled: one node holds a copy (the others' copies closed
 * or dropped), the directory names it, the live copy holds the entry's token (a client
 * joining there changes the entry's count, which only the current token may write), and
 * every session is there, taking inputs.
 */
async function expectOneLiveCopy(roomId: string, expectedNodeId: string, sessions: ReadonlyArray<{ city: LocatedClient; session: RoomSession }>) {
  let holders: string[] = [];
  const live = await waitFor(async () => {
    const holding = await Promise.all(harness.nodes.map(async (node) => (await handoffHistory(node, roomId)).status === 200));
    holders = harness.nodes.filter((_, i) => holding[i]).map((node) => node.nodeId);
    return holding.filter(Boolean).length === 1 && harness.nodes[holding.indexOf(true)];
  }, 30_000, `${roomId} open on one node only`).catch((error: Error) => {
    throw new Error(`${error.message} (open on: ${holders.join(", ") || "none"})\n${clusterLogs(harness.nodes)}`);
  });
  let nodeId = expectedNodeId;
  if (live.nodeId !== expectedNodeId) {
    // Only a failover may have put it elsewhere: its node lost its etcd lease behind the cut
    // (its client's stream went through the cut link), and the quorum gave the room away.
    const { body } = await handoffHistory(live, roomId);
    expect(body.handoffs?.at(-1)?.reason, `${roomId} on ${live.nodeId}, not ${expectedNodeId}`).toBe("failover");
    nodeId = live.nodeId;
  }
  expect((await entryOf(roomId))?.nodeId).toBe(nodeId);

  const onNode = ({ city, session }: { city: LocatedClient; session: RoomSession }) => new URL(session.room.connection.url!).port === String(city.proxyFor(nodeId).port);
  // (After a failover its sessions find it by themselves: they may still be on their way.)
  await waitFor(() => sessions.every(onNode), 15_000, `every session on ${nodeId}`);
  const city = sessions[0]!.city;
  const late = new InputStream(await city.client(await testToken(harness.clusterName, "visitor")).joinById(roomId).catch((error) => {
    throw new Error(`a late joiner of ${roomId} was refused: ${JSON.stringify({ code: error.code, message: error.message, data: error.data })}`);
  }));
  expect(onNode({ city, session: late.session })).toBe(true);
  await waitFor(async () => {
    const entry = await directory.get(roomId).catch(() => undefined);
    return entry?.nodeId === nodeId && entry.ccu === sessions.length + 1;
  }, 15_000, `${roomId}'s entry to count the late joiner (written under the live copy's token)`);
  await waitFor(() => late.applied() >= 3, 15_000, "the late joiner's inputs applied");
  await late.stop();
  expect(late.notOnce()).toEqual([]);
  await late.session.leave();
}

/** What every stream saw: each input once, nothing failing for another reason than a coded refusal. */
async function expectEachInputOnce(of: readonly InputStream[]) {
  await Promise.all(of.map((stream) => stream.stop()));
  console.log(JSON.stringify({ streams: of.map((stream) => ({ sent: stream.sent, applied: stream.applied(), refused: stream.refusals, ended: stream.endedWith.length })) }));
  for (const stream of of) {
    // On a failure, what each node said about ownership and moves (a rare failure seen in CI left nothing else to go on).
    if (stream.notOnce().length) console.log(clusterLogs(harness.nodes, 40));
    expect(stream.failures, stream.session.sessionId).toEqual([]);
    expect(stream.notOnce(), stream.session.sessionId).toEqual([]);
  }
}

describe("a room moving from Tokyo to Osaka while the link between them is cut", () => {
  /**
   * Opens `name` in Tokyo with its streams, hands it to Osaka over a slowed route, cuts
   * the link once `cutWhen` says, heals it once the handoff has ended; its record.
   */
  async function moveUnderPartition(name: string, cutWhen: (roomId: string) => Promise<boolean>) {
    await settled();
    const city = await harness.locate(SOURCE);
    const tokyo = harness.region(SOURCE).nodes[0]!;
    const moving = await joinStreams(city, SOURCE, name);
    const roomId = moving[0]!.session.roomId;
    await waitFor(() => moving.every((stream) => stream.applied() >= 5), 15_000, "inputs applied before the move");
    const before = await inputCounters(harness.nodes);

    const route = harness.route(SOURCE, harness.region(TARGET).nodes[0]!.nodeId);
    route.setDelay(SLOW_ROUTE_MS);
    const link = harness.link(SOURCE, TARGET);
    let answer: { status: number; body: any };
    try {
      let ended = false;
      const attempt = adminHandoff(tokyo, roomId, TARGET).finally(() => { ended = true; });
      await waitFor(async () => ended || await cutWhen(roomId), 30_000, "the moment to cut the link", 10);
      if (ended) throw new Error(`the handoff ended before the cut: ${JSON.stringify(await attempt)}`);
      link.blackhole(true);
      answer = await attempt;
    } finally {
      link.blackhole(false);
      route.setDelay(harness.topology.rttMs(SOURCE, TARGET) / 2);
    }
    const record = answer.body.record ?? answer.body;
    console.log(JSON.stringify({ roomId, outcome: record.outcome, transitions: record.transitions?.map((t: { state: string; ms: number }) => `${t.state}@${t.ms}`).join(" "), error: record.error }));
    // The dust settles: the etcd clients that gave up on members behind the cut try them again.
    await settled();
    return { city, moving, roomId, record, status: answer.status, before };
  }

  it("cut before the Switch: the handoff rolls back, the room goes on in Tokyo, every input applied once", { timeout: 120_000 }, async () => {
    // Cut once the room is frozen: the Transfer's call to Osaka is then on the route, and never arrives.
    const { city, moving, roomId, record, status, before } = await moveUnderPartition("cut-before-switch", async (roomId) => {
      const history = await handoffHistory(harness.region(SOURCE).nodes[0]!, roomId);
      return history.body.handoffs?.at(-1)?.transitions.some((t: { state: string }) => t.state === "freeze");
    });
    expect(status, JSON.stringify(record)).toBe(502);
    expect(record.outcome).toBe("aborted");
    expect(record.transitions.map((t: { state: string }) => t.state)).not.toContain("switch");

    await expectEachInputOnce(moving);
    const after = await inputCounters(harness.nodes);
    await expectOneLiveCopy(roomId, harness.region(SOURCE).nodes[0]!.nodeId, moving.map((stream) => ({ city, session: stream.session })));
    // A number a room never received is one it refused (and the stream sent that input again).
    expect(after.gaps - before.gaps).toBeLessThanOrEqual(moving.reduce((sum, stream) => sum + stream.refusals, 0));
    await Promise.all(moving.map((stream) => stream.session.leave()));
  });

  it("cut after Osaka switched, before its answer reached Tokyo: the directory tells Tokyo where the room goes on, every input applied once", { timeout: 120_000 }, async () => {
    const osaka = harness.region(TARGET).nodes[0]!;
    const osakaLeaseLost = (await ownershipEvents(osaka)).lease_lost;
    // Cut as soon as the directory names Osaka: its answer to the Switch is then still on the slowed route.
    const { city, moving, roomId, record, status, before } = await moveUnderPartition("cut-after-switch", async (roomId) => (await directory.get(roomId).catch(() => undefined))?.nodeId === osaka.nodeId);
    let liveOn = osaka.nodeId;
    if (status !== 200) {
      // The one other safe ending: Osaka's etcd lease lapsed behind the cut (its client's stream
      // went through the cut link, or its member was cut from the leader), and the claim it had
      // taken vanished with it before Tokyo asked the directory. A room claimed by no one was
      // switched nowhere: Tokyo took it back, and Osaka's copy never took a client's input.
      expect(record, `${JSON.stringify(record)}\n${clusterLogs(harness.nodes)}`).toMatchObject({ outcome: "aborted", error: "the target did not take the room's claim" });
      expect((await ownershipEvents(osaka)).lease_lost, "Osaka's lease lost behind the cut").toBeGreaterThan(osakaLeaseLost);
      liveOn = harness.region(SOURCE).nodes[0]!.nodeId;
    } else {
      expect(record).toMatchObject({ outcome: "complete", to: { regionId: TARGET, nodeId: osaka.nodeId } });
    }

    await expectEachInputOnce(moving);
    const after = await inputCounters(harness.nodes);
    await expectOneLiveCopy(roomId, liveOn, moving.map((stream) => ({ city, session: stream.session })));
    expect(after.gaps - before.gaps).toBeLessThanOrEqual(moving.reduce((sum, stream) => sum + stream.refusals, 0));
    await Promise.all(moving.map((stream) => stream.session.leave()));
  });
});

describe("a region cut off from the etcd quorum", () => {
  it("its room refuses inputs (NOT_ROOM_OWNER) instead of running beside the copy the quorum's side opens; at the heal it closes and its sessions resume on that copy or join it again", { timeout: 150_000 }, async () => {
    await settled();
    const sapporo = harness.region(THIRD).nodes[0]!;
    const tokyo = harness.region(SOURCE).nodes[0]!;
    const sapporoCity = await harness.locate(THIRD);
    const sapporoPort = sapporoCity.proxyFor(sapporo.nodeId).port;
    const cutOff = await joinStreams(sapporoCity, THIRD, "cut-off");
    const roomId = cutOff[0]!.session.roomId;
    const sessionIds = cutOff.map((stream) => stream.session.sessionId);
    await waitFor(() => cutOff.every((stream) => stream.applied() >= 5), 15_000, "inputs applied in Sapporo");
    expect((await entryOf(roomId))?.nodeId).toBe(sapporo.nodeId);
    const leaveCodes: number[] = [];
    const resumedOn: string[] = [];
    for (const stream of cutOff) {
      stream.session.on("leave", ({ code }) => leaveCodes.push(code));
      stream.session.on("handoff", ({ toRegionId, sessionId }) => resumedOn.push(`${sessionId}@${toRegionId}`));
    }

    harness.partition(THIRD, SOURCE);
    harness.partition(THIRD, TARGET);
    const tokyoCity = await harness.locate(SOURCE);
    let tokyoStream: InputStream;
    let appliedWhenFenced: number[];
    let holder: string;
    let restored: boolean;
    try {
      // Sapporo cannot confirm its lease: its room refuses, coded, and runs no input.
      await waitFor(() => cutOff.every((stream) => stream.refusals > 0), 20_000, "Sapporo's room refusing its clients' inputs");
      appliedWhenFenced = cutOff.map((stream) => stream.appliedVia(sapporoPort));
      // The quorum's side gets the room one of two ways, whichever comes first: Sapporo's
      // node, silent, is taken as dead and a failover restores the room from the snapshot
      // Sapporo replicated to Tokyo (its sessions parked there); or Sapporo's lease expires,
      // the entry with it, and the next join opens the room afresh.
      await waitFor(async () => (await entryOf(roomId))?.nodeId !== sapporo.nodeId, 20_000, `${roomId} no longer Sapporo's in the directory`);
      const tokyoClient = tokyoCity.client(await testToken(harness.clusterName, "host", "cut-off-tokyo"));
      tokyoStream = new InputStream(await waitFor(
        () => tokyoClient.joinOrCreate("session", { roomId: "cut-off", rttHints: { [SOURCE]: 1, [TARGET]: 100, [THIRD]: 100 } }).catch(() => undefined),
        20_000, `${roomId} open on the quorum's side`, 250,
      ));
      holder = (await entryOf(roomId))!.nodeId;
      expect(holder).not.toBe(sapporo.nodeId);
      restored = (await handoffHistory(harness.node(holder), roomId)).body.handoffs?.at(-1)?.reason === "failover";
      if (!restored) expect(holder, "a room opened afresh is opened where the joiner asked").toBe(tokyo.nodeId);
      console.log(`Sapporo's room on the quorum's side: ${restored ? "restored by a failover" : "opened afresh after its lease expired"}, on ${holder}`);
      await waitFor(() => tokyoStream.applied() >= 5, 15_000, "the quorum's copy taking inputs");
      // Two copies, one taking inputs: Sapporo's still refuses every one.
      const refusedBefore = cutOff.map((stream) => stream.refusals);
      await waitFor(() => cutOff.every((stream, i) => stream.refusals > refusedBefore[i]!), 10_000, "Sapporo's copy still refusing");
      expect(cutOff.map((stream) => stream.appliedVia(sapporoPort))).toEqual(appliedWhenFenced);
    } finally {
      harness.heal(THIRD, SOURCE);
      harness.heal(THIRD, TARGET);
    }

    // Sapporo's node gets a fresh lease, finds the room held on the quorum's side, and closes
    // its copy (NOT_ROOM_OWNER): each session resumes there where the room kept its seat (a
    // failover's restore, within handoff.seatSeconds), and otherwise ends, ROOM_MOVED: join again.
    await waitFor(() => leaveCodes.length + resumedOn.length === cutOff.length, 30_000, "Sapporo's copy closing, each of its sessions resumed or ended");
    expect(leaveCodes.every((code) => code === ErrorCode.ROOM_MOVED), JSON.stringify(leaveCodes)).toBe(true);
    // A resumed session keeps its id, in the holder's region.
    expect(resumedOn.every((at) => sessionIds.includes(at.split("@")[0]!) && at.endsWith(`@${harness.node(holder!).regionId}`)), resumedOn.join()).toBe(true);
    if (!restored!) expect(resumedOn).toEqual([]); // no seat to resume in a room opened afresh
    console.log(`at the heal: ${resumedOn.length} of Sapporo's sessions resumed on ${holder!}, ${leaveCodes.length} joined again`);
    await expectEachInputOnce(cutOff);
    // Not one input more on Sapporo's copy, before or after the heal: the quorum's side had the room.
    expect(cutOff.map((stream) => stream.appliedVia(sapporoPort))).toEqual(appliedWhenFenced!);
    const resumed = cutOff.filter((stream) => !stream.session.closed);
    const rejoined = await Promise.all(cutOff.filter((stream) => stream.session.closed).map(async (_, i) => sapporoCity.client(await testToken(harness.clusterName, "host", `cut-off-again-${i}`)).joinById(roomId)));
    const onLiveCopy = [...resumed.map((stream) => stream.session), ...rejoined].map((session) => ({ city: sapporoCity, session }));
    await expectOneLiveCopy(roomId, holder!, [...onLiveCopy, { city: tokyoCity, session: tokyoStream!.session }]);
    await expectEachInputOnce([tokyoStream!]);
    await Promise.all([tokyoStream!.session, ...resumed.map((stream) => stream.session), ...rejoined].map((session) => session.leave()));
  });
});
