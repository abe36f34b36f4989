/**
 * A driver for site and hall sensors over MQTT: CO2 and other environmental monitors
 * (temperature, humidity, noise, PM2.5), and BLE receivers reporting the beacons worn by
 * workers and visitors. It has no axes and moves nothing; `hal.zeroMotion()` has nothing
 * to stop. Topics and payloads: topics.ts and payloads.ts; bounds: limits.ts.
 *
 * What it keeps (SiteModel): the newest reading per sensor and kind, online while
 * current (SensorRegistry: not `staleMs` old, no "offline" status since, and the broker
 * reachable, since without it nothing can be known); a position per beacon
 * (BeaconFixes); the area alerts raised (AreaAlerts). onChange() listeners hear alerts
 * raised and cleared and the broker connecting and disconnecting, so the adapter can send
 * telemetry at once instead of at its next tick.
 *
 * A malformed message (topic, size, JSON, binary, types, ranges, kind, unit, ids) is
 * counted by reason, logged at most once per reason per 10 s with the count held back,
 * and ignored: it is decoded in full before anything changes, and nothing it does can
 * throw out of the message handler.
 *
 * init() connects (BrokerConnection: clean session, backoff 0.5 s → 10 s); start()/stop()
 * run the staleness timer (once a second), which step() also runs; finalize() disconnects.
 *
 * @example
 *   const sensors = new MqttSensors({ site: "site-7", sensors: { "rx-1": { area: "hall-a", x: 0, y: 0 } } });
 *   sensors.onChange((change) => { if (change.type === "alert-raised") sendTelemetryNow(); });
 *   sensors.init();
 *   sensors.start();
 *   sensors.telemetry();   // { brokerConnected: true, readings: [...], beacons: [...], alerts: [...], counters: {...} }
 *   await sensors.close();
 */
import { SafeEmitter } from "../../../common/SafeEmitter.ts";
import { Hal, type FinalizeReport } from "../../hal/Hal.ts";
import type { Clock } from "../../hal/types.ts";
import { checkStep } from "../geometry.ts";
import type { DeviceProfile, Driver } from "../types.ts";
import type { AlertChange, AreaAlert } from "./AreaAlerts.ts";
import type { BeaconFix } from "./BeaconFixes.ts";
import { BrokerConnection } from "./BrokerConnection.ts";
import { BEACON_WINDOW_MS, MAX_BEACONS, MAX_SENSORS, STALENESS_TICK_MS } from "./limits.ts";
import { displayUrl, resolveOptions, type MqttSensorsOptions, type ResolvedOptions } from "./options.ts";
import { RateLimitedLog, type SensorsLogger } from "./RateLimitedLog.ts";
import type { ReadingSnapshot } from "./SensorRegistry.ts";
import { SiteModel, type MessageCounters } from "./SiteModel.ts";
import { subscriptions } from "./topics.ts";

export interface SensorsCounters extends MessageCounters {
  /** Connections that got as far as subscribed, the first included. */
  connects: number;
  /** Of those, the ones after a loss. */
  reconnects: number;
  /** Connections lost (finalize() included). */
  disconnects: number;
}

export interface SensorsTelemetry {
  timestamp: number;
  brokerConnected: boolean;
  /** Online ones first, then by sensor id and kind. */
  readings: ReadingSnapshot[];
  /** Most recently seen first. */
  beacons: BeaconFix[];
  alerts: AreaAlert[];
  counters: SensorsCounters;
}

export type SensorsChange =
  | { type: "alert-raised"; alert: AreaAlert }
  | { type: "alert-cleared"; alert: AreaAlert; clearedAtMs: number }
  | { type: "broker-connected" }
  | { type: "broker-disconnected"; reason: string };

/** The longest watchdog window the contract allows: nothing here moves, so nothing to stop sooner. */
const WATCHDOG_MS = 2_000;

export class MqttSensors implements Driver {
  readonly driverName = "mqtt-sensors" as const;
  /** Empty: sensors come and go by the hundred, and none takes a command. */
  readonly hal = new Hal();
  /** Where this driver's topics live. */
  readonly prefix: string;
  private readonly options: ResolvedOptions;
  private readonly clock: Clock;
  private readonly logger: SensorsLogger;
  private readonly log: RateLimitedLog;
  private readonly site: SiteModel;
  private readonly broker: BrokerConnection;
  private readonly events: SafeEmitter<{ change: (change: SensorsChange) => void }>;
  private readonly links = { connects: 0, reconnects: 0, disconnects: 0 };
  /** Connected and subscribed, as far as this driver is concerned (false from finalize() on). */
  private connected = false;
  private finalized = false;
  private stopping: Promise<void> | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(options: MqttSensorsOptions = {}) {
    this.options = resolveOptions(options);
    this.prefix = this.options.prefix;
    this.clock = this.options.clock;
    this.logger = this.options.logger;
    this.log = new RateLimitedLog(this.logger, this.clock);
    this.events = new SafeEmitter((error, source) => this.log.warn("listener", { err: String(error) }, `mqtt-sensors: ${source} threw`));
    this.site = new SiteModel(this.options, this.log, (change) => this.alertChanged(change));
    const { url, clientId, username, password, connect } = this.options;
    this.broker = new BrokerConnection({ url, clientId, username, password, connect, subscriptions: subscriptions(this.prefix) }, {
      onConnected: () => this.brokerUp(),
      onDisconnected: (reason) => this.brokerDown(reason),
      onMessage: (topic, payload, retained) => { if (!this.finalized) this.ingest(topic, payload, retained); },
      onError: (key, error) => this.log.warn(key, { err: error.message, url: displayUrl(url) }, "mqtt-sensors: broker connection error"),
    });
  }

