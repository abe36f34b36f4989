/**
 * Area of interest at scale: 1,000 bot visitors in one hall on a real node, walking.
 * On sampled ticks, every visitor's view (what its frames up to that tick say) must be
 * exactly the visitors within the interest radius, by a brute-force check over the
 * positions the room held at that tick (known from each visitor's own ack). Then some
 * leave, and they disappear for everyone.
 */
import "../../server/polyfills.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import type { ExpoSession } from "../../client-sdk/ExpoSession.ts";
import type { tsunagi } from "../../proto/index.ts";
import { flushRedisDb, startNode, waitFor, type NodeProcess } from "../fixtures/processes.ts";
import { joinExpo, leaveAll, openHall } from "../fixtures/expo.ts";
import { prng } from "../fixtures/random.ts";
import { testRedisUrl } from "../fixtures/redis.ts";

const redisUrl = testRedisUrl(13);
const clusterName = `aoi-${randomUUID().slice(0, 8)}`;
const HALL = `aoi-${randomUUID().slice(0, 6)}`;
const VISITORS = 1000;
const SIZE = 200;
const RADIUS = 20;
const TICK_MS = 100;
const MOVE_HZ = 2;
const seed = Number(process.env.TSUNAGI_TEST_SEED ?? 20261201);

let node: NodeProcess;

/** One bot: its session, every position it sent by seq, and its view as its frames built it, snapshotted at sampled ticks. */
interface Bot {
  session: ExpoSession;
  positions: Map<number, { x: number; y: number }>;
  view: Map<number, number>; // visitor id -> seq shown
  ack: number;
  lastTick: number;
  snapshots: Map<number, { ack: number; view: Map<number, number> }>;
}

const bots: Bot[] = [];
let sampleTicks: number[] = [];

function applyFrame(bot: Bot, frame: tsunagi.v1.ExpoFrame) {
  // The view as of tick T is the view after the last frame with tick <= T (frames are
  // sent only when something changed): snapshot before the first frame past T.
  for (const t of sampleTicks) if (frame.tick > t && bot.lastTick <= t && !bot.snapshots.has(t)) bot.snapshots.set(t, { ack: bot.ack, view: new Map(bot.view) });
  for (const v of frame.appeared) bot.view.set(v.visitorId ?? 0, v.seq ?? 0);
  for (const v of frame.moved) bot.view.set(v.visitorId ?? 0, v.seq ?? 0);
  for (const id of frame.gone) bot.view.delete(id);
  bot.ack = Math.max(bot.ack, frame.ackSeq);
  bot.lastTick = frame.tick;
  for (const t of sampleTicks) if (frame.tick === t) bot.snapshots.set(t, { ack: bot.ack, view: new Map(bot.view) });
}

beforeAll(async () => {
  await flushRedisDb(redisUrl);
  node = await startNode({
    redisUrl, clusterName,
    // one slice: every frame of a tick is built at the same instant, so one set of positions is the reference for all
    extraArgs: ["--expo-tick-ms", String(TICK_MS), "--expo-tick-slices", "1", "--expo-interest-radius", String(RADIUS), "--limits-max-matchmake-per-second", "10000", "--log-level", "warn"],
  });
  const layout = {
    hallId: HALL, name: "AOI hall", width: SIZE, height: SIZE,
    booths: Array.from({ length: 16 }, (_, i) => ({ id: `b${i}`, name: `Booth ${i}`, exhibitor: "E", area: { x: 10 + (i % 4) * 50, y: 10 + Math.floor(i / 4) * 50, w: 8, h: 8 } })),
  };
  expect((await openHall(node, layout)).status).toBe(201);
}, 60_000);

afterAll(async () => {
  await leaveAll();
  await node?.stop();
  await flushRedisDb(redisUrl);
}, 60_000);

