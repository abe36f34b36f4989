/**
 * The SDK's estimate of the room node's clock. Every `*_at_ms` an operator sends
 * (ControlCommand.issued_at_ms, deadline_ms, Heartbeat.sent_at_ms, EStop.raised_at_ms)
 * is on the SERVER clock (teleop.proto, "Conventions"), so the SDK converts its own
 * clock with an offset estimated NTP-style through ClockSyncPing / ClockSyncPong:
 *
 *   t0 = client clock when the ping was sent      t1 = server clock when it arrived
 *   t3 = client clock when the pong arrived       t2 = server clock when the pong left
 *   round_trip = (t3 - t0) - (t2 - t1)
 *   offset     = ((t1 - t0) + (t2 - t3)) / 2      // server clock = client clock + offset
 *
 * The estimate is off by at most round_trip / 2, so of the last 8 samples the one with
 * the smallest round trip counts. Five pings go out right away (one after the other),
 * then one every `intervalMs` (5 s), and one after each reconnection.
 *
 * The client clock is monotonic: by default `performance.timeOrigin + performance.now()`,
 * which never steps with the wall clock and is close to Unix epoch ms, so `offsetMs`
 * reads as "how far the server's clock is from mine". Before the first sample,
 * `now()` is the local wall clock and `uncertaintyMs` is Infinity.
 *
 * One clock per session is enough: ServerClock.shared() hands every OperatorControls
 * of a session the same instance (reference counted), so a page driving three devices
 * sends one ping stream, not three.
 *
 * @example
 *   const clock = ServerClock.shared(session);
 *   await clock.ready();                 // the first sample, bounded
 *   command.issuedAtMs = clock.now();    // server clock, Unix epoch ms
 *   console.log(clock.offsetMs, "±", clock.uncertaintyMs);
 *   clock.release();                     // stops pinging when the last user releases
 */
import { ErrorCode } from "../proto/index.ts";
import { ClockSync } from "../common/ClockSync.ts";
import { TsunagiError } from "./errors.ts";
import type { RoomSession } from "./RoomSession.ts";

export interface ServerClockOptions {
  /** The client's monotonic clock, ms. Default performance.timeOrigin + performance.now(). */
  now?: () => number;
  /** Resample period, ms. Default 5000 (teleop.proto asks for at least every 10 s). */
  intervalMs?: number;
  /** Samples kept; the smallest round trip among them wins. Default 8. */
  maxSamples?: number;
  /** Pings sent one after the other when the clock starts. Default 5. */
  initialSamples?: number;
  /** Bound on each ping's reply, ms. Default 2000. */
  pingTimeoutMs?: number;
}

/** The default client clock: monotonic, in (approximately) Unix epoch ms. */
export const monotonicNow = (): number => performance.timeOrigin + performance.now();

/** Shared clocks by session, then by client clock function. */
const sharedClocks = new WeakMap<RoomSession, Map<() => number, ServerClock>>();

export class ServerClock {
  /** The session whose room answers the pings. */
  readonly session: RoomSession;
  /** The client's monotonic clock, ms. */
  private readonly clientNow: () => number;
  /** Resample period, ms. */
  private readonly intervalMs: number;
  /** Pings in the initial burst. */
  private readonly initialSamples: number;
  /** Bound on each ping, ms. */
  private readonly pingTimeoutMs: number;
  /** The estimate itself: the best of the last maxSamples exchanges. */
  private readonly estimator: ClockSync;
  /** Periodic resampling, while started. */
  private timer?: ReturnType<typeof setInterval>;
  /** Set while a burst or a single ping is in flight, so they never overlap. */
  private syncing?: Promise<void>;
  /** Callers of ready() waiting for the first sample. */
  private readonly waiters = new Set<() => void>();
  /** Users of a shared clock; the clock stops when the last one releases it. */
  private refs = 0;
  /** Session listeners to remove on stop(). */
  private unsubscribe: Array<() => void> = [];
  /** Set once stopped for good (session ended or last reference released). */
  private stopped = false;

  /**
   * The session's shared clock for this client clock, started on first use. Each call
   * takes a reference; call release() once per call.
   */
  static shared(session: RoomSession, options: ServerClockOptions = {}): ServerClock {
    const now = options.now ?? monotonicNow;
    let byClock = sharedClocks.get(session);
    if (!byClock) sharedClocks.set(session, (byClock = new Map()));
    let clock = byClock.get(now);
    if (!clock || clock.stopped) {
      clock = new ServerClock(session, { ...options, now });
      byClock.set(now, clock);
      clock.start();
    }
    clock.refs++;
    return clock;
  }

