/**
 * Where a room's participants would be best served, with hysteresis so a room does not
 * flap: it moves to another region only when its participants' round trips (RegionRtts,
 * as their SDKs measured them) say that region is better by a clear margin, for a
 * sustained window, and not sooner than a cooldown after its last move for this cause.
 *
 * "Better": the mean round trip to the region, over the participants that reported both
 * it and the room's region, is lower than to the room's region by at least `minGainMs`
 * and by at least `minGainRatio` of the latter.
 *
 * @example
 *   const policy = new PlacementPolicy({ windowMs: 30_000, minGainMs: 5, minGainRatio: 0.2, cooldownMs: 60_000 });
 *   const to = policy.decide("session__r", "jp-tokyo", reports); // a region, once the window has passed
 */

export interface PlacementOptions {
  /** How long a better region must stay better before the room moves, ms. */
  windowMs: number;
  /** Least gain in mean round trip, ms. */
  minGainMs: number;
  /** Least gain as a share of the mean round trip to the room's region. */
  minGainRatio: number;
  /** Least time between two moves of a room for its participants, ms. */
  cooldownMs: number;
}

/** One participant's round trip to each region it measured, ms. */
export type RttReport = Readonly<Record<string, number>>;

/** Rooms whose decisions are remembered at most (oldest forgotten first). */
const MAX_ROOMS = 10_000;

export class PlacementPolicy {
  /** Each room's better region, and since when it has been the better one. */
  private readonly candidates = new Map<string, { regionId: string; since: number }>();

  /** `now`: wall-clock ms (the room's history, which travels with it, says when it last moved). */
  constructor(private readonly options: PlacementOptions, private readonly now: () => number = Date.now) {}

  /** The region clearly better than `current` for these reports now, if any. */
  preferred(reports: readonly RttReport[], current: string): string | undefined {
    let best: { regionId: string; gain: number } | undefined;
    const regions = new Set(reports.flatMap((report) => Object.keys(report)));
    for (const regionId of regions) {
      if (regionId === current) continue;
      let here = 0;
      let there = 0;
      let count = 0;
      for (const report of reports) {
        const a = report[current];
        const b = report[regionId];
        if (!Number.isFinite(a) || !Number.isFinite(b)) continue;
        here += a!; there += b!; count++;
      }
      if (count === 0) continue;
      const gain = (here - there) / count;
      if (gain < this.options.minGainMs || gain < this.options.minGainRatio * (here / count)) continue;
      if (!best || gain > best.gain) best = { regionId, gain };
    }
    return best?.regionId;
  }

  /**
   * Decides for one room, called now and then: the region to move it to now, or
   * undefined (stay, or not yet). `lastMovedAt`: when the room last moved for its
   * participants (its handoff history, kept wherever it lives), epoch ms.
   */
  decide(roomId: string, current: string, reports: readonly RttReport[], lastMovedAt?: number): string | undefined {
    const now = this.now();
    const preferred = this.preferred(reports, current);
    const candidate = this.candidates.get(roomId);
    if (!preferred) { this.candidates.delete(roomId); return undefined; }
    if (candidate?.regionId !== preferred) {
      this.candidates.delete(roomId);
      if (this.candidates.size >= MAX_ROOMS) this.candidates.delete(this.candidates.keys().next().value!);
      this.candidates.set(roomId, { regionId: preferred, since: now });
      return undefined;
    }
    if (now - candidate.since < this.options.windowMs) return undefined;
    if (lastMovedAt !== undefined && now - lastMovedAt < this.options.cooldownMs) return undefined;
    this.candidates.delete(roomId);
    return preferred;
  }

  /** The room closed or left this node. */
  forget(roomId: string): void {
    this.candidates.delete(roomId);
  }
}
