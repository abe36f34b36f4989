/**
 * A hall split into two zones served by two region nodes (one region, real Redis): a
 * visitor walks across the border and is handed from one node to the other without the
 * application seeing a reconnect, without losing a position update, and with the
 * neighbours on both sides in view the whole way; and every frame the zones send reaches
 * a visitor's session, however often it crosses.
 */
import "../../server/polyfills.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { Redis } from "ioredis";
import { ExpoSession } from "../../client-sdk/ExpoSession.ts";
import { TsunagiClient } from "../../client-sdk/TsunagiClient.ts";
import { flushRedisDb, repoRoot, startNode, waitFor, type NodeProcess } from "../fixtures/processes.ts";
import { testIssuer, testToken } from "../fixtures/tokens.ts";
import { ExpoLog, joinExpo, joined, leaveAll, openHall } from "../fixtures/expo.ts";
import { testRedisUrl } from "../fixtures/redis.ts";

const redisUrl = testRedisUrl(12);
const clusterName = `zones-${randomUUID().slice(0, 8)}`;
const HALL = `zoned-${randomUUID().slice(0, 6)}`;
const layout = { ...JSON.parse(readFileSync(path.join(repoRoot, "deploy/halls/zoned-hall.json"), "utf8")), hallId: HALL };
const nodes: NodeProcess[] = [];
let opened: { zones: Array<{ zoneId: string; roomId: string; nodeId: string }> };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Records, per observer, every state of `visitorId` it was shown and whether it ever went out of view. */
function track(observer: ExpoSession, visitorId: number) {
  const seen: number[] = [];
  let goneCount = 0;
  observer.on("neighbours", ({ appeared, moved, gone }) => {
    for (const n of [...appeared, ...moved]) if (n.visitorId === visitorId) seen.push(n.seq);
    if (gone.includes(visitorId)) goneCount++;
  });
  return { seen, gone: () => goneCount };
}

/** Walks `session` to (x, y) in one move and waits for the zone it lands in. */
async function placeIn(session: ExpoSession, x: number, y: number, zoneId: string) {
  session.move(x, y, 0);
  await waitFor(() => session.zoneId === zoneId, 10_000, `visitor ${session.visitorId} in zone ${zoneId} (is in ${session.zoneId})`);
}

beforeAll(async () => {
  await flushRedisDb(redisUrl);
  for (const name of ["one", "two"]) {
    nodes.push(await startNode({ redisUrl, clusterName, regionId: "zone-test", nodeId: `zone-node-${name}`, extraArgs: ["--limits-max-matchmake-per-second", "1000"] }));
  }
  const response = await openHall(nodes[0], layout);
  expect(response.status, JSON.stringify(response.body)).toBe(201);
  opened = response.body;
}, 60_000);

afterAll(async () => {
  await leaveAll();
  await Promise.all(nodes.map((node) => node.stop()));
  const redis = new Redis(redisUrl);
  try { await redis.flushdb(); } finally { redis.disconnect(); }
});

