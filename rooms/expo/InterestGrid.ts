/**
 * Area of interest for an expo hall: a uniform grid of square cells over the hall that
 * answers "who is within r of here" without looking at everyone.
 *
 * This is the hot path of the ExpoRoom: every visitor asks for its neighbours once per
 * tick, thousands of times per tick on one thread. So a query allocates nothing and
 * costs O(cells touched + items in them); a move costs O(1) and touches the cells only
 * when the item actually crosses into another cell.
 *
 * The bookkeeping lives on the items themselves (`gridCell`, `gridSlot`): each cell is a
 * flat array, and removing an item swaps the cell's last item into its slot.
 *
 * Positions outside the hall (0..width, 0..height) are bucketed in the nearest border
 * cell, so nothing is ever lost: a visitor who strays past a wall, or a bad client
 * position that got through, is still found by every query that reaches it. The stored
 * x and y stay exactly as given, and all distance checks use them.
 *
 * @example
 *   const grid = new InterestGrid<Visitor>(hall.width, hall.height, interestRadius);
 *   grid.insert(visitor);                         // at visitor.x, visitor.y
 *   grid.move(visitor, move.x, move.y);           // on each VisitorMove
 *   grid.queryRadius(me.x, me.y, interestRadius, collectNeighbour);  // per tick
 *   grid.remove(visitor);                         // on leave
 */

/** The most cells a grid may have (2,000 × 2,000): each cell costs a slot even while empty. */
export const MAX_GRID_CELLS = 4_000_000;

/**
 * Query windows are widened by this fraction of their coordinates' magnitude, so that
 * floating-point rounding in `x - r` can never leave out a cell holding an item that the
 * exact distance test accepts. The widening only adds candidates, which the distance
 * test then filters: results are never affected, only (rarely) one more row of cells.
 */
const WINDOW_SLACK = 2 ** -40;

/**
 * What the grid stores. The grid owns the two `grid*` fields: callers never set them.
 *
 * A freshly constructed item may leave `gridCell` undefined (a class that only declares
 * the field): `undefined` and `-1` both mean "not inserted". After `remove()` or
 * `clear()` the grid sets `gridCell` to -1.
 */
export interface GridItem {
  x: number;
  y: number;
  /** Owned by the grid: the index of the cell holding the item, or -1 (or undefined) when not inserted. */
  gridCell: number;
  /** Owned by the grid: the item's index within its cell. Meaningless while not inserted. */
  gridSlot: number;
}

/**
 * A uniform-grid spatial index over a `width` × `height` hall.
 *
 * Queries call `visit` synchronously, once per matching item, in no particular order.
 * `visit` may read the grid (run other queries, read `size`) but must not change it
 * (insert, move, remove, clear) during the query: the cell being scanned would shift
 * under it and items could be skipped or seen twice. This is not guarded; collect what
 * to change and apply it after the query returns.
 */
export class InterestGrid<T extends GridItem> {
  /** Hall size and cell edge, in the same unit as the positions (metres). */
  readonly width: number;
  readonly height: number;
  readonly cellSize: number;
  /** Cells per row (along x) and per column (along y). */
  readonly columns: number;
  readonly rows: number;

  private readonly inverseCellSize: number;
  /** One flat array per cell, `rows * columns` of them, row-major; created on first use. */
  private readonly cells: (T[] | undefined)[];
  /** Indices of the cells that have an array, so clear() need not walk every cell. */
  private readonly usedCells: number[] = [];
  private count = 0;

