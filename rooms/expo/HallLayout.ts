/**
 * The hall layout file of a digital expo: the hall's size, its booths, named areas and
 * the zones it is split into (expo.proto, ExpoHall). A host provides it as JSON; it is
 * validated once with zod, and every problem is reported by path in one LayoutError
 * (wire code LAYOUT_INVALID).
 *
 * Lengths are metres in the hall's frame: the origin is the south-west corner, x grows
 * east, y grows north. Valid positions are 0 <= x <= width, 0 <= y <= height.
 *
 * Pure: no Colyseus, no network; `loadHallLayout` is the only function that touches the
 * file system. Where things are in a validated layout (which zone holds a point, the room
 * serving a zone) is ZoneGeometry's.
 *
 * @example
 *   const layout = loadHallLayout("halls/tokyo-expo.json"); // throws LayoutError
 *   const hall = parseHallLayout(JSON.parse(body), "request body");
 */
import { readFileSync } from "node:fs";
import { z } from "zod";
import { ErrorCode } from "../../proto/index.ts";
import { HALL_ID_PATTERN, ROOM_ID_PATTERN } from "../../proto/ids.ts";
import { intersection, rectContains, toleranceOf } from "./ZoneGeometry.ts";

/** An axis-aligned rectangle in hall metres: x..x+w, y..y+h. */
export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** A booth: a visitor inside `area` is "at" the booth. Every booth is an area too, with the booth's id. */
export interface BoothLayout {
  id: string;
  name: string;
  exhibitor: string;
  area: Rect;
}

/** A named part of the hall (an aisle, a stage, a lounge). */
export interface AreaLayout {
  id: string;
  name: string;
  rect: Rect;
}

/** A part of the hall served by its own room (see `zoneRoomId`). */
export interface ZoneLayout {
  id: string;
  rect: Rect;
}

/** A validated hall layout, defaults filled in. */
export interface HallLayout {
  hallId: string;
  name: string;
  width: number;
  height: number;
  /** Where visitors are placed on joining; the layout file's, else the centre of the hall. */
  spawn: { x: number; y: number };
  booths: BoothLayout[];
  areas: AreaLayout[];
  /** Empty: one room serves the whole hall. Otherwise at least 2, tiling the hall. */
  zones: ZoneLayout[];
}

const MAX_HALL_SIZE = 10_000;
const MAX_BOOTHS = 2000;
const MAX_AREAS = 2000;
const MAX_ZONES = 64;
const MAX_TEXT = 120;
/** Relative tolerance of the zone coverage check (sum of zone areas vs hall area). */
const COVERAGE_TOLERANCE = 1e-6;
/** LayoutError.message lists at most this many issues, then "and N more". */
const MESSAGE_ISSUES = 20;

const idSchema = z.string().regex(ROOM_ID_PATTERN, "must be 1 to 64 letters, digits, '_' or '-'");
const textSchema = z.string()
  .min(1, "must not be empty")
  .max(MAX_TEXT, `must be at most ${MAX_TEXT} characters`);
// zod 4's z.number() already refuses NaN and ±Infinity ("expected number, received NaN").
const coordinateSchema = z.number().min(0, "must be >= 0");
const extentSchema = z.number().gt(0, "must be > 0");
const hallSizeSchema = z.number().gt(0, "must be > 0").max(MAX_HALL_SIZE, `must be at most ${MAX_HALL_SIZE} m`);

const rectSchema = z.strictObject({ x: coordinateSchema, y: coordinateSchema, w: extentSchema, h: extentSchema });

const boothSchema = z.strictObject({ id: idSchema, name: textSchema, exhibitor: textSchema, area: rectSchema });
const areaSchema = z.strictObject({ id: idSchema, name: textSchema, rect: rectSchema });
const zoneSchema = z.strictObject({ id: idSchema, rect: rectSchema });

