/**
 * A MAVLink autopilot (ArduPilot Copter) as a HAL component of kind "vehicle": the link,
 * what the vehicle says of itself (VehicleState), its commands (CommandSender), the
 * operator's velocity setpoint, and the rules of what may be asked of it when.
 *
 * - Heartbeats both ways: the adapter is the vehicle's GCS and says so once a second;
 *   the vehicle's own are watched, and without one for `heartbeatTimeoutMs` the vehicle
 *   is unavailable (the adapter then takes the device offline).
 * - At each first heartbeat (and again after the vehicle was lost) the failsafe
 *   parameters are read and checked (FailsafeCheck.ts). A vehicle that fails is
 *   faulted: nothing arms it until its parameters are fixed.
 * - Velocity setpoints (SET_POSITION_TARGET_LOCAL_NED, body frame, velocity and yaw rate
 *   only) go at `setpointHz`, only in GUIDED, armed and in the air, and only while the
 *   operator's link is up. A zeroed axis sends its zero at once.
 * - Operator link lost: setpoints zeroed, BRAKE (hold where it is), then LAND after
 *   `linkLossHoldMs`. The link's return ends nothing by itself: the operator's "hold"
 *   (GUIDED) hands control back, as with the simulated drone.
 * - E-stop: LAND, or flight termination (motors off) by `estopAction`; disarm on the ground.
 *
 * Commands are asynchronous on MAVLink: perform() checks what can be checked here and
 * throws a refusal at once; the vehicle's own answer (COMMAND_ACK) comes later, and a
 * refusal then is logged and shown as a COMMAND_FAILED fault for 10 s.
 */
import { common, minimal, ardupilotmega } from "node-mavlink";
import { HalError } from "../../hal/errors.ts";
import { HalComponent } from "../../hal/HalComponent.ts";
import type { ComponentOptions } from "../../hal/types.ts";
import type { DriverLogger } from "../types.ts";
import { droneAxisRate, type DroneAxisName } from "../droneAxes.ts";
import { CommandRefusal, CommandSender, commandName } from "./CommandSender.ts";
import type { MavlinkConfig } from "./config.ts";
import { parseMavlinkEndpoint } from "./endpoint.ts";
import { FAILSAFE_PARAMETERS, checkFailsafeParameters, readParameters } from "./FailsafeCheck.ts";
import { MavlinkLink } from "./MavlinkLink.ts";
import { VehicleState } from "./VehicleState.ts";

export type MavlinkAxisName = DroneAxisName;
const { CopterMode } = ardupilotmega;
const { MavCmd } = common;

/** Above this altitude, m, an armed vehicle counts as in the air. */
const AIRBORNE_ALTITUDE_M = 0.3;
/**
 * Within this of its target altitude a take-off has arrived, m. Tight on purpose: the
 * first setpoint after it stops the climb where the vehicle is (ArduCopter ends a take-off
 * at the first velocity setpoint, and a zero one holds the altitude it finds), so a wider
 * margin leaves the vehicle hovering that much short of the altitude asked for.
 */
const TAKEOFF_ARRIVAL_M = 0.05;
/** How long a vehicle's refusal of a command shows as a fault, ms. */
const COMMAND_FAILURE_SHOWN_MS = 10_000;
/** The GCS heartbeat's period, ms (MAVLink's 1 Hz). */
const GCS_HEARTBEAT_MS = 1000;

