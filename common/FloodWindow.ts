/**
 * The flood limit of one sender: at most `perSecond` messages in each one-second window,
 * counted as they arrive, before anything is decoded. The caller decides what passes over
 * the limit anyway (an e-stop: stopping is always allowed) and drops the rest through
 * drop(), which says whether to tell the sender: once per window (more would be a flood of
 * our own), the rest only counted. A message that passes over the limit never uses up
 * that one telling.
 *
 * A fixed window, not a TokenBucket: it answers "tell the sender now, or only count" as
 * well as "pass or drop", and costs two comparisons per message on the hottest path.
 *
 * @example
 *   if (!flood.admit() && !isStop) {
 *     if (flood.drop() === "tell") reportRateLimited(); else countRateLimited();
 *     return;
 *   }
 */
/**
 * EStop and Reset frames per second one sender may send past its flood limit: their own
 * small budget, so a stop always gets through and a flood of them cannot. Shared by the
 * client input guard and the device gateway.
 */
export const STOP_FRAMES_PER_SECOND = 10;

export class FloodWindow {
  /** Messages allowed per window. */
  readonly perSecond: number;
  /** Milliseconds since the epoch, injectable for tests. */
  private readonly now: () => number;
  /** When the current window ends, ms. */
  private windowEndsAt = -Infinity;
  /** Messages counted in the current window. */
  private count = 0;
  /** Whether a drop was told to the sender in the current window. */
  private told = false;
  /** Messages dropped since takeOverCount() last read them, for a "held back" note. */
  private dropped = 0;

  /** @throws RangeError if `perSecond` is not a positive finite number. */
  constructor(perSecond: number, now: () => number = Date.now) {
    if (!(perSecond > 0) || !Number.isFinite(perSecond)) throw new RangeError(`FloodWindow: perSecond must be a positive finite number, got ${String(perSecond)}`);
    this.perSecond = perSecond;
    this.now = now;
  }

  /** Counts one message; whether it is within the limit. */
  admit(): boolean {
    const now = this.now();
    if (now >= this.windowEndsAt) {
      this.windowEndsAt = now + 1000;
      this.count = 0;
      this.told = false;
    }
    return ++this.count <= this.perSecond;
  }

  /** A message over the limit is dropped: "tell" the sender for the first of the window, else "count" it only. */
  drop(): "tell" | "count" {
    this.dropped++;
    if (this.told) return "count";
    this.told = true;
    return "tell";
  }

  /** How many messages were dropped since the last call; resets the count. */
  takeOverCount(): number {
    const dropped = this.dropped;
    this.dropped = 0;
    return dropped;
  }
}