describe("a hall over two nodes", () => {
  it("puts each zone on its own node; the entrance zone answers to the hall's id", () => {
    expect(opened.zones.map((z) => z.zoneId).sort()).toEqual(["east", "west"]);
    expect(new Set(opened.zones.map((z) => z.nodeId)).size).toBe(2);
    expect(opened.zones.find((z) => z.zoneId === "west")!.roomId).toBe(HALL); // the spawn point is in the west
    expect(opened.zones.find((z) => z.zoneId === "east")!.roomId).toBe(`${HALL}--east`);
  });

  it("a visitor walking across the border is handed over with no lost update, and neighbours across the border stay in view", async () => {
    const west = await joinExpo(node(0), HALL, { name: "West watcher" });
    const east = await joinExpo(node(0), HALL, { name: "East watcher" });
    const walker = await joinExpo(node(0), HALL, { name: "Walker" });
    const walkerLog = new ExpoLog(walker);
    await placeIn(west, 95, 50, "west");
    await placeIn(east, 105, 50, "east"); // handed to the east zone, on the other node
    expect(east.roomId).toBe(`${HALL}--east`);
    expect(west.roomId).toBe(HALL);
    // the two watchers see each other across the border (10 m apart)
    await waitFor(() => west.neighbours.has(east.visitorId) && east.neighbours.has(west.visitorId), 5000, "watchers see each other across the border");

    walker.move(88, 50, 0);
    await waitFor(() => west.neighbours.get(walker.visitorId)?.x === 88 && east.neighbours.get(walker.visitorId)?.x === 88, 5000, "both watchers see the walker");
    const fromWest = track(west, walker.visitorId);
    const fromEast = track(east, walker.visitorId);
    const firstSeq = walkerSeq(walker) + 1; // the next move the walker will send
    await waitFor(() => walker.areas.has("aisle"), 5000, "the walker in the aisle");
    const areaEventsBefore = walkerLog.of("areaEntered").length + walkerLog.of("areaLeft").length;
    const visitorId = walker.visitorId;

    // 24 steps of 1 m from x = 89 (west) to x = 112 (east). A frame shows each
    // neighbour's newest move only, so each step waits until the previous one has been
    // shown on both sides (a loaded machine could otherwise land two moves in one tick);
    // steps still go out while the handoff is under way.
    for (let x = 89; x <= 112; x++) {
      const seq = walker.move(x, 50, 0);
      await sleep(100);
      await waitFor(() => walker.ackSeq >= seq && fromWest.seen.at(-1) === seq && fromEast.seen.at(-1) === seq, 10_000,
        `move ${seq} (x = ${x}) acknowledged (ack ${walker.ackSeq}) and shown to both watchers (west saw ${fromWest.seen.at(-1)}, east ${fromEast.seen.at(-1)})`);
    }
    const lastSeq = walkerSeq(walker);
    await waitFor(() => walker.ackSeq === lastSeq, 5000, `the walker's last move (${lastSeq}) acknowledged (ack ${walker.ackSeq})`);
    await waitFor(() => fromWest.seen.at(-1) === lastSeq && fromEast.seen.at(-1) === lastSeq, 5000, "both watchers saw the last move");

    // handed over, no visible reconnect: same visitor, new zone, one zone event, no leave or error
    expect(walker.visitorId).toBe(visitorId);
    expect(walker.hall.hallId).toBe(HALL); // kept from the first welcome (a handoff's welcome omits the hall)
    expect(walker.hall.zones.map((z) => z.zoneId).sort()).toEqual(["east", "west"]);
    expect(walker.zoneId).toBe("east");
    expect(walker.roomId).toBe(`${HALL}--east`);
    expect(walkerLog.of("zone")).toEqual([{ zoneId: "east", roomId: `${HALL}--east` }]);
    expect(walkerLog.of("leave")).toEqual([]);
    expect(walkerLog.errors()).toEqual([]);
    // the aisle spans both zones: the walker was in it all along, and the new zone does not announce it again
    expect(walker.areas.has("aisle")).toBe(true);
    expect(walkerLog.of("areaEntered").length + walkerLog.of("areaLeft").length).toBe(areaEventsBefore);

    // no position update lost: every move was shown to both watchers, once each, in order
    const expected = Array.from({ length: lastSeq - firstSeq + 1 }, (_, i) => firstSeq + i);
    expect(fromWest.seen).toEqual(expected);
    expect(fromEast.seen).toEqual(expected);
    expect(fromWest.gone()).toBe(0);
    expect(fromEast.gone()).toBe(0);
    // and the walker, now in the east, still sees the west watcher across the border
    await waitFor(() => walker.neighbours.has(west.visitorId) && walker.neighbours.has(east.visitorId), 5000, "walker sees both watchers");
    expect(walker.neighbours.get(west.visitorId)).toMatchObject({ x: 95, y: 50, name: "West watcher" });
  }, 60_000);

  it("every frame the zones send a visitor pacing across the border reaches its session: none goes out after it switched zones", async () => {
    const westJiggler = await joinExpo(node(0), HALL, { name: "West jiggler" });
    const eastJiggler = await joinExpo(node(0), HALL, { name: "East jiggler" });
    const pacer = await joinExpo(node(0), HALL, { name: "Pacer" });
    await placeIn(westJiggler, 96, 20, "west");
    await placeIn(eastJiggler, 104, 20, "east");
    await placeIn(pacer, 97, 20, "west");
    const before = await settledFrameCounts();
    // Neighbours on both sides move all the time, so each zone has a frame for the pacer every tick.
    const jiggling = setInterval(() => {
      westJiggler.move(95 + Math.random(), 20, 0);
      eastJiggler.move(104 + Math.random(), 20, 0);
    }, 70);
    // A busy client (a browser tab with other work to do) reads its sockets in bursts: a
    // zone's welcome and the old zone's next frames then arrive in one burst.
    const busy = setInterval(() => { const until = performance.now() + 30; while (performance.now() < until); }, 45);
    try {
      for (let crossing = 0; crossing < 12; crossing++) {
        if (crossing % 2 === 0) await placeIn(pacer, 103, 20, "east");
        else await placeIn(pacer, 97, 20, "west");
      }
    } finally {
      clearInterval(jiggling);
      clearInterval(busy);
    }
    expect(pacer.stats.handoffs).toBe(12);
    const after = await settledFrameCounts();
    // Before the zones told each other of arrivals, the old zone's frames after the client's switch were sent unheard.
    expect(after.received - before.received).toBe(after.sent - before.sent);
    expect(after.sent - before.sent).toBeGreaterThan(12);
  }, 90_000);

  it("a token scoped to the hall admits its holder to every zone; one scoped elsewhere is refused", async () => {
    const issuer = testIssuer(clusterName);
    const scoped = new TsunagiClient({ url: node(0).httpUrl, token: await issuer.issue({ sub: "scoped", role: "visitor", rooms: [HALL] }) });
    const visitor = await ExpoSession.join(scoped, HALL);
    try {
      await placeIn(visitor, 160, 30, "east"); // the east zone's room id is not the hall's
      expect(visitor.roomId).toBe(`${HALL}--east`);
    } finally {
      await visitor.leave();
    }
    const elsewhere = new TsunagiClient({ url: node(0).httpUrl, token: await issuer.issue({ sub: "other", role: "visitor", rooms: ["another-hall"] }) });
    await expect(ExpoSession.join(elsewhere, HALL)).rejects.toMatchObject({ codeName: "FORBIDDEN" });
  }, 30_000);

  it("host tools and chat reach visitors in every zone", async () => {
    const host = await joinExpo(node(0), HALL, { role: "host", name: "Host" });
    const farEast = await joinExpo(node(0), HALL, { sub: "far-east" });
    const log = new ExpoLog(farEast);
    await placeIn(farEast, 180, 10, "east");
    const result = await host.host!.announce("Closing in ten minutes");
    expect(result.delivered).toBeGreaterThanOrEqual(1); // those in the host's own zone
    await log.waitFor("announcement", (a) => a.text === "Closing in ten minutes", "hall announcement in the east zone");
    const direct = await host.chat({ kind: "direct", target: farEast.visitorId }, "can you hear me over there?");
    await log.waitFor("chat", (m) => m.messageId === direct.messageId, "direct chat across zones");
    await host.host!.mute(farEast.visitorId);
    await log.waitFor("moderation", () => true, "mute notice across zones");
    await expect(farEast.chat({ kind: "hall" }, "hello?")).rejects.toMatchObject({ codeName: "MUTED" });
    await host.host!.ban({ visitorId: farEast.visitorId }, "test ban");
    expect((await log.waitFor("leave", () => true, "ban across zones")).error?.codeName).toBe("BANNED");
    await expect(joinExpo(node(1), HALL, { sub: "far-east" })).rejects.toMatchObject({ codeName: "BANNED" });
  }, 30_000);

  it("analytics cover every zone", async () => {
    await sleep(1200); // zones publish their figures every second
    const response = await fetch(`${node(1).httpUrl}/expo/halls/${HALL}/analytics`, { headers: { authorization: `Bearer ${await testToken(clusterName, "host")}` } });
    expect(response.status).toBe(200);
    const report = await response.json();
    expect(report.booths.map((b: { boothId: string }) => b.boothId).sort()).toEqual(["east-1", "east-2", "west-1", "west-2"]);
    expect(report.uniqueVisitors).toBeGreaterThanOrEqual(5);
    const heat = report.heatmap.visitorSeconds as number[];
    const cols = report.heatmap.cols as number;
    const eastSeconds = heat.filter((_, i) => i % cols >= cols / 2).reduce((a, b) => a + b, 0);
    const westSeconds = heat.filter((_, i) => i % cols < cols / 2).reduce((a, b) => a + b, 0);
    expect(eastSeconds).toBeGreaterThan(0);
    expect(westSeconds).toBeGreaterThan(0);
  }, 30_000);

  it("closing the hall closes every zone on every node, and its figures stay exportable", async () => {
    const east = await joinExpo(node(0), HALL, { sub: "closing-east" });
    await placeIn(east, 150, 20, "east");
    const log = new ExpoLog(east);
    const host = `Bearer ${await testToken(clusterName, "host")}`;
    const response = await fetch(`${node(1).httpUrl}/expo/halls/${HALL}`, { method: "DELETE", headers: { authorization: host } });
    expect(response.status).toBe(200);
    expect((await response.json()).closed.sort()).toEqual([HALL, `${HALL}--east`].sort());
    expect((await log.waitFor("leave", () => true, "east visitor's leave")).error?.codeName).toBe("HALL_CLOSED");
    const report = await (await fetch(`${node(0).httpUrl}/expo/halls/${HALL}/analytics`, { headers: { authorization: host } })).json();
    expect(report.currentVisitors).toBe(0);
    expect(report.uniqueVisitors).toBeGreaterThanOrEqual(6);
  }, 30_000);
});

