/**
 * The edge adapter: keeps ONE device connected to the nearest Tsunagi region over the
 * device channel (teleop.proto), and is the last line of defence for its safety
 * (DESIGN.md, "Teleoperation safety model"). Nothing moves unless a command passes the
 * CommandGuard under the lease the room announced, and every way the link can fail ends
 * in zeroed motion.
 *
 * Connection cycle (state: probing → connecting → authenticating → online → backoff → …):
 * 1. Probe `GET <node>/ping` on every configured node and take the nearest; ask it
 *    `GET <node>/gateway` for the device endpoint ({ url, regionId, nodeId }), falling
 *    back to the next nearest if it cannot say (draining, down).
 * 2. WebSocket to that url; each binary frame is one Envelope. The gateway sends a
 *    DeviceChallenge; the adapter answers a DeviceHello (HMAC of the challenge with the
 *    device secret, or a device token). A DeviceWelcome puts it online; an Error is
 *    logged, kept as `lastError`, and retried with backoff (credentials may be fixed
 *    meanwhile).
 * 3. Online: DeviceProfile, five ClockSyncPings (then one every 5 s), the telemetry
 *    buffered while offline (oldest first), then live telemetry at telemetryHz.
 * 4. When the socket closes: motion zeroed at once, the lease that was current is dead
 *    (a watchdog latch), a drone's link-loss failsafe engaged; then backoff with full
 *    jitter (initialMs doubling up to maxMs) and a fresh probe.
 * 5. A GatewayRedirect (the device's room is on another node of the region) is followed
 *    at once, without backoff or probe: the gateway closes, the close stops the machine
 *    as every close does, and the next cycle connects to the named gateway. Later cycles
 *    go there first until a connection there is not welcomed or its node drains.
 *
 * Safety, online:
 * - LeaseState: the only lease commands are accepted under; "" zeroes motion. The
 *   watchdog is armed while a lease is current.
 * - ControlCommand: checked (ESTOPPED, NO_LEASE, EXPIRED, STALE, OUT_OF_BOUNDS); an
 *   applied command is a complete setpoint (unmentioned velocity axes go to 0) and feeds
 *   the watchdog. Every command gets one CommandAck, with the command's correlation id.
 * - Heartbeat: feeds the watchdog when it is under the current lease, fresh and recent.
 * - Watchdog trip: zero motion, the lease dies, telemetry says watchdog_tripped until
 *   the room announces a fresh lease.
 * - EStop: zero motion first, then latch; Reset clears the latch, and motion needs a
 *   lease granted after it.
 * - Anything malformed is logged and counted; nothing the gateway sends can throw out of
 *   the runtime.
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
import { pino, type Logger } from "pino";
import { WebSocket, type RawData } from "ws";
import { RegionProbe, measureHttpPing } from "../../common/RegionProbe.ts";
import { DeviceCloseCode, ErrorCode, decodeEnvelope, encodeEnvelope, errorCodeName, isRetryable, tsunagi, type Envelope, type IEnvelope } from "../../proto/index.ts";
import { proveChallenge } from "../../proto/deviceAuth.ts";
import type { Driver } from "../drivers/types.ts";
import type { HalObserver } from "../hal/events.ts";
import { ClockSync } from "../../common/ClockSync.ts";
import { nodeUrls } from "../../common/nodeUrl.ts";
import { DEVICE_ID_PATTERN, DEVICE_ID_TEXT } from "../../proto/ids.ts";
import { CommandGuard, CommandStatus, type SetpointEntry } from "./CommandGuard.ts";
import { DEFAULT_WATCHDOG_WINDOW_MS, sampleTelemetry, toProtoProfile } from "./mapping.ts";
import { Watchdog } from "./Watchdog.ts";

const AxisMode = tsunagi.v1.AxisMode;

export type AdapterState = "probing" | "connecting" | "authenticating" | "online" | "backoff" | "stopped";

/** How the adapter proves it is the device: the enrolment secret (64 hex characters) or a device token (JWT). */
export type AdapterCredential = { secret: string } | { token: string };

export interface AdapterRuntimeOptions {
  /** The enrolled device id, [A-Za-z0-9_.-]{1,64}. */
  deviceId: string;
  /** The device's driver, initialised (and its loop started) by the caller. */
  driver: Driver;
  credential: AdapterCredential;
  /** HTTP base URLs of the region nodes to choose from, e.g. "http://127.0.0.1:2567". */
  nodes: string[];
  /** This adapter's version, semver ("1.4.2"); the gateway refuses anything else. */
  adapterVersion: string;
  /** Telemetry rate, Hz. Default 20. */
  telemetryHz?: number;
  /** Telemetry samples kept while offline; the oldest drop beyond this. Default 600 (30 s at 20 Hz). */
  telemetryBufferSize?: number;
  /** Reconnect backoff: full jitter, the cap doubling from initialMs to maxMs. Defaults 100 and 5000 ms. */
  backoff?: { initialMs?: number; maxMs?: number };
  /** Where log lines go. Default: a silent logger (listen to the events instead). */
  logger?: Logger;
  /** Bound on opening the socket and completing the handshake. Default 10 000 ms. */
  handshakeTimeoutMs?: number;
  /** Bound on each /ping sample and on the /gateway request. Default 2000 ms. */
  httpTimeoutMs?: number;
  /** ClockSyncPing interval once online (the contract asks for at most 10 s). Default 5000 ms. */
  clockSyncIntervalMs?: number;
  /** Uniform random numbers in [0, 1), for the backoff jitter. Default Math.random. */
  random?: () => number;
  /** Monotonic client clock, ms (watchdog and clock sync). Default performance.now. */
  now?: () => number;
}

/** The last thing that went wrong, for operators and tests. */
export interface AdapterError {
  /** An ErrorCode: from the gateway's Error, or REGION_UNAVAILABLE when no node could be reached. Absent for a plain connection failure. */
  code?: number;
  /** errorCodeName(code), or for failures without a code: "CONNECTION_FAILED", "CONNECTION_CLOSED" (before the welcome), "HANDSHAKE_TIMEOUT". */
  codeName: string;
  message: string;
  /** Where in the cycle it happened. */
  phase: "probe" | "gateway" | "connect" | "handshake" | "online";
  /** Device wall clock, Unix epoch ms. */
  at: number;
}

/** When and why the adapter last zeroed motion. */
export interface AdapterStop {
  /** Device wall clock, Unix epoch ms. */
  at: number;
  reason: string;
}

/** AdapterRuntime.status(): plain JSON. */
export interface AdapterStatus {
  deviceId: string;
  driver: string;
  state: AdapterState;
  connection: AdapterConnection | undefined;
  safety: { lease: string | undefined; estopped: boolean; watchdogTripped: boolean; lastApplied: { leaseId: string; seq: number } | undefined };
  watchdogWindowMs: number;
  lastStop: AdapterStop | undefined;
  lastError: AdapterError | undefined;
  counters: AdapterCounters;
  bufferedTelemetry: number;
  /** Half the round trip of the best clock sample, ms; null before the first. */
  clockUncertaintyMs: number | null;
  /** Every profile axis now: position in its unit, velocity in its unit per second. */
  joints: Array<{ name: string; position: number; velocity: number }>;
  /** When this snapshot was taken, device wall clock (Unix epoch ms). */
  at: number;
}

/** Where the adapter is connected while online. */
export interface AdapterConnection {
  /** The node's HTTP base URL, as configured. */
  node: string;
  /** The device endpoint the node named. */
  url: string;
  regionId: string;
  nodeId: string;
}

