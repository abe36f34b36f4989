/**
 * The hall's analytics in the region's presence (Redis in cluster mode, memory in
 * embedded mode): each zone adds its delta every second (ExpoAnalytics.takeDelta), and
 * any node reads the hall's report from the sum, live or after the hall closed.
 *
 * Keys (prefix `expo:{hallId}:analytics:`, hashes, so that both presences count and
 * look up in constant time):
 *   from                      zoneId -> when that zone first counted (ms); the report starts at the earliest
 *   uniques                   visitorKey -> "1": everyone who ever joined the hall (HLEN: its unique visitors)
 *   booth-uniques:{boothId}   visitorKey -> "1": everyone who ever entered the booth
 *   booths                    "{boothId}:visits", "{boothId}:dwellMs" -> finished visits, their dwell time (HINCRBY)
 *   current:{zoneId}          visitorKey -> "1": who is in that zone now
 *   open:{zoneId}             JSON [boothId, visitorKey] -> enteredAtMs: the visits under way there
 *   heat:{cols}x{rows}x{cell} cell index -> visitor-milliseconds (HINCRBY); keyed by the grid, so a
 *                             hall reopened with another grid or cell size starts a heatmap of its own
 *
 * A second's write is one command per change in it: a join, a booth entry or exit, a
 * heatmap cell someone stood in. Nothing is rewritten whole: the writes do not grow with
 * the visitors the hall has ever seen, nor with the size of its heatmap. Unique counts
 * are exact (a hash per set: a visitor costs Redis its key once, about 50-100 bytes).
 *
 * @example
 *   const store = new AnalyticsStore(presence, analytics.options);
 *   await store.startZone("west");                         // the zone room opens
 *   const failed = await store.flush("west", analytics.takeDelta());
 *   if (failed) analytics.putBack(failed);                  // retried with the next second's
 *   const report = await store.report(["west", "east"], Date.now());
 */
import type { Presence } from "@colyseus/core";
import { checkOptions, checkTime, type AnalyticsDelta, type AnalyticsOptions, type AnalyticsReport } from "./Analytics.ts";
import { hallKey } from "./HallChannels.ts";
import type { HallLayout } from "./HallLayout.ts";

/** The analytics zone of a hall of no zones. */
export const UNZONED = "hall";

/** The zones a hall's analytics are kept by: its zones' ids, or UNZONED for a hall of none. */
export function analyticsZones(layout: Pick<HallLayout, "zones">): string[] {
  return layout.zones.length ? layout.zones.map((z) => z.id) : [UNZONED];
}

export class AnalyticsStore {
  /** The region's presence. */
  private readonly presence: Presence;
  /** The hall: its id, booths and heatmap grid. */
  private readonly options: AnalyticsOptions;
  private readonly cols: number;
  private readonly rows: number;
  /** Zones whose `from` this store has written (once per zone room). */
  private readonly started = new Set<string>();

  /** @throws TypeError / RangeError for invalid options (as ExpoAnalytics). */
  constructor(presence: Presence, options: AnalyticsOptions) {
    const { cols, rows } = checkOptions(options);
    this.presence = presence;
    this.options = { ...options, booths: [...options.booths] };
    this.cols = cols;
    this.rows = rows;
  }

  /**
   * A zone room opens: who was in the zone and the visits under way there are forgotten
   * (a room that died could not end them; its visitors rejoin and count again).
   */
  async startZone(zoneId: string): Promise<void> {
    await Promise.all([this.presence.del(this.key(`current:${zoneId}`)), this.presence.del(this.key(`open:${zoneId}`))]);
  }

  /**
   * Adds a zone's delta to the hall's figures. Resolves with the part that could not be
   * stored (put it back: ExpoAnalytics.putBack), or undefined when all of it was.
   */
  async flush(zoneId: string, delta: AnalyticsDelta): Promise<AnalyticsDelta | undefined> {
    if (delta.hallId !== this.options.hallId) throw new TypeError(`a delta of hall "${delta.hallId}" is not of hall "${this.options.hallId}"`);
    const presence = this.presence;
    const failed: AnalyticsDelta = { hallId: delta.hallId, fromMs: delta.fromMs, joined: [], current: [], booths: [], open: [], heat: [] };
    let failures = 0;
    const writes: Promise<unknown>[] = [];
    const write = (work: Promise<unknown>, onFailure: () => void) => {
      writes.push(work.catch(() => { failures++; onFailure(); }));
    };
    if (!this.started.has(zoneId)) {
      this.started.add(zoneId);
      write(this.keepEarliestStart(zoneId, delta.fromMs), () => this.started.delete(zoneId));
    }
    for (const key of delta.joined) write(presence.hset(this.key("uniques"), key, "1"), () => failed.joined.push(key));
    const current = this.key(`current:${zoneId}`);
    for (const change of delta.current) {
      const [key, here] = change;
      write(here ? presence.hset(current, key, "1") : presence.hdel(current, key), () => failed.current.push(change));
    }
    for (const booth of delta.booths) {
      const { boothId, finishedVisits, finishedDwellMs } = booth;
      const finished = { boothId, finishedVisits, finishedDwellMs, visitors: [] as string[] };
      if (finishedVisits > 0) {
        // One failure puts back both (they are one figure to the report); the other may have landed: at worst
        // a retried second counts twice in a Redis outage, never lost.
        const bothStored = Promise.all([
          presence.hincrby(this.key("booths"), `${boothId}:visits`, finishedVisits),
          presence.hincrby(this.key("booths"), `${boothId}:dwellMs`, Math.round(finishedDwellMs)),
        ]);
        write(bothStored, () => failed.booths.push(finished));
      }
      for (const key of booth.visitors) {
        write(presence.hset(this.key(`booth-uniques:${boothId}`), key, "1"), () => failed.booths.push({ boothId, finishedVisits: 0, finishedDwellMs: 0, visitors: [key] }));
      }
    }
    const open = this.key(`open:${zoneId}`);
    for (const change of delta.open) {
      const [boothId, key, enteredAt] = change;
      const field = JSON.stringify([boothId, key]);
      write(enteredAt === null ? presence.hdel(open, field) : presence.hset(open, field, String(enteredAt)), () => failed.open.push(change));
    }
    const heat = this.heatKey();
    for (const cell of delta.heat) {
      const ms = Math.round(cell[1] * 1000);
      if (ms > 0) write(presence.hincrby(heat, String(cell[0]), ms), () => failed.heat.push(cell));
    }
    await Promise.all(writes);
    return failures ? failed : undefined;
  }

