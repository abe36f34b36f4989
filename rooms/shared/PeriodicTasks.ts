/**
 * A room's periodic work, each task first run at a random phase of its period, then
 * every period.
 *
 * Rooms created together (a site's rooms opened at once, a hundred machines after a
 * node restart) would otherwise run their every-100-ms work in the same millisecond.
 * Node timers of one duration fire in one batch, so that work is a node-wide burst:
 * a hundred telemetry fan-outs, or a hundred audit summaries, back to back. Every
 * command and e-stop arriving meanwhile waits it out. Spread over the period, the same
 * work is a few tens of microseconds at a time.
 *
 * @example
 *   const tasks = new PeriodicTasks();
 *   tasks.every(100, () => this.fanOutTelemetry());
 *   // on dispose
 *   tasks.stop();
 */
export class PeriodicTasks {
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = false;

  /** @param random Source of each task's phase in [0, 1); injectable for tests. */
  constructor(private readonly random: () => number = Math.random) {}

  /** Runs `task` every `periodMs`, the first time after a random part of one period. */
  every(periodMs: number, task: () => void): void {
    if (this.stopped) throw new Error("PeriodicTasks: every() after stop()");
    const phaseMs = Math.floor(this.random() * periodMs);
    const first = setTimeout(() => {
      this.timers.delete(first);
      if (this.stopped) return;
      this.timers.add(setInterval(task, periodMs));
      task();
    }, phaseMs);
    this.timers.add(first);
  }

  /** Stops every task, including those not yet run once. */
  stop(): void {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer); // clears intervals too
    this.timers.clear();
  }
}
