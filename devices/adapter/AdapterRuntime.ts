/**
 * The edge adapter: keeps ONE device connected to the nearest Tsunagi region over the
 * device channel (device.proto), and is the last line of defence for its safety
 * (DESIGN.md, "Teleoperation safety model"). A thin composition of its pieces:
 *
 * - GatewayConnection: picks a node, connects, proves the device, syncs the clock,
 *   follows redirects, reconnects with backoff.
 * - SafetyController: the lease, commands, actions, heartbeats, e-stop and reset, the
 *   watchdog; nothing moves unless it says so, and every way the link fails ends in
 *   zeroed motion. Its file comment is the list of rules.
 * - TelemetryBuffer: samples waiting for the link, bounded, oldest dropped first.
 *
 * The runtime wires them: the connection's messages go to the safety controller, whose
 * replies go back out on the connection; telemetry is sampled at telemetryHz (and at
 * once when the safety state changes) into the buffer, which the connection drains.
 *
 * @example
 *   const driver = createDriver("sim-excavator");
 *   driver.init();
 *   driver.start();
 *   const adapter = new AdapterRuntime({
 *     deviceId: "ex-1", driver, credential: { secret: process.env.TSUNAGI_DEVICE_SECRET! },
 *     nodes: ["http://tokyo-1.example.net:2567", "http://osaka-1.example.net:2567"],
 *     adapterVersion: "1.0.0", logger,
 *   });
 *   adapter.on("online", ({ regionId, nodeId }) => console.log(`online via ${regionId}/${nodeId}`));
 *   adapter.start();
 *   // on SIGTERM:
 *   await adapter.stop();
 */
import type { Logger } from "pino";
import { ClockSync } from "../../common/ClockSync.ts";
import { SafeEmitter } from "../../common/SafeEmitter.ts";
import type { Envelope, tsunagi } from "../../proto/index.ts";
import type { Driver } from "../drivers/types.ts";
import type { HalObserver } from "../hal/events.ts";
import { CommandStatus } from "./CommandGuard.ts";
import { GatewayConnection } from "./GatewayConnection.ts";
import { sampleTelemetry, toProtoProfile } from "./mapping.ts";
import { resolveAdapterOptions } from "./options.ts";
import type { LocalResetOutcome } from "./EStopOrigin.ts";
import { SafetyController } from "./SafetyController.ts";
import { TelemetryBuffer } from "./TelemetryBuffer.ts";
import type {
  AdapterConnection, AdapterCounters, AdapterError, AdapterEvents, AdapterListeners, AdapterRuntimeOptions, AdapterSafety, AdapterState, AdapterStatus,
  AdapterStop,
} from "./types.ts";

export type {
  AdapterConnection, AdapterCounters, AdapterCredential, AdapterError, AdapterEvents, AdapterRuntimeOptions, AdapterSafety, AdapterState, AdapterStatus,
  AdapterStop,
} from "./types.ts";
export { backoffDelayMs } from "./backoff.ts";
/** Re-exported for callers that inspect acks. */
export { CommandStatus };

export class AdapterRuntime {
  /** The enrolled device id this adapter speaks for. */
  readonly deviceId: string;
  /** The device's driver; its Hal is what commands and stops reach. */
  readonly driver: Driver;
  /** The profile this adapter publishes and enforces. */
  readonly profile: tsunagi.v1.IDeviceProfile;
  /** The adapter's estimate of the connected node's clock. */
  readonly clock: ClockSync;

  /** Telemetry sampling rate, Hz. */
  private readonly telemetryHz: number;
  /** Carries the device id on every line. */
  private readonly logger: Logger;
  /** The events; a listener that throws is logged, not thrown. */
  private readonly events: SafeEmitter<AdapterListeners>;
  /** The link to the region. */
  private readonly link: GatewayConnection;
  /** The safety rules: lease, commands, latches, watchdog. */
  private readonly safetyController: SafetyController;
  /** Telemetry not yet sent. */
  private readonly telemetry: TelemetryBuffer;
  /** Relays Hal errors to the log. */
  private readonly halObserver: HalObserver;
  /** Samples telemetry at telemetryHz from start() to stop(), online or not. */
  private telemetryTimer: NodeJS.Timeout | undefined;
  /** start() was called (it may be called once). */
  private started = false;
  /** The one shutdown, shared by every stop() call. */
  private stopPromise: Promise<void> | undefined;

