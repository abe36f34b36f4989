/**
 * Expo analytics: booth visits, dwell time and a presence heatmap (expo.proto,
 * AnalyticsReport). Each zone room keeps one ExpoAnalytics; the hall's report merges the
 * zones' snapshots, so a visitor counts once however many zones it walked through.
 *
 * Pure: no Colyseus, no network, no clock. Every time is passed in (epoch milliseconds).
 *
 * @example
 *   const analytics = new ExpoAnalytics({ hallId: "tokyo-expo", booths: ["acme"], width: 200, height: 120, cellSize: 5 }, Date.now());
 *   analytics.visitorJoined("user-17", Date.now());
 *   analytics.enterBooth("user-17", "acme", Date.now());
 *   const csv = analyticsCsv(analytics.report(Date.now()), "booths");
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

/** One booth's state in a snapshot. */
export interface BoothSnapshot {
  boothId: string;
  /** Visits that have ended. */
  finishedVisits: number;
  /** Their total dwell time. */
  finishedDwellMs: number;
  /**
   * Ongoing visits: [visitorKey, enteredAtMs]. Pairs rather than an object so that no
   * visitor key (say "__proto__") can collide with an object's own machinery.
   */
  open: Array<[string, number]>;
  /** Every visitor key that has entered the booth. */
  visitors: string[];
}

/**
 * The JSON-serialisable state of one zone's analytics: enough to merge several zones into
 * the hall's report (`mergeSnapshots`) on any node.
 */
export interface AnalyticsSnapshot {
  hallId: string;
  /** When this zone's analytics started. */
  fromMs: number;
  /** When the snapshot was taken. */
  atMs: number;
  /** Every visitor key that has joined this zone. */
  visitors: string[];
  /** Visitor keys in this zone now. */
  current: string[];
  booths: BoothSnapshot[];
  heatmap: { cellSize: number; cols: number; rows: number; visitorSeconds: number[] };
}

/** More cells than this is almost certainly a cellSize in the wrong unit. */
const MAX_HEATMAP_CELLS = 1_000_000;
/** In cells: how much floating-point noise a cell boundary absorbs. */
const CELL_EPSILON = 1e-9;

interface BoothState {
  finishedVisits: number;
  finishedDwellMs: number;
  open: Map<string, number>;
  visitors: Set<string>;
}

/**
 * The analytics of one zone (or of a hall served by one room).
 *
 * A visitor key is a stable person key (the token subject): joining twice without
 * leaving counts once, and `visitorLeft` ends its presence however often it joined.
 */
export class ExpoAnalytics {
  private readonly options: AnalyticsOptions;
  private readonly cols: number;
  private readonly rows: number;
  private readonly heat: Float64Array;
  private readonly booths = new Map<string, BoothState>();
  private readonly visitors = new Set<string>();
  private readonly current = new Set<string>();
  /** visitorKey → the booths it is inside now (so visitorLeft closes them without a scan). */
  private readonly openByVisitor = new Map<string, Set<string>>();

  /**
   * @throws TypeError / RangeError for invalid options (duplicate booth ids, sizes that
   *   are not positive and finite, more than 1,000,000 heatmap cells).
   */
  constructor(options: AnalyticsOptions, private readonly startedAtMs: number) {
    const grid = checkOptions(options);
    checkTime(startedAtMs, "startedAtMs");
    this.options = { ...options, booths: [...options.booths] };
    this.cols = grid.cols;
    this.rows = grid.rows;
    this.heat = new Float64Array(grid.cols * grid.rows);
    for (const boothId of options.booths) {
      this.booths.set(boothId, { finishedVisits: 0, finishedDwellMs: 0, open: new Map(), visitors: new Set() });
    }
  }

  /** A visitor came into the hall (this zone). Counted once per key for the hall's uniques. */
  visitorJoined(visitorKey: string, atMs: number): void {
    checkTime(atMs, "atMs");
    this.visitors.add(visitorKey);
    this.current.add(visitorKey);
  }

  /** A visitor left the hall (this zone); any booth visits it has open end at `atMs`. */
  visitorLeft(visitorKey: string, atMs: number): void {
    checkTime(atMs, "atMs");
    this.current.delete(visitorKey);
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
    booth.visitors.add(visitorKey);
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
    this.heat[row * this.cols + col] += seconds;
  }

  /** This zone's report at `atMs`: ongoing visits count up to `atMs`. */
  report(atMs: number): AnalyticsReport {
    return mergeSnapshots(this.options, [this.snapshot(atMs)], atMs);
  }