  /**
   * @param width hall size along x (> 0, finite)
   * @param height hall size along y (> 0, finite)
   * @param cellSize edge of a square cell (> 0, finite). About the query radius is a
   *   good choice: a radius query then touches 3 × 3 or 4 × 4 cells.
   * @throws RangeError for a value that is not a positive finite number, or for a grid
   *   of more than MAX_GRID_CELLS cells.
   */
  constructor(width: number, height: number, cellSize: number) {
    for (const [name, value] of [["width", width], ["height", height], ["cellSize", cellSize]] as const) {
      if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
        throw new RangeError(`InterestGrid: ${name} must be a positive finite number, got ${String(value)}`);
      }
    }
    const columns = Math.max(1, Math.ceil(width / cellSize));
    const rows = Math.max(1, Math.ceil(height / cellSize));
    if (!(columns * rows <= MAX_GRID_CELLS)) {
      throw new RangeError(`InterestGrid: ${width} × ${height} in cells of ${cellSize} makes ${columns} × ${rows} cells, more than ${MAX_GRID_CELLS}: use larger cells`);
    }
    this.width = width;
    this.height = height;
    this.cellSize = cellSize;
    this.columns = columns;
    this.rows = rows;
    this.inverseCellSize = 1 / cellSize;
    // Filled (not holey), so reading an unused cell is a plain load.
    this.cells = new Array<T[] | undefined>(columns * rows).fill(undefined);
  }

  /** How many items the grid holds. */
  get size(): number {
    return this.count;
  }

  /**
   * Adds `item` at its current `x`, `y`.
   * @throws Error if the item is already inserted (its `gridCell` is >= 0), here or in another grid.
   */
  insert(item: T): void {
    if (item.gridCell >= 0) {
      throw new Error(`InterestGrid.insert: the item is already inserted (gridCell ${item.gridCell})`);
    }
    this.attach(item, this.cellOf(item.x, item.y));
    this.count++;
  }

  /**
   * Sets `item.x` and `item.y`, and moves the item to another cell only when the new
   * position lies in another cell: a step within a cell touches no array. On an item
   * that is not inserted it only stores the position, for a later insert(); as with
   * remove(), that is no error.
   * @throws Error if the item is inserted, but in another grid.
   */
  move(item: T, x: number, y: number): void {
    const cell = item.gridCell;
    if (!(cell >= 0)) {
      item.x = x;
      item.y = y;
      return;
    }
    this.checkMembership(item, "move");
    item.x = x;
    item.y = y;
    const next = this.cellOf(x, y);
    if (next === cell) return;
    this.detach(item, cell);
    this.attach(item, next);
  }

  /**
   * Takes `item` out of the grid and sets its `gridCell` to -1. Does nothing if the item
   * is not inserted (`gridCell` undefined or -1).
   * @throws Error if the item is inserted, but in another grid.
   */
  remove(item: T): void {
    const cell = item.gridCell;
    if (!(cell >= 0)) return;
    this.checkMembership(item, "remove");
    this.detach(item, cell);
    item.gridCell = -1;
    item.gridSlot = -1;
    this.count--;
  }

  /**
   * Calls `visit(item)` once for every item with `dx * dx + dy * dy <= r * r` (inclusive),
   * where dx, dy run from (x, y) to the item's stored position; in no particular order.
   * A negative or NaN `r` visits nothing; `r = Infinity` visits every item with a finite
   * position. Allocates nothing. `visit` must not change the grid (see the class).
   */
  queryRadius(x: number, y: number, r: number, visit: (item: T) => void): void {
    if (!(r >= 0) || x !== x || y !== y || this.count === 0) return;
    let c0: number, c1: number, r0: number, r1: number;
    if (r < Infinity && Number.isFinite(x) && Number.isFinite(y)) {
      const reach = r + (Math.abs(x) + Math.abs(y) + r) * WINDOW_SLACK;
      c0 = this.columnOf(x - reach);
      c1 = this.columnOf(x + reach);
      r0 = this.rowOf(y - reach);
      r1 = this.rowOf(y + reach);
    } else {
      // An infinite radius or centre: the window arithmetic would give NaN; scan it all.
      c0 = 0; c1 = this.columns - 1; r0 = 0; r1 = this.rows - 1;
    }
    const rr = r * r;
    const cells = this.cells;
    const columns = this.columns;
    for (let row = r0; row <= r1; row++) {
      const end = row * columns + c1;
      for (let index = row * columns + c0; index <= end; index++) {
        const cell = cells[index];
        if (cell === undefined) continue;
        for (let slot = 0, n = cell.length; slot < n; slot++) {
          const item = cell[slot];
          const dx = item.x - x;
          const dy = item.y - y;
          if (dx * dx + dy * dy <= rr) visit(item);
        }
      }
    }
  }

  /** Removes every item (each gets `gridCell` -1). Keeps the cell arrays for reuse. */
  clear(): void {
    for (const index of this.usedCells) {
      const cell = this.cells[index]!;
      for (const item of cell) {
        item.gridCell = -1;
        item.gridSlot = -1;
      }
      cell.length = 0;
    }
    this.count = 0;
  }

  /** The cell holding position (x, y): outside the hall, the nearest border cell; NaN goes to cell 0. */
  private cellOf(x: number, y: number): number {
    return this.rowOf(y) * this.columns + this.columnOf(x);
  }

  private columnOf(x: number): number {
    const c = x * this.inverseCellSize;
    // Written so that NaN and -Infinity fall through to 0.
    return c >= this.columns ? this.columns - 1 : c > 0 ? Math.floor(c) : 0;
  }

  private rowOf(y: number): number {
    const r = y * this.inverseCellSize;
    return r >= this.rows ? this.rows - 1 : r > 0 ? Math.floor(r) : 0;
  }

  private attach(item: T, index: number): void {
    let cell = this.cells[index];
    if (cell === undefined) {
      cell = [];
      this.cells[index] = cell;
      this.usedCells.push(index);
    }
    item.gridCell = index;
    item.gridSlot = cell.length;
    cell.push(item);
  }

  /** Swap-remove: the cell's last item takes the leaving item's slot. */
  private detach(item: T, index: number): void {
    const cell = this.cells[index]!;
    const last = cell.pop()!;
    if (last !== item) {
      cell[item.gridSlot] = last;
      last.gridSlot = item.gridSlot;
    }
  }

  /** A cheap guard against items of another grid and against callers writing the grid* fields. */
  private checkMembership(item: T, operation: string): void {
    if (this.cells[item.gridCell]?.[item.gridSlot] !== item) {
      throw new Error(`InterestGrid.${operation}: the item is not in this grid (gridCell ${item.gridCell}, gridSlot ${item.gridSlot})`);
    }
  }
}
