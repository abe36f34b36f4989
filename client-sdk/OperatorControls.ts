/**
 * Drives one device of a TeleopRoom: takes and gives up the control lease, sends the
 * operator's setpoint at a fixed rate with server-clock times and a deadline, keeps the
 * lease and the adapter's watchdog fed with heartbeats while the loop is stopped,
 * raises e-stops, and measures what the acks say about latency (teleop.proto,
 * "Operator channel").
 *
 * How it behaves:
 * - Values are clamped to the device profile before sending (velocity ±max_rate,
 *   position [min, max], torque ±max_effort): the room refuses out-of-range commands
 *   whole, so the SDK never sends one.
 * - Every command is a complete setpoint. Velocity and torque axes default to 0;
 *   position axes are left out (they hold their last target) until set.
 * - Stopping never relies on silence: stop() sends a neutral command and repeats it
 *   until the device acks one APPLIED, then keeps the lease alive with heartbeats.
 * - Losing the lease (released, preempted, e-stopped, demoted, watchdog...) returns the
 *   setpoint to neutral, so a lease acquired later never resumes an old motion.
 * - While the session reconnects nothing is sent (the SDK would deliver it late); the
 *   room ends the lease of a dropped operator, so acquire again after "reconnected".
 *
 * @example
 *   const session = await client.joinOrCreate("teleop", { roomId: "site-1" });
 *   const controls = new OperatorControls(session, { deviceId: "excavator-1", rateHz: 50 });
 *   controls.on("ack", (ack) => ack.status !== tsunagi.v1.CommandAck.Status.APPLIED && warn(ack.detail));
 *   await controls.acquire();                  // throws TsunagiError LEASE_HELD, ESTOPPED, ...
 *   controls.start();                          // 50 commands/s while holding the lease
 *   controls.setAxes({ boom: 0.3, swing: -0.1 });
 *   controls.neutral();                        // velocity axes to 0
 *   controls.stop();                           // stop command, then heartbeats
 *   console.log(controls.latency());           // { ackRttP50Ms: 18.2, oneWayP50Ms: 7.9, ... }
 *   await controls.estop("operator pressed e-stop");
 *   controls.dispose();
 *
 * It is a facade over its pieces: OperatorChannel (requests and the room's pushes),
 * Setpoint (the values and their clamping), CommandLoop (the fixed-rate commands and
 * heartbeats), LeaseTracker (the lease and demotion) and LatencyWindow (the acks'
 * statistics).
 */
import { DEFAULT_WATCHDOG_WINDOW_MS, ErrorCode, tsunagi, type IEnvelope } from "../proto/index.ts";
import { DEVICE_ID_PATTERN } from "../proto/ids.ts";
import { SafeEmitter } from "../common/SafeEmitter.ts";
import { TsunagiError, fromServerError } from "./errors.ts";
import type { RoomSession } from "./RoomSession.ts";
import { ServerClock, monotonicNow } from "./ServerClock.ts";
import { CommandLoop, DEFAULT_DEADLINE_MS, DEFAULT_LEASE_TTL_MS } from "./CommandLoop.ts";
import { LatencyWindow, type AckInfo, type LatencyStats } from "./LatencyWindow.ts";
import { LeaseTracker, type DemotedEvent } from "./LeaseTracker.ts";
import { OperatorChannel } from "./OperatorChannel.ts";
import { Setpoint, type AxisValues } from "./Setpoint.ts";

export type DeviceProfile = tsunagi.v1.DeviceProfile;
export type LeaseState = tsunagi.v1.LeaseState;
export type CommandAck = tsunagi.v1.CommandAck;
export type Telemetry = tsunagi.v1.Telemetry;
export type EStop = tsunagi.v1.EStop;
export type Reset = tsunagi.v1.Reset;
export type ActionResult = tsunagi.v1.ActionResult;
/** An axis as the profile describes it; plain objects are accepted too. */
export type AxisProfileLike = tsunagi.v1.IAxisProfile;
export type { AckInfo, AxisValues, DemotedEvent, LatencyStats };
export { DEFAULT_DEADLINE_MS, DEFAULT_LEASE_TTL_MS, DEFAULT_WATCHDOG_WINDOW_MS };

const LeaseAction = tsunagi.v1.LeaseRequest.Action;

/** Bound on waiting for the first clock sample when no request timeout is given, ms. */
const CLOCK_READY_TIMEOUT_MS = 5000;

