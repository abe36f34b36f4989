/**
 * The newest reading of each sensor, per kind (one device may report CO2, temperature and
 * humidity under one sensor id), and whether it is online: its reading is current.
 *
 * A reading is online from its arrival until it is `staleMs` old, the sensor says
 * "offline", or the broker connection drops (setAllOffline); a new reading brings it
 * back. A retained reading (the broker's replay of an old message on subscribing) is
 * kept but starts offline: it says what the sensor last said, not what it says now. A
 * sensor not heard for FORGET_SENSOR_AFTER_MS is forgotten, which frees its slot; at most
 * `maxSensors` sensor ids are tracked, and a reading from a further one is refused.
 *
 * Readings are indexed by (area, kind), the groups area alerts are evaluated over.
 *
 * @example
 *   const registry = new SensorRegistry(30_000);
 *   registry.record({ sensorId: "co2-a", kind: "co2", value: 812, unit: "ppm", area: "hall-a", readAtMs: now, heardAtMs: now, live: true });
 *   registry.online("hall-a", "co2");     // [{ sensorId: "co2-a", value: 812, online: true, ... }]
 *   registry.sweep(now + 30_000);         // [{ area: "hall-a", kind: "co2" }]: it went offline
 */
import { FORGET_SENSOR_AFTER_MS, MAX_SENSORS, type SensorKind } from "./limits.ts";

export interface ReadingInput {
  sensorId: string;
  kind: SensorKind;
  value: number;
  unit: string;
  /** "" when the sensor has no area. */
  area: string;
  x?: number;
  y?: number;
  /** When it was measured (the sensor's `ts` when trusted, else its arrival), ms. */
  readAtMs: number;
  /** When it arrived, on the driver's clock: what staleness counts from. */
  heardAtMs: number;
  /** False for a retained replay: stored, but offline. */
  live: boolean;
}

export interface StoredReading extends ReadingInput {
  online: boolean;
}

/** One reading as telemetry carries it. */
export interface ReadingSnapshot {
  sensorId: string;
  kind: string;
  value: number;
  unit: string;
  area: string;
  x?: number;
  y?: number;
  readAtMs: number;
  online: boolean;
}

/** An (area, kind) pair: what an area alert is about. */
export interface Group {
  area: string;
  kind: SensorKind;
}

export type RecordOutcome = { stored: true; groups: Group[] } | { stored: false };

export class SensorRegistry {
  /** Readings by sensor id, then kind. */
  private readonly sensors = new Map<string, Map<SensorKind, StoredReading>>();
  /** The same readings by group key (groupKey()). */
  private readonly groups = new Map<string, Set<StoredReading>>();
  /** When each sensor's last reading arrived, ms. */
  private readonly lastHeard = new Map<string, number>();
  /** Age at which a reading goes offline, ms. */
  private readonly staleMs: number;
  /** Sensor ids tracked at most. */
  private readonly maxSensors: number;
  /** Silence after which a sensor is forgotten, ms. */
  private readonly forgetAfterMs: number;

  constructor(staleMs: number, maxSensors = MAX_SENSORS, forgetAfterMs = FORGET_SENSOR_AFTER_MS) {
    this.staleMs = staleMs;
    this.maxSensors = maxSensors;
    this.forgetAfterMs = Math.max(forgetAfterMs, staleMs);
  }

  /** Sensor ids tracked. */
  get size(): number {
    return this.sensors.size;
  }

  /**
   * Stores a sensor's newest reading of a kind. Refused (nothing changes) for a sensor not
   * yet tracked when maxSensors are. Otherwise returns the groups to evaluate: the
   * reading's, and the one it left if its area changed.
   */
  record(input: ReadingInput): RecordOutcome {
    let readings = this.sensors.get(input.sensorId);
    if (!readings) {
      if (this.sensors.size >= this.maxSensors) return { stored: false };
      readings = new Map();
      this.sensors.set(input.sensorId, readings);
    }
    const groups: Group[] = [{ area: input.area, kind: input.kind }];
    const previous = readings.get(input.kind);
    if (previous) {
      this.unindex(previous);
      if (previous.area !== input.area) groups.push({ area: previous.area, kind: previous.kind });
    }
    const stored: StoredReading = { ...input, online: input.live };
    readings.set(input.kind, stored);
    this.index(stored);
    this.lastHeard.set(input.sensorId, Math.max(this.lastHeard.get(input.sensorId) ?? -Infinity, input.heardAtMs));
    return { stored: true, groups };
  }

