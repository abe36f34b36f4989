/**
 * A site's sensors in its teleop room: what a sensors device (DEVICE_CLASS_SENSORS, the
 * mqtt-sensors driver) reports, beyond the telemetry every participant already gets.
 *
 * - Area alerts: each alert the device raises or clears (CO2 over its threshold in an
 *   area) becomes an AreaNotice to every participant, once, when it changes; the
 *   telemetry keeps the alerts in force for anyone who joins later.
 * - With a `hall` (the teleop room's option: the expo hall these sensors stand in), the
 *   same alert reaches the hall's visitors of that area as an Announcement, and the
 *   beacons located since the last second feed the hall's heatmap (a `sensors` hall
 *   event, rooms/expo/HallSensors.ts).
 *
 * @example
 *   const sensors = new SiteSensors({ roomId, hallId: "hall-a", presence, broadcast, logger, metrics });
 *   sensors.telemetry("hall-a-sensors", telemetry);   // from each device's telemetry
 *   every(1000, () => sensors.flush());
 */
import { ServerError, type Presence } from "@colyseus/core";
import { ErrorCode, type IEnvelope, type tsunagi } from "../../proto/index.ts";
import { HALL_ID_PATTERN } from "../../proto/ids.ts";
import type { Logger } from "../../server/observability/logging.ts";
import { publishHallEvent } from "../expo/HallChannels.ts";

/** How often beacons go to the hall, ms; each batch counts this much presence per beacon. */
export const SITE_SENSORS_FLUSH_MS = 1000;
/** Beacons remembered per device between batches (the telemetry's own bound is lower). */
const MAX_BEACONS = 10_000;

export interface SiteSensorsOptions {
  roomId: string;
  /** The expo hall the site's sensors stand in; undefined: none. */
  hallId: string | undefined;
  presence: Presence;
  broadcast(envelope: IEnvelope): void;
  logger: Logger;
  /** Counts each notice raised or cleared, by kind. */
  noticed?(kind: string, raised: boolean): void;
}

/** The room's `hall` option: a hall id, or undefined when absent; anything else is refused. */
export function parseSiteHall(hall: unknown): string | undefined {
  if (hall === undefined || hall === null || hall === "") return undefined;
  if (typeof hall !== "string" || !HALL_ID_PATTERN.test(hall)) throw new ServerError(ErrorCode.WRONG_TYPE, `hall must be an expo hall id (${HALL_ID_PATTERN.source})`);
  return hall;
}

const alertKey = (alert: tsunagi.v1.IAreaAlert) => `${alert.area}\u0000${alert.kind}`;

export class SiteSensors {
  private readonly options: SiteSensorsOptions;
  /** Per device: the alerts in force, by area and kind. */
  private readonly alerts = new Map<string, Map<string, tsunagi.v1.IAreaAlert>>();
  /** Per device: each beacon's newest sighting not yet sent to the hall, and the last sent. */
  private readonly pendingBeacons = new Map<string, Map<string, tsunagi.v1.IBeaconFix>>();
  private readonly sentSeenAt = new Map<string, Map<string, number>>();

  constructor(options: SiteSensorsOptions) {
    this.options = options;
  }

  /** A device's telemetry: notices for alerts raised or cleared since its last sample, and beacons for the hall. */
  telemetry(deviceId: string, telemetry: tsunagi.v1.ITelemetry): void {
    const readingsOrAlerts = (telemetry.readings?.length ?? 0) + (telemetry.alerts?.length ?? 0) + (telemetry.beacons?.length ?? 0);
    if (readingsOrAlerts === 0 && !this.alerts.has(deviceId)) return;
    this.diffAlerts(deviceId, telemetry.alerts ?? []);
    if (this.options.hallId) this.collectBeacons(deviceId, telemetry.beacons ?? []);
  }

  /** The device left the room (its adapter went offline): its alerts stand until it says otherwise. */
  forget(deviceId: string): void {
    this.pendingBeacons.delete(deviceId);
  }

  /** Sends the beacons located since the last flush to the hall. */
  flush(): void {
    const hallId = this.options.hallId;
    if (!hallId) return;
    for (const [deviceId, beacons] of this.pendingBeacons) {
      if (beacons.size === 0) continue;
      const batch = [...beacons.values()];
      beacons.clear();
      publishHallEvent(this.options.presence, hallId, {
        type: "sensors", from: this.options.roomId, sensors: { deviceId, beacons: batch, seconds: SITE_SENSORS_FLUSH_MS / 1000 },
      }).catch((error) => this.options.logger.warn({ err: error, hallId, deviceId }, "publishing beacons to the hall failed; the next second tries again"));
    }
  }

  private diffAlerts(deviceId: string, now: tsunagi.v1.IAreaAlert[]): void {
    const before = this.alerts.get(deviceId) ?? new Map<string, tsunagi.v1.IAreaAlert>();
    const after = new Map(now.map((alert) => [alertKey(alert), alert]));
    this.alerts.set(deviceId, after);
    for (const [key, alert] of after) if (!before.has(key)) this.notice(deviceId, alert, true);
    for (const [key, alert] of before) if (!after.has(key)) this.notice(deviceId, alert, false);
  }

  private notice(deviceId: string, alert: tsunagi.v1.IAreaAlert, raised: boolean): void {
    const atMs = Date.now();
    this.options.broadcast({ correlationId: 0, areaNotice: { deviceId, alert, raised, atMs } });
    this.options.noticed?.(alert.kind ?? "", raised);
    const what = `${alert.kind} ${raised ? `${alert.value} over ${alert.threshold}` : "back to normal"} in ${alert.area} (${alert.sensorId})`;
    this.options.logger.info({ roomId: this.options.roomId, deviceId, area: alert.area, kind: alert.kind, value: alert.value, threshold: alert.threshold, raised },
      `area alert ${raised ? "raised" : "cleared"}: ${what}`);
    const hallId = this.options.hallId;
    if (!hallId || !alert.area) return;
    const text = raised ? `${(alert.kind ?? "").toUpperCase()} is ${alert.value} here, over ${alert.threshold}: please let air in or move on` : `${(alert.kind ?? "").toUpperCase()} is back to normal here`;
    publishHallEvent(this.options.presence, hallId, {
      type: "announce", from: this.options.roomId, announcement: { text, areaId: alert.area, fromName: "site sensors", atMs },
    }).catch((error) => this.options.logger.warn({ err: error, hallId }, "announcing an area alert to the hall failed"));
  }

  private collectBeacons(deviceId: string, beacons: tsunagi.v1.IBeaconFix[]): void {
    let pending = this.pendingBeacons.get(deviceId);
    if (!pending) this.pendingBeacons.set(deviceId, pending = new Map());
    let sent = this.sentSeenAt.get(deviceId);
    if (!sent) this.sentSeenAt.set(deviceId, sent = new Map());
    for (const beacon of beacons) {
      const id = beacon.beaconId ?? "";
      const seenAt = Number(beacon.seenAtMs) || 0;
      // a fix the hall already counted is not counted again: only sightings newer than the last sent
      if (!id || (sent.get(id) ?? -1) >= seenAt) continue;
      if (!pending.has(id) && pending.size >= MAX_BEACONS) continue;
      pending.set(id, beacon);
      sent.set(id, seenAt);
    }
    if (sent.size > MAX_BEACONS * 2) sent.clear();
  }
}
