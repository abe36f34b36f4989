/**
 * The rules of a DeviceProfile (device.proto, "Device profile"), written once for every
 * side: the gateway checks a profile with profileProblem(); the room, the adapter and
 * the operator's SDK bound axis values with axisBounds() and resolveAxisValues(), and
 * deadlines with effectiveDeadlineMs(). The adapter checks again what the room checked,
 * with the same code, so the two can never disagree.
 *
 * @example
 *   const problem = profileProblem(profile, link.deviceId);   // gateway: refuse a bad profile
 *   const setpoint = resolveAxisValues(command.axes, profile); // room and adapter
 *   if (typeof setpoint === "string") refuse(OUT_OF_BOUNDS, setpoint);
 *   const value = clampAxisValue(profile.axes[0], 3.2);        // operator SDK
 */
import { DEFAULT_WATCHDOG_WINDOW_MS, tsunagi } from "./index.ts";
import { ACTION_NAME_PATTERN, AXIS_NAME_PATTERN } from "./ids.ts";

const AxisMode = tsunagi.v1.AxisMode;
const MAX_AXES = 64;
const MAX_ACTIONS = 32;

/** Highest control_rate_hz a profile may state. */
const MAX_CONTROL_RATE_HZ = 1000;

/**
 * A DeviceClass as enrolment names it: DEVICE_CLASS_RC_CAR is "rc-car" (`npm run devices --
 * enroll ID --class rc-car`); "" for a value this build does not know.
 */
export function deviceClassName(deviceClass: number): string {
  const name = tsunagi.v1.DeviceClass[deviceClass];
  return name && deviceClass ? name.replace(/^DEVICE_CLASS_/, "").toLowerCase().replace(/_/g, "-") : "";
}

/**
 * Why the profile's class is not the class the device was enrolled as, or undefined when
 * it is (device.proto, DeviceProfile.device_class): the enrolment says what the machine is,
 * and the budgets and limits that go with the class are decided from it, not from what the
 * adapter claims.
 */
export function enrolledClassProblem(profile: tsunagi.v1.IDeviceProfile, enrolledClass: string): string | undefined {
  const claimed = deviceClassName(profile.deviceClass ?? 0);
  if (claimed === enrolledClass) return undefined;
  return `device_class ${claimed || String(profile.deviceClass)} is not the class the device was enrolled as (${enrolledClass.slice(0, 32)})`;
}

