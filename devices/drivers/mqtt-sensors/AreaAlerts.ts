/**
 * Area alerts with hysteresis: per (area, kind) with a threshold, over the newest reading
 * of each online sensor of that kind in the area. The worst (highest) one decides:
 *
 * - no alert, worst above `raiseAbove`  → raised (CO2 by default: over 1,000 ppm);
 * - alert, worst below `clearBelow`     → cleared (CO2 by default: under 900 ppm);
 * - in between, the alert stays as it is, so a reading that hovers at the threshold does
 *   not make it flap.
 *
 * While raised, the alert follows the current worst sensor and its value. When the area
 * has no online sensor of the kind (sensors silent, broker gone), the alert stays raised
 * with its last figures: the driver cannot tell the air cleared. It clears once a fresh
 * reading is below the clear level, or once every sensor of the kind has left the area
 * (moved, or forgotten after an hour of silence).
 *
 * @example
 *   const alerts = new AreaAlerts({ co2: { raiseAbove: 1000, clearBelow: 900 } });
 *   alerts.evaluate("hall-a", "co2", [{ sensorId: "co2-a", value: 1200 }], true, now);   // { type: "raised", alert: {...} }
 *   alerts.evaluate("hall-a", "co2", [{ sensorId: "co2-a", value: 950 }], true, now);    // undefined: still raised
 *   alerts.evaluate("hall-a", "co2", [{ sensorId: "co2-a", value: 850 }], true, now);    // { type: "cleared", alert: {...} }
 */
import { DEFAULT_THRESHOLDS, isSensorKind, sensorKinds, type AlertThreshold, type SensorKind } from "./limits.ts";

export interface AreaAlert {
  area: string;
  kind: string;
  /** The worst online sensor (or the last one known, while none is online). */
  sensorId: string;
  value: number;
  /** The raise level. */
  threshold: number;
  raisedAtMs: number;
}

export type AlertChange = { type: "raised"; alert: AreaAlert } | { type: "cleared"; alert: AreaAlert; clearedAtMs: number };

/** Per kind: a threshold, or null to switch a default off. */
export type ThresholdOptions = Partial<Record<SensorKind, AlertThreshold | null>>;

/**
 * The defaults with `overrides` applied, checked. Throws a TypeError naming the fix for an
 * unknown kind, a level that is not a finite number within the kind's range, or a clear
 * level above the raise level.
 */
export function resolveThresholds(overrides: ThresholdOptions = {}): Map<SensorKind, AlertThreshold> {
  if (typeof overrides !== "object" || overrides === null) throw new TypeError("thresholds must be an object: { co2: { raiseAbove, clearBelow } }");
  const merged: Record<string, AlertThreshold | null | undefined> = { ...DEFAULT_THRESHOLDS, ...overrides };
  const thresholds = new Map<SensorKind, AlertThreshold>();
  for (const [kind, threshold] of Object.entries(merged)) {
    if (!isSensorKind(kind)) throw new TypeError(`thresholds: unknown kind ${JSON.stringify(kind)}; kinds: ${Object.keys(sensorKinds).join(", ")}`);
    if (threshold === null || threshold === undefined) continue;
    const { raiseAbove, clearBelow } = threshold;
    const { min, max, unit } = sensorKinds[kind];
    for (const [name, level] of [["raiseAbove", raiseAbove], ["clearBelow", clearBelow]] as const) {
      if (typeof level !== "number" || !Number.isFinite(level) || level < min || level > max) {
        throw new TypeError(`thresholds.${kind}.${name} must be a number within ${min}-${max} ${unit}, got ${String(level)}`);
      }
    }
    if (clearBelow > raiseAbove) throw new TypeError(`thresholds.${kind}: clearBelow ${clearBelow} is above raiseAbove ${raiseAbove}; it must be at or below it (below it for hysteresis)`);
    thresholds.set(kind, { raiseAbove, clearBelow });
  }
  return thresholds;
}

export class AreaAlerts {
  private readonly thresholds: ReadonlyMap<SensorKind, AlertThreshold>;
  /** Active alerts by `${kind}\0${area}`. */
  private readonly activeAlerts = new Map<string, AreaAlert>();

  constructor(thresholds: ThresholdOptions | ReadonlyMap<SensorKind, AlertThreshold>) {
    this.thresholds = thresholds instanceof Map ? thresholds : resolveThresholds(thresholds as ThresholdOptions);
  }

  /** Whether readings of `kind` can raise an alert. */
  watches(kind: SensorKind): boolean {
    return this.thresholds.has(kind);
  }

  /**
   * Re-evaluates one group from its online readings; `known` says whether the area still
   * holds any sensor of the kind, online or not. Returns the change, if any.
   */
  evaluate(area: string, kind: SensorKind, online: ReadonlyArray<{ sensorId: string; value: number }>, known: boolean, nowMs: number): AlertChange | undefined {
    const threshold = this.thresholds.get(kind);
    if (!threshold) return undefined;
    const key = `${kind}\u0000${area}`;
    const active = this.activeAlerts.get(key);
    let worst: { sensorId: string; value: number } | undefined;
    for (const reading of online) {
      if (!worst || reading.value > worst.value || (reading.value === worst.value && reading.sensorId < worst.sensorId)) worst = reading;
    }
    if (!active) {
      if (!worst || !(worst.value > threshold.raiseAbove)) return undefined;
      const alert: AreaAlert = { area, kind, sensorId: worst.sensorId, value: worst.value, threshold: threshold.raiseAbove, raisedAtMs: nowMs };
      this.activeAlerts.set(key, alert);
      return { type: "raised", alert: { ...alert } };
    }
    if (worst ? worst.value < threshold.clearBelow : !known) {
      this.activeAlerts.delete(key);
      if (worst) {
        active.sensorId = worst.sensorId;
        active.value = worst.value;
      }
      return { type: "cleared", alert: active, clearedAtMs: nowMs };
    }
    if (worst) {
      active.sensorId = worst.sensorId;
      active.value = worst.value;
    }
    return undefined;
  }

  /** The active alerts, by area then kind; copies. */
  active(): AreaAlert[] {
    return [...this.activeAlerts.values()]
      .map((alert) => ({ ...alert }))
      .sort((a, b) => (a.area < b.area ? -1 : a.area > b.area ? 1 : a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0));
  }
}
