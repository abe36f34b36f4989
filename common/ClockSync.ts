/**
 * An estimate of a Tsunagi node's clock from ClockSyncPing/ClockSyncPong exchanges
 * (device.proto, "Conventions"): every `*_at_ms` on the wire is on the clock of the node a
 * client is connected to, and the client converts its own clock with an offset estimated NTP-style.
 * A pure estimator, no I/O: the edge adapter feeds it directly, and the SDK's ServerClock
 * wraps it with the pinging of a room session.
 *
 *   t0 = client clock when the ping was sent      t1 = server clock when it arrived
 *   t3 = client clock when the pong arrived       t2 = server clock when the pong left
 *   round_trip = (t3 - t0) - (t2 - t1)
 *   offset     = ((t1 - t0) + (t2 - t3)) / 2      // server clock = client clock + offset
 *
 * The estimate is off by at most round_trip / 2, so of the last 8 samples the one with
 * the smallest round trip counts. The client clock is monotonic (performance.now() by
 * default), so a wall-clock step on the device cannot move the estimate; the offset then
 * carries the whole distance to the server's Unix epoch ms.
 *
 * Before the first sample, serverNow() falls back to the device's own wall clock and
 * `uncertaintyMs` is Infinity. reset() forgets every sample (a connection to another
 * node, whose clock is another clock).
 *
 * @example
 *   const clock = new ClockSync();
 *   const t0 = clock.clientNow();
 *   send({ correlationId: 9, clockSyncPing: { t0Ms: t0 } });
 *   // on the pong:
 *   clock.addPong(pong, clock.clientNow());
 *   ack.receivedAtMs = clock.serverNow();
 *   ack.clockUncertaintyMs = clock.uncertaintyMs;
 */

/** One completed exchange, on the client's monotonic clock and the server's clock. */
export interface ClockSample {
  /** Client clock when the ping was sent, ms. */
  t0: number;
  /** Server clock when the ping was received, ms. */
  t1: number;
  /** Server clock when the pong was sent, ms. */
  t2: number;
  /** Client clock when the pong arrived, ms. */
  t3: number;
}

export interface ClockSyncOptions {
  /** The client's monotonic clock, ms. Default performance.now. */
  now?: () => number;
  /** Client wall clock (Unix epoch ms) used before the first sample. Default Date.now. */
  wallClock?: () => number;
  /** Samples kept; the smallest round trip among them wins. Default 8. */
  maxSamples?: number;
}

/** The offset of one sample, and its round trip. */
interface Estimate {
  offsetMs: number;
  roundTripMs: number;
}

export class ClockSync {
  /** Client monotonic clock. */
  private readonly now: () => number;
  /** Samples kept; older ones fall out. */
  private readonly maxSamples: number;
  /** The last `maxSamples` estimates, oldest first. */
  private samples: Estimate[] = [];
  /** The estimate in use: the smallest round trip among `samples`. */
  private best: Estimate | undefined;
  /** Offset used before any sample: device wall clock minus monotonic clock, at construction. */
  private readonly fallbackOffsetMs: number;

  constructor(options: ClockSyncOptions = {}) {
    this.now = options.now ?? (() => performance.now());
    this.maxSamples = options.maxSamples ?? 8;
    if (!Number.isInteger(this.maxSamples) || this.maxSamples < 1) {
      throw new TypeError(`ClockSync maxSamples must be a positive integer, got ${String(options.maxSamples)}`);
    }
    this.fallbackOffsetMs = (options.wallClock ?? Date.now)() - this.now();
  }

  /** Whether at least one sample has been taken since construction or reset(). */
  get synced(): boolean {
    return this.best !== undefined;
  }

  /** Server clock minus client clock, ms (the fallback before the first sample). */
  get offsetMs(): number {
    return this.best?.offsetMs ?? this.fallbackOffsetMs;
  }

  /** Error bound of serverNow(): half the best sample's round trip, ms; Infinity before any. */
  get uncertaintyMs(): number {
    return this.best ? this.best.roundTripMs / 2 : Infinity;
  }

  /** The best sample's round trip, ms; Infinity before any. */
  get roundTripMs(): number {
    return this.best?.roundTripMs ?? Infinity;
  }

