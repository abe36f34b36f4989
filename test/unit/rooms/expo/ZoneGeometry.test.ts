/**
 * Where things are in a hall layout: rectContains and distanceToRect, zoneAt's half-open
 * edges, zoneRoomId's entrance zone, and rectsWithin (which zones see across a border).
 */
import { describe, it, expect } from "vitest";
import { parseHallLayout, type HallLayout } from "../../../../rooms/expo/HallLayout.ts";
import { distanceToRect, rectContains, rectsWithin, zoneAt, zoneRoomId } from "../../../../rooms/expo/ZoneGeometry.ts";

/** A 200 × 120 m hall split west | east at x = 100, its entrance (spawn) in the west; no booths, no areas. */
const twoZones = {
  hallId: "tokyo-expo", name: "Two zones", width: 200, height: 120, spawn: { x: 5, y: 60 },
  zones: [{ id: "west", rect: { x: 0, y: 0, w: 100, h: 120 } }, { id: "east", rect: { x: 100, y: 0, w: 100, h: 120 } }],
};

describe("ZoneGeometry", () => {
  const layout: HallLayout = parseHallLayout(twoZones);

  it("rectContains is inclusive on all edges", () => {
    const r = { x: 10, y: 10, w: 8, h: 6 };
    expect([rectContains(r, 10, 10), rectContains(r, 18, 16), rectContains(r, 14, 16)]).toEqual([true, true, true]);
    expect([rectContains(r, 9.999, 12), rectContains(r, 18.001, 12), rectContains(r, 12, 16.001), rectContains(r, 12, 9.999)]).toEqual([false, false, false, false]);
  });

  it("distanceToRect is 0 inside, else the distance to the nearest edge point", () => {
    const r = { x: 10, y: 10, w: 8, h: 6 };
    expect(distanceToRect(r, 12, 12)).toBe(0);
    expect(distanceToRect(r, 18, 16)).toBe(0);
    expect(distanceToRect(r, 7, 12)).toBe(3);      // west
    expect(distanceToRect(r, 12, 20)).toBe(4);     // north
    expect(distanceToRect(r, 21, 20)).toBe(5);     // north-east corner: 3-4-5
    expect(distanceToRect(r, 7, 6)).toBe(5);       // south-west corner
  });

  it("zoneAt: zones are half-open, the border belongs to the east zone", () => {
    expect(zoneAt(layout, 0, 0)?.id).toBe("west");
    expect(zoneAt(layout, 99.999, 60)?.id).toBe("west");
    expect(zoneAt(layout, 100, 60)?.id).toBe("east");
    expect(zoneAt(layout, 150, 0)?.id).toBe("east");
  });

  it("zoneAt: the hall's east and north edges belong to the zone touching them", () => {
    expect(zoneAt(layout, 200, 60)?.id).toBe("east");
    expect(zoneAt(layout, 50, 120)?.id).toBe("west");
    expect(zoneAt(layout, 200, 120)?.id).toBe("east");
    const quarters = parseHallLayout({
      ...twoZones,
      booths: [],
      zones: [
        { id: "sw", rect: { x: 0, y: 0, w: 100, h: 60 } },
        { id: "se", rect: { x: 100, y: 0, w: 100, h: 60 } },
        { id: "nw", rect: { x: 0, y: 60, w: 100, h: 60 } },
        { id: "ne", rect: { x: 100, y: 60, w: 100, h: 60 } },
      ],
    });
    expect(zoneAt(quarters, 100, 60)?.id).toBe("ne");
    expect(zoneAt(quarters, 99, 60)?.id).toBe("nw");
    expect(zoneAt(quarters, 100, 59)?.id).toBe("se");
    expect(zoneAt(quarters, 50, 120)?.id).toBe("nw");
    expect(zoneAt(quarters, 200, 30)?.id).toBe("se");
  });

  it("zoneAt: undefined outside the hall or without zones", () => {
    expect(zoneAt(layout, 200.001, 60)).toBeUndefined();
    expect(zoneAt(layout, -0.001, 60)).toBeUndefined();
    expect(zoneAt(layout, 50, 120.5)).toBeUndefined();
    expect(zoneAt(layout, Number.NaN, 60)).toBeUndefined();
    const single = parseHallLayout({ ...twoZones, zones: [] });
    expect(zoneAt(single, 50, 60)).toBeUndefined();
  });

  it("zoneRoomId: the spawn's zone is the hall's own room, the others get their own", () => {
    expect(zoneRoomId("tokyo-expo", layout, "west")).toBe("tokyo-expo");
    expect(zoneRoomId("tokyo-expo", layout, "east")).toBe("tokyo-expo--east");
    const eastEntrance = parseHallLayout({ ...twoZones, spawn: { x: 190, y: 5 } });
    expect(zoneRoomId("tokyo-expo", eastEntrance, "east")).toBe("tokyo-expo");
    expect(zoneRoomId("tokyo-expo", eastEntrance, "west")).toBe("tokyo-expo--west");
  });

  it("zoneRoomId: a hall without zones is one room; unknown zones are refused", () => {
    const single = parseHallLayout({ ...twoZones, zones: [] });
    expect(zoneRoomId("tokyo-expo", single, "")).toBe("tokyo-expo");
    expect(() => zoneRoomId("tokyo-expo", single, "west")).toThrow(RangeError);
    expect(() => zoneRoomId("tokyo-expo", layout, "north")).toThrow(/has no zone "north" \(zones: west, east\)/);
  });

  it("rectsWithin: rectangles within reach, gaps measured corner to corner", () => {
    const a = { x: 0, y: 0, w: 10, h: 10 };
    expect(rectsWithin(a, { x: 10, y: 0, w: 5, h: 5 }, 0)).toBe(true);   // touching
    expect(rectsWithin(a, { x: 13, y: 0, w: 5, h: 5 }, 3)).toBe(true);   // 3 m east
    expect(rectsWithin(a, { x: 13.5, y: 0, w: 5, h: 5 }, 3)).toBe(false);
    expect(rectsWithin(a, { x: 13, y: 14, w: 5, h: 5 }, 5)).toBe(true);  // corner to corner: 3-4-5
    expect(rectsWithin(a, { x: 13, y: 14, w: 5, h: 5 }, 4.99)).toBe(false);
  });
});
