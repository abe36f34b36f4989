/**
 * The console's lines as text: the status line (lease, e-stop, joints from telemetry,
 * ack round trips), lease changes, the controls' events, the axes list and errors.
 * Pure functions of what the controls know, so scripts can rely on the wording.
 *
 * @example
 *   leaseText(lease, session.sessionId);   // "held by me", "free", "held by operator abc123"
 *   statusLine({ ... });                    // "lease held by me | estopped no | online yes | sending 50 Hz | boom 0.12 rad @ +0.30/s | ..."
 */
import { DEFAULT_WATCHDOG_WINDOW_MS, errorCodeName, tsunagi } from "../../proto/index.ts";
import { axisBounds } from "../../proto/deviceProfile.ts";
import { TsunagiError, fromServerError } from "../../client-sdk/errors.ts";
import { axesOf } from "../../client-sdk/Setpoint.ts";
import type { DemotedEvent, DeviceProfile, EStop, LatencyStats, LeaseState, Reset, Telemetry } from "../../client-sdk/OperatorControls.ts";

const AckStatus = tsunagi.v1.CommandAck.Status;
const AxisMode = tsunagi.v1.AxisMode;

/** Telemetry older than this (server clock) is flagged in the status line, ms. */
const STALE_TELEMETRY_MS = 2000;

/** A number with at most `digits` decimals and no trailing zeros ("0.3", "-2"). */
export function shortNumber(value: number, digits = 3): string {
  return String(Number(value.toFixed(digits)) + 0);
}

/** A number with exactly `digits` decimals, never "-0.00". */
export function fixed(value: number, digits = 2): string {
  const text = value.toFixed(digits);
  return Number(text) === 0 ? (0).toFixed(digits) : text;
}

/** Like fixed(), with a sign always ("+0.30", "-1.00"). */
export function signed(value: number, digits = 2): string {
  const text = fixed(value, digits);
  return text.startsWith("-") ? text : `+${text}`;
}

/** The unit a command value of this axis is in. */
export function commandUnit(axis: tsunagi.v1.AxisProfile): string {
  switch (axis.mode) {
    case AxisMode.AXIS_MODE_VELOCITY: return axis.rateUnit || (axis.unit ? `${axis.unit}/s` : "");
    case AxisMode.AXIS_MODE_POSITION: return axis.unit;
    case AxisMode.AXIS_MODE_TORQUE: return axis.effortUnit;
    default: return "";
  }
}

function modeName(mode: number): string {
  return (AxisMode[mode] ?? String(mode)).replace(/^AXIS_MODE_/, "").toLowerCase();
}

/** An error's code name and message, for an "error: CODE_NAME message" line. */
export function errorParts(error: unknown): { name: string; message: string } {
  const coded = error instanceof TsunagiError ? error : fromServerError(error);
  return { name: errorCodeName(coded.code), message: coded.message };
}

/**
 * "free", "held by me", "held by operator SESSION". For a lease event (`event` given),
 * also what ended and, when it was our lease, what to do next.
 */
export function leaseText(lease: LeaseState | undefined, mySessionId: string | undefined, event?: { endedOurs: boolean }): string {
  if (!lease) return "unknown";
  let text: string;
  if (!lease.leaseId) text = "free";
  else if (lease.holderSessionId === mySessionId) text = event ? `held by me (lease ${lease.leaseId}, ttl ${lease.ttlMs} ms)` : "held by me";
  else text = `held by ${lease.holderRole || "someone"} ${lease.holderSessionId}`;
  if (!event) return text;
  if (lease.endedLeaseId) text += ` (ended ${lease.endedLeaseId}: ${lease.cause || "?"})`;
  if (lease.estopped) text += ", e-stop latched";
  if (!lease.online) text += ", device offline";
  if (event.endedOurs && lease.cause !== "released") text += lease.estopped ? "; a supervisor must reset it before anyone drives" : "; acquire to drive again";
  return text;
}