function node(i: number): NodeProcess {
  return nodes[i];
}

/** The seq of the walker's newest move (ExpoSession numbers moves 1, 2, 3...). */
function walkerSeq(session: ExpoSession): number {
  return session.stats.movesSent;
}

/** Frames both nodes sent (tsunagi_expo_frames_total) and frames every joined session applied, once neither changes any more. */
async function settledFrameCounts(): Promise<{ sent: number; received: number }> {
  let previous = "";
  let stable = 0;
  const deadline = Date.now() + 20_000;
  for (;;) {
    const sent = (await Promise.all(nodes.map(async (n) => Number((await (await fetch(`${n.httpUrl}/metrics`)).text()).match(/^tsunagi_expo_frames_total (\d+)/m)?.[1] ?? NaN)))).reduce((a, b) => a + b, 0);
    const received = [...joined].reduce((sum, session) => sum + session.stats.frames, 0);
    const now = `${sent}/${received}`;
    stable = now === previous ? stable + 1 : 0;
    previous = now;
    // Handed-off visitors linger in view up to 2 s, then are gone for their watchers: wait past that.
    if (stable >= 6) return { sent, received };
    if (Date.now() > deadline) throw new Error(`frame counts did not settle within 20 s (last ${now})`);
    await sleep(400);
  }
}
