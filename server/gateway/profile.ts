/**
 * Checks a DeviceProfile as the gateway receives it (teleop.proto, "Device profile"):
 * the rules an embedded team can read in the contract, enforced in one place.
 *
 * @example
 *   const problem = profileProblem(profile, link.deviceId);
 *   if (problem) reply(Error WRONG_TYPE, problem);
 */
import { DEFAULT_WATCHDOG_WINDOW_MS, tsunagi } from "../../proto/index.ts";

const namePattern = /^[A-Za-z0-9_.-]{1,64}$/;
const MAX_AXES = 64;
const actionNamePattern = /^[a-z0-9-]{1,32}$/;
const MAX_ACTIONS = 32;


/** Highest control_rate_hz a profile may state. */
const MAX_CONTROL_RATE_HZ = 1000;

/** The first thing wrong with the profile, or undefined when it is usable. */
export function profileProblem(profile: tsunagi.v1.IDeviceProfile, deviceId: string): string | undefined {
  if (profile.deviceId !== deviceId) return `profile is for device "${String(profile.deviceId).slice(0, 64)}", this connection is device "${deviceId}"`;
  if (!profile.deviceClass) return "device_class is not set";
  const axes = profile.axes ?? [];
  if (axes.length > MAX_AXES) return `${axes.length} axes; at most ${MAX_AXES}`;
  const names = new Set<string>();
  for (const [index, axis] of axes.entries()) {
    const where = `axes[${index}]`;
    if (!axis.name || !namePattern.test(axis.name)) return `${where}: name must match ${namePattern}`;
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
    if (!action.name || !actionNamePattern.test(action.name)) return `${where}: name must match ${actionNamePattern}`;
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

/**
 * Why the command's axis values do not fit the profile (OUT_OF_BOUNDS), or undefined.
 * The TeleopRoom checks this before forwarding; the adapter checks it again itself.
 */
export function axesProblem(axes: readonly tsunagi.v1.IAxisValue[] | null | undefined, profile: tsunagi.v1.IDeviceProfile): string | undefined {
  const profileAxes = profile.axes ?? [];
  const seen = new Set<number>();
  for (const value of axes ?? []) {
    const hasName = typeof value.name === "string" && value.name !== "";
    const hasIndex = value.index !== undefined && value.index !== null;
    let index: number;
    if (hasName && !hasIndex) {
      index = profileAxes.findIndex((axis) => axis.name === value.name);
      if (index < 0) return `no axis "${String(value.name).slice(0, 64)}" in the profile`;
    } else if (hasIndex && !hasName) {
      index = Number(value.index);
      if (index >= profileAxes.length) return `axis index ${index} is outside the profile's ${profileAxes.length} axes`;
    } else {
      return "each axis value needs a name or an index";
    }
    if (seen.has(index)) return `axis ${profileAxes[index].name} is named twice`;
    seen.add(index);
    const axis = profileAxes[index];
    const v = value.value ?? 0;
    if (!Number.isFinite(v)) return `axis ${axis.name}: value is not finite`;
    switch (axis.mode) {
      case tsunagi.v1.AxisMode.AXIS_MODE_VELOCITY:
        if (Math.abs(v) > (axis.maxRate as number)) return `axis ${axis.name}: ${v} beyond max_rate ${axis.maxRate} ${axis.rateUnit ?? ""}`.trim();
        break;
      case tsunagi.v1.AxisMode.AXIS_MODE_POSITION:
        if (v < (axis.min as number) || v > (axis.max as number)) return `axis ${axis.name}: ${v} outside [${axis.min}, ${axis.max}] ${axis.unit ?? ""}`.trim();
        break;
      case tsunagi.v1.AxisMode.AXIS_MODE_TORQUE:
        if (Math.abs(v) > (axis.maxEffort as number)) return `axis ${axis.name}: ${v} beyond max_effort ${axis.maxEffort} ${axis.effortUnit ?? ""}`.trim();
        break;
      default:
        return `axis ${axis.name} is not commandable`;
    }
  }
  return undefined;
}

/**
 * Why a DeviceAction does not fit the profile's actions (the OUT_OF_BOUNDS detail), or
 * undefined. The TeleopRoom checks this before forwarding; the adapter checks it again.
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
