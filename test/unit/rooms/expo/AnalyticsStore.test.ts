/**
 * The work of a zone's every-second analytics write: it follows what happened in that
 * second, not the visitors the hall has ever seen nor the size of its heatmap (a zone
 * once rewrote its whole snapshot every second: every unique key, every heatmap cell).
 * Counted as the presence calls a flush makes and the bytes it hands them, over
 * Colyseus' in-memory presence (embedded mode's). And the unique counts stay exact.
 */
import { describe, expect, it } from "vitest";
import { LocalPresence } from "@colyseus/core";
import { ExpoAnalytics, type AnalyticsOptions } from "../../../../rooms/expo/Analytics.ts";
import { AnalyticsStore } from "../../../../rooms/expo/AnalyticsStore.ts";
import { prng } from "../../../fixtures/random.ts";

const T = 1_700_000_000_000;

/** A presence that counts the calls made of it and the bytes of their arguments. */
function countingPresence() {
  const presence = new LocalPresence();
  const counts = { calls: 0, bytes: 0 };
  const counted = new Proxy(presence, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        counts.calls++;
        for (const arg of args) counts.bytes += String(arg).length;
        return value.apply(target, args);
      };
    },
  });
  return { presence: counted, counts, reset: () => { counts.calls = 0; counts.bytes = 0; } };
}

/** One zone's second: everyone present is sampled, then the delta is flushed; what that flush cost. */
async function oneSecond(analytics: ExpoAnalytics, store: AnalyticsStore, counting: ReturnType<typeof countingPresence>, present: Array<[number, number]>) {
  for (const [x, y] of present) analytics.samplePresence(x, y, 1);
  counting.reset();
  expect(await store.flush("hall", analytics.takeDelta())).toBeUndefined();
  return { ...counting.counts };
}

describe("AnalyticsStore: the every-second write", () => {
  it("costs the same after 10 or 20,000 unique visitors have come and gone", async () => {
    const options: AnalyticsOptions = { hallId: "big-day", booths: ["acme"], width: 200, height: 120, cellSize: 5 };
    const costs = [];
    for (const seen of [10, 20_000]) {
      const counting = countingPresence();
      const analytics = new ExpoAnalytics(options, T);
      const store = new AnalyticsStore(counting.presence, options);
      for (let i = 0; i < seen; i++) {
        analytics.visitorJoined(`visitor-${i}`, T + i);
        analytics.enterBooth(`visitor-${i}`, "acme", T + i);
        analytics.visitorLeft(`visitor-${i}`, T + i + 1);
      }
      await oneSecond(analytics, store, counting, []); // the second they came and went in: its own work
      analytics.visitorJoined("stays", T + seen + 10);
      await oneSecond(analytics, store, counting, [[50, 50]]);
      costs.push(await oneSecond(analytics, store, counting, [[50, 50]])); // a quiet second later on
      const report = await store.report(["hall"], T + seen + 1000);
      expect([report.uniqueVisitors, report.currentVisitors, report.booths[0].uniqueVisitors, report.booths[0].visits]).toEqual([seen + 1, 1, seen, seen]);
    }
    expect(costs[1]).toEqual(costs[0]);
    expect(costs[0].calls).toBeLessThanOrEqual(2); // one heatmap cell (and no more than one other write)
  });

  it("in a 5,000 × 5,000 m hall (a million heatmap cells) writes only the cells someone stood in", async () => {
    const options: AnalyticsOptions = { hallId: "huge", booths: [], width: 5000, height: 5000, cellSize: 5 };
    const counting = countingPresence();
    const analytics = new ExpoAnalytics(options, T);
    const store = new AnalyticsStore(counting.presence, options);
    const random = prng(7);
    const present: Array<[number, number]> = Array.from({ length: 200 }, () => [random() * 5000, random() * 5000]);
    present.forEach((_, i) => analytics.visitorJoined(`v${i}`, T));
    await oneSecond(analytics, store, counting, present);
    const quiet = await oneSecond(analytics, store, counting, present);
    expect(quiet.calls).toBeLessThanOrEqual(present.length);
    expect(quiet.bytes).toBeLessThan(present.length * 80); // key, cell index and milliseconds per cell
    const report = await store.report(["hall"], T + 2000);
    expect(report.heatmap.visitorSeconds.length).toBe(1_000_000);
    expect(report.heatmap.visitorSeconds.reduce((a, b) => a + b, 0)).toBe(400); // 200 visitors × 2 s
  });

  it("counts the hall's unique visitors exactly over zones that saw some of them both", async () => {
    const options: AnalyticsOptions = { hallId: "two-zones", booths: ["acme"], width: 100, height: 100, cellSize: 5 };
    const store = new AnalyticsStore(new LocalPresence(), options);
    const west = new ExpoAnalytics(options, T);
    const east = new ExpoAnalytics(options, T);
    for (let i = 0; i < 3000; i++) west.visitorJoined(`v${i}`, T);
    for (let i = 2000; i < 5000; i++) east.visitorJoined(`v${i}`, T);
    for (let i = 0; i < 100; i++) west.enterBooth(`v${i}`, "acme", T);
    await store.flush("west", west.takeDelta());
    await store.flush("east", east.takeDelta());
    for (let i = 0; i < 100; i++) west.leaveBooth(`v${i}`, "acme", T + 1000);
    for (let i = 0; i < 100; i++) west.enterBooth(`v${i}`, "acme", T + 2000); // again: visits, not new uniques
    await store.flush("west", west.takeDelta());
    const report = await store.report(["west", "east"], T + 3000);
    expect([report.uniqueVisitors, report.currentVisitors]).toEqual([5000, 5000]);
    expect(report.booths[0]).toMatchObject({ visits: 200, uniqueVisitors: 100, currentVisitors: 100, dwellTotalMs: 200_000 });
  });
});