const shapeSchema = z.strictObject({
  hallId: z.string().regex(HALL_ID_PATTERN, "must be 1 to 40 letters, digits, '_' or '-'"),
  name: textSchema,
  width: hallSizeSchema,
  height: hallSizeSchema,
  spawn: z.strictObject({ x: z.number(), y: z.number() }).optional(),
  booths: z.array(boothSchema).max(MAX_BOOTHS, `at most ${MAX_BOOTHS} booths`).optional(),
  areas: z.array(areaSchema).max(MAX_AREAS, `at most ${MAX_AREAS} areas`).optional(),
  zones: z.array(zoneSchema).max(MAX_ZONES, `at most ${MAX_ZONES} zones`).optional(),
});

/**
 * The layout file's schema: strict objects (an unknown key is an error), then, only when
 * the shape is valid, the cross-field rules (unique ids, everything inside the hall, zones
 * tiling the hall, each booth inside one zone). Its output has the defaults filled in.
 * Prefer `parseHallLayout`, which turns the issues into a LayoutError.
 */
export const hallLayoutSchema = shapeSchema.transform((shape, ctx): HallLayout => {
  const layout: HallLayout = {
    hallId: shape.hallId,
    name: shape.name,
    width: shape.width,
    height: shape.height,
    spawn: shape.spawn ?? { x: shape.width / 2, y: shape.height / 2 },
    booths: shape.booths ?? [],
    areas: shape.areas ?? [],
    zones: shape.zones ?? [],
  };
  for (const issue of crossFieldIssues(layout)) ctx.addIssue({ code: "custom", path: issue.path, message: issue.message });
  return layout;
});

/** A hall layout that does not validate, or a layout file that cannot be read or parsed. */
export class LayoutError extends Error {
  /** The wire error code: ErrorCode.LAYOUT_INVALID. */
  readonly code: number = ErrorCode.LAYOUT_INVALID;

  /**
   * @param source What was validated, e.g. the file name; starts the message.
   * @param issues One readable line per problem, each "path: what is wrong".
   */
  constructor(readonly source: string, readonly issues: string[]) {
    super(layoutMessage(source, issues));
    this.name = "LayoutError";
  }
}

/** `${source}: N problem(s): a; b; …`, listing at most MESSAGE_ISSUES issues, then "and N more". */
function layoutMessage(source: string, issues: string[]): string {
  const shown = issues.slice(0, MESSAGE_ISSUES).join("; ");
  const more = issues.length > MESSAGE_ISSUES ? `; and ${issues.length - MESSAGE_ISSUES} more` : "";
  return `${source}: ${issues.length} problem(s): ${shown}${more}`;
}

/**
 * Validates a layout (already parsed from JSON) and fills in the defaults.
 *
 * @param source Names the layout in messages (e.g. the file name).
 * @throws LayoutError listing every problem found.
 */
export function parseHallLayout(value: unknown, source = "hall layout"): HallLayout {
  const parsed = hallLayoutSchema.safeParse(value);
  if (!parsed.success) throw new LayoutError(source, parsed.error.issues.flatMap(formatIssue));
  return parsed.data;
}

/**
 * Reads, parses and validates a layout file.
 *
 * @throws LayoutError (source: the file name) for a missing or unreadable file, invalid
 *   JSON (with line and column) or a layout that does not validate.
 */
export function loadHallLayout(file: string): HallLayout {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new LayoutError(file, [`cannot read the file: ${describeReadError(error)}`]);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // a UTF-8 byte order mark is not JSON
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new LayoutError(file, [describeJsonError(text, error)]);
  }
  return parseHallLayout(value, file);
}

// ---------------------------------------------------------------------------------------
// Cross-field rules
// ---------------------------------------------------------------------------------------

interface PathIssue {
  path: Array<string | number>;
  message: string;
}

