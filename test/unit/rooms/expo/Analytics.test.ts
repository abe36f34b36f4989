/**
 * Expo analytics: a scripted walk with known timestamps (exact visits, uniques, dwell,
 * ongoing visits), the heatmap, two zones' deltas summed in one store, and the CSV
 * tables. Reports are read back from an AnalyticsStore over Colyseus' in-memory presence
 * (embedded mode's). Time is a plain number passed in; nothing here waits.
 */
import { describe, it, expect } from "vitest";
import { LocalPresence } from "@colyseus/core";
import {
  ExpoAnalytics,
  analyticsCsv,
  type AnalyticsOptions,
  type AnalyticsReport,
} from "../../../../rooms/expo/Analytics.ts";
import { AnalyticsStore } from "../../../../rooms/expo/AnalyticsStore.ts";

const T = 1_700_000_000_000; // epoch ms of the walk's start
const s = (seconds: number) => T + seconds * 1000;

const options: AnalyticsOptions = { hallId: "tokyo-expo", booths: ["acme", "bolt", "cafe"], width: 20, height: 10, cellSize: 4 };

/**
 * a joins at 0 s: at acme 0–5 s and 10–12 s (re-entering at 10.5 s while inside).
 * b joins at 1 s: at acme 3–9 s, at bolt 9–10 s, leaves the hall at 10 s (closing bolt).
 * c joins at 11 s: at bolt from 11 s, still there.
 */
/** Each analytics' own store (one zone, "hall"), so that successive reports see what came before. */
const stores = new WeakMap<ExpoAnalytics, AnalyticsStore>();

/** Flushes what changed into the analytics' store and reads the report at `atMs`, as a zone room does. */
async function reportOf(analytics: ExpoAnalytics, atMs: number): Promise<AnalyticsReport> {
  let store = stores.get(analytics);
  if (!store) stores.set(analytics, store = new AnalyticsStore(new LocalPresence(), analytics.options));
  expect(await store.flush("hall", analytics.takeDelta())).toBeUndefined();
  return store.report(["hall"], atMs);
}

function scriptedWalk(): ExpoAnalytics {
  const analytics = new ExpoAnalytics(options, T);
  analytics.visitorJoined("a", s(0));
  analytics.enterBooth("a", "acme", s(0));
  analytics.visitorJoined("b", s(1));
  analytics.enterBooth("b", "acme", s(3));
  analytics.leaveBooth("a", "acme", s(5));
  analytics.leaveBooth("b", "acme", s(9));
  analytics.enterBooth("b", "bolt", s(9));
  analytics.enterBooth("a", "acme", s(10));
  analytics.visitorLeft("b", s(10));
  analytics.enterBooth("a", "acme", s(10.5)); // already inside: not a new visit
  analytics.visitorJoined("c", s(11));
  analytics.enterBooth("c", "bolt", s(11));
  analytics.leaveBooth("a", "acme", s(12));
  analytics.leaveBooth("a", "bolt", s(12)); // never entered: nothing happens
  return analytics;
}

