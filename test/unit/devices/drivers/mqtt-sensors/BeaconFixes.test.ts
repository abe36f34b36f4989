/**
 * BeaconFixes: a beacon's position is the RSSI-weighted centroid (10^(rssi/20)) of the
 * receivers that heard it within the window before its latest sighting, in the strongest
 * receiver's area; beacons expire after their TTL; the bounds hold.
 */
import { describe, expect, it } from "vitest";
import { BeaconFixes, rssiWeight } from "../../../../../devices/drivers/mqtt-sensors/BeaconFixes.ts";

const T0 = 1_733_200_000_000;
const B = "c3:00:00:0a:0b:0c";
const rx = (receiverId: string, x: number, y: number, area = "hall-a") => ({ receiverId, x, y, area });

describe("BeaconFixes", () => {
  it("puts a beacon heard by one receiver on it", () => {
    const fixes = new BeaconFixes(30_000);
    fixes.record(rx("rx-1", 3, 4), [{ id: B, rssi: -70 }], T0);
    expect(fixes.fix(B)).toEqual({ beaconId: B, x: 3, y: 4, area: "hall-a", rssi: -70, seenAtMs: T0, receivers: 1 });
  });

  it("weights receivers by 10^(rssi/20) and takes the strongest's area", () => {
    const fixes = new BeaconFixes(30_000);
    fixes.record(rx("rx-1", 0, 0, "hall-a"), [{ id: B, rssi: -60 }], T0);
    fixes.record(rx("rx-2", 10, 0, "hall-b"), [{ id: B, rssi: -80 }], T0 + 100);
    fixes.record(rx("rx-3", 0, 10, "hall-c"), [{ id: B, rssi: -80 }], T0 + 200);
    const fix = fixes.fix(B)!;
    const [w1, w2] = [rssiWeight(-60), rssiWeight(-80)];
    expect(w1 / w2).toBeCloseTo(10, 9);
    expect(fix.x).toBeCloseTo((10 * w2) / (w1 + 2 * w2), 9);
    expect(fix.y).toBeCloseTo((10 * w2) / (w1 + 2 * w2), 9);
    expect(fix).toMatchObject({ area: "hall-a", rssi: -60, seenAtMs: T0 + 200, receivers: 3 });
  });

  it("equal receivers give the midpoint", () => {
    const fixes = new BeaconFixes(30_000);
    fixes.record(rx("rx-1", 0, 0), [{ id: B, rssi: -70 }], T0);
    fixes.record(rx("rx-2", 10, 6), [{ id: B, rssi: -70 }], T0);
    expect(fixes.fix(B)).toMatchObject({ x: 5, y: 3, receivers: 2 });
  });

  it("leaves out receivers that heard it longer than the window before its latest sighting", () => {
    const fixes = new BeaconFixes(30_000, 5_000);
    fixes.record(rx("rx-1", 0, 0, "hall-a"), [{ id: B, rssi: -50 }], T0);
    fixes.record(rx("rx-2", 10, 0, "hall-b"), [{ id: B, rssi: -80 }], T0 + 5_001);
    expect(fixes.fix(B)).toMatchObject({ x: 10, y: 0, area: "hall-b", rssi: -80, receivers: 1 });
    // the window is relative to the latest sighting, so the fix holds while nobody hears it
    expect(fixes.snapshot(T0 + 20_000)).toHaveLength(1);
  });

  it("a receiver's newer sighting replaces its older one", () => {
    const fixes = new BeaconFixes(30_000);
    fixes.record(rx("rx-1", 0, 0), [{ id: B, rssi: -50 }], T0);
    fixes.record(rx("rx-1", 0, 0), [{ id: B, rssi: -90 }], T0 + 1000);
    expect(fixes.fix(B)).toMatchObject({ rssi: -90, receivers: 1 });
  });

  it("drops a beacon not heard for its TTL", () => {
    const fixes = new BeaconFixes(30_000);
    fixes.record(rx("rx-1", 0, 0), [{ id: B, rssi: -50 }], T0);
    expect(fixes.snapshot(T0 + 29_999)).toHaveLength(1);
    expect(fixes.snapshot(T0 + 30_000)).toHaveLength(0); // already out of telemetry
    expect(fixes.sweep(T0 + 29_999)).toBe(0);
    expect(fixes.sweep(T0 + 30_000)).toBe(1);
    expect(fixes.size).toBe(0);
    expect(fixes.fix(B)).toBeUndefined();
  });

  it("refuses further beacons once maxBeacons are tracked, and keeps at most maxReceivers per beacon", () => {
    const fixes = new BeaconFixes(30_000, 5_000, 2, 3);
    expect(fixes.record(rx("rx-1", 0, 0), [{ id: "a", rssi: -50 }, { id: "b", rssi: -50 }, { id: "c", rssi: -50 }], T0)).toBe(1);
    expect(fixes.size).toBe(2);
    for (let i = 0; i < 5; i++) fixes.record(rx(`rx-${i}`, i, 0), [{ id: "a", rssi: -60 }], T0 + i);
    expect(fixes.fix("a")).toMatchObject({ receivers: 3, x: 3 }); // rx-2, rx-3, rx-4
  });

  it("lists the most recently seen first", () => {
    const fixes = new BeaconFixes(30_000);
    fixes.record(rx("rx-1", 0, 0), [{ id: "old", rssi: -50 }], T0);
    fixes.record(rx("rx-1", 0, 0), [{ id: "new", rssi: -50 }], T0 + 10);
    expect(fixes.snapshot(T0 + 10).map((f) => f.beaconId)).toEqual(["new", "old"]);
  });
});
