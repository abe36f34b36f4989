/**
 * A simulated tracked excavator on the HAL: four joints (swing, boom, arm, bucket) and
 * two tracks, all velocity-controlled, stepped by a kinematic model at 100 Hz.
 *
 * Conventions (right-handed, z up; the site frame is the machine's start pose):
 * - pose: x, y in m; heading in rad, counter-clockwise from +x, wrapped to (-π, π].
 * - swing: rad, counter-clockwise seen from above; continuous by default.
 * - boom +: raise. arm +: out, away from the cab. bucket +: open (dump); curl is −.
 * - tracks: m/s, positive drives forward. Differential drive: the base moves at the
 *   mean of the two track speeds and turns at (right − left) / track gauge, so a
 *   faster right track turns it left (counter-clockwise).
 *
 * @example
 *   const excavator = new SimExcavator();
 *   excavator.init();
 *   excavator.hal.actuator("boom").setValue("velocity", 0.2);   // rad/s
 *   for (let i = 0; i < 100; i++) excavator.step(10);           // one simulated second
 *   excavator.joints();   // [{ name: "swing", ... }, { name: "boom", position: 0.2, velocity: 0.2 }, ...]
 *   excavator.hal.zeroMotion();                                  // what the watchdog does
 */
import { Hal } from "../../hal/Hal.ts";
import type { FinalizeReport } from "../../hal/Hal.ts";
import type { Clock, ComponentState } from "../../hal/types.ts";
import { checkStep, wrapAngle } from "../geometry.ts";
import { SimulationLoop, driverLoop } from "../SimulationLoop.ts";
import { SimStopButton } from "../SimStopButton.ts";
import type { AxisProfile, DeviceProfile, Driver } from "../types.ts";
import { SimJoint, type JointConfig, type JointState } from "./SimJoint.ts";
import { SimTrack } from "./SimTrack.ts";

export const jointNames = ["swing", "boom", "arm", "bucket"] as const;
export type JointName = (typeof jointNames)[number];
export const trackIds = { left: "left-track", right: "right-track" } as const;

/**
 * Defaults in the range of a 20-tonne excavator. Angles are relative to the travel
 * pose (all zero but the arm, which starts tucked in).
 */
export const defaultJointConfigs: Readonly<Record<JointName, JointConfig>> = Object.freeze({
  swing: { maxRate: 1.0 },
  boom: { min: -0.6, max: 1.0, maxRate: 0.4 },
  arm: { min: -2.6, max: -0.5, maxRate: 0.6, initial: -1.5 },
  bucket: { min: -2.0, max: 1.2, maxRate: 1.0 },
});

export interface Pose {
  /** m */
  x: number;
  /** m */
  y: number;
  /** rad, counter-clockwise from +x, in (-π, π] */
  heading: number;
}

export interface SimExcavatorOptions {
  /** Timestamps for telemetry and events. Default Date.now. */
  clock?: Clock;
  /** Monotonic ms for the real-time loop. Default performance.now. */
  tickClock?: () => number;
  /** Per-joint overrides of defaultJointConfigs. */
  joints?: Partial<Record<JointName, Partial<JointConfig>>>;
  /** Highest track speed, m/s. Default 1.5. */
  maxTrackSpeed?: number;
  /** Centre-to-centre distance of the tracks, m. Default 2.4. */
  trackGaugeM?: number;
  initialPose?: Partial<Pose>;
  /** Watchdog window published in the profile, ms. Default 200. */
  watchdogMs?: number;
  /** Latency budget published in the profile, ms. Default 50. */
  latencyBudgetMs?: number;
}

export interface ExcavatorTelemetry {
  timestamp: number;
  /** Simulated time since construction, ms. */
  simTimeMs: number;
  pose: Pose;
  joints: JointState[];
  /** Effective track speeds, m/s (0 while a track is not Ready). */
  tracks: { left: number; right: number };
  /** Lifecycle state of each component, by id. */
  components: Record<string, ComponentState>;
  /** Faulted components and why. */
  faults: { componentId: string; reason: string }[];
}

const STEP_MS = 10;

export class SimExcavator implements Driver {
  readonly driverName = "sim-excavator" as const;
  readonly hal = new Hal();
  /** The machine's own stop button: pressed, every axis stops (stopEngaged()). */
  readonly stopButton = new SimStopButton(() => this.hal.zeroMotion());
  /** The four joints, in jointNames order. */
  private readonly jointList: SimJoint[];
  /** The left track. */
  private readonly leftTrack: SimTrack;
  /** The right track. */
  private readonly rightTrack: SimTrack;
  /** Centre-to-centre track distance, m. */
  private readonly trackGaugeM: number;
  /** Where the base is in the site frame. */
  private readonly currentPose: Pose;
  /** Telemetry timestamps. */
  private readonly clock: Clock;
  /** Published in profile(). */
  private readonly watchdogMs: number;
  /** Published in profile(). */
  private readonly latencyBudgetMs: number;
  /** Drives step() in real time between start() and stop(). */
  private readonly loop: SimulationLoop;
  /** Simulated ms stepped so far. */
  private simTimeMs = 0;

