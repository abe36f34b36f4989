/**
 * Expo analytics: booth visits, dwell time and a presence heatmap (expo.proto,
 * AnalyticsReport). Each zone room keeps one ExpoAnalytics, which holds only what is
 * happening now (who is here, the visits under way) and what changed since it last
 * handed its changes on (`takeDelta()`); AnalyticsStore adds each second's delta to the
 * hall's figures in the region's presence and reads the hall's report from there, so a
 * visitor counts once however many zones it walked through.
 *
 * Nothing here grows with the visitors ever seen or with the hall's size: the work of a
 * second is the work that happened in it (joins, booth entries, one heatmap sample per
 * visitor present).
 *
 * Pure: no Colyseus, no network, no clock. Every time is passed in (epoch milliseconds).
 *
 * @example
 *   const analytics = new ExpoAnalytics({ hallId: "tokyo-expo", booths: ["acme"], width: 200, height: 120, cellSize: 5 }, Date.now());
 *   analytics.visitorJoined("user-17", Date.now());
 *   analytics.enterBooth("user-17", "acme", Date.now());
 *   await store.flush("hall", analytics.takeDelta());             // AnalyticsStore, every second
 *   const csv = analyticsCsv(await store.report(["hall"], Date.now()), "booths");
 */

/** What the analytics of a hall count over. */
export interface AnalyticsOptions {
  hallId: string;
  /** Booth ids; reports list booths in this order. */
  booths: string[];
  /** Hall size in metres. */
  width: number;
  height: number;
  /** Heatmap cell edge in metres: ceil(width / cellSize) × ceil(height / cellSize) cells. */
  cellSize: number;
}

/** One booth's numbers (expo.proto, BoothStats). */
export interface BoothReport {
  boothId: string;
  /** Entries into the booth's area (finished and ongoing). */
  visits: number;
  uniqueVisitors: number;
  /** Time inside over finished and ongoing visits (ongoing ones up to the report's time). */
  dwellTotalMs: number;
  /** dwellTotalMs / visits; 0 without visits. */
  dwellMeanMs: number;
  currentVisitors: number;
}

/** The hall so far (expo.proto, AnalyticsReport). */
export interface AnalyticsReport {
  hallId: string;
  fromMs: number;
  toMs: number;
  uniqueVisitors: number;
  currentVisitors: number;
  booths: BoothReport[];
  /** `visitorSeconds` is row-major: index row * cols + col; row 0 is the south edge. */
  heatmap: { cellSize: number; cols: number; rows: number; visitorSeconds: number[] };
}

/** One booth's changes in a delta. */
export interface BoothDelta {
  boothId: string;
  /** Visits that ended since the last delta, and their dwell time. */
  finishedVisits: number;
  finishedDwellMs: number;
  /** Visitor keys that entered the booth since the last delta (some may have before: adding is idempotent). */
  visitors: string[];
}

/**
 * What changed in one zone since its last delta: what AnalyticsStore adds to the hall's
 * figures. JSON-serialisable; its size is the activity of the period, not the hall's
 * history or size.
 */
export interface AnalyticsDelta {
  hallId: string;
  /** When this zone's analytics started. */
  fromMs: number;
  /** Visitor keys that joined (for the hall's uniques; adding a known one is idempotent). */
  joined: string[];
  /** Visitor keys whose presence in this zone changed: true here now, false gone. */
  current: Array<[string, boolean]>;
  /** Booths with finished visits or new visitors. */
  booths: BoothDelta[];
  /** Visits under way that started [boothId, visitorKey, enteredAtMs] or ended [boothId, visitorKey, null]. */
  open: Array<[string, string, number | null]>;
  /** Heatmap cells that gained presence: [row-major cell index, visitor-seconds]. */
  heat: Array<[number, number]>;
}

/** More cells than this is almost certainly a cellSize in the wrong unit. */
const MAX_HEATMAP_CELLS = 1_000_000;
/** In cells: how much floating-point noise a cell boundary absorbs. */
const CELL_EPSILON = 1e-9;