  /** This zone's state at `atMs`, as plain JSON-serialisable data (copies, not views). */
  snapshot(atMs: number): AnalyticsSnapshot {
    checkTime(atMs, "atMs");
    return {
      hallId: this.options.hallId,
      fromMs: this.startedAtMs,
      atMs,
      visitors: [...this.visitors],
      current: [...this.current],
      booths: this.options.booths.map((boothId) => {
        const booth = this.booths.get(boothId)!;
        return {
          boothId,
          finishedVisits: booth.finishedVisits,
          finishedDwellMs: booth.finishedDwellMs,
          open: [...booth.open],
          visitors: [...booth.visitors],
        };
      }),
      heatmap: { cellSize: this.options.cellSize, cols: this.cols, rows: this.rows, visitorSeconds: Array.from(this.heat) },
    };
  }

  private booth(boothId: string): BoothState {
    const booth = this.booths.get(boothId);
    if (!booth) throw new TypeError(`unknown booth "${boothId}" in hall "${this.options.hallId}"`);
    return booth;
  }
}

/**
 * The hall's report over several zones' snapshots: visits, dwell and heatmaps summed,
 * unique and current visitors as unions of keys (a visitor in two zones during a handoff
 * counts once), fromMs the earliest snapshot's (atMs when there is none). Ongoing visits
 * count up to `atMs`.
 *
 * @throws TypeError for a snapshot of another hall, of a booth the options do not name,
 *   or with a heatmap of other dimensions.
 */
export function mergeSnapshots(options: AnalyticsOptions, snapshots: AnalyticsSnapshot[], atMs: number): AnalyticsReport {
  const { cols, rows } = checkOptions(options);
  checkTime(atMs, "atMs");
  const heat = new Array<number>(cols * rows).fill(0);
  const visitors = new Set<string>();
  const current = new Set<string>();
  const booths = new Map(options.booths.map((boothId) => [boothId, {
    visits: 0, dwellTotalMs: 0, visitors: new Set<string>(), current: new Set<string>(),
  }]));
  let fromMs = Infinity;

  for (const [index, snapshot] of snapshots.entries()) {
    const where = `snapshot ${index} (hall "${snapshot.hallId}")`;
    if (snapshot.hallId !== options.hallId) throw new TypeError(`${where}: is not of hall "${options.hallId}"`);
    const map = snapshot.heatmap;
    if (map.cols !== cols || map.rows !== rows || map.cellSize !== options.cellSize || map.visitorSeconds.length !== cols * rows) {
      throw new TypeError(`${where}: heatmap is ${map.cols} × ${map.rows} cells of ${map.cellSize} m, expected ${cols} × ${rows} of ${options.cellSize} m`);
    }
    fromMs = Math.min(fromMs, snapshot.fromMs);
    for (const key of snapshot.visitors) visitors.add(key);
    for (const key of snapshot.current) current.add(key);
    for (const b of snapshot.booths) {
      const booth = booths.get(b.boothId);
      if (!booth) throw new TypeError(`${where}: unknown booth "${b.boothId}"`);
      booth.visits += b.finishedVisits + b.open.length;
      booth.dwellTotalMs += b.finishedDwellMs;
      for (const [key, enteredAt] of b.open) {
        booth.dwellTotalMs += Math.max(0, atMs - enteredAt);
        booth.current.add(key);
      }
      for (const key of b.visitors) booth.visitors.add(key);
    }
    for (let i = 0; i < heat.length; i++) heat[i] += map.visitorSeconds[i];
  }

  return {
    hallId: options.hallId,
    fromMs: snapshots.length ? fromMs : atMs,
    toMs: atMs,
    uniqueVisitors: visitors.size,
    currentVisitors: current.size,
    booths: options.booths.map((boothId) => {
      const b = booths.get(boothId)!;
      return {
        boothId,
        visits: b.visits,
        uniqueVisitors: b.visitors.size,
        dwellTotalMs: b.dwellTotalMs,
        dwellMeanMs: b.visits ? b.dwellTotalMs / b.visits : 0,
        currentVisitors: b.current.size,
      };
    }),
    heatmap: { cellSize: options.cellSize, cols, rows, visitorSeconds: heat },
  };
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

function checkTime(value: number, name: string): void {
  if (!Number.isFinite(value)) throw new TypeError(`${name} must be a finite number of epoch milliseconds, got ${value}`);
}

function checkOptions(options: AnalyticsOptions): { cols: number; rows: number } {
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
