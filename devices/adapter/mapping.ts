/**
 * Translations between a driver's plain-JSON view of its device (devices/drivers/types.ts)
 * and the wire contract (device.proto): the DeviceProfile the adapter publishes, and the
 * Telemetry it samples. Pure functions, so the mapping is tested without a socket.
 *
 * Telemetry is built from what every driver offers, whatever its shape: the Hal (axis
 * readings, component faults) plus the well-known fields of `driver.telemetry()` where
 * present (`pose`, `joints`, `batteryPct` or `battery`, `faults` as strings or
 * { code, message, severity } records, `geo`, `statusTexts`, and a sensors driver's
 * `readings`, `beacons` and `alerts`). A field a driver does not
 * report is left out (pose, battery) or 0 (an axis reading the Hal cannot give).
 *
 * @example
 *   const profile = toProtoProfile("ex-1", driver.profile(), 20);
 *   send({ correlationId: 0, deviceProfile: profile });
 *   const telemetry = sampleTelemetry(driver, profile, { deviceId: "ex-1", sampledAtMs: clock.serverNow(), ... });
 */
import { TELEMETRY_LIMITS, tsunagi } from "../../proto/index.ts";
import type { DeviceProfile, Driver } from "../drivers/types.ts";
import { HalActuator } from "../hal/HalActuator.ts";
import { ComponentState, type ActuatorMode } from "../hal/types.ts";

const { AxisMode, DeviceClass } = tsunagi.v1;
const Severity = tsunagi.v1.Fault.Severity;

/** Driver device classes on the wire; anything else is DEVICE_CLASS_OTHER. */
const deviceClasses: Record<string, tsunagi.v1.DeviceClass> = {
  excavator: DeviceClass.DEVICE_CLASS_EXCAVATOR,
  drone: DeviceClass.DEVICE_CLASS_DRONE,
  "rc-car": DeviceClass.DEVICE_CLASS_RC_CAR,
  crane: DeviceClass.DEVICE_CLASS_CRANE,
  sensors: DeviceClass.DEVICE_CLASS_SENSORS,
};

/** Driver axis modes on the wire; anything else is not commandable (UNSPECIFIED). */
const axisModes: Record<string, tsunagi.v1.AxisMode> = {
  position: AxisMode.AXIS_MODE_POSITION,
  velocity: AxisMode.AXIS_MODE_VELOCITY,
  torque: AxisMode.AXIS_MODE_TORQUE,
};

export { DEFAULT_WATCHDOG_WINDOW_MS } from "../../proto/index.ts";

/**
 * The DeviceProfile message for a driver's profile. `telemetryHz` is the rate this
 * adapter actually sends at; min/max are set only where the driver has them; the
 * actions are the driver's, when it offers any.
 */
export function toProtoProfile(deviceId: string, profile: DeviceProfile, telemetryHz: number, driver?: Pick<Driver, "actions">): tsunagi.v1.IDeviceProfile {
  return {
    deviceId,
    deviceClass: deviceClasses[profile.deviceClass] ?? DeviceClass.DEVICE_CLASS_OTHER,
    driver: profile.driver,
    vendor: profile.vendor,
    model: profile.model,
    axes: profile.axes.map((axis) => {
      const wire: tsunagi.v1.IAxisProfile = {
        name: axis.name,
        mode: axisModes[axis.mode] ?? AxisMode.AXIS_MODE_UNSPECIFIED,
        unit: axis.unit,
        maxRate: axis.maxRate,
        rateUnit: axis.rateUnit,
      };
      if (axis.min !== undefined) wire.min = axis.min;
      if (axis.max !== undefined) wire.max = axis.max;
      return wire;
    }),
    // uint32 on the wire
    watchdogWindowMs: Math.round(profile.watchdogMs),
    latencyBudgetMs: Math.round(profile.latencyBudgetMs),
    telemetryRateHz: telemetryHz,
    controlRateHz: profile.stepHz,
    parameters: { ...profile.parameters },
    actions: (driver?.actions?.() ?? []).map((action) => ({
      name: action.name,
      description: action.description,
      hasValue: action.value !== undefined,
      unit: action.value?.unit ?? "",
      min: action.value?.min ?? 0,
      max: action.value?.max ?? 0,
    })),
  };
}

/** The adapter-side safety fields every Telemetry carries. */
export interface SafetySnapshot {
  deviceId: string;
  /** Server clock, Unix epoch ms. */
  sampledAtMs: number;
  estopped: boolean;
  watchdogTripped: boolean;
  lastApplied: { leaseId: string; seq: number } | undefined;
}

/**
 * One Telemetry sample of the device. Throws only if the driver's own telemetry() does;
 * a Hal reading that fails is reported as 0.
 */