interface BoothState {
  /** Visits under way: visitorKey -> enteredAtMs. */
  open: Map<string, number>;
  /** Since the last delta. */
  finishedVisits: number;
  finishedDwellMs: number;
  entered: Set<string>;
}

/**
 * The analytics of one zone (or of a hall served by one room).
 *
 * A visitor key is a stable person key (the token subject): joining twice without
 * leaving counts once, and `visitorLeft` ends its presence however often it joined.
 */
export class ExpoAnalytics {
  readonly options: AnalyticsOptions;
  readonly cols: number;
  readonly rows: number;
  private readonly booths = new Map<string, BoothState>();
  /** Visitor keys in this zone now. */
  private readonly current = new Set<string>();
  /** visitorKey → the booths it is inside now (so visitorLeft closes them without a scan). */
  private readonly openByVisitor = new Map<string, Set<string>>();
  // Changes since the last delta:
  /** Keys that joined. */
  private joined = new Set<string>();
  /** Keys whose presence changed, and how it stands now. */
  private currentChanged = new Map<string, boolean>();
  /** Visits that started or ended, by booth: visitorKey -> enteredAtMs, or null once ended. */
  private openChanged = new Map<string, Map<string, number | null>>();
  /** Heatmap cells that gained presence: cell index -> visitor-seconds. */
  private heat = new Map<number, number>();

  /**
   * @throws TypeError / RangeError for invalid options (duplicate booth ids, sizes that
   *   are not positive and finite, more than 1,000,000 heatmap cells).
   */
  constructor(options: AnalyticsOptions, readonly startedAtMs: number) {
    const grid = checkOptions(options);
    checkTime(startedAtMs, "startedAtMs");
    this.options = { ...options, booths: [...options.booths] };
    this.cols = grid.cols;
    this.rows = grid.rows;
    for (const boothId of options.booths) {
      this.booths.set(boothId, { open: new Map(), finishedVisits: 0, finishedDwellMs: 0, entered: new Set() });
    }
  }

  /** A visitor came into the hall (this zone). Counted once per key for the hall's uniques. */
  visitorJoined(visitorKey: string, atMs: number): void {
    checkTime(atMs, "atMs");
    this.joined.add(visitorKey);
    if (this.current.has(visitorKey)) return;
    this.current.add(visitorKey);
    this.currentChanged.set(visitorKey, true);
  }

  /** A visitor left the hall (this zone); any booth visits it has open end at `atMs`. */
  visitorLeft(visitorKey: string, atMs: number): void {
    checkTime(atMs, "atMs");
    if (this.current.delete(visitorKey)) this.currentChanged.set(visitorKey, false);
    const open = this.openByVisitor.get(visitorKey);
    if (!open) return;
    for (const boothId of [...open]) this.leaveBooth(visitorKey, boothId, atMs);
  }

  /**
   * A visitor stepped into a booth's area: a new visit, unless it is already inside.
   *
   * @throws TypeError for a booth id not in the options.
   */
  enterBooth(visitorKey: string, boothId: string, atMs: number): void {
    const booth = this.booth(boothId);
    checkTime(atMs, "atMs");
    if (booth.open.has(visitorKey)) return;
    booth.open.set(visitorKey, atMs);
    booth.entered.add(visitorKey);
    this.openChangesOf(boothId).set(visitorKey, atMs);
    let open = this.openByVisitor.get(visitorKey);
    if (!open) this.openByVisitor.set(visitorKey, open = new Set());
    open.add(boothId);
  }

  /**
   * A visitor stepped out of a booth's area: its visit ends and its duration is added to
   * the dwell time. Nothing happens if it was not inside.
   *
   * @throws TypeError for a booth id not in the options.
   */
  leaveBooth(visitorKey: string, boothId: string, atMs: number): void {
    const booth = this.booth(boothId);
    checkTime(atMs, "atMs");
    const enteredAt = booth.open.get(visitorKey);
    if (enteredAt === undefined) return;
    booth.open.delete(visitorKey);
    booth.finishedVisits++;
    booth.finishedDwellMs += Math.max(0, atMs - enteredAt);
    this.openChangesOf(boothId).set(visitorKey, null);
    const open = this.openByVisitor.get(visitorKey);
    open?.delete(boothId);
    if (open?.size === 0) this.openByVisitor.delete(visitorKey);
  }