  /** Whether the staleness timer runs. */
  get running(): boolean {
    return this.timer !== undefined;
  }

  get brokerConnected(): boolean {
    return this.connected;
  }

  /** Starts connecting to the broker (returns at once; brokerConnected says when it is up). */
  init(): void {
    if (this.finalized) throw new Error("MqttSensors: init() after finalize(); create a new MqttSensors");
    this.hal.initAll();
    this.broker.start();
  }

  /** Stops the timer and disconnects (close() to await it); every reading goes offline. Never throws. */
  finalize(): FinalizeReport {
    this.stop();
    if (!this.finalized) {
      this.finalized = true;
      if (this.connected) this.brokerDown("finalized");
      else this.site.setAllOffline();
      this.stopping = this.broker.stop().catch(() => {});
    }
    return this.hal.finalizeAll();
  }

  /** finalize(), then waits until the MQTT client has ended. */
  async close(): Promise<void> {
    this.finalize();
    await this.stopping;
  }

  /** Runs the staleness sweep at the driver clock's now; `dtMs` is only checked. */
  step(dtMs: number): void {
    checkStep(dtMs);
    this.site.sweep();
  }

  start(): void {
    if (this.timer || this.finalized) return;
    this.timer = setInterval(() => this.site.sweep(), STALENESS_TICK_MS);
    this.timer.unref?.();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Hears alerts raised and cleared and the broker connecting and disconnecting; returns the function that stops it. */
  onChange(listener: (change: SensorsChange) => void): () => void {
    return this.events.on("change", listener);
  }

  mode(): string {
    return this.connected ? "connected" : "disconnected";
  }

  counters(): SensorsCounters {
    return { ...this.links, ...this.site.counters() };
  }

  telemetry(): SensorsTelemetry {
    const now = this.clock();
    return {
      timestamp: now,
      brokerConnected: this.connected,
      readings: this.site.readings(now),
      beacons: this.site.beacons(now),
      alerts: this.site.alerts(),
      counters: this.counters(),
    };
  }

  profile(): DeviceProfile {
    const parameters: Record<string, number> = {
      staleMs: this.options.staleMs, beaconTtlMs: this.options.beaconTtlMs, beaconWindowMs: BEACON_WINDOW_MS, maxSensors: MAX_SENSORS, maxBeacons: MAX_BEACONS,
    };
    for (const [kind, { raiseAbove, clearBelow }] of this.options.thresholds) {
      parameters[`${kind}RaiseAbove`] = raiseAbove;
      parameters[`${kind}ClearBelow`] = clearBelow;
    }
    return {
      driver: this.driverName, deviceClass: "sensors", vendor: "Tsunagi", model: "mqtt-sensors", axes: [],
      watchdogMs: WATCHDOG_MS,
      // no commands to time: the adapter's default applies
      latencyBudgetMs: 0,
      stepHz: 1000 / STALENESS_TICK_MS,
      parameters,
    };
  }

  /**
   * Handles one MQTT message as if it had arrived from the broker (the connection calls
   * this; tests and replays may too). `retained`: the broker's replay of a retained
   * message on subscribing. Never throws.
   */
  ingest(topic: string, payload: Uint8Array, retained = false): void {
    this.site.ingest(topic, payload, retained);
  }

  private alertChanged(change: AlertChange): void {
    const { alert } = change;
    if (change.type === "raised") {
      this.say("warn", { ...alert }, `mqtt-sensors: ${alert.kind} alert raised in area "${alert.area}"`);
      this.events.emit("change", { type: "alert-raised", alert });
    } else {
      this.say("info", { ...alert, clearedAtMs: change.clearedAtMs }, `mqtt-sensors: ${alert.kind} alert cleared in area "${alert.area}"`);
      this.events.emit("change", { type: "alert-cleared", alert, clearedAtMs: change.clearedAtMs });
    }
  }

  private brokerUp(): void {
    if (this.finalized) return;
    this.connected = true;
    this.links.connects++;
    if (this.links.connects > 1) this.links.reconnects++;
    this.say("info", { url: displayUrl(this.options.url), prefix: this.prefix, connects: this.links.connects }, "mqtt-sensors: connected to the broker and subscribed");
    this.events.emit("change", { type: "broker-connected" });
  }

  private brokerDown(reason: string): void {
    if (!this.connected) return;
    this.connected = false;
    this.links.disconnects++;
    this.site.setAllOffline();
    this.say("warn", { url: displayUrl(this.options.url), reason }, "mqtt-sensors: broker connection lost; every sensor is offline until it is back");
    this.events.emit("change", { type: "broker-disconnected", reason });
  }

  /** Writes a line that is not rate-limited (rare events); a logger that throws is ignored. */
  private say(level: "info" | "warn", fields: object, message: string): void {
    try {
      this.logger[level](fields, message);
    } catch {
      // a broken logger must not break the driver
    }
  }
}
