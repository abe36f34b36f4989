/**
 * The hall layout file: the schema (strict, readable issues by path), the cross-field
 * rules, and reading files (missing, invalid JSON with line/column). The geometry helpers
 * are ZoneGeometry's (ZoneGeometry.test.ts).
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { ErrorCode } from "../../../../proto/index.ts";
import {
  LayoutError,
  hallLayoutSchema,
  loadHallLayout,
  parseHallLayout,
} from "../../../../rooms/expo/HallLayout.ts";

/** The example of the layout format: 200 × 120 m, split west / east at x = 100. */
function exampleLayout(): Record<string, any> {
  return {
    hallId: "tokyo-expo",
    name: "Tokyo Expo Hall A",
    width: 200,
    height: 120,
    spawn: { x: 5, y: 60 },
    booths: [{ id: "acme", name: "ACME Robotics", exhibitor: "ACME Inc.", area: { x: 10, y: 10, w: 8, h: 6 } }],
    areas: [{ id: "stage", name: "Main stage", rect: { x: 80, y: 0, w: 40, h: 20 } }],
    zones: [
      { id: "west", rect: { x: 0, y: 0, w: 100, h: 120 } },
      { id: "east", rect: { x: 100, y: 0, w: 100, h: 120 } },
    ],
  };
}

/** The LayoutError `fn` throws (fails the test if it throws nothing or something else). */
function layoutError(fn: () => unknown): LayoutError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(LayoutError);
    return error as LayoutError;
  }
  throw new Error("expected a LayoutError, nothing was thrown");
}

function issuesOf(value: unknown): string[] {
  return layoutError(() => parseHallLayout(value, "test.json")).issues;
}

