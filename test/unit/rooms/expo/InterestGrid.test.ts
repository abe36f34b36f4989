/**
 * InterestGrid: the edge cases one by one, then a seeded random model test: thousands of
 * items inserted, moved (inside and outside the hall, onto cell edges, onto exact
 * distances from one another), removed and re-inserted, with every radius
 * query checked against a brute-force scan, for cells smaller than, equal to and larger
 * than the query radius.
 */
import { describe, it, expect } from "vitest";
import { InterestGrid, MAX_GRID_CELLS, type GridItem } from "../../../../rooms/expo/InterestGrid.ts";
import { prng } from "../../../fixtures/random.ts";

/** Like the room's visitor: the grid fields are declared, not initialised (undefined until inserted). */
class Visitor implements GridItem {
  declare gridCell: number;
  declare gridSlot: number;
  constructor(readonly id: number, public x: number, public y: number) {}
}

const W = 200;
const H = 120;

function sortedIds(items: Iterable<Visitor>): number[] {
  return [...items].map((item) => item.id).sort((a, b) => a - b);
}

/** Ids visited by queryRadius, sorted, duplicates kept (so a double visit shows). */
function radiusIds(grid: InterestGrid<Visitor>, x: number, y: number, r: number): number[] {
  const ids: number[] = [];
  grid.queryRadius(x, y, r, (item) => { ids.push(item.id); });
  return ids.sort((a, b) => a - b);
}

/** The definition, restated as a scan over everything inserted. */
function bruteRadius(items: Iterable<Visitor>, x: number, y: number, r: number): number[] {
  const found: Visitor[] = [];
  for (const item of items) {
    const dx = item.x - x;
    const dy = item.y - y;
    if (dx * dx + dy * dy <= r * r) found.push(item);
  }
  return sortedIds(found);
}

function filled(grid: InterestGrid<Visitor>, positions: [number, number][]): Visitor[] {
  return positions.map(([x, y], id) => {
    const item = new Visitor(id, x, y);
    grid.insert(item);
    return item;
  });
}

describe("InterestGrid: construction", () => {
  it("throws RangeError for a width, height or cell size that is not a positive finite number", () => {
    for (const bad of [0, -1, -0.5, Number.NaN, Infinity, -Infinity, "10" as unknown as number, undefined as unknown as number]) {
      expect(() => new InterestGrid(bad, H, 10), `width ${String(bad)}`).toThrow(RangeError);
      expect(() => new InterestGrid(W, bad, 10), `height ${String(bad)}`).toThrow(RangeError);
      expect(() => new InterestGrid(W, H, bad), `cellSize ${String(bad)}`).toThrow(RangeError);
    }
    expect(() => new InterestGrid(0, H, 10)).toThrow(/width must be a positive finite number/);
  });

  it("allows exactly MAX_GRID_CELLS cells and refuses one row more", () => {
    expect(MAX_GRID_CELLS).toBe(4_000_000);
    const largest = new InterestGrid<Visitor>(2000, 2000, 1);
    expect(largest.columns * largest.rows).toBe(MAX_GRID_CELLS);
    expect(() => new InterestGrid(2000, 2001, 1)).toThrow(RangeError);
    expect(() => new InterestGrid(2000, 2000, 0.999)).toThrow(/more than 4000000/);
    // a cell count that overflows to Infinity is refused too
    expect(() => new InterestGrid(1e300, 1e300, 1e-300)).toThrow(RangeError);
  });

  it("rounds partial cells up, and a cell larger than the hall makes one cell", () => {
    const grid = new InterestGrid<Visitor>(W, H, 7.3);
    expect([grid.columns, grid.rows]).toEqual([28, 17]);
    const single = new InterestGrid<Visitor>(W, H, 1000);
    expect([single.columns, single.rows]).toEqual([1, 1]);
    const items = filled(single, [[0, 0], [W, H], [-5, 300]]);
    expect(radiusIds(single, 0, 0, 1e4)).toEqual(sortedIds(items));
  });
});

