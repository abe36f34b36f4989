/**
 * The flood limit of one sender: at most `perSecond` messages in each one-second window,
 * counted as they arrive, before anything is decoded. The excess is dropped; the sender is
 * told once per window (more would be a flood of our own), and the rest only counted. The
 * caller decides what always passes (an e-stop: stopping is always allowed).
 *
 * A fixed window, not a TokenBucket: it answers "tell the sender now, or only count" as
 * well as "pass or drop", and costs two comparisons per message on the hottest path.
 *
 * @example
 *   const verdict = flood.admit();
 *   if (verdict === "over-first") reportRateLimited(); else if (verdict === "over") countRateLimited();
 *   if (verdict !== "within" && !isStop) return; // dropped
 */
export type FloodVerdict =
  /** Within the limit. */
  | "within"
  /** The first message over the limit in this window: tell the sender. */
  | "over-first"
  /** Over the limit again in this window: count it only. */
  | "over";

export class FloodWindow {
  /** Messages allowed per window. */
  readonly perSecond: number;
  /** Milliseconds since the epoch, injectable for tests. */
  private readonly now: () => number;
  /** When the current window ends, ms. */
  private windowEndsAt = -Infinity;
  /** Messages counted in the current window. */
  private count = 0;
  /** Messages over the limit since the last one within it, for a "held back" note. */
  private overSinceWithin = 0;

  /** @throws RangeError if `perSecond` is not a positive finite number. */
  constructor(perSecond: number, now: () => number = Date.now) {
    if (!(perSecond > 0) || !Number.isFinite(perSecond)) throw new RangeError(`FloodWindow: perSecond must be a positive finite number, got ${String(perSecond)}`);
    this.perSecond = perSecond;
    this.now = now;
  }

  /** Counts one message and says whether it is within the limit. */
  admit(): FloodVerdict {
    const now = this.now();
    if (now >= this.windowEndsAt) {
      this.windowEndsAt = now + 1000;
      this.count = 0;
    }
    this.count++;
    if (this.count <= this.perSecond) return "within";
    this.overSinceWithin++;
    return this.count === this.perSecond + 1 ? "over-first" : "over";
  }

  /** How many messages went over the limit since the last one within it; resets the count. */
  takeOverCount(): number {
    const over = this.overSinceWithin;
    this.overSinceWithin = 0;
    return over;
  }
}