  /**
   * Adds `seconds` visitor-seconds to the heatmap cell holding (x, y). Points on the hall's
   * east / north edges go to the last column / row; points outside the hall are clamped
   * into it.
   *
   * @throws TypeError for non-finite coordinates or seconds that are negative or not finite.
   */
  samplePresence(x: number, y: number, seconds: number): void {
    if (!Number.isFinite(x) || !Number.isFinite(y)) throw new TypeError(`samplePresence: position (${x}, ${y}) is not finite`);
    if (!Number.isFinite(seconds) || seconds < 0) throw new TypeError(`samplePresence: seconds must be finite and >= 0, got ${seconds}`);
    const col = cellOf(x, this.options.cellSize, this.cols);
    const row = cellOf(y, this.options.cellSize, this.rows);
    const cell = row * this.cols + col;
    this.heat.set(cell, (this.heat.get(cell) ?? 0) + seconds);
  }

  /** What changed since the last delta (or since the start), as plain data; the next delta starts empty. */
  takeDelta(): AnalyticsDelta {
    const delta: AnalyticsDelta = {
      hallId: this.options.hallId,
      fromMs: this.startedAtMs,
      joined: [...this.joined],
      current: [...this.currentChanged],
      booths: [],
      open: [],
      heat: [...this.heat],
    };
    for (const [boothId, booth] of this.booths) {
      if (booth.finishedVisits > 0 || booth.entered.size > 0) {
        delta.booths.push({ boothId, finishedVisits: booth.finishedVisits, finishedDwellMs: booth.finishedDwellMs, visitors: [...booth.entered] });
        booth.finishedVisits = 0;
        booth.finishedDwellMs = 0;
        booth.entered = new Set();
      }
    }
    for (const [boothId, changes] of this.openChanged) for (const [key, enteredAt] of changes) delta.open.push([boothId, key, enteredAt]);
    this.joined = new Set();
    this.currentChanged = new Map();
    this.openChanged = new Map();
    this.heat = new Map();
    return delta;
  }

  /**
   * Puts back the part of a delta that could not be stored, to go with the next one.
   * Changes made since it was taken are newer, and win over its presence and visits.
   */
  putBack(delta: AnalyticsDelta): void {
    for (const key of delta.joined) this.joined.add(key);
    for (const [key, here] of delta.current) if (!this.currentChanged.has(key)) this.currentChanged.set(key, here);
    for (const b of delta.booths) {
      const booth = this.booth(b.boothId);
      booth.finishedVisits += b.finishedVisits;
      booth.finishedDwellMs += b.finishedDwellMs;
      for (const key of b.visitors) booth.entered.add(key);
    }
    for (const [boothId, key, enteredAt] of delta.open) {
      const changes = this.openChangesOf(boothId);
      if (!changes.has(key)) changes.set(key, enteredAt);
    }
    for (const [cell, seconds] of delta.heat) this.heat.set(cell, (this.heat.get(cell) ?? 0) + seconds);
  }

  private openChangesOf(boothId: string): Map<string, number | null> {
    let changes = this.openChanged.get(boothId);
    if (!changes) this.openChanged.set(boothId, changes = new Map());
    return changes;
  }

  private booth(boothId: string): BoothState {
    const booth = this.booths.get(boothId);
    if (!booth) throw new TypeError(`unknown booth "${boothId}" in hall "${this.options.hallId}"`);
    return booth;
  }
}

/**
 * A report table as CSV (RFC 4180 quoting, "\n" line ends, a header line first).
 *
 * - "booths": `booth_id,visits,unique_visitors,dwell_total_s,dwell_mean_s,current_visitors`,
 *   one row per booth in report order, seconds with 3 decimals.
 * - "heatmap": `col,row,x,y,visitor_seconds`, one row per cell with visitor_seconds > 0
 *   in row-major order; x, y are the cell's south-west corner in metres (at most 6
 *   decimals, no trailing zeros), visitor_seconds has 3 decimals.
 */