describe("interest management with 1,000 visitors", () => {
  it("every visitor's view on sampled ticks is exactly the visitors within the radius", async () => {
    const random = prng(seed);
    // join with bounded concurrency
    for (let start = 0; start < VISITORS; start += 25) {
      const batch = await Promise.all(Array.from({ length: Math.min(25, VISITORS - start) }, (_, i) => joinExpo(node, HALL, { name: `bot-${start + i}` })));
      for (const session of batch) {
        const bot: Bot = { session, positions: new Map(), view: new Map(), ack: 0, lastTick: 0, snapshots: new Map() };
        session.on("frame", (frame) => applyFrame(bot, frame));
        bots.push(bot);
      }
    }
    expect(new Set(bots.map((b) => b.session.visitorId)).size).toBe(VISITORS);

    // each bot jumps to a random spot, then walks at MOVE_HZ, sends spread over the period
    const moveOf = (bot: Bot, x: number, y: number) => {
      const fx = Math.fround(Math.min(SIZE, Math.max(0, x)));
      const fy = Math.fround(Math.min(SIZE, Math.max(0, y)));
      const seq = bot.session.move(fx, fy, 0);
      bot.positions.set(seq, { x: fx, y: fy });
    };
    for (const bot of bots) moveOf(bot, random() * SIZE, random() * SIZE);
    let walking = true;
    const walkers = bots.map((bot, i) => setTimeout(function step() {
      if (!walking) return;
      const last = bot.positions.get(bot.session.stats.movesSent)!;
      const angle = random() * 2 * Math.PI;
      moveOf(bot, last.x + Math.cos(angle) * 0.7, last.y + Math.sin(angle) * 0.7);
      walkers[i] = setTimeout(step, 1000 / MOVE_HZ);
    }, (i / VISITORS) * (1000 / MOVE_HZ)));

    try {
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const now = Math.max(...bots.map((b) => b.lastTick));
      sampleTicks = [now + 5, now + 12, now + 20];
      const last = sampleTicks.at(-1)!;
      await waitFor(() => bots.every((b) => b.lastTick > last), 30_000, `every bot past tick ${last} (slowest at ${Math.min(...bots.map((b) => b.lastTick))})`);
    } finally {
      walking = false;
      for (const timer of walkers) clearTimeout(timer);
    }

    let checked = 0;
    let neighbourTotal = 0;
    for (const t of sampleTicks) {
      // where the room held every visitor at tick t: the position of its acknowledged move
      const where = new Map<number, { x: number; y: number; seq: number }>();
      for (const bot of bots) {
        const snap = bot.snapshots.get(t);
        expect(snap, `bot ${bot.session.visitorId} has a snapshot of tick ${t}`).toBeDefined();
        const position = bot.positions.get(snap!.ack);
        expect(position, `bot ${bot.session.visitorId}'s move ${snap!.ack}`).toBeDefined();
        where.set(bot.session.visitorId, { ...position!, seq: snap!.ack });
      }
      for (const bot of bots) {
        const me = where.get(bot.session.visitorId)!;
        const expected: string[] = [];
        for (const [id, other] of where) {
          if (id === bot.session.visitorId) continue;
          const dx = other.x - me.x, dy = other.y - me.y;
          if (dx * dx + dy * dy <= RADIUS * RADIUS) expected.push(`${id}@${other.seq}`);
        }
        const actual = [...bot.snapshots.get(t)!.view].map(([id, seq]) => `${id}@${seq}`);
        expect(actual.sort(), `view of ${bot.session.visitorId} at tick ${t}`).toEqual(expected.sort());
        neighbourTotal += expected.length;
        checked++;
      }
    }
    expect(checked).toBe(VISITORS * sampleTicks.length);
    // the hall is dense enough for the check to mean something: about 30 neighbours each
    expect(neighbourTotal / checked).toBeGreaterThan(15);
  }, 180_000);

  it("visitors who leave disappear for everyone", async () => {
    const leaving = bots.slice(0, 50);
    const staying = bots.slice(50);
    const ids = new Set(leaving.map((b) => b.session.visitorId));
    const seenBefore = staying.filter((b) => [...b.session.neighbours.keys()].some((id) => ids.has(id))).length;
    expect(seenBefore).toBeGreaterThan(0);
    await Promise.all(leaving.map((b) => b.session.leave()));
    await waitFor(() => staying.every((b) => ![...b.session.neighbours.keys()].some((id) => ids.has(id))), 10_000, "the leavers gone from every view");
    await waitFor(() => staying.every((b) => ![...b.view.keys()].some((id) => ids.has(id))), 10_000, "the leavers gone from every frame-built view");
  }, 60_000);
});