/** What the status line reports. */
export interface StatusFacts {
  mySessionId?: string;
  lease?: LeaseState;
  telemetry?: Telemetry;
  profile?: DeviceProfile;
  holding: boolean;
  started: boolean;
  rateHz: number;
  /** The server clock's now, to age the telemetry, ms. */
  serverNow: number;
  latency: LatencyStats;
}

/** "lease held by me | estopped no | online yes | sending 50 Hz | <joints> | ack rtt p50 1.2 ms p99 4.0 ms (500 acks)". */
export function statusLine(facts: StatusFacts): string {
  const { lease, telemetry, latency } = facts;
  const parts = [
    `lease ${leaseText(lease, facts.mySessionId)}`,
    `estopped ${lease?.estopped || telemetry?.estopped ? "yes" : "no"}`,
    `online ${lease?.online ? "yes" : "no"}`,
  ];
  if (facts.holding) parts.push(facts.started ? `sending ${shortNumber(facts.rateHz)} Hz` : "sending heartbeats");
  parts.push(jointsText(facts.profile, telemetry, facts.serverNow));
  parts.push(latency.ackRttP50Ms === undefined
    ? "ack rtt -"
    : `ack rtt p50 ${latency.ackRttP50Ms.toFixed(1)} ms p99 ${latency.ackRttP99Ms!.toFixed(1)} ms (${latency.samples} acks)`);
  return parts.join(" | ");
}

/** Each joint's position and velocity from the newest telemetry ("boom 0.12 rad @ +0.30/s"), and what is wrong. */
export function jointsText(profile: DeviceProfile | undefined, telemetry: Telemetry | undefined, serverNow: number): string {
  if (!telemetry) return "no telemetry";
  const units = new Map(axesOf(profile).map((axis) => [axis.name, axis.unit]));
  const joints = (telemetry.joints as tsunagi.v1.JointState[]).map((joint) => {
    const unit = units.get(joint.name);
    return `${joint.name} ${fixed(joint.position)}${unit ? ` ${unit}` : ""} @ ${signed(joint.velocity)}/s`;
  });
  let text = joints.length > 0 ? joints.join(", ") : "no joints";
  if (telemetry.mode) text = `mode ${telemetry.mode}, ${text}`;
  const pose = telemetry.pose as tsunagi.v1.Pose | null | undefined;
  if (pose && profile?.deviceClass === tsunagi.v1.DeviceClass.DEVICE_CLASS_DRONE) text += `, at (${fixed(pose.x, 1)}, ${fixed(pose.y, 1)}, ${fixed(pose.z, 1)}) m`;
  if (telemetry.watchdogTripped) text += ", watchdog tripped";
  if (telemetry.faults.length > 0) text += `, faults ${telemetry.faults.map((f) => f.code).join(" ")}`;
  const ageMs = serverNow - telemetry.sampledAtMs;
  if (telemetry.sampledAtMs > 0 && ageMs > STALE_TELEMETRY_MS) text += ` (telemetry ${(ageMs / 1000).toFixed(1)} s old)`;
  return text;
}

/** The profile as "axes: " lines: a summary, one line per axis (mode, limits, unit), one per action. */
export function axesLines(profile: DeviceProfile, actions: readonly tsunagi.v1.ActionProfile[]): string[] {
  const deviceClass = (tsunagi.v1.DeviceClass[profile.deviceClass] ?? String(profile.deviceClass)).replace(/^DEVICE_CLASS_/, "").toLowerCase();
  const lines = [`${profile.deviceId}: ${profile.driver || "?"} (${deviceClass}), ${profile.axes.length} axes, watchdog ${profile.watchdogWindowMs || DEFAULT_WATCHDOG_WINDOW_MS} ms, latency budget ${profile.latencyBudgetMs || "server default"}${profile.latencyBudgetMs ? " ms" : ""}`];
  for (const axis of axesOf(profile)) lines.push(axisText(axis));
  for (const action of actions) {
    lines.push(`action ${action.name}${action.hasValue ? ` VALUE (${shortNumber(action.min)}..${shortNumber(action.max)}${action.unit ? ` ${action.unit}` : ""})` : ""}: ${action.description}`);
  }
  return lines;
}

