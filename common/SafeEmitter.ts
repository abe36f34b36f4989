/**
 * A small typed event emitter whose listeners cannot break it or the code that emits:
 * the one listener-error policy of the project (compare mediasoup's safeEmit). A
 * listener that throws is reported to `onListenerError`, and the listeners after it
 * still run; a reporter that throws is ignored, since nothing safe is left to do.
 *
 * Delivery is synchronous and in registration order, over a snapshot of the listeners,
 * so a listener that removes itself (or adds another) mid-delivery neither skips a
 * neighbour nor runs a new listener for this event.
 *
 * @example
 *   interface Events { state: (state: string) => void }
 *   const events = new SafeEmitter<Events>((error, source) => logger.error({ err: error }, `${source} threw`));
 *   const off = events.on("state", (state) => console.log(state));
 *   events.emit("state", "online");
 *   off();
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Listener = (...args: any[]) => void;

/** Where a listener's exception goes: the error, and which listener threw (`"state" listener`). */
export type ListenerErrorSink = (error: unknown, source: string) => void;

export class SafeEmitter<Events extends { [K in keyof Events]: Listener }> {
  /** Listeners per event, in registration order. */
  private readonly listeners = new Map<keyof Events, Set<Listener>>();
  /** Where exceptions from listeners are reported instead of thrown. */
  private readonly onListenerError: ListenerErrorSink;

  constructor(onListenerError: ListenerErrorSink) {
    this.onListenerError = onListenerError;
  }

  /** Adds a listener; returns the function that removes it. */
  on<K extends keyof Events>(event: K, listener: Events[K]): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => this.off(event, listener);
  }

  /** Adds a listener that runs once; returns the function that removes it. */
  once<K extends keyof Events>(event: K, listener: Events[K]): () => void {
    const off = this.on(event, ((...args: unknown[]) => { off(); (listener as Listener)(...args); }) as Events[K]);
    return off;
  }

  off<K extends keyof Events>(event: K, listener: Events[K]): void {
    this.listeners.get(event)?.delete(listener);
  }

  /** Whether anyone listens to `event`, so an emitter can skip building a payload nobody reads. */
  has<K extends keyof Events>(event: K): boolean {
    return (this.listeners.get(event)?.size ?? 0) > 0;
  }

  emit<K extends keyof Events>(event: K, ...args: Parameters<Events[K]>): void {
    const set = this.listeners.get(event);
    if (!set || set.size === 0) return;
    for (const listener of [...set]) {
      try {
        listener(...args);
      } catch (error) {
        reportListenerError(this.onListenerError, error, `"${String(event)}" listener`);
      }
    }
  }

  removeAll(): void {
    this.listeners.clear();
  }
}

/** Hands `error` to `sink`; a sink that throws is ignored (nothing safe is left to do). */
export function reportListenerError(sink: ListenerErrorSink, error: unknown, source: string): void {
  try {
    sink(error, source);
  } catch {
    // the error reporter itself failed: nothing safe is left to do with it
  }
}