  constructor(options: SimExcavatorOptions = {}) {
    this.clock = options.clock ?? Date.now;
    const componentOptions = { clock: this.clock };
    this.jointList = jointNames.map((name) => {
      const override = options.joints?.[name] ?? {};
      return this.hal.add(new SimJoint(name, { ...defaultJointConfigs[name], ...override }, componentOptions));
    });
    const maxTrackSpeed = options.maxTrackSpeed ?? 1.5;
    this.leftTrack = this.hal.add(new SimTrack(trackIds.left, maxTrackSpeed, componentOptions));
    this.rightTrack = this.hal.add(new SimTrack(trackIds.right, maxTrackSpeed, componentOptions));
    this.trackGaugeM = options.trackGaugeM ?? 2.4;
    if (!(this.trackGaugeM > 0) || !Number.isFinite(this.trackGaugeM)) throw new TypeError("trackGaugeM must be a finite number > 0");
    this.currentPose = {
      x: options.initialPose?.x ?? 0,
      y: options.initialPose?.y ?? 0,
      heading: wrapAngle(options.initialPose?.heading ?? 0),
    };
    this.watchdogMs = options.watchdogMs ?? 200;
    this.latencyBudgetMs = options.latencyBudgetMs ?? 50;
    this.loop = driverLoop("sim-excavator", this.hal, (dtMs) => this.step(dtMs), { stepMs: STEP_MS, now: options.tickClock });
  }

  get running(): boolean {
    return this.loop.running;
  }

  init(): void {
    this.hal.initAll();
  }

  /** Stops the loop and finalises every component (which stops them). Never throws. */
  finalize(): FinalizeReport {
    this.loop.stop();
    return this.hal.finalizeAll();
  }

  /**
   * Advances the model by `dtMs`: joints integrate their commanded velocities and stop
   * at their limits; the base moves on the arc the two tracks describe. The arc is
   * integrated exactly for constant track speeds, so the result does not depend on
   * how a span of time is cut into steps.
   */
  step(dtMs: number): void {
    checkStep(dtMs);
    for (const joint of this.jointList) joint.integrate(dtMs);
    this.moveBase(this.leftTrack.effectiveVelocity, this.rightTrack.effectiveVelocity, dtMs / 1000);
    this.simTimeMs += dtMs;
  }

  start(): void {
    this.loop.start();
  }

  stop(): void {
    this.loop.stop();
  }

  /** The HAL component of one joint. */
  joint(name: JointName): SimJoint {
    const joint = this.jointList[jointNames.indexOf(name)];
    if (!joint) throw new TypeError(`no joint ${JSON.stringify(name)}; joints: ${jointNames.join(", ")}`);
    return joint;
  }

  /** The HAL component of one track. */
  track(side: "left" | "right"): SimTrack {
    return side === "left" ? this.leftTrack : this.rightTrack;
  }

  /** Every joint's state, in jointNames order. */
  joints(): JointState[] {
    return this.jointList.map((joint) => joint.snapshot());
  }

  pose(): Pose {
    return { ...this.currentPose };
  }

  stopEngaged(): boolean {
    return this.stopButton.pressed;
  }

  telemetry(): ExcavatorTelemetry {
    const components: Record<string, ComponentState> = {};
    const faults: { componentId: string; reason: string }[] = [];
    for (const component of this.hal.list()) {
      components[component.id] = component.state;
      if (component.faultReason !== undefined) faults.push({ componentId: component.id, reason: component.faultReason });
    }
    return {
      timestamp: this.clock(),
      simTimeMs: this.simTimeMs,
      pose: this.pose(),
      joints: this.joints(),
      tracks: { left: this.leftTrack.effectiveVelocity, right: this.rightTrack.effectiveVelocity },
      components,
      faults,
    };
  }

  profile(): DeviceProfile {
    const axes: AxisProfile[] = this.jointList.map((joint) => {
      const { min, max, maxRate } = joint.properties.limits;
      const axis: AxisProfile = { name: joint.id, mode: "velocity", unit: "rad", rateUnit: "rad/s", maxRate: maxRate! };
      // absent, not undefined: the profile is compared and serialised as plain JSON
      if (min !== undefined) axis.min = min;
      if (max !== undefined) axis.max = max;
      return axis;
    });
    for (const track of [this.leftTrack, this.rightTrack]) {
      axes.push({ name: track.id, mode: "velocity", unit: "m", rateUnit: "m/s", maxRate: track.properties.limits.maxRate! });
    }
    return {
      driver: this.driverName,
      deviceClass: "excavator",
      vendor: "Tsunagi",
      model: "sim-excavator",
      axes,
      watchdogMs: this.watchdogMs,
      latencyBudgetMs: this.latencyBudgetMs,
      stepHz: 1000 / STEP_MS,
      parameters: { trackGaugeM: this.trackGaugeM },
    };
  }

  private moveBase(left: number, right: number, dtS: number): void {
    const speed = (left + right) / 2;
    const turnRate = (right - left) / this.trackGaugeM;
    const { heading } = this.currentPose;
    if (Math.abs(turnRate) < 1e-12) {
      this.currentPose.x += speed * Math.cos(heading) * dtS;
      this.currentPose.y += speed * Math.sin(heading) * dtS;
      return;
    }
    const nextHeading = heading + turnRate * dtS;
    const radius = speed / turnRate;
    this.currentPose.x += radius * (Math.sin(nextHeading) - Math.sin(heading));
    this.currentPose.y -= radius * (Math.cos(nextHeading) - Math.cos(heading));
    this.currentPose.heading = wrapAngle(nextHeading);
  }
}
