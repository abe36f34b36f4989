/**
 * The operator's setpoint for one device: a value per axis of the device's profile, as
 * every command carries it. Values are clamped to the profile's bounds
 * (proto/deviceProfile.ts), because the room refuses an out-of-range command whole.
 *
 * Velocity and torque axes default to 0; position axes stay out of commands (they hold
 * their last target) until set. A profile whose axes differ (names, order, modes,
 * bounds) returns the setpoint to neutral: what was set may mean something else now.
 *
 * @example
 *   const setpoint = new Setpoint("excavator-1");
 *   setpoint.adopt(profile);
 *   setpoint.set({ boom: 3 });            // { boom: 0.4 }: clamped to max_rate
 *   setpoint.values;                      // [0, 0.4, 0, 0, 0, 0], by axis index
 *   setpoint.neutral();
 */
import { tsunagi } from "../proto/index.ts";
import { clampAxisValue } from "../proto/deviceProfile.ts";

type DeviceProfile = tsunagi.v1.DeviceProfile;
/** Axis values by axis name (AxisProfile.name), in the axis's units. */
export type AxisValues = Readonly<Record<string, number>>;
/** Values by axis index; undefined leaves the axis out of commands (a position axis holds). */
export type AxisSetpoint = ReadonlyArray<number | undefined>;

const AxisMode = tsunagi.v1.AxisMode;

/** A decoded profile's axes: class instances (with defaults), whatever the generated field type says. */
export function axesOf(profile: DeviceProfile | undefined): tsunagi.v1.AxisProfile[] {
  return (profile?.axes ?? []) as tsunagi.v1.AxisProfile[];
}

/** The neutral setpoint of a profile: velocity and torque axes 0, position axes unset (hold). */
export function neutralSetpoint(profile: DeviceProfile | undefined): (number | undefined)[] {
  return axesOf(profile).map((axis) => (axis.mode === AxisMode.AXIS_MODE_VELOCITY || axis.mode === AxisMode.AXIS_MODE_TORQUE ? 0 : undefined));
}

/** What makes two profiles' axes the same for commanding: names, order, modes, bounds. */
function axesKey(profile: DeviceProfile): string {
  return JSON.stringify(axesOf(profile).map((a) => [a.name, a.mode, a.min ?? null, a.max ?? null, a.maxRate, a.maxEffort ?? null]));
}

export class Setpoint {
  /** The device, for error messages. */
  private readonly deviceId: string;
  /** The profile whose axes the values are for. */
  private profile?: DeviceProfile;
  /** Axis index by name, for `profile`. */
  private indexByName = new Map<string, number>();
  /** The value by axis index. */
  private setpoint: (number | undefined)[] = [];

  constructor(deviceId: string) {
    this.deviceId = deviceId;
  }

  /** Takes the device's newest profile; back to neutral when its axes differ from the last one's. */
  adopt(profile: DeviceProfile): void {
    const changed = !this.profile || axesKey(this.profile) !== axesKey(profile);
    this.profile = profile;
    if (!changed) return;
    this.indexByName = new Map(axesOf(profile).map((axis, index) => [axis.name, index]));
    this.setpoint = neutralSetpoint(profile);
  }

  /** The values by axis index, as commands carry them. */
  get values(): AxisSetpoint {
    return this.setpoint;
  }

  /** The values by axis name (axes left out of commands are absent). */
  get byName(): Record<string, number> {
    const values: Record<string, number> = {};
    axesOf(this.profile).forEach((axis, index) => {
      const value = this.setpoint[index];
      if (value !== undefined) values[axis.name] = value;
    });
    return values;
  }

  /** The neutral values of the current profile, whatever is set: what a stop command carries. */
  neutralValues(): AxisSetpoint {
    return neutralSetpoint(this.profile);
  }

  /**
   * Sets axes by name, keeping the others; answers the values as they will be sent.
   * Throws TypeError (and changes nothing) for an unknown name, a value that is not a
   * finite number, an axis that cannot be commanded, or before a profile was adopted.
   */
  set(values: AxisValues): Record<string, number> {
    const axes = axesOf(this.requireProfile());
    if (values === null || typeof values !== "object") throw new TypeError("setAxes() takes an object of axis values by name");
    const updates: Array<[number, number]> = [];
    const applied: Record<string, number> = {};
    for (const [name, value] of Object.entries(values)) {
      const index = this.indexByName.get(name);
      if (index === undefined) {
        throw new TypeError(`device ${this.deviceId} has no axis "${name}" (axes: ${axes.map((a) => a.name).join(", ")})`);
      }
      const clamped = clampAxisValue(axes[index], value);
      updates.push([index, clamped]);
      applied[name] = clamped;
    }
    for (const [index, value] of updates) this.setpoint[index] = value;
    return applied;
  }

  /** Sets axes by position in the profile; undefined or null entries keep their axis. TypeError for too many values. */
  setByIndex(values: ReadonlyArray<number | null | undefined>): Record<string, number> {
    const axes = axesOf(this.requireProfile());
    if (!Array.isArray(values)) throw new TypeError("setAxesByIndex() takes an array of values");
    if (values.length > axes.length) throw new TypeError(`device ${this.deviceId} has ${axes.length} axes, got ${values.length} values`);
    const byName: Record<string, number> = {};
    values.forEach((value, index) => { if (value !== undefined && value !== null) byName[axes[index].name] = value; });
    return this.set(byName);
  }

  /** Back to neutral: velocity and torque axes 0, position axes left out (they hold). */
  neutral(): void {
    this.setpoint = neutralSetpoint(this.profile);
  }

  /** The adopted profile; TypeError before one arrived (the device's axes are unknown). */
  requireProfile(): DeviceProfile {
    if (!this.profile) throw new TypeError(`no DeviceProfile for ${this.deviceId} yet: its axes are unknown`);
    return this.profile;
  }
}