describe("ExpoAnalytics", () => {
  it("counts visits, uniques, dwell and means of the scripted walk, the ongoing visit up to report time", async () => {
    const report = await reportOf(scriptedWalk(), s(14));
    expect(report.hallId).toBe("tokyo-expo");
    expect(report.fromMs).toBe(T);
    expect(report.toMs).toBe(s(14));
    expect(report.uniqueVisitors).toBe(3);
    expect(report.currentVisitors).toBe(2); // a and c; b left
    expect(report.booths).toEqual([
      // a 0–5 (5 s), b 3–9 (6 s), a 10–12 (2 s)
      { boothId: "acme", visits: 3, uniqueVisitors: 2, dwellTotalMs: 13_000, dwellMeanMs: 13_000 / 3, currentVisitors: 0 },
      // b 9–10 (1 s, closed by leaving the hall), c 11–14 (3 s, ongoing)
      { boothId: "bolt", visits: 2, uniqueVisitors: 2, dwellTotalMs: 4000, dwellMeanMs: 2000, currentVisitors: 1 },
      { boothId: "cafe", visits: 0, uniqueVisitors: 0, dwellTotalMs: 0, dwellMeanMs: 0, currentVisitors: 0 },
    ]);
  });

  it("counts ongoing visits up to an earlier report time too", async () => {
    const analytics = new ExpoAnalytics(options, T);
    analytics.visitorJoined("a", s(0));
    analytics.visitorJoined("b", s(1));
    analytics.enterBooth("a", "acme", s(0));
    analytics.enterBooth("b", "acme", s(3));
    const report = await reportOf(analytics, s(4));
    expect(report.booths[0]).toEqual({ boothId: "acme", visits: 2, uniqueVisitors: 2, dwellTotalMs: 5000, dwellMeanMs: 2500, currentVisitors: 2 });
    // The report does not end the visits: later reports keep counting.
    expect((await reportOf(analytics, s(6))).booths[0].dwellTotalMs).toBe(9000);
  });

  it("counts a returning visitor once for the hall", async () => {
    const analytics = new ExpoAnalytics(options, T);
    analytics.visitorJoined("a", s(0));
    analytics.visitorLeft("a", s(1));
    analytics.visitorJoined("a", s(2));
    analytics.visitorJoined("a", s(3));
    const report = await reportOf(analytics, s(4));
    expect([report.uniqueVisitors, report.currentVisitors]).toEqual([1, 1]);
  });

  it("refuses unknown booths with a TypeError naming them", async () => {
    const analytics = new ExpoAnalytics(options, T);
    expect(() => analytics.enterBooth("a", "nope", s(0))).toThrow(TypeError);
    expect(() => analytics.leaveBooth("a", "nope", s(0))).toThrow(/unknown booth "nope" in hall "tokyo-expo"/);
  });

  it("refuses bad options and times", async () => {
    expect(() => new ExpoAnalytics({ ...options, cellSize: 0 }, T)).toThrow(/cellSize must be finite and > 0/);
    expect(() => new ExpoAnalytics({ ...options, booths: ["acme", "acme"] }, T)).toThrow(/booth "acme" is listed twice/);
    expect(() => new ExpoAnalytics({ ...options, width: 10_000, height: 10_000, cellSize: 1 }, T)).toThrow(RangeError);
    const analytics = new ExpoAnalytics(options, T);
    expect(() => analytics.visitorJoined("a", Number.NaN)).toThrow(TypeError);
    expect(() => analytics.samplePresence(1, 1, -1)).toThrow(TypeError);
    expect(() => analytics.samplePresence(Number.POSITIVE_INFINITY, 1, 1)).toThrow(TypeError);
  });

  it("sums presence into heatmap cells: half-open cells, far edges in the last cell, outside points clamped", async () => {
    const analytics = new ExpoAnalytics(options, T); // 20 × 10 m in 4 m cells: 5 cols, 3 rows
    analytics.samplePresence(0, 0, 1);          // (0, 0)
    analytics.samplePresence(8, 0, 1.5);        // (2, 0): x = 8 starts col 2
    analytics.samplePresence(11.9, 3.9, 1.5);   // (2, 0)
    analytics.samplePresence(3.999, 4, 2);      // (0, 1): y = 4 starts row 1
    analytics.samplePresence(20, 10, 0.5);      // (4, 2): the far corner
    analytics.samplePresence(-5, 50, 0.25);     // clamped to (0, 2)
    const { heatmap } = await reportOf(analytics, s(1));
    expect([heatmap.cellSize, heatmap.cols, heatmap.rows]).toEqual([4, 5, 3]);
    expect(heatmap.visitorSeconds).toEqual([
      1, 0, 3, 0, 0,
      2, 0, 0, 0, 0,
      0.25, 0, 0, 0, 0.5,
    ]);
  });
});

