/**
 * Where each BLE beacon (worn by a worker or a visitor) is, from the fixed receivers that
 * hear it: the RSSI-weighted centroid of the receivers that heard it within `windowMs`
 * before its latest sighting, in the area of the strongest of them.
 *
 * The weight of a receiver is 10^(rssi/20), the received amplitude relative to 1 mW at
 * 0 dBm: 20 dB stronger weighs ten times more, so the fix leans hard towards the nearest
 * receiver without ignoring the others. A beacon heard by one receiver sits on it.
 *
 * A beacon not heard for `ttlMs` is dropped (sweep). At most `maxBeacons` are tracked: a
 * sighting of a further beacon is refused and counted until others are dropped. Each
 * beacon remembers at most `maxReceivers` receivers; the oldest sighting gives way.
 *
 * @example
 *   const fixes = new BeaconFixes(30_000);
 *   fixes.record({ receiverId: "rx-1", x: 0, y: 0, area: "hall-a" }, [{ id: "c3:00:00:0a:0b:0c", rssi: -60 }], now);
 *   fixes.record({ receiverId: "rx-2", x: 10, y: 0, area: "hall-b" }, [{ id: "c3:00:00:0a:0b:0c", rssi: -80 }], now);
 *   fixes.fix("c3:00:00:0a:0b:0c");   // { x: 0.909…, y: 0, area: "hall-a", rssi: -60, receivers: 2, ... }
 */
import { BEACON_WINDOW_MS, MAX_BEACONS, MAX_RECEIVERS_PER_BEACON } from "./limits.ts";
import type { BeaconHeard } from "./payloads.ts";

/** A fixed receiver, where it stands. */
export interface Receiver {
  receiverId: string;
  x: number;
  y: number;
  /** "" when the receiver has no area. */
  area: string;
}

/** One beacon's position, as telemetry carries it. */
export interface BeaconFix {
  beaconId: string;
  x: number;
  y: number;
  /** The strongest receiver's area. */
  area: string;
  /** The strongest RSSI in the window, dBm. */
  rssi: number;
  /** The latest sighting, ms. */
  seenAtMs: number;
  /** Receivers the fix is made of. */
  receivers: number;
}

interface Heard extends Receiver {
  rssi: number;
  atMs: number;
}

interface Track {
  /** By receiver id, oldest sighting first (an update moves it to the end). */
  heard: Map<string, Heard>;
  lastSeenMs: number;
}

/** A receiver's weight in a fix. */
export function rssiWeight(rssiDbm: number): number {
  return 10 ** (rssiDbm / 20);
}

export class BeaconFixes {
  private readonly tracks = new Map<string, Track>();
  /** Silence after which a beacon is dropped, ms. */
  private readonly ttlMs: number;
  /** How far before its latest sighting a receiver still counts, ms. */
  private readonly windowMs: number;
  private readonly maxBeacons: number;
  private readonly maxReceivers: number;

  constructor(ttlMs: number, windowMs = BEACON_WINDOW_MS, maxBeacons = MAX_BEACONS, maxReceivers = MAX_RECEIVERS_PER_BEACON) {
    this.ttlMs = ttlMs;
    this.windowMs = windowMs;
    this.maxBeacons = maxBeacons;
    this.maxReceivers = maxReceivers;
  }

  /** Beacons tracked. */
  get size(): number {
    return this.tracks.size;
  }

  /** One receiver heard these beacons at `atMs`. Returns how many were refused (new beacons over maxBeacons). */
  record(receiver: Receiver, beacons: readonly BeaconHeard[], atMs: number): number {
    let refused = 0;
    for (const beacon of beacons) {
      let track = this.tracks.get(beacon.id);
      if (!track) {
        if (this.tracks.size >= this.maxBeacons) {
          refused++;
          continue;
        }
        track = { heard: new Map(), lastSeenMs: atMs };
        this.tracks.set(beacon.id, track);
      }
      track.lastSeenMs = Math.max(track.lastSeenMs, atMs);
      track.heard.delete(receiver.receiverId);
      track.heard.set(receiver.receiverId, { ...receiver, rssi: beacon.rssi, atMs });
      for (const [receiverId, heard] of track.heard) {
        if (track.heard.size <= this.maxReceivers && heard.atMs >= track.lastSeenMs - this.windowMs) break;
        track.heard.delete(receiverId);
      }
    }
    return refused;
  }

  /** Drops beacons not heard for ttlMs; returns how many. */
  sweep(nowMs: number): number {
    let dropped = 0;
    for (const [beaconId, track] of this.tracks) {
      if (nowMs - track.lastSeenMs < this.ttlMs) continue;
      this.tracks.delete(beaconId);
      dropped++;
    }
    return dropped;
  }

  /** A beacon's position, or undefined for one not tracked. */
  fix(beaconId: string): BeaconFix | undefined {
    const track = this.tracks.get(beaconId);
    if (!track) return undefined;
    const inWindow: Heard[] = [];
    let strongest: Heard | undefined;
    for (const heard of track.heard.values()) {
      if (heard.atMs < track.lastSeenMs - this.windowMs) continue;
      inWindow.push(heard);
      // later entries are newer, so a tie goes to the latest sighting
      if (!strongest || heard.rssi >= strongest.rssi) strongest = heard;
    }
    if (!strongest) return undefined;
    // weights relative to the strongest (which weighs 1): the same ratios, and a lone receiver's position exactly
    let weights = 0;
    let x = 0;
    let y = 0;
    for (const heard of inWindow) {
      const weight = rssiWeight(heard.rssi - strongest.rssi);
      weights += weight;
      x += weight * heard.x;
      y += weight * heard.y;
    }
    return { beaconId, x: x / weights, y: y / weights, area: strongest.area, rssi: strongest.rssi, seenAtMs: track.lastSeenMs, receivers: inWindow.length };
  }

  /**
   * Every beacon heard within ttlMs of `nowMs`, most recently seen first, then by id (a
   * consumer that keeps only the first N keeps the freshest).
   */
  snapshot(nowMs: number): BeaconFix[] {
    const list: BeaconFix[] = [];
    for (const [beaconId, track] of this.tracks) {
      if (nowMs - track.lastSeenMs >= this.ttlMs) continue;
      const fix = this.fix(beaconId);
      if (fix) list.push(fix);
    }
    return list.sort((a, b) => b.seenAtMs - a.seenAtMs || (a.beaconId < b.beaconId ? -1 : a.beaconId > b.beaconId ? 1 : 0));
  }
}
