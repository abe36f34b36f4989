/**
 * The waits between attempts to reach the broker: exponential from RECONNECT_INITIAL_MS
 * (0.5 s), doubling per failed attempt, capped at RECONNECT_MAX_MS (10 s), each drawn
 * from [wait·(1 − RECONNECT_JITTER), wait] so drivers that lost the same broker do not
 * knock on it in step. A successful connection starts the sequence again.
 *
 * @example
 *   const backoff = new ReconnectBackoff();
 *   backoff.next();   // ~0.4-0.5 s
 *   backoff.next();   // ~0.8-1 s, then 2, 4, 8, 10, 10 … s
 *   backoff.reset();  // connected
 */
import { RECONNECT_INITIAL_MS, RECONNECT_JITTER, RECONNECT_MAX_MS } from "./limits.ts";

export class ReconnectBackoff {
  private readonly initialMs: number;
  private readonly maxMs: number;
  /** Uniform in [0, 1); injectable for tests. */
  private readonly random: () => number;
  /** Failed attempts since the last connection. */
  private failures = 0;

  constructor(options: { initialMs?: number; maxMs?: number; random?: () => number } = {}) {
    this.initialMs = options.initialMs ?? RECONNECT_INITIAL_MS;
    this.maxMs = options.maxMs ?? RECONNECT_MAX_MS;
    this.random = options.random ?? Math.random;
    if (!(this.initialMs > 0 && this.maxMs >= this.initialMs)) throw new RangeError("ReconnectBackoff needs 0 < initialMs <= maxMs");
  }

  /** Attempts waited for since the last reset. */
  get attempts(): number {
    return this.failures;
  }

  /** The wait before the next attempt, ms. */
  next(): number {
    const ceiling = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.failures, 30));
    this.failures++;
    const draw = this.random();
    return Math.round(ceiling * (1 - RECONNECT_JITTER * (draw >= 0 && draw < 1 ? draw : 0.5)));
  }

  reset(): void {
    this.failures = 0;
  }
}
