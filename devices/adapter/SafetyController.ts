/**
 * The adapter's safety logic for ONE device: the last line of defence (DESIGN.md,
 * "Teleoperation safety model"; docs/safety.md). Whatever the room, the node or the
 * network do, these rules hold here, and nothing else in the adapter moves the machine.
 *
 * It has no socket: it takes the gateway's safety messages (handle), the link's ups and
 * downs (linkUp, linkClosed) and the runtime's own stops, and RETURNS the acks, action
 * results and e-stop notices for the runtime to send. Setpoints and stops go to the
 * driver's Hal. What it needs of the runtime, and hands back, is in safetyContract.ts.
 *
 * What moves the machine (nothing else does):
 * - A ControlCommand that the CommandGuard passes under the current lease (in order:
 *   ESTOPPED, NO_LEASE, EXPIRED, STALE, OUT_OF_BOUNDS; see CommandGuard.ts). It is a
 *   complete setpoint: an axis it does not name goes to its safe value (velocity 0).
 * - A DeviceAction that passes the same checks and the profile's actions, and that the
 *   driver itself accepts.
 * Each command gets exactly one CommandAck, each action one ActionResult, echoing its
 * correlation id. A command or action for another device is refused NO_LEASE.
 *
 * What stops the machine (zero motion on every axis, at once):
 * - the room announces no lease (LeaseState ""); a drone's link-loss failsafe engages;
 * - the room announces a fresh lease: the previous lease's setpoint must not outlive it;
 * - the device refuses part of a setpoint (half a setpoint is worse than none); the ack
 *   is STATUS_UNSPECIFIED, telemetry does not report that command as last applied, and
 *   its seq stays used;
 * - the watchdog: no valid command or heartbeat under the current lease for the device's
 *   window (default 200 ms); checked every min(20, window / 4) ms while the link is up,
 *   and before each command, action and heartbeat, so a late one cannot rescue a silent
 *   lease; a drone's failsafe engages;
 * - an e-stop: from the gateway (whatever device it names: when in doubt, stop), from the
 *   room's LeaseState saying one is latched, or raised on the device (raiseEStop); a
 *   drone lands;
 * - an e-stop reset (motion needs a lease granted after it);
 * - the link closing, for any reason: the node may be gone, and a new node has no lease
 *   for us; a drone's failsafe engages;
 * - the runtime stopping, or failing (zeroMotion(reason)).
 *
 * What latches, and what clears a latch:
 * - The e-stop latch: every command and action is refused ESTOPPED, and no heartbeat
 *   counts. It survives fresh leases and reconnects (announced again on each linkUp so
 *   the room latches too). ONLY a Reset clears it, and the lease current at the reset
 *   dies with it. A Reset with nothing latched is ignored: it must not end a lease (and
 *   leave a flying drone without its failsafe).
 * - Where the e-stop came from: one raised at the machine (raiseEStop: the local
 *   endpoint, a physical button; or the driver reporting its own stop engaged) holds
 *   locally. A Reset from afar is then refused (Error ESTOP_LOCAL, and the latch
 *   announced again so the room latches again) until the technician's localReset(),
 *   which clears nothing by itself; and while the driver's own stop is engaged, neither
 *   reset works. A latch the room raised needs only the Reset.
 * - The stop latch (telemetry: watchdog_tripped): a watchdog trip, a closed link or
 *   stop() kills the current lease for good; `state.stopLatch` says which. A fresh lease
 *   (never announced before) clears it; re-announcing the dead lease does not.
 * - A lease that ended, by any of the above or another announcement, is never accepted
 *   again. After stop(), no lease is ever current again.
 *
 * @example
 *   const safety = new SafetyController({ deviceId: "ex-1", driver, profile, clock, logger, events, reportNow: sampleTelemetryNow });
 *   for (const notice of safety.linkUp(welcome.defaultLatencyBudgetMs)) connection.send(notice); // welcomed
 *   const outcome = safety.handle(envelope);                             // a LeaseState, ControlCommand, EStop...
 *   for (const reply of outcome?.replies ?? []) connection.send(reply);
 *   safety.linkClosed({ welcomed: true, code: 1006, why: "connection closed (code 1006)" });
 */