function crossFieldIssues(layout: HallLayout): PathIssue[] {
  const issues: PathIssue[] = [];
  const eps = toleranceOf(layout);
  const { width, height, spawn } = layout;

  if (!(spawn.x >= 0 && spawn.x <= width && spawn.y >= 0 && spawn.y <= height)) {
    issues.push({ path: ["spawn"], message: `(${num(spawn.x)}, ${num(spawn.y)}) lies outside the hall (0..${num(width)} × 0..${num(height)})` });
  }

  // Booth and area ids share one namespace (a booth is also an area with its id).
  const placeIds = new Map<string, string>();
  const checkId = (id: string, path: Array<string | number>, owner: string) => {
    const first = placeIds.get(id);
    if (first === undefined) placeIds.set(id, owner);
    else issues.push({ path, message: `"${id}" is already the id of ${first} (booth and area ids must be unique together)` });
  };
  layout.booths.forEach((booth, i) => checkId(booth.id, ["booths", i, "id"], `booths[${i}]`));
  layout.areas.forEach((area, i) => checkId(area.id, ["areas", i, "id"], `areas[${i}]`));
  const zoneIds = new Map<string, number>();
  layout.zones.forEach((zone, i) => {
    const first = zoneIds.get(zone.id);
    if (first === undefined) zoneIds.set(zone.id, i);
    else issues.push({ path: ["zones", i, "id"], message: `"${zone.id}" is already the id of zones[${first}] (zone ids must be unique)` });
  });

  /** Whether `rect` lies within the hall (west and south edges: the schema checked x, y >= 0). */
  const checkInside = (rect: Rect, path: Array<string | number>): boolean => {
    let inside = true;
    if (rect.x + rect.w > width + eps) {
      inside = false;
      issues.push({ path, message: `extends past the hall's east edge (x + w = ${num(rect.x + rect.w)} > width ${num(width)})` });
    }
    if (rect.y + rect.h > height + eps) {
      inside = false;
      issues.push({ path, message: `extends past the hall's north edge (y + h = ${num(rect.y + rect.h)} > height ${num(height)})` });
    }
    return inside;
  };
  const boothsOutside = new Set<number>();
  layout.booths.forEach((booth, i) => { if (!checkInside(booth.area, ["booths", i, "area"])) boothsOutside.add(i); });
  layout.areas.forEach((area, i) => checkInside(area.rect, ["areas", i, "rect"]));
  layout.zones.forEach((zone, i) => checkInside(zone.rect, ["zones", i, "rect"]));

  const zones = layout.zones;
  if (zones.length === 1) {
    issues.push({ path: ["zones"], message: "a hall split into zones needs at least 2 (found 1); leave zones out for a hall served by one room" });
  }
  if (zones.length >= 2) {
    // Overlaps: every pair (at most 64 zones, so at most 2016 pairs).
    let overlapping = false;
    for (let j = 1; j < zones.length; j++) {
      for (let i = 0; i < j; i++) {
        const overlap = intersection(zones[i].rect, zones[j].rect);
        if (overlap.w > eps && overlap.h > eps) {
          overlapping = true;
          issues.push({ path: ["zones", j, "rect"], message: `overlaps zones[${i}] ("${zones[i].id}") by ${num(overlap.w)} × ${num(overlap.h)} m` });
        }
      }
    }
    // Coverage: without overlaps, the zones' areas inside the hall add up to the covered area.
    if (!overlapping) {
      const hall: Rect = { x: 0, y: 0, w: width, h: height };
      const covered = zones.reduce((sum, zone) => {
        const clipped = intersection(zone.rect, hall);
        return sum + Math.max(0, clipped.w) * Math.max(0, clipped.h);
      }, 0);
      const hallArea = width * height;
      if (Math.abs(covered - hallArea) > COVERAGE_TOLERANCE * hallArea) {
        const gap = uncoveredPoint(layout);
        const example = gap ? `; e.g. (${num(gap.x)}, ${num(gap.y)}) is in no zone` : "";
        issues.push({ path: ["zones"], message: `cover ${num(covered)} m² of the hall's ${num(hallArea)} m²: the zones must cover the whole hall${example}` });
      }
    }
    // Each booth inside one zone: O(booths × zones). A booth already reported as past the
    // hall's edge is not reported again for the part of it outside every zone.
    layout.booths.forEach((booth, i) => {
      if (boothsOutside.has(i)) return;
      const a = booth.area;
      const inside = zones.some((zone) => {
        const r = zone.rect;
        return a.x >= r.x - eps && a.y >= r.y - eps && a.x + a.w <= r.x + r.w + eps && a.y + a.h <= r.y + r.h + eps;
      });
      if (inside) return;
      const touched = zones.filter((zone) => {
        const overlap = intersection(a, zone.rect);
        return overlap.w > eps && overlap.h > eps;
      });
      const names = touched.map((zone) => `"${zone.id}"`);
      const message = touched.length >= 2
        ? `straddles zones ${listOf(names)}; a booth must lie entirely inside one zone`
        : touched.length === 1
          ? `is not entirely inside zone ${names[0]} (part of it is in no zone); a booth must lie entirely inside one zone`
          : "lies in no zone; a booth must lie entirely inside one zone";
      issues.push({ path: ["booths", i, "area"], message });
    });
  }
  return issues;
}

