/**
 * Repeated refusals of one kind to one client: the first of each interval is told (a
 * coded error and a log line), the rest only counted. A client that floods would
 * otherwise get, and make the node log, one error per message: a flood of our own.
 *
 * Keyed by the client's session id and the error code, which the server assigns and the
 * sender cannot choose. Entries older than the interval mean nothing, and are swept once
 * the map grows, so it holds at most the clients refused within the last interval.
 *
 * @example
 *   const refusals = new RefusalThrottle();
 *   if (refusals.tell(client.sessionId, ErrorCode.RATE_LIMITED)) reject(client, code, message);
 *   else countOnly(code);
 */

/** Repeated refusals of one kind to one client: one told per this long, the rest only counted, ms. */
export const REFUSAL_INTERVAL_MS = 1000;
/** Entries kept before expired ones are swept. */
const SWEEP_ABOVE = 1024;

export class RefusalThrottle {
  /** When each (session, code) was last told, ms. */
  private readonly toldAt = new Map<string, number>();
  /** Milliseconds since the epoch, injectable for tests. */
  private readonly now: () => number;

  constructor(now: () => number = Date.now) {
    this.now = now;
  }

  /** Whether to tell `sessionId` of this refusal (true at most once per interval per code); false: count it only. */
  tell(sessionId: string, code: number): boolean {
    const now = this.now();
    const key = `${code} ${sessionId}`;
    const last = this.toldAt.get(key);
    if (last !== undefined && now - last < REFUSAL_INTERVAL_MS) return false;
    if (this.toldAt.size >= SWEEP_ABOVE) this.sweep(now);
    this.toldAt.set(key, now);
    return true;
  }

  /** How many (session, code) entries are held: for tests. */
  get size(): number {
    return this.toldAt.size;
  }

  private sweep(now: number): void {
    for (const [key, at] of this.toldAt) if (now - at >= REFUSAL_INTERVAL_MS) this.toldAt.delete(key);
  }
}
