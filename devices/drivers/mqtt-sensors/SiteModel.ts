/**
 * The site as its sensors' messages describe it: each message routed by topic, decoded
 * in full, and only then applied to the readings (SensorRegistry), the beacon fixes
 * (BeaconFixes) and the area alerts (AreaAlerts) it touches. Knows nothing of MQTT
 * connections: MqttSensors feeds it messages and tells it when the broker is gone.
 *
 * A malformed message is counted by reason, logged at most once per reason per 10 s
 * (RateLimitedLog) and ignored; ingest() never throws.
 *
 * @example
 *   const site = new SiteModel(resolved, log, (change) => emit(change));
 *   site.ingest("tsunagi/site-7/sensors/co2-a/reading", Buffer.from('{"kind":"co2","value":1200,"area":"hall-a"}'));
 *   site.alerts();   // [{ area: "hall-a", kind: "co2", sensorId: "co2-a", value: 1200, threshold: 1000, ... }]
 */
import type { Clock } from "../../hal/types.ts";
import { AreaAlerts, type AlertChange, type AreaAlert } from "./AreaAlerts.ts";
import { BeaconFixes, type BeaconFix } from "./BeaconFixes.ts";
import { MAX_BEACONS, MAX_SENSOR_CLOCK_SKEW_MS, MAX_SENSORS } from "./limits.ts";
import type { ResolvedOptions } from "./options.ts";
import { malformedReasons, parseReading, parseSighting, parseStatus, type MalformedReason } from "./payloads.ts";
import type { RateLimitedLog } from "./RateLimitedLog.ts";
import { SensorRegistry, type Group, type ReadingSnapshot } from "./SensorRegistry.ts";
import { parseTopic } from "./topics.ts";

export interface MessageCounters {
  /** Messages received, malformed ones included. */
  messages: number;
  malformed: Record<MalformedReason, number>;
  /** Well-formed messages refused because a bound was full (MAX_SENSORS, MAX_BEACONS); beacons counted one by one. */
  refused: { sensors: number; beacons: number };
  alertsRaised: number;
  alertsCleared: number;
  /** Messages on which the handler itself failed (a bug): ignored and logged. */
  handlerErrors: number;
}

type SiteOptions = Pick<ResolvedOptions, "prefix" | "sensors" | "thresholds" | "staleMs" | "beaconTtlMs" | "clock">;

export class SiteModel {
  private readonly options: SiteOptions;
  private readonly clock: Clock;
  private readonly log: RateLimitedLog;
  /** Hears each alert raised or cleared. */
  private readonly onAlert: (change: AlertChange) => void;
  private readonly registry: SensorRegistry;
  private readonly fixes: BeaconFixes;
  private readonly areaAlerts: AreaAlerts;
  private readonly counts: MessageCounters = {
    messages: 0,
    malformed: Object.fromEntries(malformedReasons.map((reason) => [reason, 0])) as Record<MalformedReason, number>,
    refused: { sensors: 0, beacons: 0 }, alertsRaised: 0, alertsCleared: 0, handlerErrors: 0,
  };

  constructor(options: SiteOptions, log: RateLimitedLog, onAlert: (change: AlertChange) => void) {
    this.options = options;
    this.clock = options.clock;
    this.log = log;
    this.onAlert = onAlert;
    this.registry = new SensorRegistry(options.staleMs);
    this.fixes = new BeaconFixes(options.beaconTtlMs);
    this.areaAlerts = new AreaAlerts(options.thresholds);
  }

  /**
   * Handles one message. `retained`: the broker's replay of a retained message on
   * subscribing, which says what was, not what is. Never throws.
   */
  ingest(topic: string, payload: Uint8Array, retained = false): void {
    this.counts.messages++;
    try {
      const { prefix } = this.options;
      const route = parseTopic(prefix, topic);
      if (!route) return this.malformed("topic", topic, `not ${prefix}/sensors/<id>/reading|status or ${prefix}/beacons/<id> with ids of the id pattern`);
      if (route.type === "reading") this.reading(route.sensorId, topic, payload, retained);
      else if (route.type === "status") this.status(route.sensorId, topic, payload);
      else this.sighting(route.receiverId, topic, payload, retained);
    } catch (error) {
      this.counts.handlerErrors++;
      this.log.warn("handler", { topic: String(topic).slice(0, 128), err: error instanceof Error ? error.message : String(error) }, "mqtt-sensors: message handler failed; message ignored");
    }
  }