import { DEFAULT_WATCHDOG_WINDOW_MS, ErrorCode, tsunagi, type Envelope, type IEnvelope } from "../../proto/index.ts";
import type { Driver } from "../drivers/types.ts";
import { CommandGuard, CommandStatus, type SetpointEntry } from "./CommandGuard.ts";
import { setHalSetpoint } from "./setpoint.ts";
import { EStopOrigin, type LocalResetOutcome } from "./EStopOrigin.ts";
import type { LinkLoss } from "./GatewayConnection.ts";
import type { AdapterSafety, AdapterStop } from "./types.ts";
import type { SafetyCounters, SafetyHost, SafetyOutcome, StopLatchCause } from "./safetyContract.ts";
import { Watchdog } from "./Watchdog.ts";

export class SafetyController {
  /** Zeroes motion when commands and heartbeats stop. */
  readonly watchdog: Watchdog;

  /** The runtime's device, clock, logger and event sink. */
  private readonly host: SafetyHost;
  /** The device's lease, seq and latch state. */
  private readonly guard = new CommandGuard();
  /** The profile's latency budget, ms (0: the profile leaves it to the server). */
  private readonly profileBudgetMs: number;
  /** The latency budget in force, ms: the profile's, else the one the gateway's welcome named (0: none known). */
  private latencyBudgetMs: number;
  /** Polls the watchdog while the link is up. */
  private watchdogTimer: NodeJS.Timeout | undefined;
  /** stop() was called: no lease is ever current again. */
  private stopped = false;
  /** A setpoint with some non-zero value was applied since motion was last zeroed. */
  private motionCommanded = false;
  /** See `lastStop`. */
  private lastStopValue: AdapterStop | undefined;
  /** Why the stop latch holds (meaningful while the guard's watchdog latch does). */
  private stopLatchCause: StopLatchCause = "watchdog";
  /** Where the e-stop latch came from: whether a Reset from afar may clear it. */
  private readonly estopOrigin: EStopOrigin;
  /** See `counters`. */
  private readonly counterValues: SafetyCounters = { acks: {}, actions: {}, watchdogTrips: 0, linkLossStops: 0, estops: 0, resetsRefused: 0, unexpected: 0 };

  constructor(host: SafetyHost) {
    this.host = host;
    this.estopOrigin = new EStopOrigin(host.driver);
    const driverProfile = host.driver.profile();
    this.watchdog = new Watchdog(driverProfile.watchdogMs || DEFAULT_WATCHDOG_WINDOW_MS);
    this.profileBudgetMs = driverProfile.latencyBudgetMs > 0 ? driverProfile.latencyBudgetMs : 0;
    this.latencyBudgetMs = this.profileBudgetMs;
  }

  /** The lease, the latches and the last applied command. */
  get state(): AdapterSafety {
    const stopLatch = this.guard.watchdogTripped ? this.stopLatchCause : undefined;
    return {
      lease: this.guard.currentLease, estopped: this.guard.estopped,
      estopOrigin: !this.guard.estopped ? undefined : this.estopOrigin.local ? "local" : "remote",
      watchdogTripped: stopLatch === "watchdog", stopLatch, lastApplied: this.guard.lastApplied,
    };
  }

  /** When and why motion last stopped, counting only stops of a device commanded to move. */
  get lastStop(): AdapterStop | undefined {
    return this.lastStopValue && { ...this.lastStopValue };
  }

  /** A copy of the counters. */
  get counters(): SafetyCounters {
    return { ...this.counterValues, acks: { ...this.counterValues.acks }, actions: { ...this.counterValues.actions } };
  }