describe("AnalyticsStore: the zones of one hall", () => {
  /**
   * Zone west (started at 0 s) holds acme, zone east (started at 2 s) holds bolt.
   * a joins west at 0 s, visits acme 1–4 s, walks east at 6 s: joins east at 6 s, but
   * west has not seen it leave yet when the report is taken (a handoff under way).
   * b joins east at 2 s, visits bolt 3–5 s and 7 s–now; d joins west at 8 s and is at acme 8 s–now.
   */
  async function zones() {
    const west = new ExpoAnalytics(options, T);
    const east = new ExpoAnalytics(options, s(2));
    const store = new AnalyticsStore(new LocalPresence(), options);
    west.visitorJoined("a", s(0));
    west.enterBooth("a", "acme", s(1));
    west.leaveBooth("a", "acme", s(4));
    east.visitorJoined("b", s(2));
    east.enterBooth("b", "bolt", s(3));
    await store.flush("east", east.takeDelta()); // some seconds flushed, some not: the sums are the same
    east.leaveBooth("b", "bolt", s(5));
    east.visitorJoined("a", s(6));
    east.enterBooth("b", "bolt", s(7));
    west.visitorJoined("d", s(8));
    west.enterBooth("d", "acme", s(8));
    west.samplePresence(1, 1, 3);
    west.samplePresence(9, 5, 1);
    east.samplePresence(1, 1, 0.5);
    east.samplePresence(19, 9, 2);
    await store.flush("west", west.takeDelta());
    await store.flush("east", east.takeDelta());
    return { west, east, store };
  }

  it("sums visits and dwell, counts each key once, sums the heatmaps, takes the earliest start", async () => {
    const { store } = await zones();
    const report = await store.report(["west", "east"], s(10));
    expect(report).toEqual({
      hallId: "tokyo-expo",
      fromMs: T,
      toMs: s(10),
      uniqueVisitors: 3,  // a, b, d: a counts once though both zones saw it
      currentVisitors: 3, // a (in both during the handoff), b, d
      booths: [
        // a 1–4 (3 s), d 8–10 (2 s, ongoing)
        { boothId: "acme", visits: 2, uniqueVisitors: 2, dwellTotalMs: 5000, dwellMeanMs: 2500, currentVisitors: 1 },
        // b 3–5 (2 s), b 7–10 (3 s, ongoing)
        { boothId: "bolt", visits: 2, uniqueVisitors: 1, dwellTotalMs: 5000, dwellMeanMs: 2500, currentVisitors: 1 },
        { boothId: "cafe", visits: 0, uniqueVisitors: 0, dwellTotalMs: 0, dwellMeanMs: 0, currentVisitors: 0 },
      ],
      heatmap: {
        cellSize: 4,
        cols: 5,
        rows: 3,
        visitorSeconds: [
          3.5, 0, 0, 0, 0,
          0, 0, 1, 0, 0,
          0, 0, 0, 0, 2,
        ],
      },
    } satisfies AnalyticsReport);
  });

  it("a zone room that opens again forgets who was in it and the visits under way, and keeps the hall's sums and first start", async () => {
    const { west, store } = await zones();
    west.visitorLeft("a", s(9)); // the handoff finished
    await store.flush("west", west.takeDelta());
    await store.startZone("east"); // east's room died and opened again
    const again = new ExpoAnalytics(options, s(20));
    await store.flush("east", again.takeDelta());
    const report = await store.report(["west", "east"], s(21));
    expect([report.fromMs, report.uniqueVisitors, report.currentVisitors]).toEqual([T, 3, 1]); // d only
    expect(report.booths[1]).toMatchObject({ boothId: "bolt", visits: 1, dwellTotalMs: 2000, currentVisitors: 0 }); // the visit under way is gone
  });

  it("of a hall nobody visited is an empty report starting now", async () => {
    const report = await new AnalyticsStore(new LocalPresence(), options).report(["hall"], s(3));
    expect([report.fromMs, report.toMs, report.uniqueVisitors, report.booths.length, report.heatmap.visitorSeconds.length]).toEqual([s(3), s(3), 0, 3, 15]);
  });

  it("refuses a delta of another hall", async () => {
    const store = new AnalyticsStore(new LocalPresence(), options);
    await expect(store.flush("hall", new ExpoAnalytics({ ...options, hallId: "osaka" }, T).takeDelta())).rejects.toThrow(/is not of hall "tokyo-expo"/);
  });

  it("keeps a hall reopened with another heatmap grid apart from the old one", async () => {
    const presence = new LocalPresence();
    const four = new ExpoAnalytics(options, T);
    four.samplePresence(1, 1, 2);
    await new AnalyticsStore(presence, options).flush("hall", four.takeDelta());
    const five = new AnalyticsStore(presence, { ...options, cellSize: 5 });
    const report = await five.report(["hall"], s(1));
    expect([report.heatmap.cols, report.heatmap.rows, report.heatmap.visitorSeconds.every((v) => v === 0)]).toEqual([4, 2, true]);
  });

  it("puts back what could not be stored, and stores it with the next second's", async () => {
    const presence = new LocalPresence();
    const analytics = new ExpoAnalytics(options, T);
    const store = new AnalyticsStore(presence, options);
    analytics.visitorJoined("a", s(0));
    analytics.enterBooth("a", "acme", s(0));
    analytics.leaveBooth("a", "acme", s(2));
    analytics.samplePresence(1, 1, 1);
    const hincrby = presence.hincrby.bind(presence);
    presence.hincrby = () => Promise.reject(new Error("Redis away"));
    const failed = await store.flush("hall", analytics.takeDelta());
    expect(failed).toMatchObject({ booths: [{ boothId: "acme", finishedVisits: 1, finishedDwellMs: 2000 }], heat: [[0, 1]], joined: [], current: [] });
    analytics.putBack(failed!);
    presence.hincrby = hincrby;
    analytics.samplePresence(1, 1, 1);
    expect(await store.flush("hall", analytics.takeDelta())).toBeUndefined();
    const report = await store.report(["hall"], s(3));
    expect([report.uniqueVisitors, report.booths[0].visits, report.booths[0].dwellTotalMs, report.heatmap.visitorSeconds[0]]).toEqual([1, 1, 2000, 2]);
  });
});