  /** Samples currently kept. */
  get sampleCount(): number {
    return this.samples.length;
  }

  /** The client's monotonic clock, ms: what t0 and t3 are read from. */
  clientNow(): number {
    return this.now();
  }

  /** The current server time estimate, Unix epoch ms. */
  serverNow(): number {
    return this.toServer(this.now());
  }

  /** Converts a client monotonic time to the server clock. */
  toServer(clientMs: number): number {
    return clientMs + this.offsetMs;
  }

  /**
   * Adds one exchange. Returns false (and keeps nothing) for a sample that cannot be
   * real: a non-finite time, a pong that arrived before its ping was sent, or a server
   * that answered before it received. Such a sample says nothing about the offset.
   */
  addSample(sample: ClockSample): boolean {
    const { t0, t1, t2, t3 } = sample;
    if (![t0, t1, t2, t3].every((t) => typeof t === "number" && Number.isFinite(t))) return false;
    if (t3 < t0 || t2 < t1) return false;
    const roundTripMs = (t3 - t0) - (t2 - t1);
    if (roundTripMs < 0) return false;
    const offsetMs = ((t1 - t0) + (t2 - t3)) / 2;
    this.samples.push({ offsetMs, roundTripMs });
    if (this.samples.length > this.maxSamples) this.samples.shift();
    this.best = this.samples.reduce((a, b) => (b.roundTripMs < a.roundTripMs ? b : a));
    return true;
  }

  /**
   * Adds the exchange a ClockSyncPong completes (t0 echoed in it), arriving at client
   * time `t3`. A pong without t1 or t2 (unset, 0) is refused: server times are Unix
   * epoch ms, never 0.
   */
  addPong(pong: { t0Ms?: number | null; t1Ms?: number | null; t2Ms?: number | null }, t3: number): boolean {
    const serverTime = (value: number | null | undefined) => (typeof value === "number" && value > 0 ? value : Number.NaN);
    return this.addSample({ t0: pong.t0Ms ?? Number.NaN, t1: serverTime(pong.t1Ms), t2: serverTime(pong.t2Ms), t3 });
  }

  /** Forgets every sample (connected to another node). */
  reset(): void {
    this.samples = [];
    this.best = undefined;
  }
}

/** How a client paces its ClockSyncPings (ClockPingSchedule). */
export interface ClockPingScheduleOptions {
  /** The steady interval between pings, ms (the contract asks for at most 10 s). */
  intervalMs: number;
  /** Quick rounds right after connecting. Default 8 (the samples ClockSync keeps by default). */
  earlyRounds?: number;
  /** The gap between those rounds, ms. Default 100. */
  earlyGapMs?: number;
}

/**
 * When to send the next ClockSyncPing: one at a time, and a few quick rounds right after
 * connecting, then at the steady interval. Pings sent together queue behind each other
 * (and behind the welcome's own burst of work at the peer), so the first rounds after a
 * welcome measured 5 to 50 ms of round trip against 0.2 ms later; one ping at a time,
 * spread over the first second, gives ClockSync (which keeps the smallest round trip of
 * its samples) a good sample at once instead of after a few steady intervals.
 *
 * @example
 *   const schedule = new ClockPingSchedule({ intervalMs: 5000 });
 *   sendPing();                                        // on the welcome
 *   // on each pong:
 *   setTimeout(sendPing, schedule.afterPong());        // 100 ms eight times, then 5000
 */
export class ClockPingSchedule {
  /** The steady interval, ms. */
  readonly intervalMs: number;
  /** Quick rounds after connecting. */
  private readonly earlyRounds: number;
  /** Their gap, ms. */
  private readonly earlyGapMs: number;
  /** Pongs since connecting (one schedule per connection). */
  private pongs = 0;

  constructor(options: ClockPingScheduleOptions) {
    this.intervalMs = options.intervalMs;
    this.earlyRounds = options.earlyRounds ?? 8;
    this.earlyGapMs = Math.min(options.earlyGapMs ?? 100, options.intervalMs);
  }

  /** A pong arrived: ms until the next ping. */
  afterPong(): number {
    this.pongs++;
    return this.pongs < this.earlyRounds ? this.earlyGapMs : this.intervalMs;
  }
}
