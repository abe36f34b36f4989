/**
 * The hall's analytics in a real Redis (RedisPresence, as a region node uses it): two
 * zones' deltas summed, exact unique counts over thousands of visitors, and a quiet
 * second's write that stays a couple of commands however many visitors came before.
 */
import { afterAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { RedisPresence } from "@colyseus/redis-presence";
import { Redis } from "ioredis";
import { ExpoAnalytics, type AnalyticsOptions } from "../../rooms/expo/Analytics.ts";
import { AnalyticsStore } from "../../rooms/expo/AnalyticsStore.ts";
import { testRedisUrl } from "../fixtures/redis.ts";

const redisUrl = testRedisUrl(1);
const hallId = `analytics-${randomUUID().slice(0, 8)}`;
const presence = new RedisPresence(redisUrl);
const T = 1_700_000_000_000;

afterAll(async () => {
  const redis = new Redis(redisUrl);
  const keys = await redis.keys(`expo:${hallId}:*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
  presence.shutdown();
});

/** The presence, counting the calls made of it. */
function counted() {
  const counts = { calls: 0 };
  const proxy = new Proxy(presence, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver);
      return typeof value === "function" ? (...args: unknown[]) => { counts.calls++; return value.apply(target, args); } : value;
    },
  });
  return { proxy, counts };
}

describe("AnalyticsStore on Redis", () => {
  it("sums two zones exactly, and a quiet second after 5,000 visitors costs what it cost after none", async () => {
    const options: AnalyticsOptions = { hallId, booths: ["acme", "bolt"], width: 200, height: 100, cellSize: 5 };
    const { proxy, counts } = counted();
    const store = new AnalyticsStore(proxy, options);
    await store.startZone("west");
    await store.startZone("east");
    const west = new ExpoAnalytics(options, T);
    const east = new ExpoAnalytics(options, T + 1000);

    west.visitorJoined("first", T);
    west.samplePresence(10, 10, 1);
    await store.flush("west", west.takeDelta());
    west.samplePresence(10, 10, 1);
    counts.calls = 0;
    await store.flush("west", west.takeDelta());
    const quietBefore = counts.calls;

    for (let i = 0; i < 5000; i++) {
      const zone = i % 2 ? east : west;
      zone.visitorJoined(`v${i}`, T + 2000);
      zone.enterBooth(`v${i}`, i % 2 ? "bolt" : "acme", T + 2000);
      zone.leaveBooth(`v${i}`, i % 2 ? "bolt" : "acme", T + 3000);
      zone.visitorLeft(`v${i}`, T + 4000);
    }
    for (let i = 0; i < 1000; i++) east.visitorJoined(`v${2 * i}`, T + 5000); // 1,000 of west's come back, to east
    await Promise.all([store.flush("west", west.takeDelta()), store.flush("east", east.takeDelta())]);
    west.samplePresence(10, 10, 1);
    counts.calls = 0;
    await store.flush("west", west.takeDelta());
    expect(counts.calls).toBe(quietBefore);

    const report = await store.report(["west", "east"], T + 6000);
    expect(report.fromMs).toBe(T);
    expect([report.uniqueVisitors, report.currentVisitors]).toEqual([5001, 1001]);
    expect(report.booths).toEqual([
      { boothId: "acme", visits: 2500, uniqueVisitors: 2500, dwellTotalMs: 2_500_000, dwellMeanMs: 1000, currentVisitors: 0 },
      { boothId: "bolt", visits: 2500, uniqueVisitors: 2500, dwellTotalMs: 2_500_000, dwellMeanMs: 1000, currentVisitors: 0 },
    ]);
    expect(report.heatmap.visitorSeconds[2 * report.heatmap.cols + 2]).toBe(3);
  });
});
