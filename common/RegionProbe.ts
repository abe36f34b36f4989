/**
 * Measures round-trip time to each region's `GET /ping` and picks the nearest. The
 * client then matchmakes through that region and passes the measurements to the
 * server (`rttHints`), which places new rooms near their first users.
 *
 * @example
 *   const probe = new RegionProbe({ regions: [
 *     { id: "jp-tokyo", url: "https://tokyo.example.net" },
 *     { id: "jp-osaka", url: "https://osaka.example.net" },
 *   ] });
 *   const nearest = await probe.best();   // { id: "jp-osaka", url: …, rttMs: 3.1 }
 *   probe.rttHints();                     // { "jp-osaka": 3.1, "jp-tokyo": 9.8 }
 */
import { ErrorCode } from "../proto/index.ts";
import { TsunagiError } from "./TsunagiError.ts";

export interface Region {
  /** Region id as the server knows it, e.g. "jp-tokyo". */
  id: string;
  /** HTTP(S) base URL of the region's entry point, e.g. "https://tokyo.example.net". */
  url: string;
}

export interface RegionRtt extends Region {
  /** Median round-trip time in milliseconds; Infinity when the region failed. */
  rttMs: number;
  /** Why the region failed (REGION_UNAVAILABLE, the original as cause). */
  error?: TsunagiError;
}

/**
 * One RTT sample in milliseconds. `signal` aborts when the sample times out, so a
 * measurement can cancel its request; it may also ignore it (the probe stops waiting).
 */
export type MeasureFn = (region: Region, signal: AbortSignal) => Promise<number>;

export interface RegionProbeOptions {
  regions: Region[];
  /** Samples per region; the median counts, so one slow handshake does not. Default 3. */
  samples?: number;
  /** Bound on each sample; a region that exceeds it fails. Default 1000 ms. */
  timeoutMs?: number;
  /** Replaces the default HTTP measurement (tests, or a custom transport). */
  measure?: MeasureFn;
}

/** The default measurement: one `GET {url}/ping`, timed from request to full body. */
export async function measureHttpPing(region: Region, signal: AbortSignal): Promise<number> {
  const started = performance.now();
  // no-store: a cached answer would measure the browser, not the region
  const response = await fetch(`${region.url}/ping`, { cache: "no-store", signal });
  // reading the body completes the exchange and frees the connection for the next sample
  await response.arrayBuffer();
  const elapsed = performance.now() - started;
  if (!response.ok) throw new Error(`GET ${region.url}/ping answered HTTP ${response.status}`);
  return elapsed;
}

export class RegionProbe {
  /** The regions to measure, in the order given (urls without trailing "/"). */
  readonly regions: readonly Region[];
  /** Samples taken per region per probe. */
  private readonly samples: number;
  /** Bound on each sample, in ms. */
  private readonly timeoutMs: number;
  /** How one sample is taken. */
  private readonly measure: MeasureFn;
  /** Results of the last completed probe, nearest first; undefined before the first. */
  private lastResults?: RegionRtt[];
  /** The probe under way, shared by concurrent callers so they do not probe twice. */
  private inFlight?: Promise<RegionRtt[]>;

  constructor(options: RegionProbeOptions) {
    const { regions, samples = 3, timeoutMs = 1000, measure = measureHttpPing } = options ?? ({} as RegionProbeOptions);
    if (!Array.isArray(regions) || regions.length === 0) throw new TypeError("RegionProbe needs at least one region");
    const seen = new Set<string>();
    this.regions = regions.map((region) => {
      if (!region || typeof region.id !== "string" || region.id === "" || typeof region.url !== "string" || region.url === "") {
        throw new TypeError(`every region needs a non-empty id and url, got ${JSON.stringify(region)}`);
      }
      if (seen.has(region.id)) throw new TypeError(`region id "${region.id}" is listed twice`);
      seen.add(region.id);
      return Object.freeze({ id: region.id, url: region.url.replace(/\/+$/, "") });
    });
    if (!Number.isInteger(samples) || samples < 1) throw new TypeError(`samples must be a positive integer, got ${samples}`);
    if (!(timeoutMs > 0)) throw new TypeError(`timeoutMs must be positive, got ${timeoutMs}`);
    this.samples = samples;
    this.timeoutMs = timeoutMs;
    this.measure = measure;
  }