export interface OperatorControlsOptions {
  /** The device to drive, as enrolled ("excavator-1"). */
  deviceId: string;
  /** Commands per second while started and holding the lease. Default 50; at most 1000. */
  rateHz?: number;
  /** The client's monotonic clock, ms (ack round trips, clock sync). Default performance.timeOrigin + performance.now(). */
  now?: () => number;
  /**
   * Called at every tick of the fixed-rate loop, just before the command is built:
   * return the complete setpoint by axis name (unnamed axes go neutral), or undefined
   * to keep the current one. Read the gamepad here, so every command carries fresh
   * input. A throw sends neutral for that tick and is reported as an "error" event.
   */
  input?: () => AxisValues | undefined;
  /** Acks kept for latency(). Default 500. */
  latencyWindow?: number;
  /** Clock resample period, ms. Default 5000. Applies when this creates the session's clock. */
  clockSyncIntervalMs?: number;
  /** Bound on lease, e-stop and reset requests, ms. Default: the session's request timeout. */
  requestTimeoutMs?: number;
  /** Where exceptions thrown by listeners go. Default: console.error. */
  onListenerError?: (error: unknown, source: string) => void;
}

export interface OperatorControlsEvents {
  /** Telemetry of this device, at the room's fan-out rate. */
  telemetry: (telemetry: Telemetry) => void;
  /** The ack of a command for this device. */
  ack: (ack: CommandAck, info: AckInfo) => void;
  /** The device's lease or e-stop state changed (also after acquire() and friends). */
  lease: (lease: LeaseState) => void;
  /** An e-stop that covers this device (its own, or `all`), from anyone. */
  estop: (estop: EStop) => void;
  /** A supervisor cleared this device's e-stop. Motion needs a fresh lease. */
  reset: (reset: Reset) => void;
  /** The device's profile arrived or changed. */
  profile: (profile: DeviceProfile) => void;
  /** Our lease on this device was ended for exceeding its latency budget. */
  demoted: (event: DemotedEvent) => void;
  /**
   * A coded error from the room that answers no request (correlation id 0: a refused
   * heartbeat, rate limiting, the demotion notice; the room does not say which device
   * it concerns, so every OperatorControls of the session reports it), or a send that
   * failed in the loop.
   */
  error: (error: TsunagiError) => void;
}

export class OperatorControls {
  /** The session whose room hosts the device. */
  readonly session: RoomSession;
  /** The device these controls drive. */
  readonly deviceId: string;
  /** Commands per second while started and holding the lease. */
  readonly rateHz: number;
  /** The session's server clock estimate (shared by every OperatorControls of the session). */
  readonly clock: ServerClock;
  /** The client's monotonic clock, ms. */
  private readonly now: () => number;
  /** Bound on requests, ms (undefined: the session's default). */
  private readonly requestTimeoutMs?: number;
  /** The device's requests and the room's pushes about it. */
  private readonly channel: OperatorChannel;
  /** telemetry / ack / lease / ... to the application's listeners. */
  private readonly events: SafeEmitter<OperatorControlsEvents>;
  /** The values commands carry, clamped to the profile. */
  private readonly setpoint: Setpoint;
  /** The newest LeaseState and whether it is ours. */
  private readonly leaseTracker: LeaseTracker;
  /** The fixed-rate commands and the heartbeats. */
  private readonly loop: CommandLoop;
  /** Send times and the last acks, for latency(). */
  private readonly latencyWindow: LatencyWindow;
  /** The newest DeviceProfile of the device. */
  private currentProfile?: DeviceProfile;
  /** The newest Telemetry of the device. */
  private currentTelemetry?: Telemetry;
  /** Session subscriptions to undo on dispose(). */
  private readonly unsubscribe: Array<() => void> = [];
  /** Set by dispose(). */
  private disposed = false;