  /** A sensor said "offline" (or its will did): its readings go offline. Returns the groups that changed. */
  setOffline(sensorId: string): Group[] {
    const changed: Group[] = [];
    for (const reading of this.sensors.get(sensorId)?.values() ?? []) {
      if (!reading.online) continue;
      reading.online = false;
      changed.push({ area: reading.area, kind: reading.kind });
    }
    return changed;
  }

  /** The broker is gone and nothing can be known: every reading goes offline. Returns the groups that changed. */
  setAllOffline(): Group[] {
    return [...this.sensors.keys()].flatMap((sensorId) => this.setOffline(sensorId));
  }

  /** Takes readings `staleMs` old offline and forgets silent sensors; returns the groups that changed. */
  sweep(nowMs: number): Group[] {
    const changed: Group[] = [];
    for (const [sensorId, readings] of this.sensors) {
      const forget = nowMs - (this.lastHeard.get(sensorId) ?? -Infinity) >= this.forgetAfterMs;
      for (const reading of readings.values()) {
        if (forget) {
          this.unindex(reading);
          changed.push({ area: reading.area, kind: reading.kind });
        } else if (reading.online && nowMs - reading.heardAtMs >= this.staleMs) {
          reading.online = false;
          changed.push({ area: reading.area, kind: reading.kind });
        }
      }
      if (forget) {
        this.sensors.delete(sensorId);
        this.lastHeard.delete(sensorId);
      }
    }
    return changed;
  }

  /** The online readings of a group, as of the last sweep. */
  online(area: string, kind: SensorKind): StoredReading[] {
    return [...(this.groups.get(groupKey(area, kind)) ?? [])].filter((reading) => reading.online);
  }

  /** Whether the group holds any reading, online or not. */
  known(area: string, kind: SensorKind): boolean {
    return (this.groups.get(groupKey(area, kind))?.size ?? 0) > 0;
  }

  /**
   * Every reading: online ones first, then by sensor id and kind (a consumer that keeps
   * only the first N keeps the current ones). `online` also counts staleness at `nowMs`,
   * so telemetry never shows an old reading as current while a sweep is due.
   */
  snapshot(nowMs: number): ReadingSnapshot[] {
    const list: ReadingSnapshot[] = [];
    for (const [sensorId, readings] of this.sensors) {
      for (const reading of readings.values()) {
        const snapshot: ReadingSnapshot = {
          sensorId, kind: reading.kind, value: reading.value, unit: reading.unit, area: reading.area,
          readAtMs: reading.readAtMs, online: reading.online && nowMs - reading.heardAtMs < this.staleMs,
        };
        // absent, not undefined: telemetry is plain JSON
        if (reading.x !== undefined && reading.y !== undefined) {
          snapshot.x = reading.x;
          snapshot.y = reading.y;
        }
        list.push(snapshot);
      }
    }
    return list.sort((a, b) => Number(b.online) - Number(a.online) || compare(a.sensorId, b.sensorId) || compare(a.kind, b.kind));
  }

  private index(reading: StoredReading): void {
    const key = groupKey(reading.area, reading.kind);
    let group = this.groups.get(key);
    if (!group) this.groups.set(key, (group = new Set()));
    group.add(reading);
  }

  private unindex(reading: StoredReading): void {
    const key = groupKey(reading.area, reading.kind);
    const group = this.groups.get(key);
    if (!group) return;
    group.delete(reading);
    if (group.size === 0) this.groups.delete(key);
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Area ids cannot hold a NUL, so this key is unambiguous. */
function groupKey(area: string, kind: SensorKind): string {
  return `${kind}\u0000${area}`;
}
