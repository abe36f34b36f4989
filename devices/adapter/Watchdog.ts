/**
 * The adapter's watchdog (DESIGN.md, "Teleoperation safety model"): if no valid command
 * or heartbeat arrives within the device's window, motion must stop and the stop must
 * latch. A pure state machine with no timers: time comes in as `now` (any monotonic
 * milliseconds), and the owner polls `check(now)` often enough, e.g. every
 * min(20, window / 4) ms, and acts on the trip (zero motion, tell the gateway).
 *
 *   disarmed --arm(now)--> armed --feed(now)--> armed
 *   armed --check(now) more than windowMs after the last feed--> tripped (latched)
 *   tripped --arm(now)--> armed (the latch clears only by arming again)
 *   any --disarm()--> disarmed (a latch stays latched)
 *
 * `check` returns true exactly once per trip, on the call that trips it, so the owner's
 * stop runs once; `tripped` tells the latched state at any time.
 *
 * @example
 *   const watchdog = new Watchdog(200);
 *   watchdog.arm(performance.now());                 // a lease became current
 *   onCommandApplied(() => watchdog.feed(performance.now()));
 *   setInterval(() => {
 *     if (watchdog.check(performance.now())) hal.zeroMotion();   // once per trip
 *   }, Math.min(20, watchdog.windowMs / 4));
 */

export class Watchdog {
  /** Longest allowed silence, ms: a check more than this long after the last feed trips. */
  readonly windowMs: number;
  /** Whether the watchdog is watching (a lease is current). */
  private isArmed = false;
  /** Whether it tripped and has not been re-armed since. */
  private latched = false;
  /** Time of the last feed (or of arming), in the owner's monotonic ms. */
  private lastFedAt = 0;

  constructor(windowMs: number) {
    if (typeof windowMs !== "number" || !Number.isFinite(windowMs) || windowMs <= 0) {
      throw new TypeError(`Watchdog needs a window in ms, a finite number > 0, got ${String(windowMs)}`);
    }
    this.windowMs = windowMs;
  }

  /** Whether the watchdog is watching. */
  get armed(): boolean {
    return this.isArmed;
  }

  /** Whether it tripped and is latched (until the next arm()). */
  get tripped(): boolean {
    return this.latched;
  }

  /** When the last feed (or arm) happened, owner's ms; 0 before the first. */
  get lastFed(): number {
    return this.lastFedAt;
  }

  /** Starts (or restarts) watching from `now`, clearing any latch. */
  arm(now: number): void {
    checkTime(now, "arm");
    this.isArmed = true;
    this.latched = false;
    this.lastFedAt = now;
  }

  /** Stops watching. A latched trip stays latched: only arm() clears it. */
  disarm(): void {
    this.isArmed = false;
  }

  /**
   * A valid command or heartbeat arrived. Ignored unless armed and not latched: a feed
   * after a trip proves nothing about the lease that tripped.
   */
  feed(now: number): void {
    checkTime(now, "feed");
    if (!this.isArmed || this.latched) return;
    // a clock that went backwards must not push the deadline into the past
    if (now > this.lastFedAt) this.lastFedAt = now;
  }

  /**
   * Trips when armed, not latched, and more than windowMs have passed since the last
   * feed. Returns true only on the call that trips it; a latched watchdog answers false
   * (see `tripped`).
   */
  check(now: number): boolean {
    checkTime(now, "check");
    if (!this.isArmed || this.latched) return false;
    if (now - this.lastFedAt <= this.windowMs) return false;
    this.latched = true;
    this.isArmed = false;
    return true;
  }

  /** Milliseconds left before a trip (0 when it would trip now); Infinity when disarmed or latched. */
  remaining(now: number): number {
    checkTime(now, "remaining");
    if (!this.isArmed || this.latched) return Infinity;
    return Math.max(0, this.lastFedAt + this.windowMs - now);
  }
}

/** A time that is not a finite number is a caller bug, not a reason to trip or not. */
function checkTime(now: number, operation: string): void {
  if (typeof now !== "number" || !Number.isFinite(now)) {
    throw new TypeError(`Watchdog.${operation}(now) needs a finite number of ms, got ${String(now)}`);
  }
}
