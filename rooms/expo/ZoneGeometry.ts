/**
 * Where things are in a validated hall layout (HallLayout): a point's zone, a point's
 * distance to a rectangle, the room serving a zone, and which zones come near each other.
 * Pure functions over hall metres (origin at the south-west corner, x east, y north).
 *
 * @example
 *   const zone = zoneAt(layout, 42, 17);
 *   const roomId = zone ? zoneRoomId(layout.hallId, layout, zone.id) : layout.hallId;
 *   const pastBorder = distanceToRect(myZone.rect, x, y) > handoffMargin;
 */
import type { HallLayout, Rect, ZoneLayout } from "./HallLayout.ts";

/** Whether (x, y) lies in `rect`, edges included. */
export function rectContains(rect: Rect, x: number, y: number): boolean {
  return x >= rect.x && x <= rect.x + rect.w && y >= rect.y && y <= rect.y + rect.h;
}

/** 0 for a point in `rect` (edges included), else the Euclidean distance to its nearest point. */
export function distanceToRect(rect: Rect, x: number, y: number): number {
  const dx = Math.max(rect.x - x, 0, x - (rect.x + rect.w));
  const dy = Math.max(rect.y - y, 0, y - (rect.y + rect.h));
  return Math.hypot(dx, dy);
}

/**
 * The zone holding (x, y). Zones are half-open, [x, x+w) × [y, y+h), so a point on the
 * border between two zones belongs to the east / north one; only on the hall's own east
 * and north edges (x == width, y == height) does a point belong to the zone touching them.
 *
 * @returns undefined when the layout has no zones or the point is outside the hall.
 */
export function zoneAt(layout: HallLayout, x: number, y: number): ZoneLayout | undefined {
  if (layout.zones.length === 0) return undefined;
  if (!(x >= 0 && x <= layout.width && y >= 0 && y <= layout.height)) return undefined; // also NaN
  const eps = toleranceOf(layout);
  for (const zone of layout.zones) {
    const r = zone.rect;
    const inX = x >= r.x && (x < r.x + r.w || (x === layout.width && r.x + r.w >= layout.width - eps));
    const inY = y >= r.y && (y < r.y + r.h || (y === layout.height && r.y + r.h >= layout.height - eps));
    if (inX && inY) return zone;
  }
  // Zones may meet with a rounding gap within the validation tolerance: take the zone
  // that is (within that tolerance) nearest.
  let nearest: ZoneLayout | undefined;
  let nearestDistance = eps;
  for (const zone of layout.zones) {
    const distance = distanceToRect(zone.rect, x, y);
    if (distance <= nearestDistance) {
      nearest = zone;
      nearestDistance = distance;
    }
  }
  return nearest;
}

/**
 * The room id serving a zone: the zone holding the spawn point (the hall's entrance) is
 * served by room `hallId` itself, every other zone by `${hallId}--${zoneId}`. For a hall
 * without zones, zone id "" is served by `hallId`.
 *
 * @throws RangeError for a zone id the layout does not have.
 */
export function zoneRoomId(hallId: string, layout: HallLayout, zoneId: string): string {
  if (layout.zones.length === 0) {
    if (zoneId === "") return hallId;
    throw new RangeError(`hall "${layout.hallId}" has no zones, so it has no zone "${zoneId}" (use zone id "")`);
  }
  if (!layout.zones.some((zone) => zone.id === zoneId)) {
    throw new RangeError(`hall "${layout.hallId}" has no zone "${zoneId}" (zones: ${layout.zones.map((z) => z.id).join(", ")})`);
  }
  const entrance = zoneAt(layout, layout.spawn.x, layout.spawn.y);
  return entrance?.id === zoneId ? hallId : `${hallId}--${zoneId}`;
}

/** Absolute tolerance for comparing edges: absorbs rounding in x + w, nothing a person would see. */
export function toleranceOf(layout: { width: number; height: number }): number {
  return 1e-9 * Math.max(layout.width, layout.height);
}

/** The overlap of two rectangles; w or h <= 0 when they do not overlap. */
export function intersection(a: Rect, b: Rect): Rect {
  const x = Math.max(a.x, b.x);
  const y = Math.max(a.y, b.y);
  return { x, y, w: Math.min(a.x + a.w, b.x + b.w) - x, h: Math.min(a.y + a.h, b.y + b.h) - y };
}

/** Whether two rectangles come within `reach` of each other: zones that see across their border. */
export function rectsWithin(a: Rect, b: Rect, reach: number): boolean {
  const dx = Math.max(0, a.x - (b.x + b.w), b.x - (a.x + a.w));
  const dy = Math.max(0, a.y - (b.y + b.h), b.y - (a.y + a.h));
  return dx * dx + dy * dy <= reach * reach;
}