/**
 * A point of the hall in no zone, for the coverage message: the zones' edges cut the hall
 * into a grid of at most (2·64+2)² cells; the centre of a cell no zone holds is one.
 */
function uncoveredPoint(layout: HallLayout): { x: number; y: number } | undefined {
  const cuts = (values: number[], max: number) =>
    [...new Set([0, max, ...values.map((v) => Math.min(Math.max(v, 0), max))])].sort((a, b) => a - b);
  const xs = cuts(layout.zones.flatMap((z) => [z.rect.x, z.rect.x + z.rect.w]), layout.width);
  const ys = cuts(layout.zones.flatMap((z) => [z.rect.y, z.rect.y + z.rect.h]), layout.height);
  for (let j = 0; j + 1 < ys.length; j++) {
    for (let i = 0; i + 1 < xs.length; i++) {
      const x = (xs[i] + xs[i + 1]) / 2;
      const y = (ys[j] + ys[j + 1]) / 2;
      if (!layout.zones.some((zone) => rectContains(zone.rect, x, y))) return { x, y };
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------

/** One zod issue as readable "path: message" lines (an unknown-keys issue gives one per key). */
function formatIssue(issue: z.core.$ZodIssue): string[] {
  if (issue.code === "unrecognized_keys") {
    return issue.keys.map((key) => `${formatPath([...issue.path, key])}: unknown key`);
  }
  let message = issue.message;
  if (issue.code === "invalid_type") {
    message = / received undefined$/.test(message)
      ? `required (${issue.expected})`
      : message.replace(/^Invalid input: /, "");
  }
  return [`${formatPath(issue.path)}: ${message}`];
}

/** `booths[2].area.w`; "(root)" for the layout itself. */
function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else if (typeof part === "string" && /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(part)) out += out ? `.${part}` : part;
    else out += `[${JSON.stringify(String(part))}]`;
  }
  return out || "(root)";
}

/** `"a"`, `"a" and "b"`, `"a", "b" and "c"`. */
function listOf(items: string[]): string {
  return items.length <= 1 ? items.join("") : `${items.slice(0, -1).join(", ")} and ${items[items.length - 1]}`;
}

/** A number for messages, without floating-point noise (210, 0.3, 66.6666666667). */
function num(value: number): string {
  return String(Number(value.toPrecision(12)));
}

function describeReadError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === "ENOENT") return "no such file (ENOENT)";
  if (code === "EACCES" || code === "EPERM") return `permission denied (${code})`;
  if (code === "EISDIR") return "it is a directory, not a file (EISDIR)";
  return error instanceof Error ? error.message : String(error);
}