export class MavlinkVehicle extends HalComponent {
  readonly kind = "vehicle" as const;
  readonly config: MavlinkConfig;
  readonly vehicleState: VehicleState;
  /** Counters of the link and of the commands, for the adapter's status. */
  readonly counters = { setpointsSent: 0, heartbeatsSent: 0 };
  link: MavlinkLink | undefined;
  private commands: CommandSender | undefined;
  private readonly logger: DriverLogger | undefined;
  /** Body frame: forward, left, up (m/s), counter-clockwise yaw rate (rad/s). */
  private readonly setpoint: Record<MavlinkAxisName, number> = { vx: 0, vy: 0, vz: 0, "yaw-rate": 0 };
  private operatorLinkUp = true;
  private linkLossTimer: NodeJS.Timeout | undefined;
  private lastGcsHeartbeatAt = -Infinity;
  /** Whether the vehicle's heartbeat was fresh at the last step, to notice its loss and return. */
  private wasAvailable = false;
  /** The failsafe check under way or done for this appearance of the vehicle. */
  private failsafeChecked: "no" | "running" | "passed" | "failed" = "no";
  /** What the last failed check found, one line per parameter, for the refusal to arm. */
  private failsafeProblems: string[] = [];
  /** Counts checks, so one that outlived the vehicle's appearance it began in is ignored. */
  private failsafeGeneration = 0;
  private commandFailure: { text: string; atMs: number } | undefined;
  /**
   * The altitude a take-off climbs to, until it gets there: no setpoint goes meanwhile,
   * since ArduCopter ends a take-off at the first velocity setpoint (a zero one would
   * leave it hovering half a metre up). An operator's non-zero setpoint does end it.
   */
  private climbingTo: number | undefined;
  private readonly bootAt = performance.now();
  /** Aborted by close(): a failsafe check under way stops asking. */
  private readonly closing = new AbortController();

  constructor(id: string, config: MavlinkConfig, options: ComponentOptions & { logger?: DriverLogger } = {}) {
    super(id, {
      name: "Flight controller",
      vendor: "ArduPilot",
      model: "MAVLink autopilot",
      description: `MAVLink v2 over ${config.endpoint}, system ${config.vehicle.systemId}`,
      unit: "m",
      limits: { min: 0, max: config.maxAltitudeM, maxRate: config.maxHorizontalSpeed },
    }, options);
    this.config = config;
    this.vehicleState = new VehicleState(() => performance.now());
    this.logger = options.logger;
  }

  /** Opens the UDP link; throws (a port in use, say) with the endpoint named. */
  async open(): Promise<void> {
    const endpoint = parseMavlinkEndpoint(this.config.endpoint);
    try {
      this.link = await MavlinkLink.open({ endpoint, vehicle: this.config.vehicle, gcs: this.config.gcs });
    } catch (error) {
      throw new Error(`MAVLink endpoint ${this.config.endpoint}: ${(error as Error).message}`, { cause: error });
    }
    this.commands = new CommandSender(this.link, this.config.vehicle, { ackTimeoutMs: this.config.ackTimeoutMs, retries: this.config.commandRetries });
    this.link.onMessage((message) => {
      // a HEARTBEAT ending a silence: the loss is noticed first, even when it was shorter than a loop tick
      if (message instanceof minimal.Heartbeat) this.noticeAvailability();
      this.vehicleState.apply(message, this.clock());
    });
  }

  async close(): Promise<void> {
    this.closing.abort();
    clearTimeout(this.linkLossTimer);
    this.commands?.close();
    await this.link?.close();
  }

  /**
   * The vehicle answers, and its failsafe parameters have been checked (passed or not):
   * until then the adapter stays off the gateway, so nobody is offered a vehicle whose
   * failsafe is not yet known.
   */
  /** COMMAND_LONG sent, retried, accepted, refused and unanswered. */
  get commandCounters(): Record<string, number> {
    return { ...this.commands?.counters };
  }

  get available(): boolean {
    return this.heartbeatFresh && (this.failsafeChecked === "passed" || this.failsafeChecked === "failed");
  }

  private get heartbeatFresh(): boolean {
    return this.vehicleState.heartbeatAgeMs() < this.config.heartbeatTimeoutMs;
  }

  get airborne(): boolean {
    return this.vehicleState.armed && this.vehicleState.altitudeM > AIRBORNE_ALTITUDE_M;
  }

  /**
   * The flight mode for telemetry: the vehicle's ("GUIDED", "LAND"); "connecting" until it
   * answers and while its failsafe is being checked; "lost" once its heartbeat is stale.
   */
  get modeText(): string {
    if (this.available) return this.vehicleState.modeName;
    return this.vehicleState.heartbeatAt !== undefined && !this.heartbeatFresh ? "lost" : "connecting";
  }

