/**
 * RegionRtts (handoff.proto): a client's round trip to each region, for placement. One
 * rule, read by the SDK that sends it and the room that checks it.
 *
 * @example
 *   const rttMs = regionRttsOf(probe.rttHints());   // SDK: what may be sent, or undefined
 *   const problem = regionRttsProblem(envelope.regionRtts?.rttMs);   // room: why not, or undefined
 */
import { REGION_ID_PATTERN } from "./ids.ts";

/** Regions one report may name. */
export const MAX_RTT_REGIONS = 16;
/** The largest round trip a report may give, ms. */
export const MAX_RTT_MS = 60_000;

/** What is wrong with a RegionRtts' map, or undefined. */
export function regionRttsProblem(rtts: Record<string, number> | null | undefined): string | undefined {
  const entries = Object.entries(rtts ?? {});
  if (entries.length === 0 || entries.length > MAX_RTT_REGIONS) return `RegionRtts names 1 to ${MAX_RTT_REGIONS} regions`;
  for (const [regionId, ms] of entries) {
    if (!REGION_ID_PATTERN.test(regionId)) return `RegionRtts: region id "${regionId.slice(0, 64)}" must match ${REGION_ID_PATTERN}`;
    if (!(ms >= 0 && ms <= MAX_RTT_MS)) return `RegionRtts: ${regionId}'s round trip must be 0..${MAX_RTT_MS} ms`;
  }
  return undefined;
}

/** Measured round trips as a report may carry them (whole ms, at most MAX_RTT_MS, valid ids, at most MAX_RTT_REGIONS); undefined when none is left. */
export function regionRttsOf(measured: Readonly<Record<string, number>> | undefined): Record<string, number> | undefined {
  const rttMs: Record<string, number> = {};
  let count = 0;
  for (const [regionId, ms] of Object.entries(measured ?? {})) {
    if (count >= MAX_RTT_REGIONS || !REGION_ID_PATTERN.test(regionId) || !Number.isFinite(ms) || ms < 0) continue;
    rttMs[regionId] = Math.min(MAX_RTT_MS, Math.round(ms));
    count++;
  }
  return count > 0 ? rttMs : undefined;
}