describe("InterestGrid: insert, move, remove, size", () => {
  it("treats undefined and -1 as not inserted; counts what it holds", () => {
    const grid = new InterestGrid<Visitor>(W, H, 10);
    const fresh = new Visitor(1, 5, 5);
    expect(fresh.gridCell).toBeUndefined();
    expect(grid.size).toBe(0);
    grid.remove(fresh); // no-op
    expect(grid.size).toBe(0);
    grid.insert(fresh);
    expect(fresh.gridCell).toBeGreaterThanOrEqual(0);
    expect(grid.size).toBe(1);
    expect(() => grid.insert(fresh)).toThrow(/already inserted/);
    expect(grid.size).toBe(1);
    grid.remove(fresh);
    expect(fresh.gridCell).toBe(-1);
    expect(grid.size).toBe(0);
    grid.remove(fresh); // again: no-op
    expect(grid.size).toBe(0);
    expect(radiusIds(grid, 5, 5, 100)).toEqual([]);
    // re-insert at a new position
    fresh.x = 150;
    fresh.y = 100;
    grid.insert(fresh);
    expect(grid.size).toBe(1);
    expect(radiusIds(grid, 150, 100, 0)).toEqual([1]);
    expect(radiusIds(grid, 5, 5, 10)).toEqual([]);
  });

  it("move sets x and y; within a cell it touches no array, across cells it re-buckets", () => {
    const grid = new InterestGrid<Visitor>(W, H, 10);
    const [a, b, c] = filled(grid, [[11, 11], [12, 12], [13, 13]]);
    const [cellA, slotA, slotB, slotC] = [a.gridCell, a.gridSlot, b.gridSlot, c.gridSlot];
    expect(new Set([a.gridCell, b.gridCell, c.gridCell]).size).toBe(1);
    expect(new Set([slotA, slotB, slotC]).size).toBe(3);

    grid.move(a, 19.5, 10.5); // still in the cell [10, 20) × [10, 20)
    expect([a.x, a.y]).toEqual([19.5, 10.5]);
    expect([a.gridCell, a.gridSlot, b.gridSlot, c.gridSlot]).toEqual([cellA, slotA, slotB, slotC]);

    grid.move(a, 25, 10.5); // next cell east
    expect(a.gridCell).not.toBe(cellA);
    expect(grid.size).toBe(3);
    expect(radiusIds(grid, 25, 10.5, 0)).toEqual([0]);
    expect(radiusIds(grid, 12, 12, 2)).toEqual([1, 2]);
  });

  it("swap-remove: the cell's last item takes the removed one's slot and stays findable", () => {
    const grid = new InterestGrid<Visitor>(W, H, 10);
    const [a, b, c] = filled(grid, [[1, 1], [2, 2], [3, 3]]);
    expect([a.gridSlot, b.gridSlot, c.gridSlot]).toEqual([0, 1, 2]);
    grid.remove(a);
    expect(c.gridSlot).toBe(0);
    expect(b.gridSlot).toBe(1);
    expect(radiusIds(grid, 0, 0, 10)).toEqual([1, 2]);
    grid.remove(c); // the moved item is removed from its new slot
    expect(radiusIds(grid, 0, 0, 10)).toEqual([1]);
    grid.move(b, 50, 50); // leaving the cell empties it
    expect(radiusIds(grid, 0, 0, 10)).toEqual([]);
    expect(radiusIds(grid, 50, 50, 0)).toEqual([1]);
    expect(grid.size).toBe(1);
  });

  it("moving an item that is not inserted only sets its position; an item of another grid cannot be moved, removed or inserted", () => {
    const grid = new InterestGrid<Visitor>(W, H, 10);
    const other = new InterestGrid<Visitor>(W, H, 10);
    const loose = new Visitor(1, 5, 5);
    grid.move(loose, 66, 77);
    expect([loose.x, loose.y, loose.gridCell]).toEqual([66, 77, undefined]);
    expect(grid.size).toBe(0);
    expect(radiusIds(grid, 66, 77, Infinity)).toEqual([]);
    grid.insert(loose); // where it was moved to
    expect(radiusIds(grid, 66, 77, 0)).toEqual([1]);
    grid.remove(loose);
    grid.move(loose, 1, 2); // after a remove, too (gridCell -1)
    expect([loose.x, loose.y, loose.gridCell]).toEqual([1, 2, -1]);
    expect(grid.size).toBe(0);

    const foreign = new Visitor(2, 5, 5);
    other.insert(foreign);
    expect(() => grid.move(foreign, 6, 6)).toThrow(/not in this grid/);
    expect(() => grid.remove(foreign)).toThrow(/not in this grid/);
    expect(() => grid.insert(foreign)).toThrow(/already inserted/);
    expect([foreign.x, foreign.y]).toEqual([5, 5]);
    expect(grid.size).toBe(0);
    expect(other.size).toBe(1);
    expect(radiusIds(other, 5, 5, 0)).toEqual([2]);
  });

  it("clear empties the grid, marks every item not inserted, and the grid is usable after", () => {
    const grid = new InterestGrid<Visitor>(W, H, 10);
    const items = filled(grid, [[1, 1], [2, 2], [150, 100], [-10, 500], [W, H]]);
    grid.clear();
    expect(grid.size).toBe(0);
    for (const item of items) expect(item.gridCell).toBe(-1);
    expect(radiusIds(grid, 0, 0, Infinity)).toEqual([]);
    for (const item of items) grid.insert(item);
    expect(grid.size).toBe(5);
    expect(radiusIds(grid, 0, 0, Infinity)).toEqual([0, 1, 2, 3, 4]);
  });
});