export interface AdapterCounters {
  /** Acks sent, by status name ("APPLIED", "STALE", …). */
  acks: Record<string, number>;
  /** Action results sent, by status name. */
  actions: Record<string, number>;
  /** Connection cycles started (probe onwards). */
  connectAttempts: number;
  /** Welcomes after the first: times the adapter came back online. */
  reconnects: number;
  /** GatewayRedirects followed: the device's room was on another node. */
  redirects: number;
  telemetrySent: number;
  /** Telemetry samples dropped from the full offline buffer (oldest first). */
  telemetryDropped: number;
  /** Frames that were not a decodable binary Envelope. */
  malformed: number;
  /** Well-formed frames the adapter had no use for (wrong phase, wrong device, unsolicited). */
  unexpected: number;
  /** Error envelopes received from the gateway. */
  errorsReceived: number;
  /** Error envelopes received from the gateway, by code name ("FORBIDDEN", …): a refusal stays counted after a later one replaces `lastError`. */
  errors: Record<string, number>;
  /** Times the lease died by the watchdog: a trip, or a disconnect with a lease current. */
  watchdogTrips: number;
  /** E-stops latched (not counting re-raises while latched). */
  estops: number;
}

export interface AdapterEvents {
  /** Welcomed by a gateway. */
  online: AdapterConnection;
  /** An online connection closed (motion is already zeroed); a reconnect follows unless stopping. */
  offline: { reason: string; code: number };
  /** Every ack the adapter sent. */
  ack: tsunagi.v1.ICommandAck;
  /** An e-stop latched: from the gateway ("remote") or raised on the device ("device"). */
  estop: { source: "remote" | "device"; reason: string; raisedBy: string };
  /** The watchdog tripped; `leaseId` is the lease it killed. */
  watchdog: { leaseId: string | undefined };
  /** Anything that becomes `lastError`: refusals, unreachable nodes, gateway Errors. */
  error: AdapterError;
  /** Every state change. */
  state: AdapterState;
}

type Listener<K extends keyof AdapterEvents> = (payload: AdapterEvents[K]) => void;

/** One WebSocket connection attempt and what it learned. */
interface Session {
  ws: WebSocket;
  /** The node's HTTP base URL this attempt came from. */
  node: string;
  /** What the node's /gateway answered. */
  gateway: { url: string; regionId: string; nodeId: string };
  /** Client clock when the connection attempt began: t0 of the challenge's clock sample. */
  startedAt: number;
  /** The DeviceHello's correlation id; 0 until the challenge is answered. */
  helloCorrelationId: number;
  /** A DeviceWelcome arrived: the session is online. */
  welcomed: boolean;
  /** Whether this attempt's failure has been noted (lastError), so the close does not note it again. */
  failureNoted: boolean;
  /** Correlation ids of ClockSyncPings awaiting their pong. */
  pings: Set<number>;
  /** Ends an attempt that is not welcomed in time. */
  handshakeTimer?: NodeJS.Timeout;
  /** Online: the periodic ClockSyncPing. */
  clockSyncTimer?: NodeJS.Timeout;
  /** Clock-sync rounds in a row that began with a ping still unanswered. */
  silentRounds?: number;
  /** Online: polls the watchdog every min(20, window / 4) ms. */
  watchdogTimer?: NodeJS.Timeout;
}

const SEMVER_PATTERN = /^\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$/;
const SECRET_PATTERN = /^[0-9a-fA-F]{64}$/;
/** ClockSyncPings sent right after the welcome (teleop.proto). */
const INITIAL_CLOCK_PINGS = 5;
/** Pings awaited at once; an unanswered one is forgotten beyond this. */
const MAX_PENDING_PINGS = 16;
/** Clock-sync rounds in a row without any answer after which the link counts as dead. */
const DEAD_LINK_PING_ROUNDS = 3;
/** Above this many unsent bytes on the socket, telemetry waits in the buffer (dropping the oldest). */
const TELEMETRY_BACKPRESSURE_BYTES = 256 * 1024;
/** Largest frame accepted from the gateway. */
const MAX_FRAME_BYTES = 1024 * 1024;
/** How long stop() waits for the close handshake before cutting the socket. */
const CLOSE_GRACE_MS = 1000;

export class AdapterRuntime {
  /** The enrolled device id this adapter speaks for. */
  readonly deviceId: string;
  /** The device's driver; its Hal is what commands and stops reach. */
  readonly driver: Driver;
  /** The profile this adapter publishes and enforces. */
  readonly profile: tsunagi.v1.IDeviceProfile;
  /** The adapter's estimate of the connected node's clock. */
  readonly clock: ClockSync;

  /** The secret (signed challenge) or token the hello carries. */
  private readonly credential: AdapterCredential;
  /** Node HTTP base URLs, without trailing "/". */
  private readonly nodes: readonly string[];
  /** Sent in the hello (semver). */
  private readonly adapterVersion: string;
  /** Telemetry sampling rate, Hz. */
  private readonly telemetryHz: number;
  /** Most telemetry samples kept unsent. */
  private readonly telemetryBufferSize: number;
  /** First backoff cap, ms. */
  private readonly backoffInitialMs: number;
  /** Highest backoff cap, ms. */
  private readonly backoffMaxMs: number;
  /** Bound on socket open + challenge + welcome, ms. */
  private readonly handshakeTimeoutMs: number;
  /** Bound on each /ping sample and the /gateway request, ms. */
  private readonly httpTimeoutMs: number;
  /** ClockSyncPing period once online, ms. */
  private readonly clockSyncIntervalMs: number;
  /** Jitter source in [0, 1). */
  private readonly random: () => number;
  /** Carries the device id on every line. */
  private readonly logger: Logger;
  /** Measures the nodes' /ping round trips. */
  private readonly probe: RegionProbe;
  /** The device's lease, seq and latch state. */
  private readonly guard = new CommandGuard();
  /** Zeroes motion when commands and heartbeats stop. */
  private readonly watchdog: Watchdog;
  /** The device's latency budget, ms (0: none known here). */
  private readonly latencyBudgetMs: number;
  /** Relays Hal errors to the log. */
  private readonly halObserver: HalObserver;
  /** Listeners by event. */
  private readonly listeners = new Map<keyof AdapterEvents, Set<(payload: never) => void>>();