export function sampleTelemetry(driver: Driver, profile: tsunagi.v1.IDeviceProfile, safety: SafetySnapshot): tsunagi.v1.ITelemetry {
  const raw = asRecord(driver.telemetry()) ?? {};
  const reported = new Map<string, Record<string, unknown>>();
  if (Array.isArray(raw.joints)) {
    for (const joint of raw.joints) {
      const record = asRecord(joint);
      if (record && typeof record.name === "string") reported.set(record.name, record);
    }
  }
  const joints: tsunagi.v1.IJointState[] = (profile.axes ?? []).map((axis) => {
    const name = axis.name ?? "";
    const fromDriver = reported.get(name);
    return {
      name,
      position: finite(fromDriver?.position) ?? readAxis(driver, name, "position") ?? 0,
      velocity: finite(fromDriver?.velocity) ?? readAxis(driver, name, "velocity") ?? 0,
    };
  });
  const telemetry: tsunagi.v1.ITelemetry = {
    deviceId: safety.deviceId,
    sampledAtMs: safety.sampledAtMs,
    joints,
    faults: faultsOf(driver, raw),
    estopped: safety.estopped,
    watchdogTripped: safety.watchdogTripped,
    leaseId: safety.lastApplied?.leaseId ?? "",
    lastAppliedSeq: safety.lastApplied?.seq ?? 0,
    mode: modeOf(driver),
  };
  const pose = poseOf(raw.pose);
  if (pose) telemetry.pose = pose;
  const battery = batteryOf(raw);
  if (battery) telemetry.battery = battery;
  const geo = geoOf(raw.geo);
  if (geo) telemetry.geo = geo;
  const texts = statusTextsOf(raw.statusTexts);
  if (texts.length > 0) telemetry.statusTexts = texts;
  Object.assign(telemetry, sensorsOf(raw));
  return telemetry;
}

export { TELEMETRY_LIMITS };

/** `geo: { lat, lon, altMslM, altRelativeM }` (a drone's GPS), or undefined. */
function geoOf(value: unknown): tsunagi.v1.IGeoPosition | undefined {
  const geo = asRecord(value);
  const lat = finite(geo?.lat);
  const lon = finite(geo?.lon);
  if (lat === undefined || lon === undefined) return undefined;
  return { lat, lon, altMslM: finite(geo?.altMslM) ?? 0, altRelativeM: finite(geo?.altRelativeM) ?? 0 };
}

/** `statusTexts: [{ severity, text, atMs }]`, the newest TELEMETRY_LIMITS.statusTexts. */
function statusTextsOf(value: unknown): tsunagi.v1.IStatusText[] {
  if (!Array.isArray(value)) return [];
  const texts: tsunagi.v1.IStatusText[] = [];
  for (const entry of value.slice(-TELEMETRY_LIMITS.statusTexts)) {
    const record = asRecord(entry);
    if (!record || typeof record.text !== "string") continue;
    texts.push({ severity: Math.max(0, Math.min(7, Math.trunc(finite(record.severity) ?? 6))), text: record.text.slice(0, TELEMETRY_LIMITS.textChars), atMs: finite(record.atMs) ?? 0 });
  }
  return texts;
}

/** A sensors driver's `readings`, `beacons` and `alerts`, each bounded by TELEMETRY_LIMITS; {} for other drivers. */
function sensorsOf(raw: Record<string, unknown>): Pick<tsunagi.v1.ITelemetry, "readings" | "beacons" | "alerts"> {
  const out: Pick<tsunagi.v1.ITelemetry, "readings" | "beacons" | "alerts"> = {};
  const list = (value: unknown, limit: number) => (Array.isArray(value) ? value.slice(0, limit).map(asRecord).filter((record) => record !== undefined) : []);
  const text = (value: unknown) => (typeof value === "string" ? value.slice(0, TELEMETRY_LIMITS.textChars) : "");
  const readings = list(raw.readings, TELEMETRY_LIMITS.readings).map((reading): tsunagi.v1.ISensorReading => {
    const x = finite(reading.x);
    const y = finite(reading.y);
    return {
      sensorId: text(reading.sensorId), kind: text(reading.kind), value: finite(reading.value) ?? 0, unit: text(reading.unit), area: text(reading.area),
      hasPosition: x !== undefined && y !== undefined, x: x ?? 0, y: y ?? 0, readAtMs: finite(reading.readAtMs) ?? 0, online: reading.online === true,
    };
  });
  const beacons = list(raw.beacons, TELEMETRY_LIMITS.beacons).map((beacon): tsunagi.v1.IBeaconFix => ({
    beaconId: text(beacon.beaconId), x: finite(beacon.x) ?? 0, y: finite(beacon.y) ?? 0, area: text(beacon.area),
    rssi: Math.trunc(finite(beacon.rssi) ?? 0), seenAtMs: finite(beacon.seenAtMs) ?? 0, receivers: Math.max(0, Math.trunc(finite(beacon.receivers) ?? 0)),
  }));
  const alerts = list(raw.alerts, TELEMETRY_LIMITS.alerts).map((alert): tsunagi.v1.IAreaAlert => ({
    area: text(alert.area), kind: text(alert.kind), sensorId: text(alert.sensorId), value: finite(alert.value) ?? 0,
    threshold: finite(alert.threshold) ?? 0, raisedAtMs: finite(alert.raisedAtMs) ?? 0,
  }));
  if (readings.length > 0) out.readings = readings;
  if (beacons.length > 0) out.beacons = beacons;
  if (alerts.length > 0) out.alerts = alerts;
  return out;
}

