/**
 * A site's sensors in its teleop room: what a sensors device (DEVICE_CLASS_SENSORS, the
 * mqtt-sensors driver) reports, beyond the telemetry every participant already gets.
 *
 * - Area alerts: each alert the device raises or clears (CO2 over its threshold in an
 *   area) becomes an AreaNotice to every participant, once, when it changes; the
 *   telemetry keeps the alerts in force for anyone who joins later. Only a device of
 *   class SENSORS counts, within TELEMETRY_LIMITS, and at most 5 notices a second each
 *   (bursts of 20): an adapter cannot flood the room, or the hall, through them.
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
import { ErrorCode, TELEMETRY_LIMITS, tsunagi, type IEnvelope } from "../../proto/index.ts";
import { LogThrottle } from "../../common/LogThrottle.ts";
import { TokenBucket } from "../../common/TokenBucket.ts";
import { HALL_ID_PATTERN } from "../../proto/ids.ts";
import type { Logger } from "../../server/observability/logging.ts";
import { publishHallEvent } from "../expo/HallChannels.ts";

/** How often beacons go to the hall, ms; each batch counts this much presence per beacon. */
export const SITE_SENSORS_FLUSH_MS = 1000;
/** Beacons remembered per device between batches (the telemetry's own bound is lower). */
const MAX_BEACONS = 10_000;
/** AreaNotices a device may cause, a second and in a burst; beyond, they are dropped (and logged, bounded). */
const NOTICES_PER_SECOND = 5;
const NOTICE_BURST = 20;

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

/** An alert with its texts within TELEMETRY_LIMITS.textChars (they end up in announcements and logs). */
function clipAlert(alert: tsunagi.v1.IAreaAlert): tsunagi.v1.IAreaAlert {
  const clip = (text: string | null | undefined) => (text ?? "").slice(0, TELEMETRY_LIMITS.textChars);
  return { ...alert, area: clip(alert.area), kind: clip(alert.kind), sensorId: clip(alert.sensorId) };
}

const { DeviceClass } = tsunagi.v1;

export class SiteSensors {
  private readonly options: SiteSensorsOptions;
  /** Per device: the alerts in force, by area and kind. */
  private readonly alerts = new Map<string, Map<string, tsunagi.v1.IAreaAlert>>();
  /** Per device: each beacon's newest sighting not yet sent to the hall, and the last sent. */
  private readonly pendingBeacons = new Map<string, Map<string, tsunagi.v1.IBeaconFix>>();
  private readonly sentSeenAt = new Map<string, Map<string, number>>();
  /** Per device: its allowance of notices. */
  private readonly noticeBudgets = new Map<string, TokenBucket>();
  /** Bounds the log lines dropped notices cause. */
  private readonly dropLog = new LogThrottle();

  constructor(options: SiteSensorsOptions) {
    this.options = options;
  }

  /**
   * A device's telemetry: notices for alerts raised or cleared since its last sample, and
   * beacons for the hall. Only a sensors device's count, and only TELEMETRY_LIMITS of them.
   */
  telemetry(deviceId: string, deviceClass: number | null | undefined, telemetry: tsunagi.v1.ITelemetry): void {
    if (deviceClass !== DeviceClass.DEVICE_CLASS_SENSORS) return;
    this.diffAlerts(deviceId, (telemetry.alerts ?? []).slice(0, TELEMETRY_LIMITS.alerts).map(clipAlert));
    if (this.options.hallId) this.collectBeacons(deviceId, (telemetry.beacons ?? []).slice(0, TELEMETRY_LIMITS.beacons));
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
    let budget = this.noticeBudgets.get(deviceId);
    if (!budget) this.noticeBudgets.set(deviceId, budget = new TokenBucket(NOTICES_PER_SECOND, NOTICE_BURST));
    if (!budget.take()) {
      // an adapter whose alerts flap faster than anyone can read: the telemetry still holds them
      const heldBack = this.dropLog.admit(deviceId);
      if (heldBack !== undefined) this.options.logger.warn({ roomId: this.options.roomId, deviceId, heldBack }, `device ${deviceId} raises and clears area alerts faster than ${NOTICES_PER_SECOND} a second: notices dropped`);
      return;
    }
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