  /**
   * A message from the gateway: LeaseState, ControlCommand, DeviceAction, Heartbeat,
   * EStop or Reset. Undefined for any other body (not the controller's business).
   */
  handle(envelope: Envelope): SafetyOutcome | undefined {
    const correlationId = Number(envelope.correlationId);
    switch (envelope.body) {
      case "controlCommand": return { replies: [this.onCommand(correlationId, envelope.controlCommand!)], reportAfter: false };
      case "deviceAction": return { replies: [this.onAction(correlationId, envelope.deviceAction!)], reportAfter: true };
      case "heartbeat": this.onHeartbeat(envelope.heartbeat!); break;
      case "leaseState": this.onLeaseState(envelope.leaseState!); break;
      case "estop": this.onEStop(envelope.estop!); break;
      case "reset": return { replies: this.onReset(correlationId, envelope.reset!), reportAfter: false };
      default: return undefined;
    }
    return { replies: [], reportAfter: false };
  }

  /**
   * The gateway welcomed the link: the watchdog is polled from now on, and when the
   * profile leaves the latency budget to the server, the welcome's budget
   * (DeviceWelcome.default_latency_budget_ms) is the one deadlines are checked with.
   * Returns what the room must hear first: a latch that outlived the last link, so the
   * room latches too and a supervisor's reset can reach this adapter.
   */
  linkUp(defaultLatencyBudgetMs = 0): IEnvelope[] {
    this.latencyBudgetMs = this.profileBudgetMs || (defaultLatencyBudgetMs > 0 && Number.isFinite(defaultLatencyBudgetMs) ? defaultLatencyBudgetMs : 0);
    clearInterval(this.watchdogTimer);
    this.watchdogTimer = setInterval(() => this.pollWatchdog(), Math.min(20, this.watchdog.windowMs / 4));
    if (!this.guard.estopped) return [];
    return [this.estopNotice("e-stop latched at the adapter across a reconnect")];
  }

  /** A link closed (welcomed or not): stop; only a welcomed link could have had a lease, and it is dead. */
  linkClosed(loss: LinkLoss): void {
    clearInterval(this.watchdogTimer);
    this.watchdogTimer = undefined;
    this.zeroMotion("connection closed");
    this.watchdog.disarm();
    if (!loss.welcomed) return;
    const leaseId = this.guard.currentLease;
    if (leaseId !== undefined) {
      this.latchStop("connection closed");
      this.counterValues.linkLossStops++;
    }
    callIfPresent(this.host.driver, "linkLost");
    this.host.logger.warn({ code: loss.code, leaseId }, `adapter ${this.host.deviceId} offline: ${loss.why}; motion zeroed${leaseId ? `, lease ${leaseId} ended here` : ""}`);
    this.host.reportNow(); // buffered: shows the stop and the latch once back online
  }

  /**
   * Raises an e-stop on the device itself (a physical button, the local endpoint):
   * motion stops and the latch holds, with or without a link. Returns the EStop for the
   * gateway, so the room latches too.
   */
  raiseEStop(reason: string): IEnvelope {
    this.estopOrigin.raisedLocally();
    this.latchEStop("device", reason, `device:${this.host.deviceId}`);
    return this.estopNotice(reason);
  }

  /**
   * The technician's half of clearing an e-stop raised at the machine: releases the local
   * hold, so that a supervisor's Reset through the room may clear the latch. Clears
   * nothing and moves nothing by itself. Refused while the driver's own stop is engaged,
   * and when no local hold exists.
   */
  localReset(): LocalResetOutcome {
    const outcome = this.estopOrigin.release(this.guard.estopped);
    this.host.logger.warn(`local reset at the adapter: ${outcome.detail}`);
    return outcome;
  }

  /**
   * Looks at the driver's own stop (a physical button): engaged and not yet latched here,
   * it latches an e-stop held locally and returns the EStop for the gateway. Called on
   * every telemetry tick and before a Reset.
   */
  pollDriverStop(): IEnvelope | undefined {
    if (!this.estopOrigin.driverStopNewlyEngaged()) return undefined;
    return this.raiseEStop("the device's own stop is engaged");
  }

  /** The runtime stops: motion zeroed, the current lease dead, and none is ever current again. */
  stop(): void {
    this.stopped = true;
    clearInterval(this.watchdogTimer);
    this.watchdogTimer = undefined;
    this.zeroMotion("adapter stopping");
    this.watchdog.disarm();
    if (this.guard.currentLease !== undefined) this.latchStop("adapter stopping");
  }