  /** Driver faults for telemetry, as { code, message, severity } records. */
  faults(wallNow: number): { code: string; message: string; severity: "info" | "warning" | "error" | "critical" }[] {
    const faults: ReturnType<MavlinkVehicle["faults"]> = [];
    if (this.vehicleState.heartbeatAt !== undefined && !this.heartbeatFresh) faults.push({ code: "VEHICLE_LOST", message: `no HEARTBEAT from the vehicle for ${Math.round(this.vehicleState.heartbeatAgeMs())} ms`, severity: "critical" });
    if (this.vehicleState.systemStatus === "CRITICAL" || this.vehicleState.systemStatus === "EMERGENCY") faults.push({ code: "VEHICLE_FAILSAFE", message: `the vehicle reports ${this.vehicleState.systemStatus}`, severity: "error" });
    if (!this.operatorLinkUp) faults.push({ code: "LINK_LOST", message: "the operator's link is lost: holding, then landing", severity: "warning" });
    if (this.vehicleState.unhealthySensors !== 0) faults.push({ code: "SENSORS_UNHEALTHY", message: `SYS_STATUS unhealthy sensors 0x${this.vehicleState.unhealthySensors.toString(16)}`, severity: "warning" });
    if (this.commandFailure && wallNow - this.commandFailure.atMs < COMMAND_FAILURE_SHOWN_MS) faults.push({ code: "COMMAND_FAILED", message: this.commandFailure.text, severity: "warning" });
    return faults;
  }

  // --- the loop ------------------------------------------------------------------------

  /** One tick of the driver's loop: heartbeat, availability, failsafe check, setpoint. */
  step(): void {
    const now = performance.now();
    if (now - this.lastGcsHeartbeatAt >= GCS_HEARTBEAT_MS) this.sendGcsHeartbeat(now);
    const fresh = this.noticeAvailability();
    if (fresh && this.failsafeChecked === "no") void this.checkFailsafe();
    const available = this.available;
    if (this.climbingTo !== undefined && (this.vehicleState.modeName !== "GUIDED" || !this.vehicleState.armed || this.vehicleState.altitudeM >= this.climbingTo - TAKEOFF_ARRIVAL_M)) this.climbingTo = undefined;
    if (available && this.vehicleState.modeName === "GUIDED" && this.airborne && this.operatorLinkUp && this.climbingTo === undefined) this.sendSetpoint();
  }

  /** Notices the vehicle's loss and return (a lost vehicle is checked again when it returns); whether its heartbeat is fresh. */
  private noticeAvailability(): boolean {
    const fresh = this.heartbeatFresh;
    if (fresh !== this.wasAvailable) {
      this.wasAvailable = fresh;
      if (fresh) this.logger?.info(`vehicle ${this.config.vehicle.systemId} answering (${this.vehicleState.modeName}, ${this.vehicleState.armed ? "armed" : "disarmed"}); checking its failsafe`);
      else {
        this.logger?.warn(`vehicle ${this.config.vehicle.systemId}: no HEARTBEAT for ${this.config.heartbeatTimeoutMs} ms; it is offline`);
        this.failsafeChecked = "no"; // a vehicle that comes back may have rebooted with other parameters
      }
    }
    return fresh;
  }

  // --- what the adapter asks -------------------------------------------------------------

  setAxis(axis: MavlinkAxisName, value: number): void {
    this.requireControllable(`a ${axis} setpoint`);
    if (this.vehicleState.modeName !== "GUIDED" || !this.airborne) {
      throw this.refusal(`a ${axis} setpoint needs the vehicle flying in GUIDED (it is ${this.vehicleState.armed ? "armed" : "disarmed"} in ${this.vehicleState.modeName} at ${this.vehicleState.altitudeM.toFixed(1)} m); take off, or "hold" after a failsafe`);
    }
    const limit = droneAxisRate(axis, this.config);
    this.setpoint[axis] = Math.max(-limit, Math.min(limit, value));
    if (value !== 0) this.climbingTo = undefined;
  }

  zeroAxis(axis: MavlinkAxisName): void {
    if (this.setpoint[axis] === 0) return;
    this.setpoint[axis] = 0;
    if (this.available && this.vehicleState.modeName === "GUIDED" && this.airborne) this.sendSetpoint();
  }

