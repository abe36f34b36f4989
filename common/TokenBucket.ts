/**
 * The one rate limiter of the project: a token bucket, `ratePerSecond` tokens a second
 * up to `burst`. Chat, moves and host commands in the expo hall, matchmaking per token,
 * and a device's command allowance in a teleop room all use it.
 *
 * @example
 *   const bucket = new TokenBucket(1, 5);              // 1 a second, bursts of 5
 *   if (!bucket.take()) return refuse(RATE_LIMITED, bucket.retryAfterMs());
 */

/**
 * Tokens this close to a whole request count as enough, so that rounding in the refill
 * arithmetic cannot make a request fail after waiting exactly `retryAfterMs()`.
 */
const TOKEN_EPSILON = 1e-9;

function requirePositive(name: string, value: number) {
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    throw new RangeError(`TokenBucket: ${name} must be a positive finite number, got ${String(value)}`);
  }
}

function requireCount(count: number) {
  if (typeof count !== "number" || !Number.isFinite(count) || count < 0) {
    throw new RangeError(`TokenBucket: count must be a finite number >= 0, got ${String(count)}`);
  }
}

/**
 * Token bucket: `ratePerSecond` tokens/s, up to `burst`; starts full. `now` is
 * injectable for tests (default Date.now), in milliseconds.
 *
 * Refill is continuous (fractional tokens accrue between calls); there are no timers.
 * A clock that steps backwards refills nothing until it is past the latest time seen
 * again, so a clock step can never hand out extra tokens.
 */
export class TokenBucket {
  readonly ratePerSecond: number;
  readonly burst: number;
  private readonly now: () => number;
  private tokens: number;
  private last: number;

  /** @throws RangeError if `ratePerSecond` or `burst` is not a positive finite number. */
  constructor(ratePerSecond: number, burst: number, now: () => number = Date.now) {
    requirePositive("ratePerSecond", ratePerSecond);
    requirePositive("burst", burst);
    this.ratePerSecond = ratePerSecond;
    this.burst = burst;
    this.now = now;
    this.tokens = burst;
    this.last = now();
  }

  /**
   * Takes `count` tokens (default 1) if the bucket holds them, and says whether it did.
   * A refused take takes nothing. `take(0)` is always true.
   * @throws RangeError for a negative or non-finite count.
   */
  take(count = 1): boolean {
    requireCount(count);
    this.refill();
    if (this.tokens + TOKEN_EPSILON < count) return false;
    this.tokens = Math.max(0, this.tokens - count);
    return true;
  }

  /**
   * ms until `count` tokens (default 1) are available (0 if now), rounded up to a whole
   * millisecond: a take(count) after waiting this long succeeds, unless something else
   * took tokens meanwhile. Infinity for a count above `burst`, which never fits.
   * Takes nothing.
   * @throws RangeError for a negative or non-finite count.
   */
  retryAfterMs(count = 1): number {
    requireCount(count);
    this.refill();
    const missing = count - TOKEN_EPSILON - this.tokens;
    if (missing <= 0) return 0;
    if (count > this.burst) return Infinity;
    return Math.max(1, Math.ceil((missing * 1000) / this.ratePerSecond));
  }

  /** Whether the bucket holds its whole burst again: it then behaves as a new one, and a keeper of many may drop it. */
  isFull(): boolean {
    this.refill();
    return this.tokens + TOKEN_EPSILON >= this.burst;
  }

  private refill() {
    const t = this.now();
    if (!(t > this.last)) return;
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) * this.ratePerSecond) / 1000);
    this.last = t;
  }
}
