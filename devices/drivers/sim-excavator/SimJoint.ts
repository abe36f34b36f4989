/**
 * One hydraulic joint of the simulated excavator (swing, boom, arm, bucket): a
 * velocity-controlled rotary actuator with position limits and a rate limit.
 *
 * Commands are clamped to ±maxRate; motion is clamped at the position limits. Both
 * emit "limit-reached" when the clamping starts, not while it lasts, so a held stick
 * does not flood observers at 100 Hz. A continuous joint (no min/max; the swing by
 * default) wraps its position to (-π, π].
 *
 * Outside Ready the joint does not move: the valves are closed.
 */
import { HalActuator } from "../../hal/HalActuator.ts";
import { ComponentState, type ActuatorMode, type ComponentOptions } from "../../hal/types.ts";
import { clamp, wrapAngle } from "../geometry.ts";

export interface JointConfig {
  /** Lowest position, rad. Omit both min and max for a continuous joint. */
  min?: number;
  /** Highest position, rad. */
  max?: number;
  /** Highest speed, rad/s. */
  maxRate: number;
  /** Position at start, rad. Default: 0, or the nearest limit if 0 is outside them. */
  initial?: number;
}

export interface JointState {
  name: string;
  /** rad */
  position: number;
  /** rad/s actually moved in the last step (0 when stopped at a limit) */
  velocity: number;
}

export class SimJoint extends HalActuator {
  /** Limits and rate, as configured. */
  private readonly config: Readonly<JointConfig>;
  /** Current angle, rad. */
  private position: number;
  /** Commanded speed after the rate clamp, rad/s. */
  private commandedVelocity = 0;
  /** Speed achieved in the last step, rad/s. */
  private actualVelocity = 0;
  /** The position limit the joint is resting against, if any; limit events fire only on arrival. */
  private restingAt: "min" | "max" | undefined;
  /** Whether the last command was rate-clamped; rate events fire only when clamping starts. */
  private rateClamped = false;

  constructor(id: string, config: JointConfig, options: ComponentOptions = {}) {
    const bounded = config.min !== undefined || config.max !== undefined;
    if (bounded && (config.min === undefined || config.max === undefined || !(config.min < config.max))) {
      throw new TypeError(`${id}: a bounded joint needs both min and max, with min < max`);
    }
    if (!(config.maxRate > 0) || !Number.isFinite(config.maxRate)) throw new TypeError(`${id}: maxRate must be a finite number > 0`);
    super(id, {
      name: `${id} joint`,
      vendor: "Tsunagi",
      model: "sim-joint",
      description: bounded ? "velocity-controlled hydraulic joint" : "velocity-controlled continuous joint",
      unit: "rad",
      limits: bounded ? { min: config.min, max: config.max, maxRate: config.maxRate } : { maxRate: config.maxRate },
    }, { command: ["velocity"], read: ["position", "velocity"] }, options);
    this.config = Object.freeze({ ...config });
    const initial = config.initial ?? (bounded ? clamp(0, config.min!, config.max!) : 0);
    if (bounded && (initial < config.min! || initial > config.max!)) {
      throw new TypeError(`${id}: initial position ${initial} is outside [${config.min}, ${config.max}]`);
    }
    this.position = bounded ? initial : wrapAngle(initial);
  }

  get continuous(): boolean {
    return this.config.min === undefined;
  }

  /** The joint's state whatever its lifecycle state: the simulation's ground truth. */
  snapshot(): JointState {
    return { name: this.id, position: this.position, velocity: this.actualVelocity };
  }

  /** Makes the joint fail as broken hardware would, for tests and demos. */
  injectFault(reason: string): void {
    this.enterFault(reason);
  }

  /** Moves the joint by its commanded velocity over `dtMs`, stopping at a limit. */
  integrate(dtMs: number): void {
    if (this.state !== ComponentState.Ready || this.commandedVelocity === 0) {
      this.actualVelocity = 0;
      return;
    }
    const dtS = dtMs / 1000;
    const requested = this.position + this.commandedVelocity * dtS;
    if (this.continuous) {
      this.position = wrapAngle(requested);
      this.actualVelocity = this.commandedVelocity;
      return;
    }
    const { min, max } = this.config as Required<JointConfig>;
    const next = clamp(requested, min, max);
    this.actualVelocity = (next - this.position) / dtS;
    this.position = next;
    const limit = next === max && this.commandedVelocity > 0 ? "max" : next === min && this.commandedVelocity < 0 ? "min" : undefined;
    if (limit && this.restingAt !== limit) {
      this.restingAt = limit;
      this.emit("limit-reached", { axis: this.id, limit, requested, applied: next });
    } else if (next > min && next < max) {
      this.restingAt = undefined;
    }
  }

  protected override applyValue(_mode: ActuatorMode, value: number): void {
    // only "velocity" reaches here: the base checked it against commandModes
    const applied = clamp(value, -this.config.maxRate, this.config.maxRate);
    const clamped = applied !== value;
    if (clamped && !this.rateClamped) {
      this.emit("limit-reached", { axis: this.id, limit: "rate", requested: value, applied });
    }
    this.rateClamped = clamped;
    this.commandedVelocity = applied;
  }

  protected override readValue(mode: ActuatorMode): number {
    return mode === "position" ? this.position : this.actualVelocity;
  }

  protected override onInit(): void {
    this.commandedVelocity = 0;
    this.rateClamped = false;
  }

  protected override onFinalize(): void {
    this.commandedVelocity = 0;
    this.actualVelocity = 0;
  }

  protected override onFault(): void {
    // a faulted drive must not resume its old command when reinitialised
    this.commandedVelocity = 0;
    this.actualVelocity = 0;
  }
}