function axisText(axis: tsunagi.v1.AxisProfile): string {
  let text = `${axis.name} ${modeName(axis.mode)}`;
  try {
    const [low, high] = axisBounds(axis);
    const unit = commandUnit(axis);
    text += low === -high ? ` ±${shortNumber(high)}` : ` ${shortNumber(low)}..${shortNumber(high)}`;
    if (unit) text += ` ${unit}`;
  } catch (error) {
    text += ` (not commandable: ${(error as Error).message})`;
  }
  if (axis.mode !== AxisMode.AXIS_MODE_POSITION) {
    const hasMin = axis.min !== undefined && axis.min !== null;
    const hasMax = axis.max !== undefined && axis.max !== null;
    const position = hasMin || hasMax ? `${hasMin ? shortNumber(axis.min!) : "-inf"}..${hasMax ? shortNumber(axis.max!) : "+inf"}` : "unbounded";
    text += `, position ${position}${axis.unit ? ` ${axis.unit}` : ""}`;
  } else if (axis.maxRate) {
    text += `, at most ${shortNumber(axis.maxRate)} ${axis.rateUnit || `${axis.unit}/s`}`;
  }
  return text;
}

/** What `set` applied: "boom +0.400 rad/s (clamped from 3)". */
export function setText(applied: Record<string, number>, requested: Record<string, number>, profile: DeviceProfile | undefined): string {
  const byName = new Map(axesOf(profile).map((axis) => [axis.name, axis]));
  return Object.entries(applied).map(([name, value]) => {
    const unit = commandUnit(byName.get(name)!);
    return `${name} ${signed(value, 3)}${unit ? ` ${unit}` : ""}${value !== requested[name] ? ` (clamped from ${shortNumber(requested[name])})` : ""}`;
  }).join(", ");
}

/** An action's fate: "takeoff 2: applied", "takeoff: refused by the device <why>", "arm: ESTOPPED <detail>". */
export function actionResultText(name: string, value: number | undefined, result: tsunagi.v1.ActionResult): string {
  if (result.status === AckStatus.APPLIED) return `${name}${value === undefined ? "" : ` ${shortNumber(value)}`}: applied`;
  const status = AckStatus[result.status] ?? String(result.status);
  return `${name}: ${status === "STATUS_UNSPECIFIED" ? "refused by the device" : status} ${result.detail || ""}`.trim();
}

/** An ack that is not APPLIED: "EXPIRED detail". */
export function ackText(ack: tsunagi.v1.CommandAck): string {
  return `${AckStatus[ack.status] ?? String(ack.status)} ${ack.detail || "(no detail)"}`;
}

export function estopText(estop: EStop): string {
  return `${estop.all || !estop.deviceId ? "all devices" : estop.deviceId}${estop.raisedBy ? ` by ${estop.raisedBy}` : ""}${estop.reason ? `: ${estop.reason}` : ""} (latched: a supervisor must reset)`;
}

export function resetText(reset: Reset): string {
  return `${reset.deviceId}${reset.by ? ` by ${reset.by}` : ""}${reset.reason ? `: ${reset.reason}` : ""} (acquire to drive again)`;
}

export function demotedText(event: DemotedEvent): string {
  return `${event.message ?? "the round trip exceeded the device's latency budget"} (lease ${event.endedLeaseId} ended)`;
}

export function profileText(profile: DeviceProfile): string {
  return `${profile.deviceId} ${profile.driver || "?"}: ${axesOf(profile).map((a) => a.name).join(", ")}`;
}