  /** Takes stale readings offline, forgets silent sensors, drops silent beacons. */
  sweep(): void {
    const now = this.clock();
    this.evaluate(this.registry.sweep(now), now);
    this.fixes.sweep(now);
  }

  /** Nothing can be known (the broker is gone): every reading goes offline. */
  setAllOffline(): void {
    this.evaluate(this.registry.setAllOffline(), this.clock());
  }

  readings(nowMs: number): ReadingSnapshot[] {
    return this.registry.snapshot(nowMs);
  }

  beacons(nowMs: number): BeaconFix[] {
    return this.fixes.snapshot(nowMs);
  }

  alerts(): AreaAlert[] {
    return this.areaAlerts.active();
  }

  counters(): MessageCounters {
    return { ...this.counts, malformed: { ...this.counts.malformed }, refused: { ...this.counts.refused } };
  }

  private reading(sensorId: string, topic: string, payload: Uint8Array, retained: boolean): void {
    const parsed = parseReading(payload);
    if (!parsed.ok) return this.malformed(parsed.reason, topic, parsed.detail);
    const { kind, value, unit, area, x, y, ts } = parsed.value;
    const config = this.options.sensors.get(sensorId);
    const now = this.clock();
    const position = x !== undefined ? { x, y } : config?.x !== undefined ? { x: config.x, y: config.y } : {};
    const outcome = this.registry.record({
      sensorId, kind, value, unit, area: area ?? config?.area ?? "", ...position,
      // an unsynchronised sensor clock is not the time of the reading; its arrival is
      readAtMs: ts !== undefined && Math.abs(ts - now) <= MAX_SENSOR_CLOCK_SKEW_MS ? ts : now,
      heardAtMs: now, live: !retained,
    });
    if (!outcome.stored) {
      this.counts.refused.sensors++;
      this.log.warn("refused:sensors", { sensorId }, `mqtt-sensors: reading refused; already tracking ${MAX_SENSORS} sensors`);
      return;
    }
    this.evaluate(outcome.groups, now);
  }

  private status(sensorId: string, topic: string, payload: Uint8Array): void {
    const parsed = parseStatus(payload);
    if (!parsed.ok) return this.malformed(parsed.reason, topic, parsed.detail);
    // "online" changes nothing: a sensor's readings are current once they arrive
    if (parsed.value === "offline") this.evaluate(this.registry.setOffline(sensorId), this.clock());
  }

  private sighting(receiverId: string, topic: string, payload: Uint8Array, retained: boolean): void {
    const parsed = parseSighting(payload);
    if (!parsed.ok) return this.malformed(parsed.reason, topic, parsed.detail);
    const config = this.options.sensors.get(receiverId);
    const x = parsed.value.x ?? config?.x;
    const y = parsed.value.y ?? config?.y;
    if (x === undefined || y === undefined) {
      return this.malformed("position", topic, `receiver ${receiverId} has no position: send x and y, or configure sensors[${JSON.stringify(receiverId)}]`);
    }
    // a replayed sighting says where beacons were, not where they are
    if (retained) return;
    const area = parsed.value.area ?? config?.area ?? "";
    const refused = this.fixes.record({ receiverId, x, y, area }, parsed.value.beacons, this.clock());
    if (refused > 0) {
      this.counts.refused.beacons += refused;
      this.log.warn("refused:beacons", { receiverId, refused }, `mqtt-sensors: beacons refused; already tracking ${MAX_BEACONS} beacons`);
    }
  }

  private malformed(reason: MalformedReason, topic: string, detail: string): void {
    this.counts.malformed[reason]++;
    this.log.warn(`malformed:${reason}`, { reason, topic: String(topic).slice(0, 128), detail }, "mqtt-sensors: malformed message ignored");
  }

  /** Re-evaluates the alerts of each distinct group and passes on any change. */
  private evaluate(groups: readonly Group[], now: number): void {
    const seen = new Set<string>();
    for (const { area, kind } of groups) {
      const key = `${kind}\u0000${area}`;
      if (seen.has(key) || !this.areaAlerts.watches(kind)) continue;
      seen.add(key);
      const change = this.areaAlerts.evaluate(area, kind, this.registry.online(area, kind), this.registry.known(area, kind), now);
      if (!change) continue;
      if (change.type === "raised") this.counts.alertsRaised++;
      else this.counts.alertsCleared++;
      this.onAlert(change);
    }
  }
}