  constructor(session: RoomSession, options: ServerClockOptions = {}) {
    this.session = session;
    this.clientNow = options.now ?? monotonicNow;
    this.intervalMs = options.intervalMs ?? 5000;
    const maxSamples = options.maxSamples ?? 8;
    this.initialSamples = options.initialSamples ?? 5;
    this.pingTimeoutMs = options.pingTimeoutMs ?? 2000;
    if (!(this.intervalMs > 0) || !Number.isFinite(this.intervalMs)) throw new TypeError(`ServerClock intervalMs must be a finite number > 0, got ${String(options.intervalMs)}`);
    if (!Number.isInteger(maxSamples) || maxSamples < 1) throw new TypeError(`ServerClock maxSamples must be a positive integer, got ${String(options.maxSamples)}`);
    if (!Number.isInteger(this.initialSamples) || this.initialSamples < 1) throw new TypeError(`ServerClock initialSamples must be a positive integer, got ${String(options.initialSamples)}`);
    this.estimator = new ClockSync({ now: this.clientNow, maxSamples });
  }

  /** Whether at least one sample has been taken. */
  get synced(): boolean {
    return this.estimator.synced;
  }

  /** Server clock minus client clock, ms (wall clock minus client clock before the first sample). */
  get offsetMs(): number {
    return this.estimator.offsetMs;
  }

  /** Error bound of now(): half the best sample's round trip, ms; Infinity before any. */
  get uncertaintyMs(): number {
    return this.estimator.uncertaintyMs;
  }

  /** The best sample's round trip, ms; Infinity before any. */
  get roundTripMs(): number {
    return this.estimator.roundTripMs;
  }

  /** Samples currently kept. */
  get sampleCount(): number {
    return this.estimator.sampleCount;
  }

  /** The client's monotonic clock, ms: what t0 and t3 are read from. */
  clientTime(): number {
    return this.clientNow();
  }

  /** The current server time estimate, Unix epoch ms. */
  now(): number {
    return this.clientNow() + this.offsetMs;
  }

  /** Converts a client clock time to the server clock. */
  toServer(clientMs: number): number {
    return clientMs + this.offsetMs;
  }

  /**
   * Resolves once the clock has a sample (at once if it has one). Rejects with
   * TsunagiError(REGION_UNAVAILABLE) when none arrived within `timeoutMs`, or with
   * the session's error when it has ended.
   */
  ready(timeoutMs: number = 5000): Promise<void> {
    if (this.estimator.synced) return Promise.resolve();
    if (this.session.closed) return Promise.reject(new TsunagiError(ErrorCode.ERROR_CODE_UNSPECIFIED, "the session has left the room", { retryable: false }));
    if (!this.timer && !this.stopped) this.start();
    return new Promise<void>((resolve, reject) => {
      const done = () => { clearTimeout(timer); this.waiters.delete(done); resolve(); };
      const timer = setTimeout(() => {
        this.waiters.delete(done);
        reject(new TsunagiError(ErrorCode.REGION_UNAVAILABLE, `no clock sync reply from the room within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.add(done);
    });
  }

  /** Starts the initial burst and the periodic resampling. Idempotent. */
  start(): void {
    if (this.timer || this.stopped) return;
    this.timer = setInterval(() => void this.sync(1), this.intervalMs);
    (this.timer as { unref?: () => void }).unref?.();
    this.unsubscribe.push(
      this.session.on("reconnected", () => void this.sync(1)),
      this.session.on("leave", () => this.stop()),
    );
    void this.sync(this.initialSamples);
  }

  /** Stops pinging for good and forgets the listeners. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const off of this.unsubscribe) off();
    this.unsubscribe = [];
    const byClock = sharedClocks.get(this.session);
    if (byClock?.get(this.clientNow) === this) byClock.delete(this.clientNow);
  }

  /** Drops one reference taken by shared(); the last one stops the clock. */
  release(): void {
    if (this.refs > 0 && --this.refs === 0) this.stop();
  }

  /**
   * Adds one exchange. Returns false (and keeps nothing) for a sample that cannot be
   * real: a non-finite time, a pong that arrived before its ping left, a server that
   * answered before it received, or a server time of 0 (unset).
   */
  addSample(t0: number, t1: number, t2: number, t3: number): boolean {
    if (!this.estimator.addPong({ t0Ms: t0, t1Ms: t1, t2Ms: t2 }, t3)) return false;
    for (const waiter of [...this.waiters]) waiter();
    return true;
  }

  /**
   * Runs `count` exchanges one after the other (a failed one is skipped; the next
   * interval tries again). Never rejects. Joins a sync already under way.
   */
  sync(count: number = 1): Promise<void> {
    if (this.syncing) return this.syncing;
    const run = async () => {
      for (let i = 0; i < count && !this.stopped && !this.session.closed; i++) {
        if (this.session.reconnecting) break; // the reconnected event resamples
        const t0 = this.clientNow();
        try {
          const reply = await this.session.request({ clockSyncPing: { t0Ms: t0 } }, this.pingTimeoutMs);
          const t3 = this.clientNow();
          const pong = reply.body === "clockSyncPong" ? reply.clockSyncPong : undefined;
          // the echoed t0 must be ours: a reply that is not is no sample
          if (pong && pong.t0Ms === t0) this.addSample(t0, pong.t1Ms ?? 0, pong.t2Ms ?? 0, t3);
        } catch {
          // no reply, or the session ended: the estimate stays what it was
        }
      }
    };
    this.syncing = run().finally(() => { this.syncing = undefined; });
    return this.syncing;
  }
}