  bodyVelocity(axis: MavlinkAxisName): number {
    return this.vehicleState.bodyVelocity(axis);
  }

  arm(): void {
    this.requireControllable("arm");
    if (this.failsafeChecked !== "passed") throw this.refusal(`the vehicle's failsafe parameters are ${this.failsafeChecked === "failed" ? `wrong: ${this.failsafeProblems.join("; ")}` : "not checked yet"}: not arming`);
    if (this.airborne) throw this.refusal("already in the air");
    this.run(async () => {
      if (this.vehicleState.modeName !== "GUIDED") await this.setMode(CopterMode.GUIDED);
      await this.command(MavCmd.COMPONENT_ARM_DISARM, [1]);
      this.vehicleState.accepted({ armed: true });
    });
  }

  takeOff(altitudeM: number): void {
    this.requireControllable("take off");
    if (!this.vehicleState.armed || this.airborne) throw this.refusal(`take-off needs the vehicle armed on the ground (it is ${this.vehicleState.armed ? "in the air" : "disarmed"})`);
    const target = Math.max(1, Math.min(this.config.maxAltitudeM, altitudeM));
    this.climbingTo = target;
    this.run(() => this.command(MavCmd.NAV_TAKEOFF, [0, 0, 0, Number.NaN, Number.NaN, Number.NaN, target]));
  }

  /** GUIDED with no velocity: hover, and the operator's way back after a failsafe. */
  hold(): void {
    this.requireControllable("hold");
    this.clearSetpoint();
    clearTimeout(this.linkLossTimer);
    this.run(() => this.setMode(CopterMode.GUIDED));
  }

  land(): void {
    if (!this.available) throw this.refusal("the vehicle is not answering");
    this.clearSetpoint();
    this.run(() => this.setMode(CopterMode.LAND));
  }

  returnToLaunch(): void {
    this.requireControllable("return to launch");
    this.clearSetpoint();
    this.run(() => this.setMode(CopterMode.RTL));
  }

  disarm(): void {
    if (!this.available) throw this.refusal("the vehicle is not answering");
    if (this.airborne) throw this.refusal("cannot disarm in the air; land first");
    this.run(async () => {
      await this.command(MavCmd.COMPONENT_ARM_DISARM, [0]);
      this.vehicleState.accepted({ armed: false });
    });
  }

  /** The e-stop's manoeuvre; never throws. */
  emergencyStop(): void {
    this.clearSetpoint();
    if (!this.vehicleState.armed) return;
    if (!this.airborne) {
      this.run(() => this.command(MavCmd.COMPONENT_ARM_DISARM, [0]));
    } else if (this.config.estopAction === "terminate") {
      this.logger?.warn("e-stop: flight termination (motors off)");
      this.run(() => this.command(MavCmd.DO_FLIGHTTERMINATION, [1]));
    } else {
      this.logger?.warn("e-stop: landing");
      this.run(() => this.setMode(CopterMode.LAND));
    }
  }

  linkLost(): void {
    if (!this.operatorLinkUp) return;
    this.operatorLinkUp = false;
    this.clearSetpoint();
    if (!this.airborne) return;
    const landNow = this.config.linkLossHoldMs === 0;
    this.logger?.warn(landNow ? "operator link lost: landing" : `operator link lost: holding (BRAKE), landing in ${this.config.linkLossHoldMs} ms unless the operator takes over`);
    this.run(() => this.setMode(landNow ? CopterMode.LAND : CopterMode.BRAKE));
    if (!landNow) {
      this.linkLossTimer = setTimeout(() => {
        if (this.airborne && this.vehicleState.modeName !== "GUIDED") this.run(() => this.setMode(CopterMode.LAND));
      }, this.config.linkLossHoldMs);
    }
  }

  linkRestored(): void {
    this.operatorLinkUp = true;
  }

  // --- plumbing --------------------------------------------------------------------------

  private requireControllable(what: string): void {
    if (!this.available) throw this.refusal(`${what}: the vehicle is not answering`);
    if (!this.operatorLinkUp) throw this.refusal(`${what}: the operator's link is down`);
  }