  /** Where the connection cycle is; "stopped" before start() and after stop(). */
  private currentState: AdapterState = "stopped";
  /** The connection attempt under way or online; undefined between attempts. */
  private session: Session | undefined;
  /** Telemetry not yet sent, oldest first: the offline buffer, and the backpressure queue online. */
  private telemetryQueue: tsunagi.v1.ITelemetry[] = [];
  /** Samples telemetry at telemetryHz from start() to stop(), online or not. */
  private telemetryTimer: NodeJS.Timeout | undefined;
  /** Failed cycles since the last welcome: the backoff exponent. */
  private failures = 0;
  /** The backoff wait under way, and how stop() cuts it short. */
  private backoffTimer: NodeJS.Timeout | undefined;
  private wakeFromBackoff: (() => void) | undefined;
  /** Aborts HTTP requests when stopping. */
  private readonly aborter = new AbortController();
  /** Next correlation id for hellos and pings; never 0. */
  private nextCorrelationId = 1;
  /** start() was called (it may be called once). */
  private started = false;
  /** stop() was called: nothing reconnects, nothing new starts. */
  private stopping = false;
  /** The one shutdown, shared by every stop() call. */
  private stopPromise: Promise<void> | undefined;
  /** Settles when the connection loop has exited. */
  private loopDone: Promise<void> = Promise.resolve();
  /** See `lastError`. */
  private lastErrorValue: AdapterError | undefined;
  /**
   * Where a GatewayRedirect sent this adapter: tried first on every cycle, until a
   * connection there is not welcomed (or that node drains), then back to probing.
   */
  private redirectTarget: { node: string; gateway: Session["gateway"] } | undefined;
  /** A redirect just arrived: the next cycle starts at once, with no backoff. */
  private redirectPending = false;
  /** See `connection`. */
  private connectionValue: AdapterConnection | undefined;
  /** See `counters`. */
  private readonly counterValues: AdapterCounters = {
    acks: {}, actions: {}, connectAttempts: 0, reconnects: 0, redirects: 0, telemetrySent: 0, telemetryDropped: 0,
    malformed: 0, unexpected: 0, errorsReceived: 0, errors: {}, watchdogTrips: 0, estops: 0,
  };
  /** Welcomes so far (the first is not a reconnect). */
  private welcomes = 0;
  /** See `lastStop`. */
  private lastStopValue: AdapterStop | undefined;
  /** A setpoint with some non-zero value was applied since motion was last zeroed. */
  private motionCommanded = false;

  constructor(options: AdapterRuntimeOptions) {
    const { deviceId, driver, credential, nodes, adapterVersion } = options ?? ({} as AdapterRuntimeOptions);
    if (typeof deviceId !== "string" || !DEVICE_ID_PATTERN.test(deviceId)) {
      throw new TypeError(`deviceId must match ${DEVICE_ID_TEXT}, got ${JSON.stringify(deviceId)}`);
    }
    if (!driver || typeof driver.profile !== "function" || !driver.hal) throw new TypeError("AdapterRuntime needs a driver (see devices/drivers createDriver)");
    this.credential = checkCredential(credential);
    this.nodes = checkNodes(nodes);
    if (typeof adapterVersion !== "string" || !SEMVER_PATTERN.test(adapterVersion)) {
      throw new TypeError(`adapterVersion must be semver ("1.4.2"), got ${JSON.stringify(adapterVersion)}`);
    }
    this.telemetryHz = options.telemetryHz ?? 20;
    if (!(this.telemetryHz > 0 && this.telemetryHz <= 1000)) throw new TypeError(`telemetryHz must be in (0, 1000], got ${String(options.telemetryHz)}`);
    this.telemetryBufferSize = options.telemetryBufferSize ?? 600;
    if (!Number.isInteger(this.telemetryBufferSize) || this.telemetryBufferSize < 1) {
      throw new TypeError(`telemetryBufferSize must be a positive integer, got ${String(options.telemetryBufferSize)}`);
    }
    this.backoffInitialMs = options.backoff?.initialMs ?? 100;
    this.backoffMaxMs = options.backoff?.maxMs ?? 5000;
    if (!(this.backoffInitialMs > 0 && this.backoffMaxMs >= this.backoffInitialMs && Number.isFinite(this.backoffMaxMs))) {
      throw new TypeError(`backoff needs 0 < initialMs <= maxMs (finite), got ${this.backoffInitialMs} and ${this.backoffMaxMs}`);
    }
    this.handshakeTimeoutMs = positive(options.handshakeTimeoutMs ?? 10_000, "handshakeTimeoutMs");
    this.httpTimeoutMs = positive(options.httpTimeoutMs ?? 2000, "httpTimeoutMs");
    this.clockSyncIntervalMs = positive(options.clockSyncIntervalMs ?? 5000, "clockSyncIntervalMs");
    this.random = options.random ?? Math.random;

    this.deviceId = deviceId;
    this.driver = driver;
    this.adapterVersion = adapterVersion;
    this.logger = (options.logger ?? pino({ level: "silent" })).child({ deviceId });
    const driverProfile = driver.profile();
    this.profile = toProtoProfile(deviceId, driverProfile, this.telemetryHz, driver);
    this.watchdog = new Watchdog(driverProfile.watchdogMs || DEFAULT_WATCHDOG_WINDOW_MS);
    this.latencyBudgetMs = driverProfile.latencyBudgetMs > 0 ? driverProfile.latencyBudgetMs : 0;
    this.clock = new ClockSync({ now: options.now });
    this.probe = new RegionProbe({
      regions: this.nodes.map((url) => ({ id: url, url })),
      timeoutMs: this.httpTimeoutMs,
      // stop() aborts a probe under way instead of waiting out its timeouts
      measure: (region, signal) => measureHttpPing(region, AbortSignal.any([signal, this.aborter.signal])).catch((error: unknown) => {
        throw new Error(describeFetchError(error), { cause: error });
      }),
    });
    this.halObserver = {
      onError: (error) => this.logger.warn({ code: error.code, componentId: error.componentId }, `hal: ${error.message}`),
    };
  }

  // --- observable state --------------------------------------------------------------

  get state(): AdapterState {
    return this.currentState;
  }

  /** A copy of the counters. */
  get counters(): AdapterCounters {
    return { ...this.counterValues, acks: { ...this.counterValues.acks }, actions: { ...this.counterValues.actions }, errors: { ...this.counterValues.errors } };
  }

  /** The last error (a refused hello, an unreachable region, a gateway Error); undefined if none yet. */
  get lastError(): AdapterError | undefined {
    return this.lastErrorValue && { ...this.lastErrorValue };
  }

  /** Where the adapter is connected; undefined unless online. */
  get connection(): AdapterConnection | undefined {
    return this.connectionValue && { ...this.connectionValue };
  }

  /** The adapter-side safety state. */
  get safety(): { lease: string | undefined; estopped: boolean; watchdogTripped: boolean; lastApplied: { leaseId: string; seq: number } | undefined } {
    return { lease: this.guard.currentLease, estopped: this.guard.estopped, watchdogTripped: this.guard.watchdogTripped, lastApplied: this.guard.lastApplied };
  }

  /**
   * When the adapter last stopped commanded motion (device wall clock, Unix epoch ms)
   * and why: "no lease (disconnected)", "watchdog", "connection closed", "e-stop"...
   * Only stops of a device that had been commanded to move count; later zeroings of an
   * already still device do not overwrite it. A technician sees when and why the machine
   * last stopped, and a test can bound how long after a failure it did.
   */
  get lastStop(): AdapterStop | undefined {
    return this.lastStopValue && { ...this.lastStopValue };
  }

  /**
   * Everything a technician beside the machine wants at a glance, as plain JSON: the
   * connection, the safety state, the last stop, the last error, counters, and the
   * device's axes as they are now. Served by the adapter's local status endpoint.
   */
  status(): AdapterStatus {
    let joints: AdapterStatus["joints"] = [];
    try {
      const sample = sampleTelemetry(this.driver, this.profile, {
        deviceId: this.deviceId, sampledAtMs: Date.now(), estopped: this.guard.estopped,
        watchdogTripped: this.guard.watchdogTripped, lastApplied: this.guard.lastApplied,
      });
      joints = (sample.joints ?? []).map((joint) => ({ name: joint.name ?? "", position: joint.position ?? 0, velocity: joint.velocity ?? 0 }));
    } catch (error) {
      this.logger.warn({ err: error }, `driver telemetry failed: ${(error as Error).message}`);
    }
    return {
      deviceId: this.deviceId,
      driver: this.driver.driverName,
      state: this.currentState,
      connection: this.connection,
      safety: this.safety,
      watchdogWindowMs: this.watchdog.windowMs,
      lastStop: this.lastStop,
      lastError: this.lastError,
      counters: this.counters,
      bufferedTelemetry: this.telemetryQueue.length,
      clockUncertaintyMs: Number.isFinite(this.clock.uncertaintyMs) ? this.clock.uncertaintyMs : null,
      joints,
      at: Date.now(),
    };
  }

