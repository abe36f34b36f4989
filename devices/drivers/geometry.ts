/** Small numeric helpers shared by the simulated drivers. */

/** Wraps an angle to (-π, π], so headings stay comparable however long a machine turns. */
export function wrapAngle(radians: number): number {
  const wrapped = radians - 2 * Math.PI * Math.floor((radians + Math.PI) / (2 * Math.PI));
  return wrapped === -Math.PI ? Math.PI : wrapped;
}

export function clamp(value: number, min: number, max: number): number {
  return value < min ? min : value > max ? max : value;
}

/** Throws a TypeError unless `dtMs` is a finite, positive number of milliseconds. */
export function checkStep(dtMs: number): void {
  if (typeof dtMs !== "number" || !Number.isFinite(dtMs) || dtMs <= 0) {
    throw new TypeError(`step(dtMs) needs a finite number of milliseconds > 0, got ${String(dtMs)}`);
  }
}