  constructor(options: AdapterRuntimeOptions) {
    const resolved = resolveAdapterOptions(options);
    const { deviceId, driver, logger } = resolved;
    this.deviceId = deviceId;
    this.driver = driver;
    this.telemetryHz = resolved.telemetryHz;
    this.logger = logger;
    this.profile = toProtoProfile(deviceId, driver.profile(), resolved.telemetryHz, driver);
    this.clock = new ClockSync({ now: resolved.now });
    this.events = new SafeEmitter<AdapterListeners>((error, source) => this.logger.error({ err: error }, `an adapter ${source} threw`));
    this.telemetry = new TelemetryBuffer(resolved.telemetryBufferSize);
    this.safetyController = new SafetyController({
      deviceId, driver, profile: this.profile, clock: this.clock, logger, events: this.events,
      reportNow: () => this.sampleAndFlush(),
    });
    this.link = new GatewayConnection({ ...resolved, driverName: driver.driverName, profile: this.profile, clock: this.clock }, {
      events: this.events,
      received: (envelope) => this.onSafetyMessage(envelope),
      linkUp: (welcome) => this.onLinkUp(welcome),
      linkClosed: (loss) => this.safetyController.linkClosed(loss),
      failSafe: (reason) => this.safetyController.zeroMotion(reason),
    });
    // a change the driver says is worth sending now (an area alert) goes out without waiting for the tick
    driver.onChange?.(() => this.sampleAndFlush());
    this.halObserver = {
      onError: (error) => this.logger.warn({ code: error.code, componentId: error.componentId }, `hal: ${error.message}`),
    };
  }

  // --- observable state --------------------------------------------------------------

  get state(): AdapterState {
    return this.link.state;
  }

  /** A copy of the counters. */
  get counters(): AdapterCounters {
    const link = this.link.counters;
    const safety = this.safetyController.counters;
    return {
      acks: safety.acks, actions: safety.actions, connectAttempts: link.connectAttempts, reconnects: link.reconnects, redirects: link.redirects,
      telemetrySent: this.telemetry.sent, telemetryDropped: this.telemetry.dropped, malformed: link.malformed, unexpected: link.unexpected + safety.unexpected,
      refusedFrames: link.refusedFrames, gatewayProofFailures: link.gatewayProofFailures,
      errorsReceived: link.errorsReceived, errors: link.errors, watchdogTrips: safety.watchdogTrips, linkLossStops: safety.linkLossStops,
      estops: safety.estops, resetsRefused: safety.resetsRefused,
    };
  }

  /** The last error (a refused hello, an unreachable region, a gateway Error); undefined if none yet. */
  get lastError(): AdapterError | undefined {
    return this.link.lastError;
  }

  /** Where the adapter is connected; undefined unless online. */
  get connection(): AdapterConnection | undefined {
    return this.link.connection;
  }

  /** The adapter-side safety state. */
  get safety(): AdapterSafety {
    return this.safetyController.state;
  }

  /**
   * When the adapter last stopped commanded motion (device wall clock, Unix epoch ms)
   * and why: "no lease (disconnected)", "watchdog", "connection closed", "e-stop"...
   * Only stops of a device that had been commanded to move count; later zeroings of an
   * already still device do not overwrite it. A technician sees when and why the machine
   * last stopped, and a test can bound how long after a failure it did.
   */
  get lastStop(): AdapterStop | undefined {
    return this.safetyController.lastStop;
  }

  /**
   * Everything a technician beside the machine wants at a glance, as plain JSON: the
   * connection, the safety state, the last stop, the last error, counters, and the
   * device's axes as they are now. Served by the adapter's local status endpoint.
   */
  status(): AdapterStatus {
    let joints: AdapterStatus["joints"] = [];
    try {
      const sample = this.sample(Date.now());
      joints = (sample.joints ?? []).map((joint) => ({ name: joint.name ?? "", position: joint.position ?? 0, velocity: joint.velocity ?? 0 }));
    } catch (error) {
      this.logger.warn({ err: error }, `driver telemetry failed: ${(error as Error).message}`);
    }
    return {
      deviceId: this.deviceId,
      driver: this.driver.driverName,
      state: this.state,
      connection: this.connection,
      safety: this.safety,
      watchdogWindowMs: this.watchdogWindowMs,
      lastStop: this.lastStop,
      lastError: this.lastError,
      conflict: this.link.conflict,
      counters: this.counters,
      bufferedTelemetry: this.telemetry.size,
      clockUncertaintyMs: Number.isFinite(this.clock.uncertaintyMs) ? this.clock.uncertaintyMs : null,
      joints,
      device: this.deviceCounters(),
      at: Date.now(),
    };
  }

  /** Telemetry samples waiting to be sent (buffered while offline or backpressured). */
  get bufferedTelemetry(): number {
    return this.telemetry.size;
  }

  /** The watchdog window in force, ms. */
  get watchdogWindowMs(): number {
    return this.safetyController.watchdog.windowMs;
  }

  /** Subscribes to an event; returns the unsubscribe. A listener that throws is logged and ignored. */
  on<K extends keyof AdapterEvents>(event: K, listener: (payload: AdapterEvents[K]) => void): () => void {
    return this.events.on(event, listener as AdapterListeners[K]);
  }

  // --- lifecycle -----------------------------------------------------------------------