  constructor(session: RoomSession, options: OperatorControlsOptions) {
    const { deviceId } = options ?? ({} as OperatorControlsOptions);
    if (typeof deviceId !== "string" || !DEVICE_ID_PATTERN.test(deviceId)) throw new TypeError(`OperatorControls deviceId must match ${DEVICE_ID_PATTERN}, got ${JSON.stringify(deviceId)}`);
    const rateHz = options.rateHz ?? 50;
    if (typeof rateHz !== "number" || !(rateHz > 0 && rateHz <= 1000)) throw new TypeError(`OperatorControls rateHz must be in (0, 1000], got ${String(options.rateHz)}`);
    const latencyWindow = options.latencyWindow ?? 500;
    if (!Number.isInteger(latencyWindow) || latencyWindow < 1) throw new TypeError(`OperatorControls latencyWindow must be a positive integer, got ${String(options.latencyWindow)}`);
    if (session.closed) throw new TsunagiError(ErrorCode.ERROR_CODE_UNSPECIFIED, "the session has left the room", { retryable: false });

    this.session = session;
    this.deviceId = deviceId;
    this.rateHz = rateHz;
    this.now = options.now ?? monotonicNow;
    this.requestTimeoutMs = options.requestTimeoutMs;
    const onListenerError = options.onListenerError ?? ((error, source) => console.error(`tsunagi: OperatorControls ${source} threw`, error));
    this.events = new SafeEmitter<OperatorControlsEvents>(onListenerError);
    this.clock = ServerClock.shared(session, { now: this.now, intervalMs: options.clockSyncIntervalMs });
    this.channel = new OperatorChannel(session, deviceId, options.requestTimeoutMs);
    this.setpoint = new Setpoint(deviceId);
    this.latencyWindow = new LatencyWindow({ size: latencyWindow });
    this.leaseTracker = new LeaseTracker(deviceId, { sessionId: () => session.sessionId, sessionClosed: () => session.closed });
    this.loop = new CommandLoop({ deviceId, rateHz, setpoint: this.setpoint, input: options.input }, {
      now: this.now,
      serverNow: () => this.clock.now(),
      profile: () => this.currentProfile,
      heldLease: () => (this.holding && !this.disposed ? this.leaseTracker.lease : undefined),
      // While reconnecting the SDK would queue the frame and deliver it late: send nothing.
      send: (envelope) => !session.reconnecting && this.trySend(envelope),
      commandSent: (leaseId, seq, atMs) => this.latencyWindow.commandSent(leaseId, seq, atMs),
      inputFailed: (error) => this.events.emit("error", error),
    });

    // What the room sent before these controls existed (its greeting on join).
    const known = session.deviceSnapshot(deviceId);
    if (known.profile) this.applyProfile(known.profile, false);
    if (known.lease) this.applyLease(known.lease, false);

    this.unsubscribe.push(
      this.channel.listen({
        profile: (profile) => this.applyProfile(profile, true),
        lease: (lease) => this.applyLease(lease, true),
        ack: (ack) => this.applyAck(ack),
        telemetry: (telemetry) => {
          this.currentTelemetry = telemetry;
          this.events.emit("telemetry", telemetry);
        },
        estop: (estop) => {
          this.neutral();
          this.events.emit("estop", estop);
        },
        reset: (reset) => this.events.emit("reset", reset),
        roomError: (error) => {
          if (error.code === ErrorCode.LATENCY_BUDGET_EXCEEDED) this.leaseTracker.demotionNotice(error.message);
          this.events.emit("error", error);
        },
      }),
      session.on("leave", () => this.loop.halt()),
    );
  }

  // --- state -------------------------------------------------------------------------

  /** The device's latest profile, or undefined before the room sent one. */
  get profile(): DeviceProfile | undefined { return this.currentProfile; }
  /** The device's latest lease state, or undefined before the room sent one. */
  get lease(): LeaseState | undefined { return this.leaseTracker.lease; }
  /** The device's latest telemetry, or undefined. */
  get telemetry(): Telemetry | undefined { return this.currentTelemetry; }
  /** True while this session holds the device's lease. */
  get holding(): boolean { return this.leaseTracker.holding; }
  /** True between start() and stop(). Commands flow only while also holding. */
  get started(): boolean { return this.loop.started; }
  /** The current setpoint by axis name (axes left out of commands are absent). */
  get axes(): Record<string, number> { return this.setpoint.byName; }

  /** Adds a listener; returns the function that removes it. */
  on<K extends keyof OperatorControlsEvents>(event: K, listener: OperatorControlsEvents[K]): () => void {
    return this.events.on(event, listener);
  }

  // --- lease -------------------------------------------------------------------------

  /**
   * Takes the device's free lease (the holder asking again keeps it, renewed). Waits
   * for the first clock sample first, so the commands that follow carry server times.
   * Resolves with the LeaseState; rejects with TsunagiError: LEASE_HELD, ESTOPPED,
   * FORBIDDEN, DEVICE_UNKNOWN, LATENCY_BUDGET_EXCEEDED (demoted: wait), ...
   */
  async acquire(): Promise<LeaseState> {
    this.assertUsable();
    await this.clock.ready(this.requestTimeoutMs ?? CLOCK_READY_TIMEOUT_MS);
    return this.leaseRequest(LeaseAction.ACQUIRE);
  }

