/**
 * One timer for the small periodic checks of many rooms. A node with a hundred teleop
 * rooms checking leases every 20 ms would otherwise run 5,000 timer callbacks a second,
 * each costing more than the check itself; here it runs 50, each walking the rooms'
 * checks. Only for work of a few microseconds per room: heavier periodic work belongs in
 * PeriodicTasks, whose random phases keep rooms from doing it in one burst.
 *
 * @example
 *   const stop = sharedTick(20, () => this.checkLeases(), (error) => logger.error({ err: error }, "lease check failed"));
 *   // on dispose
 *   stop();
 */

/** The checks of one period and the timer that runs them. */
interface Ticker {
  timer: NodeJS.Timeout;
  checks: Set<Check>;
}

/** A room's check, and where its failures go (one room's failure must not stop the others'). */
interface Check {
  run(): void;
  onError(error: unknown): void;
}

/** Tickers by period, ms; a ticker stops when its last check is removed. */
const tickers = new Map<number, Ticker>();

/** Runs `check` every `periodMs` with every other check of that period; returns the function that stops it. */
export function sharedTick(periodMs: number, run: () => void, onError: (error: unknown) => void): () => void {
  if (!(periodMs > 0) || !Number.isFinite(periodMs)) throw new RangeError(`sharedTick: period must be a positive number of ms, got ${periodMs}`);
  let ticker = tickers.get(periodMs);
  if (!ticker) {
    const checks = new Set<Check>();
    const timer = setInterval(() => {
      for (const check of checks) {
        try { check.run(); } catch (error) { check.onError(error); }
      }
    }, periodMs);
    timer.unref();
    tickers.set(periodMs, (ticker = { timer, checks }));
  }
  const check: Check = { run, onError };
  ticker.checks.add(check);
  const owner = ticker;
  return () => {
    if (!owner.checks.delete(check) || owner.checks.size > 0) return;
    clearInterval(owner.timer);
    if (tickers.get(periodMs) === owner) tickers.delete(periodMs);
  };
}