  /** Trips the watchdog if its window has passed: zero motion, the lease dies, the latch holds. */
  pollWatchdog(): void {
    if (!this.watchdog.check(this.host.clock.clientNow())) return;
    this.zeroMotion("watchdog");
    callIfPresent(this.host.driver, "linkLost");
    const leaseId = this.latchStop("watchdog");
    this.counterValues.watchdogTrips++;
    this.host.logger.warn({ leaseId, windowMs: this.watchdog.windowMs }, `watchdog tripped: no valid command or heartbeat within ${this.watchdog.windowMs} ms; motion zeroed, lease ${leaseId ?? "(none)"} ended here`);
    this.host.reportNow();
    this.host.events.emit("watchdog", { leaseId });
  }

  /** Zeroes every axis and notes when and why (see `lastStop`). Never throws. */
  zeroMotion(reason: string): void {
    if (this.motionCommanded) this.lastStopValue = { at: Date.now(), reason };
    this.motionCommanded = false;
    try {
      const report = this.host.driver.hal.zeroMotion();
      for (const failure of report.failed) this.host.logger.error({ componentId: failure.componentId }, `could not stop ${failure.componentId}: ${failure.error.message}`);
    } catch (error) {
      // Hal.zeroMotion never throws; a driver that does is logged, not allowed to stop the adapter
      this.host.logger.error({ err: error }, "zeroMotion threw");
    }
  }

  // --- the gateway's messages ----------------------------------------------------------

  private onLeaseState(state: tsunagi.v1.ILeaseState): void {
    if (state.deviceId && state.deviceId !== this.host.deviceId) { this.unexpected(`a LeaseState for device "${state.deviceId.slice(0, 64)}"`); return; }
    // The room says an e-stop is latched and this adapter has none: the safe direction is to latch.
    if (state.estopped && !this.guard.estopped) this.latchEStop("remote", "the room reports an e-stop latched", "room");
    const leaseId = state.leaseId ?? "";
    if (this.stopped && leaseId !== "") return; // stopping: nothing may move the machine again
    const outcome = this.guard.announceLease(leaseId);
    switch (outcome) {
      case "cleared":
        // no lease: nothing may move, and nobody is driving (a drone's failsafe: hover, then land)
        this.zeroMotion(`no lease${state.cause ? ` (${state.cause})` : ""}`);
        this.watchdog.disarm();
        callIfPresent(this.host.driver, "linkLost");
        this.host.logger.info({ cause: state.cause, endedLeaseId: state.endedLeaseId }, `no lease${state.cause ? ` (${state.cause})` : ""}: motion zeroed`);
        return;
      case "granted":
        // the previous lease's setpoint must not outlive it
        this.zeroMotion("a new lease (the previous setpoint ends)");
        // someone drives again; a drone still needs a fresh hold or land to leave its failsafe
        if (!this.guard.estopped) callIfPresent(this.host.driver, "linkRestored");
        if (this.guard.estopped) this.watchdog.disarm();
        else this.watchdog.arm(this.host.clock.clientNow());
        this.host.logger.info({ leaseId, holder: state.holderSessionId, role: state.holderRole }, `lease ${leaseId} is current`);
        return;
      case "dead":
        this.host.logger.warn({ leaseId }, `ignored an announcement of lease ${leaseId}, which has ended here`);
        return;
      case "unchanged":
        return;
    }
  }

