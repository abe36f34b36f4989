/**
 * Log lines bounded per key (a malformed reason, a broker error): at most one line per key
 * in each `intervalMs` (10 s), the rest held back and counted, and the count told with the
 * next line written for that key. Every message is still counted in the driver's
 * counters; only the log is bounded, so a flood of bad input is not a flood of log lines.
 *
 * The logger is pino-like: `warn(fields, message)`; a pino Logger fits as it is.
 *
 * @example
 *   const log = new RateLimitedLog(logger);
 *   log.warn("json", { topic }, "mqtt-sensors: malformed reading ignored");
 *   // at most one such line per 10 s; the next one carries { suppressed: 41 }
 */
import { LOG_INTERVAL_MS, MAX_LOG_KEYS } from "./limits.ts";

/** What the driver logs through: pino's Logger, or anything with these two methods. */
export interface SensorsLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

/** A logger writing one line of JSON fields per call to stderr, the default. */
export const consoleLogger: SensorsLogger = {
  info: (fields, message) => console.error(`${message} ${JSON.stringify(fields)}`),
  warn: (fields, message) => console.error(`${message} ${JSON.stringify(fields)}`),
};

export class RateLimitedLog {
  private readonly logger: SensorsLogger;
  private readonly intervalMs: number;
  private readonly clock: () => number;
  /** Per key: when its last line was written, and how many were held back since. */
  private readonly keys = new Map<string, { writtenAtMs: number; suppressed: number }>();

  constructor(logger: SensorsLogger, clock: () => number = Date.now, intervalMs = LOG_INTERVAL_MS) {
    this.logger = logger;
    this.clock = clock;
    this.intervalMs = intervalMs;
  }

  /** Writes a warning for `key` unless one was written within the interval; never throws. */
  warn(key: string, fields: object, message: string): void {
    const now = this.clock();
    let entry = this.keys.get(key);
    if (entry && now - entry.writtenAtMs < this.intervalMs) {
      entry.suppressed++;
      return;
    }
    if (!entry) {
      if (this.keys.size >= MAX_LOG_KEYS) this.keys.clear();
      entry = { writtenAtMs: now, suppressed: 0 };
      this.keys.set(key, entry);
    }
    const suppressed = entry.suppressed;
    entry.writtenAtMs = now;
    entry.suppressed = 0;
    try {
      this.logger.warn(suppressed > 0 ? { ...fields, suppressed } : fields, message);
    } catch {
      // a broken logger must not break the message handler that called it
    }
  }
}
