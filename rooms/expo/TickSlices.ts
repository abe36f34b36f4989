/**
 * The expo tick's frames, spread over slices. Every visitor gets a frame once per
 * `tickMs`, but not all at the same instant: visitors are spread over `slices` slices
 * that run one after another across the tick. A move then waits at most one tick for each
 * viewer's frame, plus the work of one slice (not of the whole hall), and clients get a
 * steady stream rather than one burst per tick. Sending is most of a tick's cost, so the
 * slices change when frames leave, not how much work they are.
 *
 * The tick counter counts slices, so a change made now reaches every viewer in its next
 * frame, whichever slice it is in. A newcomer goes to the emptiest slice.
 *
 * Slices run on a fixed schedule (epoch + n × sliceMs), not on setInterval, which starts
 * each wait when the previous callback ran: a few late slices would otherwise stretch
 * every tick, and with it every visitor's wait for its frame. After falling more than a
 * tick behind (the process was stalled) it starts a new schedule rather than rushing
 * every missed slice out at once.
 *
 * @example
 *   const slices = new TickSlices<Visitor>({ tickMs: 50, slices: 10, runSlice: (tick, slice, visitors) => {
 *     for (const visitor of visitors) sendFrame(visitor, tick);
 *   }, onError: (error) => logger.error({ err: error }, "expo tick failed") });
 *   slices.start();
 *   slices.add(visitor);        // on join
 *   slices.remove(visitor);     // on leave
 *   slices.stop();              // on dispose
 */

/** Time and timers, injectable for tests. */
export interface SliceClock {
  /** Milliseconds on a monotonic clock (performance.now()). */
  now(): number;
  setTimeout(run: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const monotonicClock: SliceClock = {
  now: () => performance.now(),
  setTimeout: (run, ms) => setTimeout(run, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export interface TickSlicesHost<Member> {
  /** One frame per member per this many ms. */
  readonly tickMs: number;
  /** Slices of the tick wanted (at most one per ms of the tick, at least one). */
  readonly slices: number;
  /** Runs one slice: `tick` counts slices since the start, `slice` is its index in the tick (0 starts a tick). */
  runSlice(tick: number, slice: number, members: ReadonlySet<Member>): void;
  /** A slice that threw; the schedule goes on. */
  onError(error: unknown): void;
  readonly clock?: SliceClock;
}

export class TickSlices<Member> {
  /** What runs each slice, and how long a tick is. */
  private readonly host: TickSlicesHost<Member>;
  /** Timers and the monotonic clock. */
  private readonly clock: SliceClock;
  /** Members by slice: each member's frames go out in its slice of every tick. */
  private readonly slices: Array<Set<Member>>;
  /** The slice each member is in. */
  private readonly sliceOf = new Map<Member, Set<Member>>();
  /** One slice's length, ms. */
  readonly sliceMs: number;
  /** Slices run since the start: the room's tick counter. */
  private slicesRun = 0;
  /** The schedule's origin on the clock: slice n is due at epoch + n × sliceMs. */
  private epoch = 0;
  /** The pending timer of the next slice. */
  private timer: unknown;
  /** Stopped for good (the room closed). */
  private stopped = false;
  /** Between pause() and resume(). */
  private paused = false;

  constructor(host: TickSlicesHost<Member>) {
    this.host = host;
    this.clock = host.clock ?? monotonicClock;
    const count = Math.max(1, Math.min(Math.floor(host.slices), host.tickMs));
    this.slices = Array.from({ length: count }, () => new Set<Member>());
    this.sliceMs = host.tickMs / count;
  }

  /** Slices run so far: a change made now shows in frames of tick `tick + 1` onwards. */
  get tick(): number {
    return this.slicesRun;
  }

  /** How many slices a tick has. */
  get count(): number {
    return this.slices.length;
  }

  /** Puts a member in the emptiest slice (joiners fill the tick evenly); nothing if it is in one. */
  add(member: Member): void {
    if (this.sliceOf.has(member)) return;
    let emptiest = this.slices[0];
    for (const slice of this.slices) if (slice.size < emptiest.size) emptiest = slice;
    emptiest.add(member);
    this.sliceOf.set(member, emptiest);
  }

  remove(member: Member): void {
    this.sliceOf.get(member)?.delete(member);
    this.sliceOf.delete(member);
  }

  has(member: Member): boolean {
    return this.sliceOf.has(member);
  }

  /** Starts the schedule: the first slice is due one slice from now. */
  start(): void {
    this.epoch = this.clock.now();
    this.schedule();
  }

  /** Stops for good; a slice already running finishes. */
  stop(): void {
    this.stopped = true;
    this.clock.clearTimeout(this.timer);
  }

  /** Stops until resume(): no slice runs, the tick counter stays (a room frozen while it moves). */
  pause(): void {
    this.paused = true;
    this.clock.clearTimeout(this.timer);
  }

  /** Runs again after pause(), the next slice one slice from now; `fromTick` sets the counter (a room restored from a snapshot goes on from its tick). */
  resume(fromTick?: number): void {
    if (fromTick !== undefined) this.slicesRun = fromTick;
    this.paused = false;
    this.epoch = this.clock.now() - this.slicesRun * this.sliceMs;
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped || this.paused) return;
    const now = this.clock.now();
    let due = this.epoch + (this.slicesRun + 1) * this.sliceMs;
    if (now - due > this.host.tickMs) {
      this.epoch = now - this.slicesRun * this.sliceMs;
      due = now + this.sliceMs;
    }
    this.timer = this.clock.setTimeout(() => {
      this.runNext();
      this.schedule();
    }, Math.max(0, due - now));
  }

  private runNext(): void {
    const tick = ++this.slicesRun;
    const slice = tick % this.slices.length;
    try {
      this.host.runSlice(tick, slice, this.slices[slice]);
    } catch (error) {
      this.host.onError(error);
    }
  }
}