  /** Gives the lease up; the device stops. LEASE_NOT_HELD when we do not hold it. */
  release(): Promise<LeaseState> {
    return this.leaseRequest(LeaseAction.RELEASE);
  }

  /** Takes the lease from whoever holds it (supervisors only: FORBIDDEN otherwise). */
  async preempt(): Promise<LeaseState> {
    this.assertUsable();
    await this.clock.ready(this.requestTimeoutMs ?? CLOCK_READY_TIMEOUT_MS);
    return this.leaseRequest(LeaseAction.PREEMPT);
  }

  /** Hands our lease to another session in the room (its Colyseus session id). */
  transfer(toSessionId: string): Promise<LeaseState> {
    if (typeof toSessionId !== "string" || toSessionId === "") return Promise.reject(new TypeError("transfer() needs the target's session id"));
    return this.leaseRequest(LeaseAction.TRANSFER, toSessionId);
  }

  // --- setpoint ----------------------------------------------------------------------

  /**
   * Sets axes by name, keeping the others; values are clamped to the profile's bounds.
   * Returns the values as they will be sent. Throws TypeError (and changes nothing) for
   * an unknown name, a value that is not a finite number, an axis that cannot be
   * commanded, or before the device's profile arrived.
   */
  setAxes(values: AxisValues): Record<string, number> {
    return this.setpoint.set(values);
  }

  /**
   * Sets axes by position in the profile (values[i] for axis i); undefined or null
   * entries leave that axis as it is. Clamped like setAxes(); TypeError for an index
   * beyond the profile's axes.
   */
  setAxesByIndex(values: ReadonlyArray<number | null | undefined>): Record<string, number> {
    return this.setpoint.setByIndex(values);
  }

  /** Back to neutral: velocity and torque axes 0, position axes left out (they hold). */
  neutral(): void {
    this.setpoint.neutral();
  }

  // --- the loop ----------------------------------------------------------------------

  /**
   * Starts the fixed-rate loop: while holding the lease, a ControlCommand with the
   * current setpoint every 1/rateHz. Safe to call before acquiring; the loop runs
   * whenever the lease is ours.
   */
  start(): void {
    this.assertUsable();
    this.loop.start();
  }

  /**
   * Stops the loop: the setpoint goes neutral and a stop command is sent at once, then
   * repeated at the heartbeat period until the device acks one APPLIED; after that
   * heartbeats keep the lease and the watchdog fed until the lease ends.
   */
  stop(): void {
    this.loop.stop();
  }

  // --- actions -----------------------------------------------------------------------

  /** The discrete manoeuvres the device offers (its profile's actions); empty before the profile arrives. */
  get actions(): tsunagi.v1.ActionProfile[] {
    return (this.currentProfile?.actions ?? []) as tsunagi.v1.ActionProfile[];
  }

  /**
   * Asks the device for one of its actions: a drone's `perform("arm")`,
   * `perform("takeoff", 5)` (metres), `perform("hold")`, `perform("land")`. Needs the
   * lease, like a command. Resolves with the ActionResult: status APPLIED when the device
   * accepted the manoeuvre, otherwise why not (ESTOPPED, NO_LEASE, EXPIRED, OUT_OF_BOUNDS,
   * or STATUS_UNSPECIFIED with the device's own reason, such as a take-off while
   * disarmed). Throws TypeError for an action the profile does not offer, and rejects with
   * TsunagiError LEASE_NOT_HELD without the lease, or when no answer came in time.
   */
  async perform(action: string, value = 0): Promise<ActionResult> {
    this.assertUsable();
    const profile = this.setpoint.requireProfile();
    if (!this.actions.some((candidate) => candidate.name === action)) {
      const offered = this.actions.map((candidate) => candidate.name).join(", ");
      throw new TypeError(`device ${this.deviceId} offers no action "${String(action).slice(0, 32)}"${offered ? ` (actions: ${offered})` : " (it has none)"}`);
    }
    if (typeof value !== "number" || !Number.isFinite(value)) throw new TypeError(`perform() value must be a finite number, got ${String(value)}`);
    const lease = this.lease;
    if (!lease || !this.holding) throw new TsunagiError(ErrorCode.LEASE_NOT_HELD, `perform("${action}") needs the lease of ${this.deviceId}: acquire() first`, { retryable: false });
    await this.clock.ready(this.requestTimeoutMs ?? CLOCK_READY_TIMEOUT_MS);
    const issuedAtMs = this.clock.now();
    const deadlineMs = issuedAtMs + (profile.latencyBudgetMs || DEFAULT_DEADLINE_MS);
    return this.channel.action({ leaseId: lease.leaseId, action, value, issuedAtMs, deadlineMs });
  }

