/**
 * Expo analytics: a scripted walk with known timestamps (exact visits, uniques, dwell,
 * ongoing visits), the heatmap, merging two zones' snapshots, and the CSV tables. Time is
 * a plain number passed in; nothing here waits.
 */
import { describe, it, expect } from "vitest";
import {
  ExpoAnalytics,
  analyticsCsv,
  mergeSnapshots,
  type AnalyticsOptions,
  type AnalyticsReport,
} from "../../../../rooms/expo/Analytics.ts";

const T = 1_700_000_000_000; // epoch ms of the walk's start
const s = (seconds: number) => T + seconds * 1000;

const options: AnalyticsOptions = { hallId: "tokyo-expo", booths: ["acme", "bolt", "cafe"], width: 20, height: 10, cellSize: 4 };

/**
 * a joins at 0 s: at acme 0–5 s and 10–12 s (re-entering at 10.5 s while inside).
 * b joins at 1 s: at acme 3–9 s, at bolt 9–10 s, leaves the hall at 10 s (closing bolt).
 * c joins at 11 s: at bolt from 11 s, still there.
 */
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
  it("counts visits, uniques, dwell and means of the scripted walk, the ongoing visit up to report time", () => {
    const report = scriptedWalk().report(s(14));
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

  it("counts ongoing visits up to an earlier report time too", () => {
    const analytics = new ExpoAnalytics(options, T);
    analytics.visitorJoined("a", s(0));
    analytics.visitorJoined("b", s(1));
    analytics.enterBooth("a", "acme", s(0));
    analytics.enterBooth("b", "acme", s(3));
    const report = analytics.report(s(4));
    expect(report.booths[0]).toEqual({ boothId: "acme", visits: 2, uniqueVisitors: 2, dwellTotalMs: 5000, dwellMeanMs: 2500, currentVisitors: 2 });
    // The report does not end the visits: later reports keep counting.
    expect(analytics.report(s(6)).booths[0].dwellTotalMs).toBe(9000);
  });

  it("counts a returning visitor once for the hall", () => {
    const analytics = new ExpoAnalytics(options, T);
    analytics.visitorJoined("a", s(0));
    analytics.visitorLeft("a", s(1));
    analytics.visitorJoined("a", s(2));
    analytics.visitorJoined("a", s(3));
    const report = analytics.report(s(4));
    expect([report.uniqueVisitors, report.currentVisitors]).toEqual([1, 1]);
  });

  it("refuses unknown booths with a TypeError naming them", () => {
    const analytics = new ExpoAnalytics(options, T);
    expect(() => analytics.enterBooth("a", "nope", s(0))).toThrow(TypeError);
    expect(() => analytics.leaveBooth("a", "nope", s(0))).toThrow(/unknown booth "nope" in hall "tokyo-expo"/);
  });

  it("refuses bad options and times", () => {
    expect(() => new ExpoAnalytics({ ...options, cellSize: 0 }, T)).toThrow(/cellSize must be finite and > 0/);
    expect(() => new ExpoAnalytics({ ...options, booths: ["acme", "acme"] }, T)).toThrow(/booth "acme" is listed twice/);
    expect(() => new ExpoAnalytics({ ...options, width: 10_000, height: 10_000, cellSize: 1 }, T)).toThrow(RangeError);
    const analytics = new ExpoAnalytics(options, T);
    expect(() => analytics.visitorJoined("a", Number.NaN)).toThrow(TypeError);
    expect(() => analytics.samplePresence(1, 1, -1)).toThrow(TypeError);
    expect(() => analytics.samplePresence(Number.POSITIVE_INFINITY, 1, 1)).toThrow(TypeError);
  });

  it("sums presence into heatmap cells: half-open cells, far edges in the last cell, outside points clamped", () => {
    const analytics = new ExpoAnalytics(options, T); // 20 × 10 m in 4 m cells: 5 cols, 3 rows
    analytics.samplePresence(0, 0, 1);          // (0, 0)
    analytics.samplePresence(8, 0, 1.5);        // (2, 0): x = 8 starts col 2
    analytics.samplePresence(11.9, 3.9, 1.5);   // (2, 0)
    analytics.samplePresence(3.999, 4, 2);      // (0, 1): y = 4 starts row 1
    analytics.samplePresence(20, 10, 0.5);      // (4, 2): the far corner
    analytics.samplePresence(-5, 50, 0.25);     // clamped to (0, 2)
    const { heatmap } = analytics.report(s(1));
    expect([heatmap.cellSize, heatmap.cols, heatmap.rows]).toEqual([4, 5, 3]);
    expect(heatmap.visitorSeconds).toEqual([
      1, 0, 3, 0, 0,
      2, 0, 0, 0, 0,
      0.25, 0, 0, 0, 0.5,
    ]);
  });

  it("takes snapshots that survive JSON and are copies", () => {
    const analytics = scriptedWalk();
    analytics.samplePresence(1, 1, 2);
    const snapshot = analytics.snapshot(s(14));
    expect(JSON.parse(JSON.stringify(snapshot))).toEqual(snapshot);
    expect(snapshot.booths[1]).toEqual({ boothId: "bolt", finishedVisits: 1, finishedDwellMs: 1000, open: [["c", s(11)]], visitors: ["b", "c"] });
    expect(snapshot.current).toEqual(["a", "c"]);
    analytics.samplePresence(1, 1, 5);
    expect(snapshot.heatmap.visitorSeconds[0]).toBe(2);
  });
});

