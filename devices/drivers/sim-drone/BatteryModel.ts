/**
 * The simulated drone's battery: charge drained by what the vehicle does (idling armed,
 * hovering, distance travelled), and the levels it passes through, each announced once:
 * "battery-low", then "battery-critical", at which the flight controller lands.
 *
 * @example
 *   const battery = new BatteryModel(config.battery, emit);
 *   if (battery.drain(0.01, { airborne: true, armed: false, distanceM: 0.05 })) land();   // just became critical
 */
import type { BatteryConfig } from "./FlightConfig.ts";
import type { FlightEventEmitter } from "./FlightState.ts";

/** Ordered so that a higher level is worse. */
const batteryLevels = ["ok", "low", "critical", "empty"] as const;
type BatteryLevel = (typeof batteryLevels)[number];
const LOW = batteryLevels.indexOf("low");
const CRITICAL = batteryLevels.indexOf("critical");

/** What the vehicle did over one step. */
export interface BatteryUse {
  /** Airborne when the step started (a touchdown step still flew). */
  airborne: boolean;
  /** Armed on the ground. */
  armed: boolean;
  /** Metres travelled in any direction. */
  distanceM: number;
}

export class BatteryModel {
  /** Thresholds and drain rates. */
  private readonly config: BatteryConfig;
  /** Announces the levels. */
  private readonly emit: FlightEventEmitter;
  /** State of charge, %. */
  private pct: number;
  /** Worst level announced so far; a level is announced once. */
  private level: BatteryLevel;

  constructor(config: BatteryConfig, emit: FlightEventEmitter) {
    this.config = config;
    this.emit = emit;
    this.pct = config.initialPct;
    this.level = this.levelOf(this.pct);
  }

  /** State of charge, %. */
  get percent(): number {
    return this.pct;
  }

  /** At or below critical: arm, take-off and hold are refused. */
  get critical(): boolean {
    return batteryLevels.indexOf(this.level) >= CRITICAL;
  }

  /** "battery-low", "battery-critical" or "battery-empty" for the snapshot's faults; undefined when ok. */
  get fault(): string | undefined {
    return this.level === "ok" ? undefined : `battery-${this.level}`;
  }

  /** Drains for one step of `dtS` seconds; answers true when the charge just became critical. */
  drain(dtS: number, use: BatteryUse): boolean {
    const { config } = this;
    let drain = 0;
    if (use.airborne) drain = config.hoverDrainPctPerS * dtS + config.drainPctPerMetre * use.distanceM;
    else if (use.armed) drain = config.idleDrainPctPerS * dtS;
    if (drain === 0) return false;
    this.pct = Math.max(0, this.pct - drain);

    const level = this.levelOf(this.pct);
    const previous = batteryLevels.indexOf(this.level);
    const current = batteryLevels.indexOf(level);
    if (current <= previous) return false;
    this.level = level;
    if (previous < LOW && current >= LOW) this.emit("battery-low", { batteryPct: this.pct });
    if (previous < CRITICAL && current >= CRITICAL) {
      this.emit("battery-critical", { batteryPct: this.pct });
      return true;
    }
    return false;
  }

  private levelOf(pct: number): BatteryLevel {
    const { lowPct, criticalPct } = this.config;
    return pct <= 0 ? "empty" : pct <= criticalPct ? "critical" : pct <= lowPct ? "low" : "ok";
  }
}