describe("analyticsCsv", () => {
  it("writes the booths table", async () => {
    expect(analyticsCsv(await reportOf(scriptedWalk(), s(14)), "booths")).toBe(
      "booth_id,visits,unique_visitors,dwell_total_s,dwell_mean_s,current_visitors\n" +
      "acme,3,2,13.000,4.333,0\n" +
      "bolt,2,2,4.000,2.000,1\n" +
      "cafe,0,0,0.000,0.000,0\n",
    );
  });

  it("writes the heatmap table: non-empty cells only, row-major, south-west corners", async () => {
    const analytics = new ExpoAnalytics(options, T);
    analytics.samplePresence(0, 0, 1);
    analytics.samplePresence(8, 0, 3);
    analytics.samplePresence(3.999, 4, 2);
    analytics.samplePresence(-5, 50, 0.25);
    analytics.samplePresence(20, 10, 0.0005);
    expect(analyticsCsv(await reportOf(analytics, s(1)), "heatmap")).toBe(
      "col,row,x,y,visitor_seconds\n" +
      "0,0,0,0,1.000\n" +
      "2,0,8,0,3.000\n" +
      "0,1,0,4,2.000\n" +
      "0,2,0,8,0.250\n" +
      "4,2,16,8,0.001\n",
    );
  });

  it("writes corners without floating-point noise", async () => {
    const analytics = new ExpoAnalytics({ ...options, width: 0.4, height: 0.1, cellSize: 0.1 }, T);
    analytics.samplePresence(0.3, 0.05, 1.25); // 0.3 / 0.1 is 2.9999999999999996: still column 3
    const report = await reportOf(analytics, s(0));
    expect([report.heatmap.cols, report.heatmap.rows]).toEqual([4, 1]); // 0.4 / 0.1 is 4.000000000000001
    expect(analyticsCsv(report, "heatmap")).toBe("col,row,x,y,visitor_seconds\n3,0,0.3,0,1.250\n");
  });

  it("quotes fields that need it (RFC 4180)", async () => {
    const report = await reportOf(scriptedWalk(), s(14));
    report.booths = [{ ...report.booths[0], boothId: "a,\"b\"\nc" }];
    expect(analyticsCsv(report, "booths")).toBe(
      "booth_id,visits,unique_visitors,dwell_total_s,dwell_mean_s,current_visitors\n" +
      "\"a,\"\"b\"\"\nc\",3,2,13.000,4.333,0\n",
    );
  });

  it("refuses an unknown table", async () => {
    const report = await reportOf(scriptedWalk(), s(14));
    expect(() => analyticsCsv(report, "visits" as never)).toThrow(/unknown table "visits"/);
  });
});
