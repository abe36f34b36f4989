/**
 * At most `perSecond` lines a second of one kind, so a flood (acks refused at 50 Hz, a
 * room error per heartbeat) cannot bury the lines that matter. The lines held back are
 * counted, and the next line shown says how many.
 *
 * @example
 *   const acks = new LineLimiter(5);
 *   const suffix = acks.take();          // "" or " (12 more not shown)"; undefined: drop the line
 *   if (suffix !== undefined) say("ack", `EXPIRED ...${suffix}`);
 */
export class LineLimiter {
  /** Lines shown per second at most. */
  private readonly perSecond: number;
  /** The clock, ms. */
  private readonly now: () => number;
  /** When the current one-second window began, ms. */
  private windowStart = -Infinity;
  /** Lines shown in the current window. */
  private shown = 0;
  /** Lines held back since the last one shown. */
  private held = 0;

  constructor(perSecond: number, now: () => number = Date.now) {
    this.perSecond = perSecond;
    this.now = now;
  }

  /** The suffix to print with the line, or undefined to drop it. */
  take(): string | undefined {
    const now = this.now();
    if (now - this.windowStart >= 1000) {
      this.windowStart = now;
      this.shown = 0;
    }
    if (this.shown >= this.perSecond) {
      this.held++;
      return undefined;
    }
    this.shown++;
    const suffix = this.held > 0 ? ` (${this.held} more not shown)` : "";
    this.held = 0;
    return suffix;
  }
}
