/**
 * The handoff bench's visitor load processes (handoff-visitors.ts): started with their
 * share of the visitors, asked for their progress together, their results merged as if
 * one process had run every visitor.
 */
import type { RegionsHarness, LocatedClient } from "../../test/fixtures/regions.ts";
import { testKeys } from "../../test/fixtures/tokens.ts";
import { BenchChild } from "./child-process.ts";
import type { HandoffLoadConfig, HandoffLoadProgress, HandoffLoadReady, HandoffLoadResults } from "./handoff-protocol.ts";
import type { HistogramData } from "./measure.ts";
import { countInto } from "./tasks.ts";

/** How long every visitor may take to follow its room (a handoff, a failover) before the bench goes on without it. */
export const followTimeoutMs = 20_000;
/** Above this event-loop delay p99, ms, a load's own lag is a visible part of what it stamps (warned of). */
export const loadLagWarnMs = 10;

export type LoadBase = Omit<HandoffLoadConfig, "regions" | "proxyOf" | "issuer" | "firstIndex" | "count">;

/** Each node's public address now (what a seat reservation names) → the city's proxy in front of it. */
function proxiesOf(harness: RegionsHarness, city: LocatedClient): Record<string, string> {
  const proxyOf: Record<string, string> = {};
  for (const node of harness.nodes) {
    const address = `${new URL(node.httpUrl).hostname}:${node.port}`;
    proxyOf[address] = city.rewrite(address);
  }
  return proxyOf;
}

/** Tells the loads where the nodes are now: a restarted node listens on fresh ports (behind the same proxy). */
export async function updateRoutes(loads: BenchChild[], harness: RegionsHarness, city: LocatedClient): Promise<void> {
  const proxyOf = proxiesOf(harness, city);
  await Promise.all(loads.map((load) => load.call("routes", proxyOf)));
}

/** Starts `processes` load processes (all at once), the visitors split evenly between them; resolves once every visitor joined. */
export async function startLoads(harness: RegionsHarness, city: LocatedClient, base: LoadBase, processes: number): Promise<BenchChild[]> {
  const shared = { ...base, regions: city.regions, proxyOf: proxiesOf(harness, city), issuer: { tokenKeyHex: testKeys.token.toString("hex"), audience: harness.clusterName } };
  const started: BenchChild[] = [];
  try {
    let firstIndex = 0;
    const parts: Array<[number, number]> = [];
    for (let i = 0; i < processes; i++) {
      const count = Math.floor(base.total / processes) + (i < base.total % processes ? 1 : 0);
      if (count > 0) parts.push([firstIndex, count]);
      firstIndex += count;
    }
    await Promise.all(parts.map(async ([first, count], i) => {
      const config: HandoffLoadConfig = { ...shared, firstIndex: first, count };
      const load = await BenchChild.start<HandoffLoadReady>(`visitors ${i + 1}`, "bench/lib/handoff-visitors.ts", config);
      started[i] = load.child;
    }));
    return started;
  } catch (error) {
    for (const child of started) child?.kill();
    throw error;
  }
}

/** Every load's progress, as one. */
export async function progressOf(loads: BenchChild[]): Promise<HandoffLoadProgress> {
  const each = await Promise.all(loads.map((load) => load.call<HandoffLoadProgress>("progress")));
  const errors: Record<string, number> = {};
  for (const progress of each) for (const [name, n] of Object.entries(progress.errors)) countInto(errors, name, n);
  return {
    sent: each.reduce((sum, p) => sum + p.sent, 0), frames: each.reduce((sum, p) => sum + p.frames, 0),
    movedMin: Math.min(...each.map((p) => p.movedMin)), movedMax: Math.max(...each.map((p) => p.movedMax)),
    alive: each.reduce((sum, p) => sum + p.alive, 0), lost: each.reduce((sum, p) => sum + p.lost, 0), errors,
  };
}

/**
 * Waits until every live visitor had `moves` `moved` events (its room's moves, failovers
 * included); how long it took, ms, or undefined after `timeoutMs`.
 */
export async function waitUntilFollowed(loads: BenchChild[], moves: number, timeoutMs: number): Promise<number | undefined> {
  const startedAt = performance.now();
  while (performance.now() - startedAt < timeoutMs) {
    const progress = await progressOf(loads);
    if (progress.alive > 0 && progress.movedMin >= moves) return Math.round(performance.now() - startedAt);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return undefined;
}

/** Every load's results, as one (visitors in index order; the event-loop delay is the worst load's). */
export function mergeResults(each: HandoffLoadResults[]): HandoffLoadResults {
  const sum = (key: "ackRegressions" | "neighbourRegressions" | "sent" | "frames" | "sessionsLost" | "mismatched") => each.reduce((total, r) => total + r[key], 0);
  const errors: Record<string, number> = {};
  for (const results of each) for (const [name, n] of Object.entries(results.errors)) countInto(errors, name, n);
  return {
    marks: each.flatMap((r) => r.marks), moved: each.flatMap((r) => r.moved), unacked: each.flatMap((r) => r.unacked),
    ackRegressions: sum("ackRegressions"), neighbourRegressions: sum("neighbourRegressions"), sent: sum("sent"), frames: sum("frames"),
    sessionsLost: sum("sessionsLost"), mismatched: sum("mismatched"), errors,
    frameGaps: mergeHistograms(each.map((r) => r.frameGaps)),
    eventLoopDelayP99Ms: Math.max(...each.map((r) => r.eventLoopDelayP99Ms)),
  };
}

function mergeHistograms(histograms: HistogramData[]): HistogramData {
  const buckets = new Map<number, number>();
  for (const histogram of histograms) for (const [bucket, count] of histogram.buckets) buckets.set(bucket, (buckets.get(bucket) ?? 0) + count);
  return {
    buckets: [...buckets.entries()].sort((a, b) => a[0] - b[0]),
    count: histograms.reduce((total, h) => total + h.count, 0),
    negative: histograms.reduce((total, h) => total + h.negative, 0),
  };
}
