import { describe, expect, it } from "vitest";
import { AreaIndex } from "../../../../rooms/expo/AreaIndex.ts";
import { distanceToRect } from "../../../../rooms/expo/ZoneGeometry.ts";
import { prng } from "../../../fixtures/random.ts";

describe("AreaIndex", () => {
  it("finds exactly the areas a point is in, or within reach of, as a brute-force scan does", () => {
    const random = prng(7);
    const width = 300, height = 170;
    const areas = Array.from({ length: 400 }, (_, i) => ({ id: `a${i}`, rect: { x: random() * 280, y: random() * 150, w: 0.5 + random() * 20, h: 0.5 + random() * 20 } }));
    for (const reach of [0, 3, 25]) {
      const index = new AreaIndex(areas, width, height, reach);
      for (let i = 0; i < 3000; i++) {
        // points anywhere, on edges of areas, and just outside the hall
        const area = areas[i % areas.length].rect;
        const [x, y] = i % 3 === 0 ? [area.x + area.w, area.y] : i % 3 === 1 ? [random() * (width + 20) - 10, random() * (height + 20) - 10] : [area.x - reach, area.y + area.h / 2];
        const found: string[] = [];
        index.query(x, y, (id) => found.push(id));
        const expected = areas.filter((a) => distanceToRect(a.rect, x, y) <= reach).map((a) => a.id);
        expect(found.sort(), `(${x}, ${y}) reach ${reach}`).toEqual(expected.sort());
      }
    }
  });
});
