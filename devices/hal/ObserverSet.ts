/**
 * The observers of one component (or of a whole Hal). Delivery is synchronous and in
 * registration order; an observer that throws cannot stop the emitter or the observers
 * after it (compare mediasoup's safeEmit).
 */
import { HalError } from "./errors.ts";
import type { HalObserver } from "./events.ts";

/** Default cap: far above any real use (the Hal, the adapter, a metrics tap), low enough to expose a leak. */
export const DEFAULT_MAX_OBSERVERS = 64;

export class ObserverSet<E> {
  /** Registered observers; a Set so adding the same one twice is harmless. */
  private readonly observers = new Set<HalObserver<E>>();
  /** Id of the component (or "hal") named in OBSERVER_FAILED errors. */
  private readonly ownerId: string;
  /** Registration cap, so a caller that adds an observer per command cannot grow this without bound. */
  private readonly maxObservers: number;

  constructor(ownerId: string, maxObservers = DEFAULT_MAX_OBSERVERS) {
    this.ownerId = ownerId;
    this.maxObservers = maxObservers;
  }

  get size(): number {
    return this.observers.size;
  }

  add(observer: HalObserver<E>): void {
    if (this.observers.has(observer)) return;
    if (this.observers.size >= this.maxObservers) {
      throw new HalError("TOO_MANY_OBSERVERS", `${this.ownerId}: already ${this.maxObservers} observers; remove one first`, { componentId: this.ownerId });
    }
    this.observers.add(observer);
  }

  remove(observer: HalObserver<E>): boolean {
    return this.observers.delete(observer);
  }

  notifyEvent(event: E): void {
    if (this.observers.size === 0) return;
    // A snapshot, so an observer that removes itself (or adds another) mid-delivery
    // neither skips a neighbour nor receives the same event twice.
    for (const observer of [...this.observers]) {
      if (!observer.onEvent) continue;
      try {
        observer.onEvent(event);
      } catch (error) {
        this.reportObserverFailure(observer, error);
      }
    }
  }

  notifyError(error: HalError): void {
    if (this.observers.size === 0) return;
    for (const observer of [...this.observers]) {
      try {
        observer.onError?.(error);
      } catch {
        // nowhere left to report: telling the others that an error handler failed
        // would recurse, and the error itself has already reached them
      }
    }
  }

  /** Tells every other observer that one threw, so a broken observer shows up in someone's log. */
  private reportObserverFailure(culprit: HalObserver<E>, thrown: unknown): void {
    const detail = thrown instanceof Error ? thrown.message : String(thrown);
    const error = new HalError("OBSERVER_FAILED", `${this.ownerId}: an observer threw while handling an event: ${detail}`, {
      componentId: this.ownerId, cause: thrown,
    });
    for (const observer of [...this.observers]) {
      if (observer === culprit) continue;
      try {
        observer.onError?.(error);
      } catch {
        // as in notifyError: do not recurse
      }
    }
  }
}