export function analyticsCsv(report: AnalyticsReport, table: "booths" | "heatmap"): string {
  const lines: string[][] = [];
  if (table === "booths") {
    lines.push(["booth_id", "visits", "unique_visitors", "dwell_total_s", "dwell_mean_s", "current_visitors"]);
    for (const b of report.booths) {
      lines.push([b.boothId, String(b.visits), String(b.uniqueVisitors), seconds(b.dwellTotalMs), seconds(b.dwellMeanMs), String(b.currentVisitors)]);
    }
  } else if (table === "heatmap") {
    const { cellSize, cols, visitorSeconds } = report.heatmap;
    lines.push(["col", "row", "x", "y", "visitor_seconds"]);
    visitorSeconds.forEach((value, index) => {
      if (!(value > 0)) return;
      const col = index % cols;
      const row = Math.floor(index / cols);
      lines.push([String(col), String(row), metres(col * cellSize), metres(row * cellSize), value.toFixed(3)]);
    });
  } else {
    throw new TypeError(`analyticsCsv: unknown table "${String(table)}" (expected "booths" or "heatmap")`);
  }
  return lines.map((fields) => fields.map(csvField).join(",") + "\n").join("");
}

/** RFC 4180: a field holding a comma, a double quote, CR or LF is quoted, quotes doubled. */
function csvField(field: string): string {
  return /[",\r\n]/.test(field) ? `"${field.replace(/"/g, "\"\"")}"` : field;
}

function seconds(ms: number): string {
  return (ms / 1000).toFixed(3);
}

/** 7.5, 0.3 (not 0.30000000000000004), 10. */
function metres(value: number): string {
  return String(Number(value.toFixed(6)));
}

/**
 * ceil(length / cellSize), but without floating-point noise adding a sliver column:
 * 0.4 / 0.1 is 4.000000000000001, and a 0.4 m hall in 0.1 m cells has 4 columns.
 */
function cellsAlong(length: number, cellSize: number): number {
  return Math.max(1, Math.ceil(length / cellSize - CELL_EPSILON));
}

/** The cell index of a coordinate: floor(value / cellSize), robust to the same noise (0.3 / 0.1 → 3). */
function cellOf(value: number, cellSize: number, count: number): number {
  return Math.min(count - 1, Math.max(0, Math.floor(value / cellSize + CELL_EPSILON)));
}

export function checkTime(value: number, name: string): void {
  if (!Number.isFinite(value)) throw new TypeError(`${name} must be a finite number of epoch milliseconds, got ${value}`);
}

export function checkOptions(options: AnalyticsOptions): { cols: number; rows: number } {
  if (typeof options.hallId !== "string" || options.hallId === "") throw new TypeError("analytics options: hallId must be a non-empty string");
  for (const name of ["width", "height", "cellSize"] as const) {
    const value = options[name];
    if (!Number.isFinite(value) || value <= 0) throw new RangeError(`analytics options: ${name} must be finite and > 0, got ${value}`);
  }
  const seen = new Set<string>();
  for (const boothId of options.booths) {
    if (seen.has(boothId)) throw new TypeError(`analytics options: booth "${boothId}" is listed twice`);
    seen.add(boothId);
  }
  const problem = heatmapProblem(options.width, options.height, options.cellSize);
  if (problem) throw new RangeError(`analytics options: ${problem}`);
  return { cols: cellsAlong(options.width, options.cellSize), rows: cellsAlong(options.height, options.cellSize) };
}

/** Why a hall of this size cannot have a heatmap in cells of `cellSize`, or undefined. */
export function heatmapProblem(width: number, height: number, cellSize: number): string | undefined {
  const cols = cellsAlong(width, cellSize);
  const rows = cellsAlong(height, cellSize);
  if (cols * rows <= MAX_HEATMAP_CELLS) return undefined;
  return `a ${cols} × ${rows} heatmap in ${cellSize} m cells has more than ${MAX_HEATMAP_CELLS} cells; use a larger cell size (--expo-heatmap-cell-size) or a smaller hall`;
}