describe("InterestGrid: queries at the edges", () => {
  it("is inclusive at exactly distance r, and excludes anything beyond", () => {
    const grid = new InterestGrid<Visitor>(W, H, 10);
    filled(grid, [[103, 104], [97, 96], [100, 105], [95, 100], [103, 104.000001], [105.000001, 100]]);
    expect(radiusIds(grid, 100, 100, 5)).toEqual([0, 1, 2, 3]);
    expect(radiusIds(grid, 100, 100, 4.999999)).toEqual([]);
  });

  it("r = 0 finds exactly the items at the point", () => {
    const grid = new InterestGrid<Visitor>(W, H, 10);
    filled(grid, [[40, 40], [40, 40], [40, 40.000000001], [40, 39.999999999], [30, 30]]);
    expect(radiusIds(grid, 40, 40, 0)).toEqual([0, 1]);
    expect(radiusIds(grid, 30, 30, 0)).toEqual([4]);
    expect(radiusIds(grid, 31, 31, 0)).toEqual([]);
  });

  it("r larger than the hall reaches everything within r, out-of-hall items included", () => {
    const grid = new InterestGrid<Visitor>(W, H, 10);
    const items = filled(grid, [[0, 0], [W, H], [W / 2, H / 2], [-300, -300], [W + 400, H], [1e6, 0]]);
    expect(radiusIds(grid, W / 2, H / 2, 1e4)).toEqual([0, 1, 2, 3, 4]);
    expect(radiusIds(grid, W / 2, H / 2, Infinity)).toEqual(sortedIds(items));
    // centred outside the hall, too
    expect(radiusIds(grid, -1000, -1000, 1500)).toEqual(bruteRadius(items, -1000, -1000, 1500));
    expect(radiusIds(grid, -1000, -1000, 1500)).toContain(3);
  });

  for (const cellSize of [10, 7.3, 200]) {
    it(`finds items exactly on the hall's far edges and corners (cells of ${cellSize})`, () => {
      const grid = new InterestGrid<Visitor>(W, H, cellSize);
      const items = filled(grid, [[W, H], [W, 0], [0, H], [0, 0], [W, H / 2], [W / 2, H]]);
      expect(radiusIds(grid, W, H, 0)).toEqual([0]);
      expect(radiusIds(grid, W, 0, 0)).toEqual([1]);
      expect(radiusIds(grid, 0, H, 0)).toEqual([2]);
      expect(radiusIds(grid, W - 3, H - 4, 5)).toEqual([0]);
    });
  }

  it("buckets out-of-hall positions in the border cells but keeps and measures the stored x and y", () => {
    const grid = new InterestGrid<Visitor>(W, H, 10);
    const [stray, far] = filled(grid, [[-5, 500], [W + 1e6, -1e6]]);
    expect([stray.x, stray.y]).toEqual([-5, 500]);
    expect([far.x, far.y]).toEqual([W + 1e6, -1e6]);
    expect(radiusIds(grid, -5, 500, 0)).toEqual([0]);
    // the clamped cell's corner is far from where the item really is
    expect(radiusIds(grid, 0, H, 1)).toEqual([]);
    expect(radiusIds(grid, W + 1e6, -1e6, 0)).toEqual([1]);
  });

  it("visits nothing for a negative or NaN radius, size or centre", () => {
    const grid = new InterestGrid<Visitor>(W, H, 10);
    filled(grid, [[50, 50], [Number.NaN, 50]]);
    expect(radiusIds(grid, 50, 50, -1)).toEqual([]);
    expect(radiusIds(grid, 50, 50, Number.NaN)).toEqual([]);
    expect(radiusIds(grid, Number.NaN, 50, 10)).toEqual([]);
    // an item at NaN is held (and counted) but never matches
    expect(grid.size).toBe(2);
    expect(radiusIds(grid, 50, 50, Infinity)).toEqual([0]);
  });

  it("lets visit read the grid: a query inside a query", () => {
    const grid = new InterestGrid<Visitor>(W, H, 10);
    const random = prng(7);
    const items = filled(grid, Array.from({ length: 300 }, () => [random() * W, random() * H] as [number, number]));
    let pairs = 0;
    let expected = 0;
    grid.queryRadius(W / 2, H / 2, 30, (item) => {
      grid.queryRadius(item.x, item.y, 10, () => { pairs++; });
      expected += bruteRadius(items, item.x, item.y, 10).length;
    });
    expect(expected).toBeGreaterThan(0);
    expect(pairs).toBe(expected);
  });
});