  /**
   * The hall's report at `atMs` over the zones `zoneIds` (their presence now and their
   * visits under way count; every zone's finished figures are in the hall's sums). Visits
   * under way count up to `atMs`; fromMs is the earliest zone's start (atMs when none started).
   */
  async report(zoneIds: readonly string[], atMs: number): Promise<AnalyticsReport> {
    checkTime(atMs, "atMs");
    const { presence, options, cols, rows } = this;
    const [starts, uniqueVisitors, boothSums, heat, boothUniques, currents, opens] = await Promise.all([
      presence.hgetall(this.key("from")),
      presence.hlen(this.key("uniques")),
      presence.hgetall(this.key("booths")),
      presence.hgetall(this.heatKey()),
      Promise.all(options.booths.map((boothId) => presence.hlen(this.key(`booth-uniques:${boothId}`)))),
      Promise.all(zoneIds.map((zoneId) => presence.hgetall(this.key(`current:${zoneId}`)))),
      Promise.all(zoneIds.map((zoneId) => presence.hgetall(this.key(`open:${zoneId}`)))),
    ]);
    const fromMs = Math.min(...Object.values(starts ?? {}).map(Number).filter(Number.isFinite));
    const current = new Set<string>();
    for (const zone of currents) for (const key of Object.keys(zone ?? {})) current.add(key);
    const booths = new Map(options.booths.map((boothId) => [boothId, { visits: 0, dwellTotalMs: 0, current: new Set<string>() }]));
    for (const zone of opens) {
      for (const [field, enteredAt] of Object.entries(zone ?? {})) {
        const [boothId, key] = JSON.parse(field) as [string, string];
        const booth = booths.get(boothId);
        if (!booth || booth.current.has(key)) continue; // a booth no longer in the layout; a visit seen in two zones at a handoff
        booth.visits++;
        booth.dwellTotalMs += Math.max(0, atMs - Number(enteredAt));
        booth.current.add(key);
      }
    }
    const visitorSeconds = new Array<number>(cols * rows).fill(0);
    for (const [cell, ms] of Object.entries(heat ?? {})) {
      const index = Number(cell);
      if (Number.isInteger(index) && index >= 0 && index < visitorSeconds.length) visitorSeconds[index] = Number(ms) / 1000;
    }
    return {
      hallId: options.hallId,
      fromMs: Number.isFinite(fromMs) ? fromMs : atMs,
      toMs: atMs,
      uniqueVisitors: Number(uniqueVisitors),
      currentVisitors: current.size,
      booths: options.booths.map((boothId, i) => {
        const b = booths.get(boothId)!;
        const visits = b.visits + Number(boothSums?.[`${boothId}:visits`] ?? 0);
        const dwellTotalMs = b.dwellTotalMs + Number(boothSums?.[`${boothId}:dwellMs`] ?? 0);
        return {
          boothId, visits, uniqueVisitors: Number(boothUniques[i]), dwellTotalMs,
          dwellMeanMs: visits ? dwellTotalMs / visits : 0, currentVisitors: b.current.size,
        };
      }),
      heatmap: { cellSize: options.cellSize, cols, rows, visitorSeconds },
    };
  }

  /** Stores the zone's start unless an earlier one is stored (a reopened hall keeps its first). */
  private async keepEarliestStart(zoneId: string, fromMs: number): Promise<void> {
    const stored = await this.presence.hget(this.key("from"), zoneId);
    if (stored === null || stored === undefined || !(Number(stored) <= fromMs)) await this.presence.hset(this.key("from"), zoneId, String(fromMs));
  }

  private heatKey(): string {
    return this.key(this.heatName());
  }

  private heatName(): string {
    return `heat:${this.cols}x${this.rows}x${this.options.cellSize}`;
  }

  /** Every key this store writes for `zoneIds`, as names under the hall's prefix (for their expiry, HallChannels.keep). */
  keyNames(zoneIds: readonly string[]): string[] {
    const names = ["uniques", "booths", "from", this.heatName(),
      ...this.options.booths.map((boothId) => `booth-uniques:${boothId}`),
      ...zoneIds.flatMap((zoneId) => [`current:${zoneId}`, `open:${zoneId}`])];
    return names.map((name) => `analytics:${name}`);
  }

  private key(name: string): string {
    return hallKey(this.options.hallId, `analytics:${name}`);
  }
}