  /** Telemetry samples waiting to be sent (buffered while offline or backpressured). */
  get bufferedTelemetry(): number {
    return this.telemetryQueue.length;
  }

  /** The watchdog window in force, ms. */
  get watchdogWindowMs(): number {
    return this.watchdog.windowMs;
  }

  /** Subscribes to an event; returns the unsubscribe. A listener that throws is logged and ignored. */
  on<K extends keyof AdapterEvents>(event: K, listener: Listener<K>): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as (payload: never) => void);
    return () => { set.delete(listener as (payload: never) => void); };
  }

  // --- lifecycle -----------------------------------------------------------------------

  /** Starts sampling telemetry and connecting. Call once. */
  start(): void {
    if (this.started) throw new Error("AdapterRuntime.start() was already called; make a new runtime to start again");
    this.started = true;
    this.driver.hal.addObserver(this.halObserver);
    this.telemetryTimer = setInterval(() => this.sampleAndFlush(), 1000 / this.telemetryHz);
    this.loopDone = this.connectLoop().catch((error) => {
      // the loop catches everything itself; reaching here is a bug, and the device must stop
      this.logger.error({ err: error }, "adapter connection loop failed; motion zeroed");
      this.zeroMotion("the connection loop failed");
    });
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
    const raisedBy = `device:${this.deviceId}`;
    this.latchEStop("device", reason, raisedBy);
    this.send({ correlationId: 0, estop: { deviceId: this.deviceId, reason, raisedBy, raisedAtMs: this.clock.serverNow() } });
  }

  // --- connection cycle ----------------------------------------------------------------

  private async connectLoop(): Promise<void> {
    while (!this.stopping) {
      try {
        await this.connectOnce();
      } catch (error) {
        if (this.stopping) break;
        this.logger.error({ err: error }, "adapter connection attempt failed unexpectedly");
      }
      if (this.stopping) break;
      if (this.redirectPending) {
        this.redirectPending = false;
        this.failures = 0;
        continue;
      }
      const delayMs = backoffDelayMs(this.failures, this.backoffInitialMs, this.backoffMaxMs, this.random);
      this.failures++;
      this.setState("backoff");
      this.logger.debug({ delayMs }, `reconnecting in ${delayMs} ms`);
      await this.sleep(delayMs);
    }
  }

  /** One cycle: probe, pick a gateway, connect; resolves when that connection is over. */
  private async connectOnce(): Promise<void> {
    this.counterValues.connectAttempts++;
    const target = this.redirectTarget;
    if (target) {
      const welcomed = await this.connect(target.node, target.gateway);
      if (!welcomed && this.redirectTarget === target && !this.redirectPending) {
        this.redirectTarget = undefined;
        this.logger.warn({ url: target.gateway.url }, `the gateway this adapter was sent to (${target.gateway.url}) did not take it; picking a node by round trip again`);
      }
      return;
    }
    this.setState("probing");
    const results = await this.probe.reprobe();
    if (this.stopping) return;
    const reachable = results.filter((result) => Number.isFinite(result.rttMs) && !result.error);
    if (reachable.length === 0) {
      const reasons = results.map((result) => result.error?.message ?? `${result.url}: no answer`).join("; ");
      this.noteError({ code: ErrorCode.REGION_UNAVAILABLE, phase: "probe", message: `no node answered /ping (${reasons})` });
      return;
    }
    for (const node of reachable) {
      if (this.stopping) return;
      let gateway: Session["gateway"];
      try {
        gateway = await this.fetchGateway(node.url);
      } catch (error) {
        if (this.stopping) return;
        this.noteError({ code: ErrorCode.REGION_UNAVAILABLE, phase: "gateway", message: `${node.url}/gateway: ${(error as Error).message}` });
        continue;
      }
      if (this.stopping) return;
      await this.connect(node.url, gateway);
      return;
    }
  }

  /** `GET <node>/gateway`: where this node's device endpoint is. */
  private async fetchGateway(node: string): Promise<Session["gateway"]> {
    const signal = AbortSignal.any([this.aborter.signal, AbortSignal.timeout(this.httpTimeoutMs)]);
    let response: Response;
    try {
      response = await fetch(`${node}/gateway`, { signal, headers: { accept: "application/json" } });
    } catch (error) {
      throw new Error(describeFetchError(error), { cause: error });
    }
    const text = await response.text();
    if (!response.ok) throw new Error(`HTTP ${response.status}${text ? `: ${text.slice(0, 200)}` : ""}`);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new Error(`answered ${JSON.stringify(text.slice(0, 100))}, not JSON`);
    }
    const { url, regionId, nodeId } = (body ?? {}) as Record<string, unknown>;
    if (typeof url !== "string" || !/^wss?:\/\//.test(url)) throw new Error(`answered no ws:// or wss:// url (${JSON.stringify(url)})`);
    return { url, regionId: typeof regionId === "string" ? regionId : "", nodeId: typeof nodeId === "string" ? nodeId : "" };
  }

  /** Opens the device channel and runs it; resolves when the socket has closed, with whether it was welcomed. */
  private connect(node: string, gateway: Session["gateway"]): Promise<boolean> {
    this.setState("connecting");
    return new Promise<boolean>((resolve) => {
      let ws: WebSocket;
      const startedAt = this.clock.clientNow();
      try {
        ws = new WebSocket(gateway.url, { perMessageDeflate: false, handshakeTimeout: this.handshakeTimeoutMs, maxPayload: MAX_FRAME_BYTES });
      } catch (error) {
        this.noteError({ phase: "connect", codeName: "CONNECTION_FAILED", message: `${gateway.url}: ${(error as Error).message}` });
        resolve(false);
        return;
      }
      const session: Session = { ws, node, gateway, startedAt, helloCorrelationId: 0, welcomed: false, failureNoted: false, pings: new Set() };
      this.session = session;
      session.handshakeTimer = setTimeout(() => {
        if (session.welcomed) return;
        this.noteError({ phase: "handshake", codeName: "HANDSHAKE_TIMEOUT", message: `${gateway.url}: no DeviceWelcome within ${this.handshakeTimeoutMs} ms` });
        ws.terminate();
      }, this.handshakeTimeoutMs);
      ws.on("open", () => { if (this.session === session && !this.stopping) this.setState("authenticating"); });
      ws.on("message", (data, isBinary) => this.onFrame(session, data, isBinary));
      ws.on("error", (error) => {
        // "close" follows; a failure before the welcome is the attempt's error
        if (!session.welcomed) this.noteError({ phase: "connect", codeName: "CONNECTION_FAILED", message: `${gateway.url}: ${error.message}` });
        else this.logger.warn({ err: error }, `device channel error: ${error.message}`);
      });
      ws.on("close", (code, reason) => {
        this.onClosed(session, code, reason.toString());
        resolve(session.welcomed);
      });
    });
  }

  private onFrame(session: Session, data: RawData, isBinary: boolean): void {
    if (this.session !== session) return;
    let envelope: Envelope;
    try {
      if (!isBinary) throw new Error("a text frame; the device channel carries binary Envelopes");
      const bytes = Array.isArray(data) ? Buffer.concat(data) : data instanceof ArrayBuffer ? new Uint8Array(data) : data;
      envelope = decodeEnvelope(bytes, MAX_FRAME_BYTES);
    } catch (error) {
      this.counterValues.malformed++;
      this.logger.warn({ code: errorCodeName((error as { code?: number }).code ?? 0) }, `ignored a malformed frame: ${(error as Error).message}`);
      return;
    }
    // Stopping: the machine is already stopped and nothing may move it again; only an e-stop still counts.
    if (this.stopping && envelope.body !== "estop") return;
    try {
      if (session.welcomed) this.dispatch(session, envelope);
      else this.handshake(session, envelope);
    } catch (error) {
      // a bug in handling one frame must not take the adapter down; stop to be safe
      this.zeroMotion("a frame handler failed");
      this.logger.error({ err: error, body: envelope.body }, `failed to handle a ${envelope.body} frame; motion zeroed`);
    }
  }

  // --- handshake -----------------------------------------------------------------------

  private handshake(session: Session, envelope: Envelope): void {
    switch (envelope.body) {
      case "deviceChallenge": {
        if (session.helloCorrelationId !== 0) { this.unexpected("a second DeviceChallenge on one connection"); return; }
        const challenge = envelope.deviceChallenge!;
        const nonce = challenge.nonce ?? "";
        const serverTimeMs = Number(challenge.serverTimeMs ?? 0);
        // The challenge is a first, coarse clock sample: the server stamped it between
        // the start of this attempt and now.
        this.clock.reset();
        this.clock.addSample({ t0: session.startedAt, t1: serverTimeMs, t2: serverTimeMs, t3: this.clock.clientNow() });
        session.helloCorrelationId = this.correlationId();
        const hello: tsunagi.v1.IDeviceHello = { deviceId: this.deviceId, adapterVersion: this.adapterVersion, driver: this.driver.driverName };
        if ("secret" in this.credential) {
          hello.signedChallenge = { nonce, signature: proveChallenge(this.credential.secret, this.deviceId, { nonce, serverTimeMs }) };
        } else {
          hello.token = this.credential.token;
        }
        this.write(session, { correlationId: session.helloCorrelationId, deviceHello: hello });
        return;
      }
      case "deviceWelcome": {
        if (session.helloCorrelationId === 0 || Number(envelope.correlationId) !== session.helloCorrelationId) {
          this.unexpected(`a DeviceWelcome for correlation id ${envelope.correlationId}, not this connection's hello`);
          return;
        }
        this.welcome(session, envelope.deviceWelcome!);
        return;
      }
      case "error": {
        this.noteGatewayError(envelope.error!, "handshake");
        // the gateway closes after a refusal; closing from this side too bounds the wait
        session.ws.close(1000, "refused");
        return;
      }
      default:
        this.unexpected(`${envelope.body} before the DeviceWelcome`);
    }
  }

  private welcome(session: Session, welcome: tsunagi.v1.IDeviceWelcome): void {
    session.welcomed = true;
    clearTimeout(session.handshakeTimer);
    this.failures = 0;
    this.welcomes++;
    if (this.welcomes > 1) this.counterValues.reconnects++;
    if (welcome.deviceId && welcome.deviceId !== this.deviceId) {
      this.logger.warn({ welcomedAs: welcome.deviceId }, `the gateway welcomed device "${welcome.deviceId.slice(0, 64)}", expected "${this.deviceId}"`);
    }
    const regionId = welcome.regionId || session.gateway.regionId;
    const nodeId = welcome.nodeId || session.gateway.nodeId;
    this.connectionValue = { node: session.node, url: session.gateway.url, regionId, nodeId };
    this.setState("online");
    // The socket is back, but nobody drives until the room announces a lease (then linkRestored).

    this.write(session, { correlationId: 0, deviceProfile: this.profile });
    for (let i = 0; i < INITIAL_CLOCK_PINGS; i++) this.sendClockPing(session);
    // A latch that outlived the connection is announced, so the room latches too and a
    // supervisor's reset can reach this adapter.
    if (this.guard.estopped) {
      this.write(session, { correlationId: 0, estop: { deviceId: this.deviceId, reason: "e-stop latched at the adapter across a reconnect", raisedBy: `device:${this.deviceId}`, raisedAtMs: this.clock.serverNow() } });
    }
    this.flushTelemetry();
    session.clockSyncTimer = setInterval(() => {
      // A link that answers nothing for DEAD_LINK_PING_ROUNDS pings in a row is gone, even
      // if TCP has not noticed (a path that vanished without a close): cut it, reconnect.
      session.silentRounds = session.pings.size > 0 ? (session.silentRounds ?? 0) + 1 : 0;
      if (session.silentRounds >= DEAD_LINK_PING_ROUNDS) {
        this.logger.warn({ rounds: session.silentRounds, intervalMs: this.clockSyncIntervalMs }, `no answer to ${session.silentRounds} clock pings in a row: the link is dead; reconnecting`);
        session.ws.terminate();
        return;
      }
      this.sendClockPing(session);
    }, this.clockSyncIntervalMs);
    session.watchdogTimer = setInterval(() => this.pollWatchdog(), Math.min(20, this.watchdog.windowMs / 4));

    this.logger.info({ regionId, nodeId, url: session.gateway.url }, `adapter ${this.deviceId} online via ${regionId}/${nodeId}`);
    this.emit("online", { ...this.connectionValue });
  }

  // --- online --------------------------------------------------------------------------

  private dispatch(session: Session, envelope: Envelope): void {
    const correlationId = Number(envelope.correlationId);
    switch (envelope.body) {
      case "controlCommand": this.onCommand(correlationId, envelope.controlCommand!); return;
      case "deviceAction": this.onAction(correlationId, envelope.deviceAction!); return;
      case "heartbeat": this.onHeartbeat(envelope.heartbeat!); return;
      case "leaseState": this.onLeaseState(envelope.leaseState!); return;
      case "estop": this.onEStop(envelope.estop!); return;
      case "reset": this.onReset(envelope.reset!); return;
      case "gatewayRedirect": this.onRedirect(session, envelope.gatewayRedirect!); return;
      case "clockSyncPong": {
        const t3 = this.clock.clientNow();
        if (!session.pings.delete(correlationId)) { this.unexpected(`a ClockSyncPong for correlation id ${correlationId}, which no ping carried`); return; }
        if (!this.clock.addPong(envelope.clockSyncPong!, t3)) this.logger.warn({ pong: envelope.clockSyncPong }, "ignored an impossible ClockSyncPong");
        return;
      }
      case "ping": {
        this.write(session, { correlationId, pong: { clientTimeMs: envelope.ping!.clientTimeMs, serverTimeMs: this.clock.serverNow() } });
        return;
      }
      case "error": {
        this.noteGatewayError(envelope.error!, "online");
        return;
      }
      default:
        this.unexpected(`${envelope.body} on an online device channel`);
    }
  }

  private onLeaseState(state: tsunagi.v1.ILeaseState): void {
    if (state.deviceId && state.deviceId !== this.deviceId) { this.unexpected(`a LeaseState for device "${state.deviceId.slice(0, 64)}"`); return; }
    // The room says an e-stop is latched and this adapter has none: the safe direction is to latch.
    if (state.estopped && !this.guard.estopped) this.latchEStop("remote", "the room reports an e-stop latched", "room");
    const leaseId = state.leaseId ?? "";
    const outcome = this.guard.announceLease(leaseId);
    switch (outcome) {
      case "cleared":
        // no lease: nothing may move, and nobody is driving (a drone's failsafe: hover, then land)
        this.zeroMotion(`no lease${state.cause ? ` (${state.cause})` : ""}`);
        this.watchdog.disarm();
        callIfPresent(this.driver, "linkLost");
        this.logger.info({ cause: state.cause, endedLeaseId: state.endedLeaseId }, `no lease${state.cause ? ` (${state.cause})` : ""}: motion zeroed`);
        return;
      case "granted":
        // the previous lease's setpoint must not outlive it
        this.zeroMotion("a new lease (the previous setpoint ends)");
        // someone drives again; a drone still needs a fresh hold or land to leave its failsafe
        if (!this.guard.estopped) callIfPresent(this.driver, "linkRestored");
        if (this.guard.estopped) this.watchdog.disarm();
        else this.watchdog.arm(this.clock.clientNow());
        this.logger.info({ leaseId, holder: state.holderSessionId, role: state.holderRole }, `lease ${leaseId} is current`);
        return;
      case "dead":
        this.logger.warn({ leaseId }, `ignored an announcement of lease ${leaseId}, which has ended here`);
        return;
      case "unchanged":
        return;
    }
  }

  private onCommand(correlationId: number, command: tsunagi.v1.IControlCommand): void {
    this.pollWatchdog(); // a command arriving after the window must not rescue a silent lease
    const receivedAtMs = this.clock.serverNow();
    let status: CommandStatus;
    let detail: string;
    let appliedAtMs = 0;
    if (command.deviceId && command.deviceId !== this.deviceId) {
      status = CommandStatus.NO_LEASE;
      detail = `the command is for device "${command.deviceId.slice(0, 64)}", this adapter runs "${this.deviceId}"`;
    } else {
      const verdict = this.guard.check(command, receivedAtMs, this.latencyBudgetMs, this.profile);
      status = verdict.status;
      detail = verdict.detail;
      if (verdict.status === CommandStatus.APPLIED) {
        const refusal = this.applySetpoint(verdict.setpoint!);
        if (refusal) {
          // not APPLIED: the contract has no "device refused" status; UNSPECIFIED means "treat as not applied"
          status = CommandStatus.STATUS_UNSPECIFIED;
          detail = `the device refused the setpoint (${refusal}); motion zeroed`;
        } else {
          appliedAtMs = this.clock.serverNow();
          if (verdict.setpoint!.some((entry) => entry.value !== undefined && entry.value !== 0)) this.motionCommanded = true;
          this.watchdog.feed(this.clock.clientNow());
        }
      }
    }
    const issuedAtMs = Number(command.issuedAtMs ?? 0);
    const uncertainty = this.clock.uncertaintyMs;
    const ack: tsunagi.v1.ICommandAck = {
      deviceId: command.deviceId || this.deviceId,
      leaseId: command.leaseId ?? "",
      seq: Number(command.seq ?? 0),
      status,
      origin: tsunagi.v1.CommandAck.Origin.ADAPTER,
      detail,
      issuedAtMs,
      receivedAtMs,
      appliedAtMs,
      oneWayLatencyMs: issuedAtMs > 0 ? (appliedAtMs || receivedAtMs) - issuedAtMs : 0,
      clockUncertaintyMs: Number.isFinite(uncertainty) ? uncertainty : 0,
    };
    const name = CommandStatus[status] ?? String(status);
    this.counterValues.acks[name] = (this.counterValues.acks[name] ?? 0) + 1;
    if (status !== CommandStatus.APPLIED) this.logger.debug({ seq: ack.seq, leaseId: ack.leaseId, status: name }, `command refused ${name}: ${detail}`);
    this.send({ correlationId, commandAck: ack });
    this.emit("ack", ack);
  }

  /**
   * A discrete manoeuvre (arm, take off, land...): the guard's checks, then the driver's
   * own verdict. Answered with one ActionResult echoing the correlation id.
   */
  private onAction(correlationId: number, action: tsunagi.v1.IDeviceAction): void {
    this.pollWatchdog();
    const name = typeof action.action === "string" ? action.action.slice(0, 32) : "";
    let status: CommandStatus;
    let detail: string;
    if (action.deviceId && action.deviceId !== this.deviceId) {
      status = CommandStatus.NO_LEASE;
      detail = `the action is for device "${action.deviceId.slice(0, 64)}", this adapter runs "${this.deviceId}"`;
    } else {
      const verdict = this.guard.checkAction(action, this.clock.serverNow(), this.latencyBudgetMs, this.profile);
      status = verdict.status;
      detail = verdict.detail;
      if (status === CommandStatus.APPLIED) {
        try {
          if (!this.driver.perform) throw new Error("the driver performs no actions");
          this.driver.perform(name, Number(action.value ?? 0));
          this.watchdog.feed(this.clock.clientNow());
          this.motionCommanded = true;
          this.logger.info({ action: name, value: action.value, leaseId: action.leaseId }, `action ${name} applied`);
        } catch (error) {
          // the device's own refusal (take off while disarmed, land on the ground...): nothing changed
          status = CommandStatus.STATUS_UNSPECIFIED;
          detail = `the device refused ${name}: ${(error as Error).message}`;
        }
      }
    }
    const statusName = CommandStatus[status] ?? String(status);
    this.counterValues.actions[statusName] = (this.counterValues.actions[statusName] ?? 0) + 1;
    if (status !== CommandStatus.APPLIED) this.logger.info({ action: name, status: statusName }, `action ${name} refused ${statusName}: ${detail}`);
    this.send({ correlationId, actionResult: { deviceId: this.deviceId, action: name, status, origin: tsunagi.v1.CommandAck.Origin.ADAPTER, detail } });
    this.sampleAndFlush(); // the mode may have changed
  }

  private onHeartbeat(heartbeat: tsunagi.v1.IHeartbeat): void {
    this.pollWatchdog();
    if (heartbeat.deviceId && heartbeat.deviceId !== this.deviceId) { this.unexpected(`a Heartbeat for device "${heartbeat.deviceId.slice(0, 64)}"`); return; }
    if (this.guard.acceptHeartbeat(heartbeat, this.clock.serverNow(), this.watchdog.windowMs)) this.watchdog.feed(this.clock.clientNow());
  }

  private onEStop(estop: tsunagi.v1.IEStop): void {
    // When in doubt, stop: an e-stop on this device's channel stops it whatever it names.
    this.zeroMotion("e-stop");
    if (estop.deviceId && estop.deviceId !== this.deviceId && !estop.all) {
      this.logger.warn({ named: estop.deviceId.slice(0, 64) }, "an e-stop for another device arrived on this channel; stopping anyway");
    }
    this.latchEStop("remote", estop.reason ?? "", estop.raisedBy ?? "");
  }

  private onReset(reset: tsunagi.v1.IReset): void {
    if (reset.deviceId && reset.deviceId !== this.deviceId) { this.unexpected(`a Reset for device "${reset.deviceId.slice(0, 64)}"`); return; }
    // Nothing to reset: a Reset must not end a lease here (and leave a flying drone without its failsafe).
    if (!this.guard.estopped) { this.unexpected(`a Reset from ${reset.by || "the room"} with no e-stop latched here`); return; }
    this.guard.reset();
    this.watchdog.disarm();
    this.zeroMotion("e-stop reset");
    this.logger.warn({ by: reset.by, reason: reset.reason }, `e-stop reset by ${reset.by || "a supervisor"}: motion needs a fresh lease`);
    this.sampleAndFlush();
  }

  /** Stops, latches, tells the gateway through telemetry and the listeners. */
  private latchEStop(source: "remote" | "device", reason: string, raisedBy: string): void {
    this.zeroMotion("e-stop");
    // beyond standing still: a drone in the air lands
    callIfPresent(this.driver, "emergencyStop");
    const already = this.guard.estopped;
    this.guard.estop();
    this.watchdog.disarm();
    if (!already) {
      this.counterValues.estops++;
      this.logger.warn({ source, reason, raisedBy }, `e-stop latched${reason ? `: ${reason}` : ""}`);
    }
    this.sampleAndFlush();
    this.emit("estop", { source, reason, raisedBy });
  }

  private pollWatchdog(): void {
    if (!this.watchdog.check(this.clock.clientNow())) return;
    this.zeroMotion("watchdog");
    callIfPresent(this.driver, "linkLost");
    const leaseId = this.guard.tripWatchdog();
    this.counterValues.watchdogTrips++;
    this.logger.warn({ leaseId, windowMs: this.watchdog.windowMs }, `watchdog tripped: no valid command or heartbeat within ${this.watchdog.windowMs} ms; motion zeroed, lease ${leaseId ?? "(none)"} ended here`);
    this.sampleAndFlush();
    this.emit("watchdog", { leaseId });
  }

  /**
   * Hands a checked setpoint to the Hal: every profile axis, the commanded value or its
   * safe value (velocity and torque 0; a position axis holds). A velocity of 0 the device
   * refuses goes through stop() instead, which never refuses. Returns why the device refused,
   * after zeroing all motion (half a setpoint is worse than none), or undefined.
   */
  private applySetpoint(setpoint: SetpointEntry[]): string | undefined {
    const failures: string[] = [];
    for (const entry of setpoint) {
      try {
        const actuator = this.driver.hal.actuator(entry.name);
        switch (entry.mode) {
          case AxisMode.AXIS_MODE_VELOCITY: {
            const value = entry.value ?? 0;
            if (value !== 0) { actuator.setValue("velocity", value); break; }
            // A zero in a command is "no input": the device may take it as such (a drone taking
            // off climbs on). Should it refuse even that, stop() does it, which never refuses.
            try {
              actuator.setValue("velocity", 0);
            } catch (error) {
              if (!actuator.velocityCapable) throw error;
              actuator.stop();
            }
            break;
          }
          case AxisMode.AXIS_MODE_TORQUE:
            actuator.setValue("torque", entry.value ?? 0);
            break;
          case AxisMode.AXIS_MODE_POSITION:
            if (entry.value !== undefined) actuator.setValue("position", entry.value);
            break;
          default:
            break; // not commandable; the guard refused any value for it
        }
      } catch (error) {
        failures.push(`${entry.name}: ${(error as Error).message}`);
      }
    }
    if (failures.length === 0) return undefined;
    this.zeroMotion("the device refused a setpoint");
    return failures.join("; ");
  }

  // --- disconnects ---------------------------------------------------------------------

  /**
   * The device's room is on another node: the gateway closes this connection next (the
   * close stops the machine, as every close does), and the next cycle connects there.
   */
  private onRedirect(session: Session, redirect: tsunagi.v1.IGatewayRedirect): void {
    const url = redirect.url ?? "";
    if (!/^wss?:\/\/[^\s]{1,2000}$/.test(url)) {
      this.unexpected(`a GatewayRedirect to ${JSON.stringify(url.slice(0, 200))}, not a ws:// or wss:// url; staying`);
      return;
    }
    const nodeId = redirect.nodeId ?? "";
    this.redirectTarget = { node: session.node, gateway: { url, regionId: redirect.regionId ?? "", nodeId } };
    this.redirectPending = true;
    this.counterValues.redirects++;
    this.logger.info({ url, nodeId, reason: redirect.reason }, `sent to node ${nodeId || url}${redirect.reason ? `: ${redirect.reason}` : ""}`);
  }

  private onClosed(session: Session, code: number, reason: string): void {
    clearTimeout(session.handshakeTimer);
    clearInterval(session.clockSyncTimer);
    clearInterval(session.watchdogTimer);
    session.pings.clear();
    if (this.session === session) this.session = undefined;
    // The node may be gone, and a new node has no lease for us: stop now.
    this.zeroMotion("connection closed");
    this.watchdog.disarm();
    if (!session.welcomed) {
      if (!session.failureNoted && !this.stopping) {
        this.noteError({ phase: "handshake", codeName: "CONNECTION_CLOSED", message: `${session.gateway.url} closed the connection before the welcome (code ${code}${reason ? `, ${reason}` : ""})` });
      }
      return;
    }
    this.connectionValue = undefined;
    // A node that drains sends its adapters elsewhere: not back to it.
    if (code === DeviceCloseCode.DRAINING && this.redirectTarget?.gateway.url === session.gateway.url) this.redirectTarget = undefined;
    const leaseId = this.guard.currentLease;
    if (leaseId !== undefined) {
      this.guard.tripWatchdog();
      this.counterValues.watchdogTrips++;
    }
    callIfPresent(this.driver, "linkLost");
    const why = `connection closed (code ${code}${reason ? `, ${reason}` : ""})`;
    this.logger.warn({ code, reason, leaseId }, `adapter ${this.deviceId} offline: ${why}; motion zeroed${leaseId ? `, lease ${leaseId} ended here` : ""}`);
    this.sampleAndFlush(); // buffered: shows the stop and the latch once back online
    if (!this.stopping) this.setState("backoff"); // the loop's backoff follows at once
    this.emit("offline", { reason: why, code });
  }

  private async shutdown(): Promise<void> {
    this.stopping = true;
    // Stop first: the close handshake below may take up to CLOSE_GRACE_MS.
    this.zeroMotion("adapter stopping");
    this.watchdog.disarm();
    if (this.guard.currentLease !== undefined) this.guard.tripWatchdog();
    clearInterval(this.telemetryTimer);
    this.telemetryTimer = undefined;
    clearTimeout(this.backoffTimer);
    this.wakeFromBackoff?.();
    this.aborter.abort(new Error("adapter stopping"));
    const session = this.session;
    if (session) {
      const closed = new Promise<void>((resolve) => {
        if (session.ws.readyState === WebSocket.CLOSED) { resolve(); return; }
        session.ws.once("close", () => resolve());
      });
      try {
        if (session.ws.readyState === WebSocket.CONNECTING) session.ws.terminate();
        else session.ws.close(1000, "adapter stopping");
      } catch { /* already closing */ }
      const grace = setTimeout(() => session.ws.terminate(), CLOSE_GRACE_MS);
      await closed;
      clearTimeout(grace);
    }
    await this.loopDone;
    if (this.started) this.driver.hal.removeObserver(this.halObserver);
    this.setState("stopped");
    this.logger.info(`adapter ${this.deviceId} stopped`);
  }

  // --- telemetry -----------------------------------------------------------------------

  /** Takes a sample into the queue (dropping the oldest beyond the buffer) and sends what it can. */
  private sampleAndFlush(): void {
    let telemetry: tsunagi.v1.ITelemetry;
    try {
      telemetry = sampleTelemetry(this.driver, this.profile, {
        deviceId: this.deviceId,
        sampledAtMs: this.clock.serverNow(),
        estopped: this.guard.estopped,
        watchdogTripped: this.guard.watchdogTripped,
        lastApplied: this.guard.lastApplied,
      });
    } catch (error) {
      this.logger.warn({ err: error }, `driver telemetry failed: ${(error as Error).message}`);
      return;
    }
    this.telemetryQueue.push(telemetry);
    while (this.telemetryQueue.length > this.telemetryBufferSize) {
      this.telemetryQueue.shift();
      this.counterValues.telemetryDropped++;
    }
    this.flushTelemetry();
  }

  /** Sends queued telemetry, oldest first, while online and the socket keeps up. */
  private flushTelemetry(): void {
    const session = this.session;
    if (!session?.welcomed || session.ws.readyState !== WebSocket.OPEN) return;
    while (this.telemetryQueue.length > 0 && session.ws.bufferedAmount <= TELEMETRY_BACKPRESSURE_BYTES) {
      const telemetry = this.telemetryQueue.shift()!;
      if (this.write(session, { correlationId: 0, telemetry })) this.counterValues.telemetrySent++;
    }
  }

  // --- plumbing ------------------------------------------------------------------------

  private sendClockPing(session: Session): void {
    if (session.pings.size >= MAX_PENDING_PINGS) session.pings.delete(session.pings.values().next().value as number);
    const correlationId = this.correlationId();
    session.pings.add(correlationId);
    this.write(session, { correlationId, clockSyncPing: { t0Ms: this.clock.clientNow() } });
  }

  /** Sends on the online connection; false when there is none. */
  private send(envelope: IEnvelope): boolean {
    const session = this.session;
    return session?.welcomed ? this.write(session, envelope) : false;
  }

  private write(session: Session, envelope: IEnvelope): boolean {
    if (session.ws.readyState !== WebSocket.OPEN) return false;
    let bytes: Uint8Array;
    try {
      bytes = encodeEnvelope(envelope);
    } catch (error) {
      this.logger.error({ err: error }, `could not encode an outgoing envelope (a bug): ${(error as Error).message}`);
      return false;
    }
    session.ws.send(bytes, { binary: true });
    return true;
  }

  /** Zeroes every axis and notes when and why (see `lastStop`). */
  private zeroMotion(reason: string): void {
    if (this.motionCommanded) this.lastStopValue = { at: Date.now(), reason };
    this.motionCommanded = false;
    try {
      const report = this.driver.hal.zeroMotion();
      for (const failure of report.failed) this.logger.error({ componentId: failure.componentId }, `could not stop ${failure.componentId}: ${failure.error.message}`);
    } catch (error) {
      // Hal.zeroMotion never throws; a driver that does is logged, not allowed to stop the adapter
      this.logger.error({ err: error }, "zeroMotion threw");
    }
  }

  /** An Error envelope from the gateway: counted by code, then noted as `lastError`. */
  private noteGatewayError(error: tsunagi.v1.IError, phase: "handshake" | "online"): void {
    const code = error.code ?? 0;
    this.counterValues.errorsReceived++;
    const name = errorCodeName(code);
    this.counterValues.errors[name] = (this.counterValues.errors[name] ?? 0) + 1;
    this.noteError({ code, phase, message: error.message ?? "" });
  }

  private noteError(error: Omit<AdapterError, "at" | "codeName"> & { codeName?: string }): void {
    const full: AdapterError = {
      ...error,
      codeName: error.codeName ?? (error.code !== undefined ? errorCodeName(error.code) : "CONNECTION_FAILED"),
      at: Date.now(),
    };
    this.lastErrorValue = full;
    if (this.session && !this.session.welcomed) this.session.failureNoted = true;
    const refusal = full.phase === "handshake" && full.code !== undefined;
    const fields = { code: full.codeName, phase: full.phase, retryable: full.code !== undefined ? isRetryable(full.code) : true };
    if (refusal) this.logger.error(fields, `gateway refused device ${this.deviceId}: ${full.codeName}: ${full.message} (retrying with backoff)`);
    else this.logger.warn(fields, `${full.phase}: ${full.codeName}: ${full.message}`);
    this.emit("error", { ...full });
  }

  private unexpected(what: string): void {
    this.counterValues.unexpected++;
    this.logger.warn(`ignored ${what}`);
  }

  private setState(state: AdapterState): void {
    if (this.currentState === state) return;
    this.currentState = state;
    this.emit("state", state);
  }

  private emit<K extends keyof AdapterEvents>(event: K, payload: AdapterEvents[K]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        (listener as Listener<K>)(payload);
      } catch (error) {
        this.logger.error({ err: error, event }, `an "${event}" listener threw`);
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(this.backoffTimer);
        this.backoffTimer = undefined;
        this.wakeFromBackoff = undefined;
        resolve();
      };
      this.wakeFromBackoff = wake;
      this.backoffTimer = setTimeout(wake, ms);
    });
  }

  private correlationId(): number {
    const id = this.nextCorrelationId;
    this.nextCorrelationId = id >= Number.MAX_SAFE_INTEGER ? 1 : id + 1;
    return id;
  }
}