/** The first thing wrong with the profile, or undefined when it is usable. */
export function profileProblem(profile: tsunagi.v1.IDeviceProfile, deviceId: string): string | undefined {
  if (profile.deviceId !== deviceId) return `profile is for device "${String(profile.deviceId).slice(0, 64)}", this connection is device "${deviceId}"`;
  if (!profile.deviceClass) return "device_class is not set";
  const axes = profile.axes ?? [];
  if (axes.length > MAX_AXES) return `${axes.length} axes; at most ${MAX_AXES}`;
  const names = new Set<string>();
  for (const [index, axis] of axes.entries()) {
    const where = `axes[${index}]`;
    if (!axis.name || !AXIS_NAME_PATTERN.test(axis.name)) return `${where}: name must match ${AXIS_NAME_PATTERN}`;
    if (names.has(axis.name)) return `${where}: name "${axis.name}" appears twice`;
    names.add(axis.name);
    if (!axis.mode) return `${where} (${axis.name}): mode is not set`;
    if (!(Number.isFinite(axis.maxRate) && (axis.maxRate as number) > 0)) return `${where} (${axis.name}): max_rate must be finite and > 0`;
    const min = axis.min ?? undefined;
    const max = axis.max ?? undefined;
    if (min !== undefined && !Number.isFinite(min)) return `${where} (${axis.name}): min must be finite`;
    if (max !== undefined && !Number.isFinite(max)) return `${where} (${axis.name}): max must be finite`;
    if (min !== undefined && max !== undefined && min > max) return `${where} (${axis.name}): min ${min} is above max ${max}`;
    if (axis.mode === tsunagi.v1.AxisMode.AXIS_MODE_POSITION && (min === undefined || max === undefined)) {
      return `${where} (${axis.name}): a position axis needs both min and max`;
    }
    if (axis.mode === tsunagi.v1.AxisMode.AXIS_MODE_TORQUE && !(Number.isFinite(axis.maxEffort) && (axis.maxEffort as number) > 0)) {
      return `${where} (${axis.name}): a torque axis needs max_effort finite and > 0`;
    }
  }
  const actions = profile.actions ?? [];
  if (actions.length > MAX_ACTIONS) return `${actions.length} actions; at most ${MAX_ACTIONS}`;
  const actionNames = new Set<string>();
  for (const [index, action] of actions.entries()) {
    const where = `actions[${index}]`;
    if (!action.name || !ACTION_NAME_PATTERN.test(action.name)) return `${where}: name must match ${ACTION_NAME_PATTERN}`;
    if (actionNames.has(action.name)) return `${where}: name "${action.name}" appears twice`;
    actionNames.add(action.name);
    if (action.hasValue && !(Number.isFinite(action.min) && Number.isFinite(action.max) && (action.min as number) <= (action.max as number))) {
      return `${where} (${action.name}): an action with a value needs finite min <= max`;
    }
  }
  const watchdog = profile.watchdogWindowMs ?? 0;
  if (watchdog !== 0 && (watchdog < 20 || watchdog > 2000)) return `watchdog_window_ms ${watchdog} is outside 20-2000`;
  if (!(Number.isFinite(profile.telemetryRateHz) && (profile.telemetryRateHz as number) > 0)) return "telemetry_rate_hz must be > 0";
  // It sets the device's command allowance at the room: an unbounded one is no limit.
  const controlRate = profile.controlRateHz ?? 0;
  if (!(Number.isFinite(controlRate) && controlRate >= 0 && controlRate <= MAX_CONTROL_RATE_HZ)) return `control_rate_hz must be within 0-${MAX_CONTROL_RATE_HZ}`;
  return undefined;
}

/** The profile's watchdog window, with the contract's default. */
export function watchdogWindowMs(profile: tsunagi.v1.IDeviceProfile | undefined): number {
  return profile?.watchdogWindowMs || DEFAULT_WATCHDOG_WINDOW_MS;
}

/**
 * The deadline in force for a command or action, on the checker's clock:
 * min(deadline_ms, issued_at_ms + budget), with issued_at_ms taken no later than `nowMs`,
 * so a sender whose clock runs ahead cannot stretch its commands' life. NaN (expired)
 * when deadline_ms is unset or anything is not a number. Room and adapter both use it.
 */
export function effectiveDeadlineMs(message: { deadlineMs?: number | null; issuedAtMs?: number | null }, nowMs: number, budgetMs: number): number {
  const deadlineMs = Number(message.deadlineMs ?? 0);
  if (!(deadlineMs > 0)) return Number.NaN;
  if (!(budgetMs > 0)) return deadlineMs;
  return Math.min(deadlineMs, Math.min(Number(message.issuedAtMs ?? 0), nowMs) + budgetMs);
}

/** Why a command or action is past its effective deadline (the EXPIRED detail), or undefined when it is in time. */
export function deadlineProblem(message: { deadlineMs?: number | null; issuedAtMs?: number | null }, nowMs: number, budgetMs: number): string | undefined {
  const deadlineMs = Number(message.deadlineMs ?? 0);
  const issuedAtMs = Number(message.issuedAtMs ?? 0);
  const effectiveDeadline = effectiveDeadlineMs(message, nowMs, budgetMs);
  // written so that NaN anywhere counts as expired
  if (nowMs <= effectiveDeadline) return undefined;
  const why = !(deadlineMs > 0) ? "deadline_ms is not set" : `now ${nowMs.toFixed(1)} is past the deadline ${effectiveDeadline.toFixed(1)}`;
  return `${why} (deadline_ms ${deadlineMs}, issued_at_ms ${issuedAtMs}, budget ${budgetMs} ms)`;
}

