/**
 * One crawler track of the simulated excavator: a velocity-controlled actuator, m/s,
 * positive forward, clamped to ±maxSpeed ("limit-reached" when clamping starts).
 * Outside Ready the track is braked: its effective speed is 0.
 */
import { HalActuator } from "../../hal/HalActuator.ts";
import { ComponentState, type ActuatorMode, type ComponentOptions } from "../../hal/types.ts";
import { clamp } from "../geometry.ts";

export class SimTrack extends HalActuator {
  /** Highest speed either way, m/s. */
  private readonly maxSpeed: number;
  /** Commanded speed after the clamp, m/s. */
  private commandedVelocity = 0;
  /** Whether the last command was clamped; events fire only when clamping starts. */
  private rateClamped = false;

  constructor(id: string, maxSpeed: number, options: ComponentOptions = {}) {
    if (!(maxSpeed > 0) || !Number.isFinite(maxSpeed)) throw new TypeError(`${id}: maxSpeed must be a finite number > 0`);
    super(id, {
      name: `${id}`,
      vendor: "Tsunagi",
      model: "sim-track",
      description: "velocity-controlled crawler track, positive forward",
      unit: "m",
      limits: { maxRate: maxSpeed },
    }, { command: ["velocity"], read: ["velocity"] }, options);
    this.maxSpeed = maxSpeed;
  }

  /** Speed the track actually runs at: the command while Ready, 0 (braked) otherwise. */
  get effectiveVelocity(): number {
    return this.state === ComponentState.Ready ? this.commandedVelocity : 0;
  }

  /** Makes the track fail as broken hardware would, for tests and demos. */
  injectFault(reason: string): void {
    this.enterFault(reason);
  }

  protected override applyValue(_mode: ActuatorMode, value: number): void {
    const applied = clamp(value, -this.maxSpeed, this.maxSpeed);
    const clamped = applied !== value;
    if (clamped && !this.rateClamped) {
      this.emit("limit-reached", { axis: this.id, limit: "rate", requested: value, applied });
    }
    this.rateClamped = clamped;
    this.commandedVelocity = applied;
  }

  protected override readValue(): number {
    return this.effectiveVelocity;
  }

  protected override onInit(): void {
    this.commandedVelocity = 0;
    this.rateClamped = false;
  }

  protected override onFinalize(): void {
    this.commandedVelocity = 0;
  }

  protected override onFault(): void {
    this.commandedVelocity = 0;
  }
}