describe("parseHallLayout", () => {
  it("accepts the example layout as written", () => {
    const layout = parseHallLayout(exampleLayout());
    expect(layout).toEqual(exampleLayout());
  });

  it("fills in the defaults: spawn at the centre, no booths, areas or zones", () => {
    const layout = parseHallLayout({ hallId: "h1", name: "Small hall", width: 30, height: 12 });
    expect(layout).toEqual({ hallId: "h1", name: "Small hall", width: 30, height: 12, spawn: { x: 15, y: 6 }, booths: [], areas: [], zones: [] });
  });

  it("is what hallLayoutSchema gives too", () => {
    const result = hallLayoutSchema.safeParse({ hallId: "h1", name: "n", width: 10, height: 4 });
    expect(result.success && result.data.spawn).toEqual({ x: 5, y: 2 });
  });

  it("accepts a spawn on the hall's edge and a booth touching a zone border from inside", () => {
    const value = exampleLayout();
    value.spawn = { x: 200, y: 0 };
    value.booths.push({ id: "edge", name: "Edge", exhibitor: "E", area: { x: 92, y: 50, w: 8, h: 8 } });
    expect(parseHallLayout(value).booths.map((b: { id: string }) => b.id)).toEqual(["acme", "edge"]);
  });

  it("reports every shape problem at once, by path, unknown keys by name", () => {
    const value = exampleLayout();
    value.hallId = "tokyo expo!";
    value.name = "";
    value.width = 0;
    value.height = 20_000;
    value.colour = "blue";
    value.booths[0].id = "a".repeat(65);
    value.booths[0].exhibitor = "x".repeat(121);
    value.booths[0].area = { x: -1, y: 0, w: 0, h: 5, d: 3 };
    delete value.areas[0].name;
    value.areas[0].rect.x = Number.NaN;
    value.zones[1].rect.h = Number.POSITIVE_INFINITY;
    const issues = issuesOf(value);
    expect(issues).toEqual(expect.arrayContaining([
      "hallId: must be 1 to 40 letters, digits, '_' or '-'",
      "name: must not be empty",
      "width: must be > 0",
      "height: must be at most 10000 m",
      "colour: unknown key",
      "booths[0].id: must be 1 to 64 letters, digits, '_' or '-'",
      "booths[0].exhibitor: must be at most 120 characters",
      "booths[0].area.x: must be >= 0",
      "booths[0].area.w: must be > 0",
      "booths[0].area.d: unknown key",
      "areas[0].name: required (string)",
      "areas[0].rect.x: expected number, received NaN",
      "zones[1].rect.h: expected number, received Infinity",
    ]));
    expect(issues).toHaveLength(13);
  });

  it("refuses a value that is not an object, and wrong types", () => {
    expect(issuesOf(null)).toEqual(["(root): expected object, received null"]);
    expect(issuesOf([])).toEqual(["(root): expected object, received array"]);
    const value = exampleLayout();
    value.width = "200";
    value.booths = {};
    expect(issuesOf(value)).toEqual(["width: expected number, received string", "booths: expected array, received object"]);
  });

  it("limits the number of booths, areas and zones", () => {
    const value = { hallId: "big", name: "Big", width: 10_000, height: 10_000 } as Record<string, any>;
    value.booths = Array.from({ length: 2001 }, (_, i) => ({ id: `b${i}`, name: "B", exhibitor: "E", area: { x: i, y: 0, w: 1, h: 1 } }));
    value.areas = Array.from({ length: 2001 }, (_, i) => ({ id: `a${i}`, name: "A", rect: { x: i, y: 10, w: 1, h: 1 } }));
    value.zones = Array.from({ length: 65 }, (_, i) => ({ id: `z${i}`, rect: { x: 0, y: i, w: 1, h: 1 } }));
    expect(issuesOf(value)).toEqual(["booths: at most 2000 booths", "areas: at most 2000 areas", "zones: at most 64 zones"]);
  });

  it("reports every cross-field problem at once, each naming its path", () => {
    const value = exampleLayout();
    value.spawn = { x: 250, y: 60 };
    value.booths.push(
      { id: "stage", name: "Dup of an area", exhibitor: "E", area: { x: 30, y: 30, w: 2, h: 2 } },
      { id: "wide", name: "Past the east edge", exhibitor: "E", area: { x: 195, y: 10, w: 15, h: 5 } },
      { id: "tall", name: "Past the north edge", exhibitor: "E", area: { x: 20, y: 118, w: 2, h: 4 } },
      { id: "bridge", name: "On the border", exhibitor: "E", area: { x: 96, y: 40, w: 8, h: 6 } },
      { id: "acme", name: "Dup of a booth", exhibitor: "E", area: { x: 40, y: 40, w: 2, h: 2 } },
    );
    value.areas.push({ id: "lounge", name: "Lounge", rect: { x: 150, y: 100, w: 10, h: 30 } });
    value.zones.push({ id: "west", rect: { x: 0, y: 0, w: 1, h: 1 } });
    const issues = issuesOf(value);
    expect(issues).toEqual(expect.arrayContaining([
      "spawn: (250, 60) lies outside the hall (0..200 × 0..120)",
      "areas[0].id: \"stage\" is already the id of booths[1] (booth and area ids must be unique together)",
      "booths[5].id: \"acme\" is already the id of booths[0] (booth and area ids must be unique together)",
      "zones[2].id: \"west\" is already the id of zones[0] (zone ids must be unique)",
      "booths[2].area: extends past the hall's east edge (x + w = 210 > width 200)",
      "booths[3].area: extends past the hall's north edge (y + h = 122 > height 120)",
      "areas[1].rect: extends past the hall's north edge (y + h = 130 > height 120)",
      "zones[2].rect: overlaps zones[0] (\"west\") by 1 × 1 m",
      "booths[4].area: straddles zones \"west\" and \"east\"; a booth must lie entirely inside one zone",
    ]));
    expect(issues).toHaveLength(9);
  });

  it("names all the zones a booth straddles", () => {
    const value = exampleLayout();
    value.zones = [
      { id: "sw", rect: { x: 0, y: 0, w: 100, h: 60 } },
      { id: "se", rect: { x: 100, y: 0, w: 100, h: 60 } },
      { id: "nw", rect: { x: 0, y: 60, w: 100, h: 60 } },
      { id: "ne", rect: { x: 100, y: 60, w: 100, h: 60 } },
    ];
    value.booths.push({ id: "hub", name: "Hub", exhibitor: "E", area: { x: 98, y: 58, w: 4, h: 4 } });
    expect(issuesOf(value)).toEqual([
      "booths[1].area: straddles zones \"sw\", \"se\", \"nw\" and \"ne\"; a booth must lie entirely inside one zone",
    ]);
  });

  it("requires zones to cover the whole hall, and says where a gap is", () => {
    const value = exampleLayout();
    value.zones[1].rect = { x: 110, y: 0, w: 90, h: 120 };
    value.booths.push({ id: "gap", name: "In the gap", exhibitor: "E", area: { x: 102, y: 50, w: 4, h: 4 } });
    expect(issuesOf(value)).toEqual([
      "zones: cover 22800 m² of the hall's 24000 m²: the zones must cover the whole hall; e.g. (105, 60) is in no zone",
      "booths[1].area: lies in no zone; a booth must lie entirely inside one zone",
    ]);
  });

  it("tolerates rounding where zones meet (thirds of the hall)", () => {
    const third = 100 / 3;
    const value = { hallId: "h", name: "Thirds", width: 100, height: 10, zones: [0, 1, 2].map((i) => ({ id: `z${i}`, rect: { x: i * third, y: 0, w: third, h: 10 } })) };
    expect(parseHallLayout(value).zones).toHaveLength(3);
  });

  it("refuses a single zone", () => {
    const value = exampleLayout();
    value.zones = [{ id: "all", rect: { x: 0, y: 0, w: 200, h: 120 } }];
    expect(issuesOf(value)).toEqual(["zones: a hall split into zones needs at least 2 (found 1); leave zones out for a hall served by one room"]);
  });

  it("skips the cross-field rules while the shape is invalid", () => {
    const value = exampleLayout();
    value.name = 7;
    value.spawn = { x: 999, y: 0 }; // a cross-field problem, not reported until the shape is fixed
    expect(issuesOf(value)).toEqual(["name: expected string, received number"]);
  });

  it("checks 2000 booths in 8 zones quickly", () => {
    const zones = Array.from({ length: 8 }, (_, i) => ({ id: `z${i}`, rect: { x: i * 125, y: 0, w: 125, h: 400 } }));
    const booths = Array.from({ length: 2000 }, (_, i) => ({
      id: `b${i}`, name: `Booth ${i}`, exhibitor: "E", area: { x: (i % 40) * 25 + 1, y: Math.floor(i / 40) * 8 + 1, w: 20, h: 6 },
    }));
    const started = performance.now();
    const layout = parseHallLayout({ hallId: "big", name: "Big", width: 1000, height: 400, booths, zones });
    expect(layout.booths).toHaveLength(2000);
    expect(performance.now() - started).toBeLessThan(1000);
  });
});

