/**
 * Bounds the log lines one sender's refusals cause: at most `perSecond` lines per key (an
 * error code) in each one-second window (FloodWindow), the rest held back and counted, and
 * the count told with the next line written. Every refusal is still counted in the
 * metrics and answered to its sender; only the log is bounded, so a flood of bad input
 * cannot become a flood of log lines.
 *
 * @example
 *   const heldBack = throttle.admit(code);
 *   if (heldBack !== undefined) logger.warn({ code, heldBack }, message);
 */
import { FloodWindow } from "./FloodWindow.ts";

/** Log lines per sender and key in each second. */
export const LOG_LINES_PER_SECOND = 1;
/** Keys a throttle tracks; beyond this it starts afresh (keys are error codes: a few dozen). */
const MAX_KEYS = 64;

export class LogThrottle {
  /** Lines allowed per key and second. */
  private readonly perSecond: number;
  /** Milliseconds since the epoch, injectable for tests. */
  private readonly now: () => number;
  /** A window per key. */
  private readonly windows = new Map<string | number, FloodWindow>();

  constructor(perSecond: number = LOG_LINES_PER_SECOND, now: () => number = Date.now) {
    this.perSecond = perSecond;
    this.now = now;
  }

  /**
   * Whether to write a line for `key` now: undefined to hold it back, otherwise how many
   * lines for `key` were held back since the last one written (0 for none).
   */
  admit(key: string | number): number | undefined {
    let window = this.windows.get(key);
    if (!window) {
      if (this.windows.size >= MAX_KEYS) this.windows.clear();
      window = new FloodWindow(this.perSecond, this.now);
      this.windows.set(key, window);
    }
    if (!window.admit()) { window.drop(); return undefined; }
    return window.takeOverCount();
  }
}
