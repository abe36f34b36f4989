/**
 * An actuator (OpenEL's Actuator): commanded with `setValue(mode, value)` in the modes it
 * supports, read back with `getValue(mode)`.
 *
 * Drivers implement `applyValue` and `readValue`; the base checks state, mode and value
 * first, so a driver never sees a NaN or a command while not Ready. A driver that throws
 * a plain Error is treated as broken hardware (Fault); one that throws a HalError (say,
 * COMMAND_REFUSED) is refusing that command and stays Ready.
 *
 * @example
 *   boom.setValue("velocity", 0.2);          // rad/s, clamped to the boom's maxRate
 *   boom.getValue("position");               // { value: 0.13, timestamp: 1718... }
 *   boom.setValue("torque", 5);              // throws UnsupportedModeError
 */
import { HalError, UnsupportedModeError, toHalError } from "./errors.ts";
import { HalComponent } from "./HalComponent.ts";
import { ComponentState, type ActuatorMode, type ComponentOptions, type ComponentProperties, type TimedValue } from "./types.ts";

export interface ActuatorModes {
  /** Modes setValue accepts. */
  command: readonly ActuatorMode[];
  /** Modes getValue answers; the first is the default. */
  read: readonly ActuatorMode[];
}

export abstract class HalActuator extends HalComponent {
  readonly kind = "actuator" as const;
  readonly commandModes: readonly ActuatorMode[];
  readonly readModes: readonly ActuatorMode[];

  constructor(id: string, properties: ComponentProperties, modes: ActuatorModes, options: ComponentOptions = {}) {
    super(id, properties, options);
    if (modes.read.length === 0) throw new TypeError(`${id}: an actuator needs at least one readable mode`);
    this.commandModes = Object.freeze([...modes.command]);
    this.readModes = Object.freeze([...modes.read]);
  }

  /** Whether Hal.zeroMotion() can stop this actuator by commanding zero velocity. */
  get velocityCapable(): boolean {
    return this.commandModes.includes("velocity");
  }

  /** Commands the actuator. Needs Ready; `value` in the component's unit (per second for velocity). */
  setValue(mode: ActuatorMode, value: number): void {
    this.requireState("setValue", [ComponentState.Ready]);
    if (!this.commandModes.includes(mode)) throw new UnsupportedModeError(this.id, mode, this.commandModes, "command");
    if (typeof value !== "number" || !Number.isFinite(value)) {
      throw new HalError("INVALID_VALUE", `${this.id}: ${mode} must be a finite number, got ${String(value)}`, { componentId: this.id });
    }
    try {
      this.applyValue(mode, value);
    } catch (error) {
      if (error instanceof HalError) throw error;
      const failure = toHalError(error, "COMMAND_FAILED", `${this.id}: ${mode} command failed`, this.id);
      this.enterFault(failure.message, failure);
      throw failure;
    }
  }

  /** Reads the actuator's current value in `mode` (default: its first readable mode). Needs Ready. */
  getValue(mode: ActuatorMode = this.readModes[0]): TimedValue {
    this.requireState("getValue", [ComponentState.Ready]);
    if (!this.readModes.includes(mode)) throw new UnsupportedModeError(this.id, mode, this.readModes, "read");
    let value: number;
    try {
      value = this.readValue(mode);
    } catch (error) {
      const failure = toHalError(error, "READ_FAILED", `${this.id}: reading ${mode} failed`, this.id);
      this.enterFault(failure.message, failure);
      throw failure;
    }
    return { value, timestamp: this.clock() };
  }

  /**
   * Commands zero velocity. Unlike setValue it also works in Fault, because stopping is
   * always the safe direction and a faulted drive may still take a stop. On failure the
   * component goes to (or stays in) Fault, observers get STOP_FAILED, and so does the caller.
   */
  stop(): void {
    this.requireState("stop", [ComponentState.Ready, ComponentState.Fault]);
    if (!this.velocityCapable) throw new UnsupportedModeError(this.id, "velocity", this.commandModes, "command");
    try {
      this.applyStop();
    } catch (error) {
      const failure = toHalError(error, "STOP_FAILED", `${this.id}: stop failed`, this.id);
      this.enterFault(failure.message, failure);
      throw failure;
    }
  }

  /** Applies a checked command: mode supported, value finite, component Ready. */
  protected abstract applyValue(mode: ActuatorMode, value: number): void;

  /** Reads a supported mode. */
  protected abstract readValue(mode: ActuatorMode): number;

  /** How stop() reaches zero velocity; a driver whose stop differs from "velocity 0" overrides it. */
  protected applyStop(): void {
    this.applyValue("velocity", 0);
  }
}