/** "invalid JSON at line 3, column 1: Expected double-quoted property name". */
function describeJsonError(text: string, error: unknown): string {
  const raw = error instanceof Error ? error.message : String(error);
  let offset: number | undefined;
  let line: number | undefined;
  let column: number | undefined;
  const lineColumn = /\(line (\d+) column (\d+)\)/.exec(raw); // newer V8 says where itself
  const position = /at position (\d+)/.exec(raw);
  if (lineColumn) {
    line = Number(lineColumn[1]);
    column = Number(lineColumn[2]);
  } else if (position) {
    offset = Number(position[1]);
  } else if (/Unexpected end of JSON input/.test(raw)) {
    offset = text.length;
  } else {
    offset = jsonErrorOffset(text); // e.g. "Unexpected token '}', ..." says no position
  }
  if (offset !== undefined && line === undefined) {
    const before = text.slice(0, offset);
    line = before.split("\n").length;
    column = offset - (before.lastIndexOf("\n") + 1) + 1;
  }
  const reason = raw
    .replace(/\s*\(line \d+ column \d+\)/, "")
    .replace(/\s+in JSON at position \d+/, "")
    .replace(/\s+at position \d+/, "")
    .replace(/, ".*" is not valid JSON$/s, "")
    .trim();
  const where = line !== undefined ? ` at line ${line}, column ${column}` : "";
  return `invalid JSON${where}: ${reason}`;
}

/**
 * The offset of the first character where `text` stops being JSON (RFC 8259), for
 * SyntaxErrors that do not say where. undefined if it finds none.
 */
function jsonErrorOffset(text: string): number | undefined {
  let i = 0;
  class Stop { constructor(readonly at: number) {} }
  const fail = (): never => { throw new Stop(i); };
  const ws = () => { while (i < text.length && " \t\n\r".includes(text[i])) i++; };
  const literal = (word: string) => {
    for (const c of word) { if (text[i] !== c) fail(); i++; }
  };
  const string = () => {
    i++; // opening quote
    for (;;) {
      if (i >= text.length) fail();
      const c = text.charCodeAt(i);
      if (c === 0x22) { i++; return; }
      if (c < 0x20) fail();
      if (c === 0x5c) {
        i++;
        const e = text[i];
        if (e === "u") {
          i++;
          for (let k = 0; k < 4; k++) { if (!/[0-9A-Fa-f]/.test(text[i] ?? "")) fail(); i++; }
          continue;
        }
        if (e === undefined || !"\"\\/bfnrt".includes(e)) fail();
      }
      i++;
    }
  };
  const digits = () => {
    if (!/[0-9]/.test(text[i] ?? "")) fail();
    while (/[0-9]/.test(text[i] ?? "")) i++;
  };
  const number = () => {
    if (text[i] === "-") i++;
    if (text[i] === "0") i++;
    else digits();
    if (text[i] === ".") { i++; digits(); }
    if (text[i] === "e" || text[i] === "E") {
      i++;
      if (text[i] === "+" || text[i] === "-") i++;
      digits();
    }
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === "{") {
      i++; ws();
      if (text[i] === "}") { i++; return; }
      for (;;) {
        ws();
        if (text[i] !== "\"") fail();
        string(); ws();
        if (text[i] !== ":") fail();
        i++; value(); ws();
        if (text[i] === ",") { i++; continue; }
        if (text[i] === "}") { i++; return; }
        fail();
      }
    }
    if (c === "[") {
      i++; ws();
      if (text[i] === "]") { i++; return; }
      for (;;) {
        value(); ws();
        if (text[i] === ",") { i++; continue; }
        if (text[i] === "]") { i++; return; }
        fail();
      }
    }
    if (c === "\"") return string();
    if (c === "t") return literal("true");
    if (c === "f") return literal("false");
    if (c === "n") return literal("null");
    if (c === "-" || (c !== undefined && c >= "0" && c <= "9")) return number();
    fail();
  };
  try {
    value(); ws();
    return i < text.length ? i : undefined;
  } catch (stop) {
    if (stop instanceof Stop) return stop.at;
    return undefined; // e.g. a stack overflow on absurd nesting: say no position
  }
}