// --- model test ------------------------------------------------------------------------

const RADIUS = 10;
/** Offsets of length exactly RADIUS with exactly representable components (3-4-5 and axes). */
const exactOffsets: [number, number][] = [[6, 8], [-8, 6], [-6, -8], [8, -6], [10, 0], [0, -10], [-10, 0], [0, 10]];

describe("InterestGrid: random model test against a brute-force scan", () => {
  // smaller than, equal to and larger than the radius; one not dividing the hall; one cell
  const cases = [
    { cellSize: 3, seed: 0x1f00 },
    { cellSize: RADIUS, seed: 0x1f01 },
    { cellSize: 25, seed: 0x1f02 },
    { cellSize: 7.3, seed: 0x1f03 },
    { cellSize: 500, seed: 0x1f04 },
  ];
  for (const { cellSize, seed } of cases) {
    it(`cells of ${cellSize} (r = ${RADIUS}), seed ${seed}`, () => {
      const random = prng(seed);
      const pick = <V>(values: readonly V[]): V => values[Math.floor(random() * values.length)];
      const grid = new InterestGrid<Visitor>(W, H, cellSize);
      const items: Visitor[] = [];
      const inserted = new Set<Visitor>();
      const stats = { exactBoundaryHits: 0, outside: 0, onCellEdge: 0, reinserted: 0, movedLoose: 0 };

      const lattice = (limit: number) => Math.round(random() * limit * 4) / 4; // multiples of 0.25: exact arithmetic
      const position = (): [number, number] => {
        const kind = random();
        if (kind < 0.35) return [random() * W, random() * H];
        if (kind < 0.55) return [lattice(W), lattice(H)];
        if (kind < 0.67) { // on a cell edge (including the hall's far edges)
          const columns = Math.ceil(W / cellSize);
          const rows = Math.ceil(H / cellSize);
          const x = Math.min(W, Math.floor(random() * (columns + 1)) * cellSize);
          const y = Math.min(H, Math.floor(random() * (rows + 1)) * cellSize);
          return random() < 0.5 ? [x, y] : random() < 0.5 ? [x, random() * H] : [random() * W, y];
        }
        if (kind < 0.72) return [pick([0, W]), lattice(H)];
        if (kind < 0.82) return [-60 + random() * (W + 120), random() < 0.5 ? -random() * 60 : H + random() * 60];
        if (kind < 0.85) return [pick([-1e6, W + 1e6]), pick([-1e6, H / 2, H + 1e6])];
        // exactly RADIUS from another item, when that one sits on the lattice
        const anchor = pick(items);
        const [dx, dy] = pick(exactOffsets);
        return [Math.round(anchor.x * 4) / 4 + dx, Math.round(anchor.y * 4) / 4 + dy];
      };

      for (let id = 0; id < 3000; id++) {
        const item = new Visitor(id, 0, 0);
        items.push(item);
        [item.x, item.y] = position();
        // the last 500 start outside the grid, with gridCell undefined
        if (id < 2500) { grid.insert(item); inserted.add(item); }
      }

      const check = (label: string) => {
        expect(grid.size, label).toBe(inserted.size);
        const wrongState = items.filter((item) => inserted.has(item)
          ? !(item.gridCell >= 0)
          : !(item.gridCell === undefined || item.gridCell === -1)).map((item) => item.id);
        expect(wrongState, `${label}: items whose gridCell contradicts their membership`).toEqual([]);
        // nothing is lost, wherever it went
        expect(radiusIds(grid, W / 2, H / 2, Infinity), `${label}: everything`).toEqual(sortedIds(inserted));
        const members = [...inserted];
        for (let q = 0; q < 30; q++) {
          let x: number, y: number, r: number;
          const kind = random();
          if (kind < 0.5) { // centred on a lattice-rounded item: its exact-offset neighbours are on the circle
            const centre = pick(members);
            x = Math.round(centre.x * 4) / 4; y = Math.round(centre.y * 4) / 4;
          } else if (kind < 0.8) { [x, y] = position(); }
          else { x = -50 + random() * (W + 100); y = -50 + random() * (H + 100); }
          const radiusKind = random();
          if (radiusKind < 0.6) r = RADIUS;
          else if (radiusKind < 0.7) r = 0;
          else if (radiusKind < 0.8) { const other = pick(members); r = Math.hypot(other.x - x, other.y - y); }
          else if (radiusKind < 0.95) r = random() * 3 * RADIUS;
          else r = pick([W, 1e4]);
          const expected = bruteRadius(inserted, x, y, r);
          expect(radiusIds(grid, x, y, r), `${label}: queryRadius(${x}, ${y}, ${r})`).toEqual(expected);
          for (const item of members) {
            const dx = item.x - x;
            const dy = item.y - y;
            if (r > 0 && dx * dx + dy * dy === r * r) stats.exactBoundaryHits++;
          }
        }
      };

      check("start");
      for (let batch = 0; batch < 25; batch++) {
        for (let op = 0; op < 300; op++) {
          const item = pick(items);
          if (inserted.has(item)) {
            const choice = random();
            if (choice < 0.2) { grid.remove(item); inserted.delete(item); }
            else if (choice < 0.35) grid.move(item, item.x + (random() - 0.5), item.y + (random() - 0.5)); // a step
            else { const [x, y] = position(); grid.move(item, x, y); }
          } else if (random() < 0.1) {
            const [x, y] = position();
            grid.move(item, x, y); // not inserted: only the position changes
            stats.movedLoose++;
          } else {
            if (item.gridCell === -1) stats.reinserted++;
            [item.x, item.y] = position();
            grid.insert(item);
            inserted.add(item);
          }
        }
        for (const item of inserted) {
          if (item.x < 0 || item.x > W || item.y < 0 || item.y > H) stats.outside++;
          if (item.x % cellSize === 0 || item.y % cellSize === 0) stats.onCellEdge++;
        }
        check(`seed ${seed}, batch ${batch}`);
      }
      // the interesting cases really happened
      expect(stats.exactBoundaryHits).toBeGreaterThan(50);
      expect(stats.outside).toBeGreaterThan(100);
      expect(stats.onCellEdge).toBeGreaterThan(100);
      expect(stats.reinserted).toBeGreaterThan(100);
      expect(stats.movedLoose).toBeGreaterThan(10);
    });
  }
});
