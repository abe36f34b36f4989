/**
 * A value loaded at most once per `ttlMs`, shared by everyone who asks meanwhile (the
 * requests in flight too). A failed load is not kept: the next caller tries again.
 *
 * @example
 *   const nodes = new Cached(() => registry.list(), 1000);
 *   await nodes.get(); // one registry read per second, however many ask
 */
export class Cached<T> {
  /** The current load, and when it began (ms). */
  private current?: { value: Promise<T>; loadedAt: number };

  constructor(
    private readonly load: () => Promise<T>,
    private readonly ttlMs: number,
    /** Milliseconds, injectable for tests. */
    private readonly now: () => number = Date.now,
  ) {}

  get(): Promise<T> {
    const now = this.now();
    if (this.current && now - this.current.loadedAt < this.ttlMs) return this.current.value;
    const entry = { value: this.load(), loadedAt: now };
    this.current = entry;
    entry.value.catch(() => { if (this.current === entry) this.current = undefined; });
    return entry.value;
  }
}
