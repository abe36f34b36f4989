/**
 * What a hall's own sensors add to it: the beacons (visitors' and staff's BLE tags) a
 * site's sensors device located, published by the teleop room whose `hall` option names
 * this hall (rooms/teleop/SiteSensors.ts) as a `sensors` hall event. Each zone adds
 * presence to its heatmap for the beacons inside it, as it does for its connected
 * visitors once a second. The hall's frame is the site's: the receivers' positions are
 * given in hall metres.
 *
 * (Area alerts reach the hall as ordinary announcements to the area; nothing here.)
 *
 * @example
 *   applyHallSensors(event.sensors, this.zone, this.analytics);   // from applyHallEvent
 */
import type { tsunagi } from "../../proto/index.ts";
import type { ExpoAnalytics } from "./Analytics.ts";
import type { ZoneLayout } from "./HallLayout.ts";
import { rectContains } from "./ZoneGeometry.ts";

/** Most presence one batch may add per beacon, s: a batch says "seen in the last second or so". */
const MAX_SECONDS_PER_BATCH = 5;

/** Adds each beacon inside `zone` (all of them in an unzoned hall) to the heatmap; answers how many it counted. */
export function applyHallSensors(sensors: tsunagi.v1.IHallSensors, zone: ZoneLayout | undefined, analytics: ExpoAnalytics): number {
  const seconds = Math.min(MAX_SECONDS_PER_BATCH, Number(sensors.seconds) || 0);
  if (!(seconds > 0)) return 0;
  let counted = 0;
  for (const beacon of sensors.beacons ?? []) {
    const x = Number(beacon.x);
    const y = Number(beacon.y);
    if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
    if (zone && !rectContains(zone.rect, x, y)) continue;
    analytics.samplePresence(x, y, seconds);
    counted++;
  }
  return counted;
}