  // --- e-stop ------------------------------------------------------------------------

  /**
   * Raises an e-stop for this device. The setpoint goes neutral at once. Resolves with
   * the room's confirmation; rejects with TsunagiError FORBIDDEN for an observer. Never
   * refused locally: it is sent even after dispose(), as long as the session is open.
   * It goes out at once, never behind the loop's commands.
   */
  estop(reason: string = "operator e-stop"): Promise<EStop> {
    this.neutral();
    return this.channel.estop({ deviceId: this.deviceId, reason, raisedAtMs: this.clock.now() });
  }

  /** Raises an e-stop for every device in the room. */
  estopAll(reason: string = "operator e-stop (all devices)"): Promise<EStop> {
    this.neutral();
    return this.channel.estop({ all: true, reason, raisedAtMs: this.clock.now() });
  }

  /**
   * Clears the device's latched e-stop (supervisors only: FORBIDDEN otherwise). The
   * device stays stopped; motion needs a fresh lease (acquire()).
   */
  reset(reason: string = ""): Promise<Reset> {
    return this.channel.reset(reason);
  }

  // --- latency -----------------------------------------------------------------------

  /** Latency statistics over the acks of the last `latencyWindow` commands. */
  latency(): LatencyStats {
    return this.latencyWindow.stats();
  }

  // --- lifecycle ---------------------------------------------------------------------

  /**
   * Stops everything this instance does. If it holds the lease, it sends a stop command
   * and releases the lease first (fire-and-forget), so the device stops at once rather
   * than when its watchdog notices the silence. Idempotent.
   */
  dispose(): void {
    if (this.disposed) return;
    if (this.holding && !this.session.reconnecting) {
      this.loop.halt();
      this.neutral();
      this.loop.sendStop();
      this.channel.releaseWithoutWaiting();
    }
    this.disposed = true;
    this.loop.halt();
    for (const off of this.unsubscribe) off();
    this.unsubscribe.length = 0;
    this.clock.release();
    this.events.removeAll();
  }

  // --- from the room -----------------------------------------------------------------

  private applyProfile(profile: DeviceProfile, emit: boolean) {
    this.currentProfile = profile;
    this.setpoint.adopt(profile);
    this.loop.reconcile();
    if (emit) this.events.emit("profile", profile);
  }

  private applyLease(lease: LeaseState, emit: boolean) {
    const update = this.leaseTracker.update(lease);
    if (!update) return; // a reply repeating the broadcast
    this.loop.leaseChanged(lease.leaseId);
    // Losing the lease returns to neutral, so a lease acquired later never resumes an old motion.
    if (update.wasHolding && !this.holding) this.neutral();
    this.loop.reconcile();
    if (!emit) return;
    this.events.emit("lease", lease);
    if (update.demoted) this.events.emit("demoted", update.demoted);
  }

  private applyAck(ack: CommandAck) {
    const info = this.latencyWindow.ackReceived(ack, this.now());
    this.loop.acked(ack);
    this.events.emit("ack", ack, info);
  }

  // --- to the room -------------------------------------------------------------------

  /**
   * Puts an envelope on the wire. It fails when the session has ended (or, a bug, when
   * the envelope cannot be encoded): that becomes an "error" event, and an ended
   * session stops the loop.
   */
  private trySend(envelope: IEnvelope): boolean {
    try {
      this.session.sendEnvelope(envelope);
      return true;
    } catch (error) {
      if (this.session.closed) this.loop.halt();
      this.events.emit("error", fromServerError(error));
      return false;
    }
  }

  private async leaseRequest(action: tsunagi.v1.LeaseRequest.Action, toSessionId?: string): Promise<LeaseState> {
    this.assertUsable();
    const lease = await this.channel.leaseRequest(action, toSessionId);
    if (!this.disposed) this.applyLease(lease, true);
    return lease;
  }

  private assertUsable() {
    if (this.disposed) throw new TsunagiError(ErrorCode.ERROR_CODE_UNSPECIFIED, `OperatorControls for ${this.deviceId} were disposed`, { retryable: false });
    if (this.session.closed) throw new TsunagiError(ErrorCode.ERROR_CODE_UNSPECIFIED, "the session has left the room", { retryable: false });
  }
}
