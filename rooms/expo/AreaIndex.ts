/**
 * Which areas (or booths) a point is in or near, without testing every area of a big
 * hall for every visitor that moved: rectangles are bucketed into a coarse grid once,
 * and a lookup tests only the few in the point's cell.
 */
import type { Rect } from "./HallLayout.ts";

export interface IndexedArea { id: string; rect: Rect }

export class AreaIndex {
  private readonly cols: number;
  private readonly rows: number;
  private readonly cells: IndexedArea[][];

  /**
   * @param reach a point within `reach` metres of an area counts (0: inside only).
   */
  constructor(private readonly areas: readonly IndexedArea[], width: number, height: number, private readonly reach: number, private readonly cellSize = 10) {
    this.cols = Math.max(1, Math.ceil(width / cellSize));
    this.rows = Math.max(1, Math.ceil(height / cellSize));
    this.cells = Array.from({ length: this.cols * this.rows }, () => []);
    for (const area of areas) {
      const { x, y, w, h } = area.rect;
      const c0 = this.col(x - reach), c1 = this.col(x + w + reach);
      const r0 = this.row(y - reach), r1 = this.row(y + h + reach);
      for (let r = r0; r <= r1; r++) for (let c = c0; c <= c1; c++) this.cells[r * this.cols + c].push(area);
    }
  }

  /** Calls visit(id) for every area the point is in (or within `reach` of). */
  query(x: number, y: number, visit: (id: string) => void): void {
    const cell = this.cells[this.row(y) * this.cols + this.col(x)];
    const reach2 = this.reach * this.reach;
    for (let i = 0; i < cell.length; i++) {
      const { rect, id } = cell[i];
      const dx = x < rect.x ? rect.x - x : x > rect.x + rect.w ? x - rect.x - rect.w : 0;
      const dy = y < rect.y ? rect.y - y : y > rect.y + rect.h ? y - rect.y - rect.h : 0;
      if (dx * dx + dy * dy <= reach2) visit(id);
    }
  }

  get size(): number { return this.areas.length; }

  private col(x: number): number { return Math.min(this.cols - 1, Math.max(0, Math.floor(x / this.cellSize))); }
  private row(y: number): number { return Math.min(this.rows - 1, Math.max(0, Math.floor(y / this.cellSize))); }
}