  /** Starts sampling telemetry and connecting. Call once. */
  start(): void {
    if (this.started) throw new Error("AdapterRuntime.start() was already called; make a new runtime to start again");
    this.started = true;
    this.driver.hal.addObserver(this.halObserver);
    this.telemetryTimer = setInterval(() => this.tick(), 1000 / this.telemetryHz);
    this.followAvailability(); // a machine that does not answer yet is not offered to anyone
    this.link.start();
  }

  /**
   * Closes the connection, stops every timer and zeroes motion. The lease that was
   * current dies (as on any disconnect). Resolves once the socket is closed and the
   * connection loop has exited; idempotent.
   */
  stop(): Promise<void> {
    this.stopPromise ??= this.shutdown();
    return this.stopPromise;
  }

  /**
   * Raises an e-stop on the device itself (a physical button, a driver fault): motion
   * stops, the latch holds, and the gateway is told so the room latches too. Offline,
   * the room is told on the next welcome.
   */
  raiseEStop(reason: string): void {
    this.link.send(this.safetyController.raiseEStop(reason));
  }

  /**
   * The technician's reset at the machine (the local endpoint): an e-stop raised here
   * stays latched, but a supervisor's reset through the room may now clear it. Refused
   * while the device's own stop is engaged, or when no such latch holds.
   */
  localReset(): LocalResetOutcome {
    return this.safetyController.localReset();
  }

  // --- wiring --------------------------------------------------------------------------

  /** A message of the welcomed link: the safety controller's, its replies sent back. */
  private onSafetyMessage(envelope: Envelope): boolean {
    if (envelope.body === "cameraTarget") {
      this.events.emit("cameraTarget", envelope.cameraTarget!);
      return true;
    }
    const outcome = this.safetyController.handle(envelope);
    if (!outcome) return false;
    for (const reply of outcome.replies) {
      this.link.send(reply);
      if (reply.commandAck) this.events.emit("ack", reply.commandAck);
    }
    if (outcome.reportAfter) this.sampleAndFlush();
    return true;
  }

  /** Welcomed: the room hears a latch that outlived the last link, then the telemetry buffered meanwhile (oldest first). */
  private onLinkUp(welcome: tsunagi.v1.IDeviceWelcome): void {
    for (const notice of this.safetyController.linkUp(welcome.defaultLatencyBudgetMs ?? 0)) this.link.send(notice);
    this.telemetry.flush(this.link);
  }

  private async shutdown(): Promise<void> {
    // Stop first: the close handshake below may take a while.
    this.safetyController.stop();
    clearInterval(this.telemetryTimer);
    this.telemetryTimer = undefined;
    await this.link.stop();
    if (this.started) this.driver.hal.removeObserver(this.halObserver);
    this.logger.info(`adapter ${this.deviceId} stopped`);
  }

  /** The telemetry tick: the device's own stop is looked at (latched and told when it engages), then a sample taken. */
  private tick(): void {
    this.followAvailability();
    const notice = this.safetyController.pollDriverStop();
    if (notice) this.link.send(notice);
    this.sampleAndFlush();
  }

  /** The driver's counters for the status endpoint; undefined when it keeps none or they fail. */
  private deviceCounters(): object | undefined {
    try {
      return this.driver.counters?.();
    } catch (error) {
      this.logger.warn({ err: error }, `driver counters failed: ${(error as Error).message}`);
      return undefined;
    }
  }

  /** A machine that stopped answering (Driver.available() false) takes the link offline until it answers again. */
  private followAvailability(): void {
    let available = true;
    try {
      available = this.driver.available?.() ?? true;
    } catch (error) {
      available = false;
      this.logger.warn({ err: error }, `driver availability check failed: ${(error as Error).message}`);
    }
    if (available) this.link.deviceAvailable();
    else this.link.deviceUnavailable(`the ${this.driver.driverName} device does not answer`);
  }

  /** Takes a sample into the buffer (dropping the oldest beyond its size) and sends what the link takes. */
  private sampleAndFlush(): void {
    let telemetry: tsunagi.v1.ITelemetry;
    try {
      telemetry = this.sample(this.clock.serverNow());
    } catch (error) {
      this.logger.warn({ err: error }, `driver telemetry failed: ${(error as Error).message}`);
      return;
    }
    this.telemetry.push(telemetry);
    this.telemetry.flush(this.link);
  }

  /** The device now, with the adapter's safety state; throws if the driver's telemetry() does. */
  private sample(sampledAtMs: number): tsunagi.v1.ITelemetry {
    const { estopped, stopLatch, lastApplied } = this.safetyController.state;
    // the wire's watchdog_tripped: the lease died here, whatever killed it
    return sampleTelemetry(this.driver, this.profile, { deviceId: this.deviceId, sampledAtMs, estopped, watchdogTripped: stopLatch !== undefined, lastApplied });
  }
}