/** The driver's operating mode, or "" (a driver whose mode() throws reports none). */
function modeOf(driver: Driver): string {
  try {
    const mode = driver.mode?.();
    return typeof mode === "string" ? mode.slice(0, 32) : "";
  } catch {
    return "";
  }
}

/** Severity of the string faults drivers report ("battery-low", "link-lost", …). */
const faultSeverities: Record<string, tsunagi.v1.Fault.Severity> = {
  "battery-low": Severity.WARNING,
  "battery-critical": Severity.ERROR,
  "battery-empty": Severity.ERROR,
  "link-lost": Severity.WARNING,
};

/**
 * Component faults from the Hal (code COMPONENT_FAULT, one per faulted component), plus
 * the driver's own string faults as stable upper-case codes ("battery-low" →
 * BATTERY_LOW). A driver's "component-fault" is the Hal's fault again and is not repeated.
 */
function faultsOf(driver: Driver, raw: Record<string, unknown>): tsunagi.v1.IFault[] {
  const faults: tsunagi.v1.IFault[] = [];
  for (const component of driver.hal.list()) {
    const reason = component.faultReason;
    if (reason !== undefined) faults.push({ code: "COMPONENT_FAULT", message: `${component.id}: ${reason}`, severity: Severity.ERROR });
  }
  if (Array.isArray(raw.faults)) {
    for (const fault of raw.faults) {
      const record = asRecord(fault);
      if (record && typeof record.code === "string") {
        // a driver's own record: { code, message, severity: "info" | "warning" | "error" | "critical" }
        const severity = typeof record.severity === "string" ? Severity[record.severity.toUpperCase() as keyof typeof Severity] : undefined;
        faults.push({ code: record.code.slice(0, 64), message: typeof record.message === "string" ? record.message.slice(0, 512) : record.code, severity: typeof severity === "number" ? severity : Severity.WARNING });
        continue;
      }
      if (typeof fault !== "string" || fault === "component-fault") continue;
      faults.push({ code: fault.toUpperCase().replace(/[^A-Z0-9]+/g, "_"), message: fault, severity: faultSeverities[fault] ?? Severity.WARNING });
    }
  }
  return faults;
}

/** A driver pose ({ x, y, z?, heading | yaw, roll?, pitch? }) as a Pose; undefined without x and y. */
function poseOf(value: unknown): tsunagi.v1.IPose | undefined {
  const pose = asRecord(value);
  if (!pose) return undefined;
  const x = finite(pose.x);
  const y = finite(pose.y);
  if (x === undefined || y === undefined) return undefined;
  return {
    x, y,
    z: finite(pose.z) ?? 0,
    roll: finite(pose.roll) ?? 0,
    pitch: finite(pose.pitch) ?? 0,
    yaw: finite(pose.yaw) ?? finite(pose.heading) ?? 0,
  };
}

/** `batteryPct` (the drone) or `battery: { percent, voltage }`; undefined for a device without one. */
function batteryOf(raw: Record<string, unknown>): tsunagi.v1.IBattery | undefined {
  const percent = finite(raw.batteryPct);
  if (percent !== undefined) return { percent, voltage: 0 };
  const battery = asRecord(raw.battery);
  const batteryPercent = finite(battery?.percent);
  if (batteryPercent === undefined) return undefined;
  return { percent: batteryPercent, voltage: finite(battery?.voltage) ?? 0 };
}

/** One axis reading through the Hal, when the actuator is Ready and can give it. */
function readAxis(driver: Driver, name: string, mode: ActuatorMode): number | undefined {
  const component = driver.hal.find(name);
  if (!(component instanceof HalActuator) || component.state !== ComponentState.Ready || !component.readModes.includes(mode)) return undefined;
  try {
    return finite(component.getValue(mode).value);
  } catch {
    return undefined; // the component reported its own failure to the Hal's observers
  }
}

function finite(value: unknown): number | undefined {
  return typeof value === "number" && Number.isFinite(value) ? value : undefined;
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}