  /**
   * Measures every region (in parallel; samples within a region one after another, so
   * they do not compete) and returns all of them, nearest first. Failed regions come
   * last with `rttMs: Infinity` and an `error`. Never rejects.
   */
  probe(): Promise<RegionRtt[]> {
    this.inFlight ??= Promise.all(this.regions.map((region) => this.probeRegion(region)))
      .then((results) => {
        // not `a - b`: Infinity - Infinity is NaN, which breaks the sort
        results.sort((a, b) => (a.rttMs === b.rttMs ? 0 : a.rttMs < b.rttMs ? -1 : 1));
        this.lastResults = results;
        return results.map((result) => ({ ...result }));
      })
      .finally(() => { this.inFlight = undefined; });
    return this.inFlight;
  }

  /**
   * The nearest reachable region. Probes on the first call and reuses that result
   * afterwards (call reprobe() when the network may have changed). Rejects with
   * TsunagiError(REGION_UNAVAILABLE) when no region answered; that result is not kept,
   * so the next call probes again.
   */
  async best(): Promise<{ id: string; url: string; rttMs: number }> {
    const results = this.inFlight ? await this.inFlight
      : this.lastResults?.some(isReachable) ? this.lastResults
      : await this.probe();
    const nearest = results.find(isReachable);
    if (!nearest) {
      const reasons = results.map((r) => `${r.id}: ${r.error?.message ?? "no answer"}`).join("; ");
      throw new TsunagiError(ErrorCode.REGION_UNAVAILABLE, `no region answered /ping (${reasons})`, {
        cause: results.find((r) => r.error)?.error,
      });
    }
    return { id: nearest.id, url: nearest.url, rttMs: nearest.rttMs };
  }

  /** Measures again, replacing what best() and rttHints() report. */
  reprobe(): Promise<RegionRtt[]> {
    return this.probe();
  }

  /** The reachable regions of the last probe and their RTT in ms, for the join options. */
  rttHints(): Record<string, number> {
    const hints: Record<string, number> = {};
    for (const result of this.lastResults ?? []) {
      // a tenth of a millisecond is finer than any placement decision needs
      if (isReachable(result)) hints[result.id] = Math.round(result.rttMs * 10) / 10;
    }
    return hints;
  }

  /** Reachable regions of the last probe, nearest first (for falling back to the next). */
  reachable(): Array<{ id: string; url: string; rttMs: number }> {
    return (this.lastResults ?? []).filter(isReachable).map(({ id, url, rttMs }) => ({ id, url, rttMs }));
  }

  private async probeRegion(region: Region): Promise<RegionRtt> {
    const rtts: number[] = [];
    for (let i = 0; i < this.samples; i++) {
      try {
        rtts.push(await this.sample(region));
      } catch (error) {
        // One failed sample fails the region: over HTTP a failure is a refused, reset or
        // timed-out exchange, not a lost packet, and a region that does that now is no
        // place to put a session. It also bounds the probe at one timeout per region.
        const reason = error instanceof Error ? error.message : String(error);
        return {
          ...region, rttMs: Infinity,
          error: new TsunagiError(ErrorCode.REGION_UNAVAILABLE, `region ${region.id} failed: ${reason}`, { cause: error }),
        };
      }
    }
    return { ...region, rttMs: median(rtts) };
  }

  /** One measurement, bounded by timeoutMs whether or not `measure` honours the signal. */
  private sample(region: Region): Promise<number> {
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = new TsunagiError(ErrorCode.REGION_UNAVAILABLE, `no answer within ${this.timeoutMs} ms`);
        controller.abort(error);
        reject(error);
      }, this.timeoutMs);
    });
    const measured = Promise.resolve()
      .then(() => this.measure(region, controller.signal))
      .then((rtt) => {
        if (typeof rtt !== "number" || Number.isNaN(rtt) || rtt < 0) throw new TypeError(`measure returned ${String(rtt)}, not an RTT in ms`);
        return rtt;
      });
    return Promise.race([measured, timeout]).finally(() => clearTimeout(timer));
  }
}

function isReachable(result: RegionRtt): boolean {
  return Number.isFinite(result.rttMs) && !result.error;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}