/** One profile axis of a command's setpoint, in profile order. */
export interface SetpointEntry {
  /** AxisProfile.name: the HAL component id. */
  name: string;
  mode: tsunagi.v1.AxisMode;
  /** The commanded value; undefined when the command does not mention the axis (its safe value applies). */
  value: number | undefined;
}

/**
 * The bounds a value of this axis must stay within: [-max_rate, max_rate] in velocity
 * mode, [min, max] in position mode, [-max_effort, max_effort] in torque mode; or why
 * the axis cannot be commanded (mode unspecified, a bound missing or not usable).
 */
export function axisBoundsOrProblem(axis: tsunagi.v1.IAxisProfile): [number, number] | string {
  const name = axis.name ?? "?";
  switch (axis.mode) {
    case AxisMode.AXIS_MODE_VELOCITY: {
      const rate = axis.maxRate ?? 0;
      return rate > 0 && Number.isFinite(rate) ? [-rate, rate] : `axis ${name} has no usable max_rate (${String(axis.maxRate)}): not commandable`;
    }
    case AxisMode.AXIS_MODE_POSITION: {
      const { min, max } = axis;
      return typeof min === "number" && typeof max === "number" && min <= max ? [min, max] : `axis ${name}: a position axis without both min and max is not commandable`;
    }
    case AxisMode.AXIS_MODE_TORQUE: {
      const effort = axis.maxEffort ?? 0;
      return effort > 0 && Number.isFinite(effort) ? [-effort, effort] : `axis ${name} has no usable max_effort (${String(axis.maxEffort)}): not commandable`;
    }
    default:
      return `axis ${name} is not commandable (mode unspecified)`;
  }
}

/** axisBoundsOrProblem() for callers holding a valid profile: throws TypeError for an axis that cannot be commanded. */
export function axisBounds(axis: tsunagi.v1.IAxisProfile): [number, number] {
  const bounds = axisBoundsOrProblem(axis);
  if (typeof bounds === "string") throw new TypeError(bounds);
  return bounds;
}

/** `value` clamped to the axis's bounds (see axisBounds). Throws TypeError for a value that is not a finite number. */
export function clampAxisValue(axis: tsunagi.v1.IAxisProfile, value: number): number {
  if (typeof value !== "number" || !Number.isFinite(value)) throw new TypeError(`axis "${axis.name ?? "?"}": value must be a finite number, got ${String(value)}`);
  const [low, high] = axisBounds(axis);
  return Math.min(high, Math.max(low, value)) + 0; // + 0 turns -0 into 0
}

/** Why `value` is outside the bounds of the axis's mode (the OUT_OF_BOUNDS detail), or undefined. */
export function axisValueProblem(axis: tsunagi.v1.IAxisProfile, value: number): string | undefined {
  const bounds = axisBoundsOrProblem(axis);
  if (typeof bounds === "string") return bounds;
  if (typeof value !== "number" || !Number.isFinite(value)) return `axis ${axis.name}: value ${String(value)} is not finite`;
  if (value >= bounds[0] && value <= bounds[1]) return undefined;
  switch (axis.mode) {
    case AxisMode.AXIS_MODE_VELOCITY: return `axis ${axis.name}: ${value} beyond max_rate ${axis.maxRate} ${axis.rateUnit ?? ""}`.trim();
    case AxisMode.AXIS_MODE_TORQUE: return `axis ${axis.name}: ${value} beyond max_effort ${axis.maxEffort} ${axis.effortUnit ?? ""}`.trim();
    default: return `axis ${axis.name}: ${value} outside [${axis.min}, ${axis.max}] ${axis.unit ?? ""}`.trim();
  }
}

/**
 * The complete setpoint a command's axis values describe (every profile axis, in
 * profile order), or why they do not fit the profile (the OUT_OF_BOUNDS detail). Each
 * value names its axis by name or by index, not both and not neither; an axis named
 * twice, unknown or out of range, a value not finite or outside its bounds refuses the
 * whole command: a command applies whole or not at all.
 */
