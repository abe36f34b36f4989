/**
 * How long the adapter waits before it tries a gateway again: full-jitter backoff after a
 * failed cycle, and a longer, jittered wait after a conflict (another adapter runs as this
 * device). Pure functions of the failures and a random draw, so GatewayConnection's loop
 * stays about the cycle.
 *
 * @example
 *   const delayMs = conflict ? conflictDelayMs(30_000) : backoffDelayMs(failures, 500, 30_000);
 */

/**
 * Full-jitter backoff: uniform in [0, cap), the cap doubling per failure since the last
 * welcome from `initialMs`, never above `maxMs`.
 */
export function backoffDelayMs(failures: number, initialMs: number, maxMs: number, random: () => number = Math.random): number {
  const cap = Math.min(maxMs, initialMs * 2 ** Math.min(Math.max(0, failures), 30));
  const draw = random();
  return Math.floor((draw >= 0 && draw < 1 ? draw : 0.5) * cap);
}

/** The wait after a conflict: between half of `conflictBackoffMs` and all of it, so two refused adapters do not retry in step. */
export function conflictDelayMs(conflictBackoffMs: number, random: () => number = Math.random): number {
  const draw = random();
  return Math.floor(conflictBackoffMs * (0.5 + 0.5 * (draw >= 0 && draw < 1 ? draw : 0.5)));
}