  private onCommand(correlationId: number, command: tsunagi.v1.IControlCommand): IEnvelope {
    this.pollWatchdog(); // a command arriving after the window must not rescue a silent lease
    const { clock, deviceId } = this.host;
    const receivedAtMs = clock.serverNow();
    let status: CommandStatus;
    let detail: string;
    let appliedAtMs = 0;
    if (command.deviceId && command.deviceId !== deviceId) {
      status = CommandStatus.NO_LEASE;
      detail = `the command is for device "${command.deviceId.slice(0, 64)}", this adapter runs "${deviceId}"`;
    } else {
      const verdict = this.guard.check(command, receivedAtMs, this.latencyBudgetMs, this.host.profile);
      status = verdict.status;
      detail = verdict.detail;
      if (verdict.status === CommandStatus.APPLIED) {
        const refusal = this.applySetpoint(verdict.setpoint!);
        if (refusal) {
          // not APPLIED: the contract has no "device refused" status; UNSPECIFIED means "treat as not applied"
          this.guard.setpointRefused(command.leaseId ?? "", Number(command.seq ?? 0));
          status = CommandStatus.STATUS_UNSPECIFIED;
          detail = `the device refused the setpoint (${refusal}); motion zeroed`;
        } else {
          appliedAtMs = clock.serverNow();
          if (verdict.setpoint!.some((entry) => entry.value !== undefined && entry.value !== 0)) this.motionCommanded = true;
          this.watchdog.feed(clock.clientNow());
        }
      }
    }
    const issuedAtMs = Number(command.issuedAtMs ?? 0);
    const uncertainty = clock.uncertaintyMs;
    const ack: tsunagi.v1.ICommandAck = {
      deviceId: command.deviceId || deviceId,
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
    const name = countStatus(this.counterValues.acks, status);
    if (status !== CommandStatus.APPLIED) this.host.logger.debug({ seq: ack.seq, leaseId: ack.leaseId, status: name }, `command refused ${name}: ${detail}`);
    return { correlationId, commandAck: ack };
  }

  /** A discrete manoeuvre (arm, take off, land...): the guard's checks, then the driver's own verdict. */
  private onAction(correlationId: number, action: tsunagi.v1.IDeviceAction): IEnvelope {
    this.pollWatchdog();
    const { clock, deviceId, driver } = this.host;
    const name = typeof action.action === "string" ? action.action.slice(0, 32) : "";
    let status: CommandStatus;
    let detail: string;
    if (action.deviceId && action.deviceId !== deviceId) {
      status = CommandStatus.NO_LEASE;
      detail = `the action is for device "${action.deviceId.slice(0, 64)}", this adapter runs "${deviceId}"`;
    } else {
      const verdict = this.guard.checkAction(action, clock.serverNow(), this.latencyBudgetMs, this.host.profile);
      status = verdict.status;
      detail = verdict.detail;
      if (status === CommandStatus.APPLIED) {
        try {
          if (!driver.perform) throw new Error("the driver performs no actions");
          driver.perform(name, Number(action.value ?? 0));
          this.watchdog.feed(clock.clientNow());
          this.motionCommanded = true;
          this.host.logger.info({ action: name, value: action.value, leaseId: action.leaseId }, `action ${name} applied`);
        } catch (error) {
          // the device's own refusal (take off while disarmed, land on the ground...): nothing changed
          status = CommandStatus.STATUS_UNSPECIFIED;
          detail = `the device refused ${name}: ${(error as Error).message}`;
        }
      }
    }
    const statusName = countStatus(this.counterValues.actions, status);
    if (status !== CommandStatus.APPLIED) this.host.logger.info({ action: name, status: statusName }, `action ${name} refused ${statusName}: ${detail}`);
    return { correlationId, actionResult: { deviceId, action: name, status, origin: tsunagi.v1.CommandAck.Origin.ADAPTER, detail } };
  }

  private onHeartbeat(heartbeat: tsunagi.v1.IHeartbeat): void {
    this.pollWatchdog();
    if (heartbeat.deviceId && heartbeat.deviceId !== this.host.deviceId) { this.unexpected(`a Heartbeat for device "${heartbeat.deviceId.slice(0, 64)}"`); return; }
    if (this.guard.acceptHeartbeat(heartbeat, this.host.clock.serverNow(), this.watchdog.windowMs)) this.watchdog.feed(this.host.clock.clientNow());
  }

  private onEStop(estop: tsunagi.v1.IEStop): void {
    // When in doubt, stop: an e-stop on this device's channel stops it whatever it names.
    this.zeroMotion("e-stop");
    if (estop.deviceId && estop.deviceId !== this.host.deviceId && !estop.all) {
      this.host.logger.warn({ named: estop.deviceId.slice(0, 64) }, "an e-stop for another device arrived on this channel; stopping anyway");
    }
    this.latchEStop("remote", estop.reason ?? "", estop.raisedBy ?? "");
  }

  /** A supervisor's Reset; returns the refusal (an Error, then the latch announced again) when the latch holds locally. */
  private onReset(correlationId: number, reset: tsunagi.v1.IReset): IEnvelope[] {
    if (reset.deviceId && reset.deviceId !== this.host.deviceId) { this.unexpected(`a Reset for device "${reset.deviceId.slice(0, 64)}"`); return []; }
    const notice = this.pollDriverStop();
    // Nothing to reset: a Reset must not end a lease here (and leave a flying drone without its failsafe).
    if (!this.guard.estopped) { this.unexpected(`a Reset from ${reset.by || "the room"} with no e-stop latched here`); return []; }
    const localCause = this.estopOrigin.resetRefusal();
    if (localCause) {
      this.counterValues.resetsRefused++;
      this.host.logger.warn({ by: reset.by }, `refused a reset from ${reset.by || "the room"}: ${localCause}`);
      // The room cleared its latch before asking: the notice latches it again.
      return [
        { correlationId, error: { code: ErrorCode.ESTOP_LOCAL, message: `device ${this.host.deviceId}: reset refused: ${localCause}`, retryable: false } },
        notice ?? this.estopNotice(`reset refused: ${localCause}`),
      ];
    }
    this.guard.reset();
    this.estopOrigin.cleared();
    this.watchdog.disarm();
    this.zeroMotion("e-stop reset");
    this.host.logger.warn({ by: reset.by, reason: reset.reason }, `e-stop reset by ${reset.by || "a supervisor"}: motion needs a fresh lease`);
    this.host.reportNow();
    return [];
  }

  // --- the rules' actions --------------------------------------------------------------

  /** Stops, latches, tells the room through telemetry and the listeners. */
  private latchEStop(source: "remote" | "device", reason: string, raisedBy: string): void {
    this.zeroMotion("e-stop");
    // beyond standing still: a drone in the air lands
    callIfPresent(this.host.driver, "emergencyStop");
    const already = this.guard.estopped;
    this.guard.estop();
    this.watchdog.disarm();
    if (!already) {
      this.counterValues.estops++;
      this.host.logger.warn({ source, reason, raisedBy }, `e-stop latched${reason ? `: ${reason}` : ""}`);
    }
    this.host.reportNow();
    this.host.events.emit("estop", { source, reason, raisedBy });
  }

  /** Kills the current lease for good (the stop latch), noting why; returns the lease killed. */
  private latchStop(cause: StopLatchCause): string | undefined {
    this.stopLatchCause = cause;
    return this.guard.tripWatchdog();
  }

  /** This device's EStop, for the gateway. */
  private estopNotice(reason: string): IEnvelope {
    const { deviceId, clock } = this.host;
    return { correlationId: 0, estop: { deviceId, reason, raisedBy: `device:${deviceId}`, raisedAtMs: clock.serverNow() } };
  }

  /** Hands a checked setpoint to the Hal (setHalSetpoint); if the device refused part of it, zeroes all motion (half a setpoint is worse than none) and returns why. */
  private applySetpoint(setpoint: SetpointEntry[]): string | undefined {
    const failures = setHalSetpoint(this.host.driver.hal, setpoint);
    if (failures.length === 0) return undefined;
    this.zeroMotion("the device refused a setpoint");
    return failures.join("; ");
  }

  private unexpected(what: string): void {
    this.counterValues.unexpected++;
    this.host.logger.warn(`ignored ${what}`);
  }
}

/** Counts one ack or action result under its status name; returns the name. */
function countStatus(counts: Record<string, number>, status: CommandStatus): string {
  const name = CommandStatus[status] ?? String(status);
  counts[name] = (counts[name] ?? 0) + 1;
  return name;
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