describe("LayoutError", () => {
  it("carries the LAYOUT_INVALID code, the source and the issues", () => {
    const error = layoutError(() => parseHallLayout({ hallId: "x" }, "halls/x.json"));
    expect(error.code).toBe(ErrorCode.LAYOUT_INVALID);
    expect(error.code).toBe(4430);
    expect(error.source).toBe("halls/x.json");
    expect(error.name).toBe("LayoutError");
    expect(error.message).toBe("halls/x.json: 3 problem(s): name: required (string); width: required (number); height: required (number)");
  });

  it("defaults the source to \"hall layout\"", () => {
    expect(() => parseHallLayout(null)).toThrow(/^hall layout: 1 problem\(s\): \(root\): expected object/);
  });

  it("caps the message at 20 issues", () => {
    const error = new LayoutError("f.json", Array.from({ length: 23 }, (_, i) => `p${i}: bad`));
    expect(error.issues).toHaveLength(23);
    expect(error.message).toBe(`f.json: 23 problem(s): ${Array.from({ length: 20 }, (_, i) => `p${i}: bad`).join("; ")}; and 3 more`);
  });
});

describe("loadHallLayout", () => {
  let dir: string;
  beforeAll(() => { dir = mkdtempSync(path.join(tmpdir(), "tsunagi-hall-")); });
  afterAll(() => { rmSync(dir, { recursive: true, force: true }); });

  function file(name: string, text: string): string {
    const target = path.join(dir, name);
    writeFileSync(target, text);
    return target;
  }

  it("reads a valid file", () => {
    expect(loadHallLayout(file("ok.json", JSON.stringify(exampleLayout(), null, 2))).hallId).toBe("tokyo-expo");
  });

  it("accepts a byte order mark", () => {
    expect(loadHallLayout(file("bom.json", "\uFEFF" + JSON.stringify(exampleLayout()))).name).toBe("Tokyo Expo Hall A");
  });

  it("says which file is missing", () => {
    const missing = path.join(dir, "nope.json");
    const error = layoutError(() => loadHallLayout(missing));
    expect(error.source).toBe(missing);
    expect(error.code).toBe(ErrorCode.LAYOUT_INVALID);
    expect(error.message).toBe(`${missing}: 1 problem(s): cannot read the file: no such file (ENOENT)`);
  });

  it("refuses a directory", () => {
    expect(layoutError(() => loadHallLayout(dir)).issues).toEqual(["cannot read the file: it is a directory, not a file (EISDIR)"]);
  });

  it("gives line and column of invalid JSON (a trailing comma)", () => {
    const name = file("comma.json", "{\n  \"hallId\": \"h\",\n  \"name\": \"n\",\n}\n");
    const error = layoutError(() => loadHallLayout(name));
    expect(error.source).toBe(name);
    expect(error.issues).toHaveLength(1);
    expect(error.issues[0]).toMatch(/^invalid JSON at line 4, column 1: /);
  });

  it("gives line and column where the SyntaxError names no position (an unexpected token)", () => {
    const error = layoutError(() => loadHallLayout(file("token.json", "{\n  \"hallId\": \"h\",\n  \"width\": ]\n}")));
    expect(error.issues[0]).toMatch(/^invalid JSON at line 3, column 12: .*]/);
  });

  it("points at the end of a truncated file", () => {
    const error = layoutError(() => loadHallLayout(file("short.json", "{\n  \"hallId\": \"h\"")));
    expect(error.issues[0]).toMatch(/^invalid JSON at line 2, column 16: /);
  });

  it("reports schema problems with the file name as source", () => {
    const name = file("bad.json", JSON.stringify({ ...exampleLayout(), width: -5 }));
    const error = layoutError(() => loadHallLayout(name));
    expect(error.message).toBe(`${name}: 1 problem(s): width: must be > 0`);
  });
});