export function resolveAxisValues(values: readonly tsunagi.v1.IAxisValue[] | null | undefined, profile: tsunagi.v1.IDeviceProfile): SetpointEntry[] | string {
  const setpoint: SetpointEntry[] = (profile.axes ?? []).map((axis) => ({ name: axis.name ?? "", mode: axis.mode ?? AxisMode.AXIS_MODE_UNSPECIFIED, value: undefined }));
  const problem = checkAxisValues(values, profile, (index, value) => { setpoint[index]!.value = value; });
  return problem ?? setpoint;
}

/**
 * Why the command's axis values do not fit the profile (OUT_OF_BOUNDS), or undefined:
 * resolveAxisValues() without building the setpoint, for the room, which checks every
 * command before it forwards it.
 */
export function axesProblem(values: readonly tsunagi.v1.IAxisValue[] | null | undefined, profile: tsunagi.v1.IDeviceProfile): string | undefined {
  return checkAxisValues(values, profile);
}

/** The checks of resolveAxisValues(), handing each good value to `apply`; the first problem, or undefined. */
function checkAxisValues(values: readonly tsunagi.v1.IAxisValue[] | null | undefined, profile: tsunagi.v1.IDeviceProfile, apply?: (index: number, value: number) => void): string | undefined {
  const axes = profile.axes ?? [];
  // Axes already named, as bits: a profile has at most MAX_AXES (64) axes.
  let seenLow = 0;
  let seenHigh = 0;
  const list = values ?? [];
  for (let position = 0; position < list.length; position++) {
    const entry = list[position]!;
    const hasName = entry.name !== null && entry.name !== undefined;
    const hasIndex = entry.index !== null && entry.index !== undefined;
    if (hasName === hasIndex) return `axes[${position}]: give a name or an index, not ${hasName ? "both" : "neither"}`;
    const index = hasName ? axes.findIndex((axis) => axis.name === entry.name) : Number(entry.index);
    if (hasName && index < 0) return `axes[${position}]: no axis ${JSON.stringify(String(entry.name).slice(0, 64))} in the profile`;
    if (hasIndex && !(Number.isInteger(index) && index >= 0 && index < axes.length)) {
      return `axes[${position}]: index ${String(entry.index)} is outside the profile's ${axes.length} axes`;
    }
    const axis = axes[index]!;
    if (index >= MAX_AXES) return `axes[${position}]: a profile has at most ${MAX_AXES} axes`;
    const bit = 1 << (index & 31);
    const seen = index < 32 ? seenLow : seenHigh;
    if (seen & bit) return `axis ${axis.name} is named twice`;
    if (index < 32) seenLow |= bit; else seenHigh |= bit;
    const value = entry.value ?? 0;
    const problem = axisValueProblem(axis, value);
    if (problem) return problem;
    apply?.(index, value);
  }
  return undefined;
}

/**
 * Why a DeviceAction does not fit the profile's actions (the OUT_OF_BOUNDS detail), or
 * undefined. The room checks this before forwarding; the adapter checks it again.
 */
export function actionProblem(action: tsunagi.v1.IDeviceAction, profile: tsunagi.v1.IDeviceProfile | undefined): string | undefined {
  const name = typeof action.action === "string" ? action.action : "";
  const offered = profile?.actions ?? [];
  const spec = offered.find((candidate) => candidate.name === name);
  if (!spec) {
    const list = offered.map((candidate) => candidate.name).join(", ");
    return `the device offers no action ${JSON.stringify(name.slice(0, 32))}${list ? ` (actions: ${list})` : " (it has none)"}`;
  }
  if (!spec.hasValue) return undefined;
  const value = Number(action.value ?? 0);
  const min = Number(spec.min ?? 0);
  const max = Number(spec.max ?? 0);
  if (!Number.isFinite(value) || value < min || value > max) {
    return `action ${name}: value ${value} is outside [${min}, ${max}]${spec.unit ? ` ${spec.unit}` : ""}`;
  }
  return undefined;
}