/**
 * Full-jitter backoff: uniform in [0, cap), the cap doubling per failure since the last
 * welcome from `initialMs`, never above `maxMs`.
 */
export function backoffDelayMs(failures: number, initialMs: number, maxMs: number, random: () => number = Math.random): number {
  const cap = Math.min(maxMs, initialMs * 2 ** Math.min(Math.max(0, failures), 30));
  const draw = random();
  return Math.floor((draw >= 0 && draw < 1 ? draw : 0.5) * cap);
}

/** "fetch failed: ECONNREFUSED" rather than undici's bare "fetch failed". */
function describeFetchError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const cause = (error as { cause?: { code?: unknown; message?: unknown } } | undefined)?.cause;
  const detail = typeof cause?.code === "string" ? cause.code : typeof cause?.message === "string" ? cause.message : undefined;
  return detail && !message.includes(detail) ? `${message}: ${detail}` : message;
}

function checkCredential(credential: AdapterCredential): AdapterCredential {
  if (credential && "secret" in credential) {
    if (typeof credential.secret !== "string" || !SECRET_PATTERN.test(credential.secret)) {
      throw new TypeError("the device secret must be the 64 hex characters issued at enrolment");
    }
    return { secret: credential.secret };
  }
  if (credential && "token" in credential) {
    if (typeof credential.token !== "string" || credential.token === "") throw new TypeError("the device token must be a non-empty string (a JWT)");
    return { token: credential.token };
  }
  throw new TypeError("credential must be { secret } (64 hex characters) or { token } (a device JWT)");
}

function checkNodes(nodes: string[]): string[] {
  try {
    return nodeUrls(nodes);
  } catch (error) {
    throw new TypeError(`nodes: ${(error as Error).message}`);
  }
}

function positive(value: number, name: string): number {
  if (typeof value !== "number" || !(value > 0) || !Number.isFinite(value)) throw new TypeError(`${name} must be a finite number > 0, got ${String(value)}`);
  return value;
}

/** Calls an optional driver capability (a drone's linkLost/linkRestored/emergencyStop) if the driver has it. */
function callIfPresent(driver: Driver, method: "linkLost" | "linkRestored" | "emergencyStop"): void {
  const fn = (driver as unknown as Record<string, unknown>)[method];
  if (typeof fn !== "function") return;
  try {
    (fn as () => void).call(driver);
  } catch {
    // a failsafe hook that throws must not stop the adapter from stopping the device
  }
}

/** Re-exported for callers that inspect acks. */
export { CommandStatus };
