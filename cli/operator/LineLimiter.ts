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
import { FloodWindow } from "../../common/FloodWindow.ts";

export class LineLimiter {
  /** The lines of each one-second window, counted as they come. */
  private readonly window: FloodWindow;

  constructor(perSecond: number, now: () => number = Date.now) {
    this.window = new FloodWindow(perSecond, now);
  }

  /** The suffix to print with the line, or undefined to drop it. */
  take(): string | undefined {
    if (!this.window.admit()) { this.window.drop(); return undefined; }
    const held = this.window.takeOverCount();
    return held > 0 ? ` (${held} more not shown)` : "";
  }
}