  private refusal(message: string): HalError {
    return new HalError("COMMAND_REFUSED", `${this.id}: ${message}`, { componentId: this.id });
  }

  private clearSetpoint(): void {
    for (const axis of Object.keys(this.setpoint) as MavlinkAxisName[]) this.setpoint[axis] = 0;
  }

  private async setMode(mode: number): Promise<void> {
    await this.command(MavCmd.DO_SET_MODE, [minimal.MavModeFlag.CUSTOM_MODE_ENABLED, mode]);
    this.vehicleState.accepted({ customMode: mode });
  }

  private command(command: number, params: number[]): Promise<void> {
    if (!this.commands) return Promise.reject(new CommandRefusal(commandName(command), "CLOSED", "the MAVLink link is not open"));
    return this.commands.send(command, params);
  }

  /** Runs a command sequence; a refusal is logged and shown as a fault, never thrown. */
  private run(sequence: () => Promise<void>): void {
    sequence().catch((error: unknown) => {
      const text = error instanceof CommandRefusal ? `${error.command}: ${error.result}` : (error as Error).message;
      this.commandFailure = { text, atMs: this.clock() };
      this.logger?.warn(`vehicle command failed: ${(error as Error).message}`);
    });
  }

  private async checkFailsafe(): Promise<void> {
    if (!this.link) return;
    this.failsafeChecked = "running";
    const generation = ++this.failsafeGeneration;
    const values = await readParameters(this.link, this.config.vehicle, FAILSAFE_PARAMETERS, { intervalMs: 300, attempts: 5, signal: this.closing.signal });
    if (this.closing.signal.aborted) return;
    if (generation !== this.failsafeGeneration || this.failsafeChecked !== "running") return; // the vehicle went away meanwhile: the next check decides
    const problems = checkFailsafeParameters(values, { gcsSystemId: this.config.gcs.systemId, ...this.config });
    this.failsafeProblems = problems;
    if (problems.length > 0) {
      this.failsafeChecked = "failed";
      this.enterFault(`failsafe parameters disagree with the adapter: ${problems.join("; ")}`);
      this.logger?.warn(`vehicle failsafe check failed: ${problems.join("; ")}`);
      return;
    }
    this.failsafeChecked = "passed";
    if (this.faultReason !== undefined) this.reinit();
    this.logger?.info(`vehicle failsafe agrees: FS_GCS_ENABLE ${values.FS_GCS_ENABLE}, FS_GCS_TIMEOUT ${values.FS_GCS_TIMEOUT} s, GUID_TIMEOUT ${values.GUID_TIMEOUT} s`);
  }

  private sendGcsHeartbeat(now: number): void {
    const heartbeat = new minimal.Heartbeat();
    heartbeat.type = minimal.MavType.GCS;
    heartbeat.autopilot = minimal.MavAutopilot.INVALID;
    heartbeat.baseMode = 0 as minimal.MavModeFlag;
    heartbeat.customMode = 0;
    heartbeat.systemStatus = minimal.MavState.ACTIVE;
    heartbeat.mavlinkVersion = 3;
    if (this.link?.send(heartbeat)) this.counters.heartbeatsSent++;
    this.lastGcsHeartbeatAt = now;
  }

  private sendSetpoint(): void {
    const { PositionTargetTypemask: mask } = common;
    const target = new common.SetPositionTargetLocalNed();
    target.timeBootMs = Math.round(performance.now() - this.bootAt);
    target.targetSystem = this.config.vehicle.systemId;
    target.targetComponent = this.config.vehicle.componentId;
    target.coordinateFrame = common.MavFrame.BODY_NED;
    target.typeMask = mask.X_IGNORE | mask.Y_IGNORE | mask.Z_IGNORE | mask.AX_IGNORE | mask.AY_IGNORE | mask.AZ_IGNORE | mask.YAW_IGNORE;
    // body FLU (forward, left, up; yaw counter-clockwise) -> MAVLink body FRD
    target.vx = this.setpoint.vx;
    target.vy = -this.setpoint.vy;
    target.vz = -this.setpoint.vz;
    target.yawRate = -this.setpoint["yaw-rate"];
    if (this.link?.send(target)) this.counters.setpointsSent++;
  }
}