describe("mergeSnapshots", () => {
  /**
   * Zone west (started at 0 s) holds acme, zone east (started at 2 s) holds bolt.
   * a joins west at 0 s, visits acme 1–4 s, walks east at 6 s: joins east at 6 s, but
   * west has not seen it leave yet when the snapshots are taken (a handoff under way).
   * b joins east at 2 s, visits bolt 3–5 s and 7 s–now; d joins west at 8 s and is at acme 8 s–now.
   */
  function zones() {
    const west = new ExpoAnalytics(options, T);
    const east = new ExpoAnalytics(options, s(2));
    west.visitorJoined("a", s(0));
    west.enterBooth("a", "acme", s(1));
    west.leaveBooth("a", "acme", s(4));
    east.visitorJoined("b", s(2));
    east.enterBooth("b", "bolt", s(3));
    east.leaveBooth("b", "bolt", s(5));
    east.visitorJoined("a", s(6));
    east.enterBooth("b", "bolt", s(7));
    west.visitorJoined("d", s(8));
    west.enterBooth("d", "acme", s(8));
    west.samplePresence(1, 1, 3);
    west.samplePresence(9, 5, 1);
    east.samplePresence(1, 1, 0.5);
    east.samplePresence(19, 9, 2);
    return { west, east };
  }

  it("sums visits and dwell, unions the keys, sums the heatmaps, takes the earliest start", () => {
    const { west, east } = zones();
    const report = mergeSnapshots(options, [east.snapshot(s(10)), west.snapshot(s(10))], s(10));
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

  it("merges snapshots that went through JSON (from other nodes) the same way", () => {
    const { west, east } = zones();
    const direct = mergeSnapshots(options, [west.snapshot(s(10)), east.snapshot(s(10))], s(10));
    const viaJson = mergeSnapshots(options, JSON.parse(JSON.stringify([west.snapshot(s(10)), east.snapshot(s(10))])), s(10));
    expect(viaJson).toEqual(direct);
    expect(direct.booths[0].visits).toBe(2);
  });

  it("of one snapshot is that zone's own report", () => {
    const analytics = scriptedWalk();
    expect(mergeSnapshots(options, [analytics.snapshot(s(14))], s(14))).toEqual(analytics.report(s(14)));
  });

  it("of no snapshot is an empty report starting now", () => {
    const report = mergeSnapshots(options, [], s(3));
    expect([report.fromMs, report.toMs, report.uniqueVisitors, report.booths.length, report.heatmap.visitorSeconds.length]).toEqual([s(3), s(3), 0, 3, 15]);
  });

  it("refuses snapshots of another hall, of unknown booths, or with another heatmap grid", () => {
    const snapshot = scriptedWalk().snapshot(s(14));
    expect(() => mergeSnapshots({ ...options, hallId: "osaka" }, [snapshot], s(14))).toThrow(/is not of hall "osaka"/);
    expect(() => mergeSnapshots({ ...options, booths: ["acme", "bolt"] }, [snapshot], s(14))).toThrow(/unknown booth "cafe"/);
    expect(() => mergeSnapshots({ ...options, cellSize: 5 }, [snapshot], s(14))).toThrow(/heatmap is 5 × 3 cells of 4 m, expected 4 × 2 of 5 m/);
  });
});

describe("analyticsCsv", () => {
  it("writes the booths table", () => {
    expect(analyticsCsv(scriptedWalk().report(s(14)), "booths")).toBe(
      "booth_id,visits,unique_visitors,dwell_total_s,dwell_mean_s,current_visitors\n" +
      "acme,3,2,13.000,4.333,0\n" +
      "bolt,2,2,4.000,2.000,1\n" +
      "cafe,0,0,0.000,0.000,0\n",
    );
  });

  it("writes the heatmap table: non-empty cells only, row-major, south-west corners", () => {
    const analytics = new ExpoAnalytics(options, T);
    analytics.samplePresence(0, 0, 1);
    analytics.samplePresence(8, 0, 3);
    analytics.samplePresence(3.999, 4, 2);
    analytics.samplePresence(-5, 50, 0.25);
    analytics.samplePresence(20, 10, 0.0005);
    expect(analyticsCsv(analytics.report(s(1)), "heatmap")).toBe(
      "col,row,x,y,visitor_seconds\n" +
      "0,0,0,0,1.000\n" +
      "2,0,8,0,3.000\n" +
      "0,1,0,4,2.000\n" +
      "0,2,0,8,0.250\n" +
      "4,2,16,8,0.001\n",
    );
  });

  it("writes corners without floating-point noise", () => {
    const analytics = new ExpoAnalytics({ ...options, width: 0.4, height: 0.1, cellSize: 0.1 }, T);
    analytics.samplePresence(0.3, 0.05, 1.25); // 0.3 / 0.1 is 2.9999999999999996: still column 3
    const report = analytics.report(s(0));
    expect([report.heatmap.cols, report.heatmap.rows]).toEqual([4, 1]); // 0.4 / 0.1 is 4.000000000000001
    expect(analyticsCsv(report, "heatmap")).toBe("col,row,x,y,visitor_seconds\n3,0,0.3,0,1.250\n");
  });

  it("quotes fields that need it (RFC 4180)", () => {
    const report = scriptedWalk().report(s(14));
    report.booths = [{ ...report.booths[0], boothId: "a,\"b\"\nc" }];
    expect(analyticsCsv(report, "booths")).toBe(
      "booth_id,visits,unique_visitors,dwell_total_s,dwell_mean_s,current_visitors\n" +
      "\"a,\"\"b\"\"\nc\",3,2,13.000,4.333,0\n",
    );
  });

  it("refuses an unknown table", () => {
    expect(() => analyticsCsv(scriptedWalk().report(s(14)), "visits" as never)).toThrow(/unknown table "visits"/);
  });
});
