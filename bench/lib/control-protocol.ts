/**
 * What the control bench's processes say to each other (the parent, the server under
 * test, the device load control-devices.ts and the operator load control-operators.ts),
 * and the envelopes both loads put on the wire. Both paths, the region node and the raw
 * relay baseline, carry the very same envelopes, built here.
 */
import { tsunagi } from "../../proto/index.ts";
import type { HistogramData } from "./measure.ts";

/** The server between operators and devices: a region node, or the raw uWS relay baseline. */
export type ControlPath = "node" | "relay";

/** The one axis of every bench device: a velocity axis, commanded well inside max_rate. */
export const axisName = "boom";
const axisMaxRate = 1;
/** Adapter watchdog of the bench devices, ms (the contract's default). */
export const watchdogWindowMs = 200;
/** Operator↔device round-trip budget of the bench devices; also each command's deadline. */
export const latencyBudgetMs = 100;
/** Telemetry each device sends per second. */
export const telemetryHz = 10;

export function deviceIdOf(index: number): string {
  return `bench-dev-${index}`;
}

export function roomIdOf(index: number): string {
  return `bench-room-${index}`;
}

/** Relay paths: a device connects at `/device?id=<deviceId>`, its operator at `/op?id=<deviceId>`. */
export const relayDevicePath = "/device";
export const relayOperatorPath = "/op";

/** Ready data of the region node child (region-node.ts). */
export interface NodeReady {
  httpUrl: string;
  /** `ws://host:port/device`: where adapters connect. */
  gatewayUrl: string;
}

/** Ready data of the relay child (control-relay.ts). */
export interface RelayReady {
  port: number;
}

/** The device load's argument. */
export interface DeviceLoadConfig {
  path: ControlPath;
  /** The node's gateway URL, or the relay's device URL (`ws://host:port/device`). */
  url: string;
  /** Node path: each device's secret from its enrolment; relay path: no secret. */
  devices: Array<{ deviceId: string; deviceSecret?: string }>;
  /** The operators' command rate, declared as the devices' control rate. */
  hz: number;
}

/** The operator load's argument. */
export interface OperatorLoadConfig {
  path: ControlPath;
  /** The node's HTTP URL, or the relay's operator URL (`ws://host:port/op`). */
  url: string;
  /** Node path: an operator access token. */
  token?: string;
  deviceIds: string[];
  hz: number;
}

/**
 * Reply of the device load's `stopWindow` call: the commands its adapters received
 * between its `startWindow` and `stopWindow` calls.
 */
export interface DeviceWindow {
  windowMs: number;
  delivered: number;
  /** Operator→adapter latency: receive time minus ControlCommand.issued_at_ms. */
  p50Ms: number;
  p99Ms: number;
  /** The same latencies, to pool with other rounds'. */
  latency: HistogramData;
  /** p99 of the load's event-loop delay: how late it may have timestamped receives. */
  eventLoopDelayP99Ms: number;
  /** Adapter connections that closed after they came up, since the start. */
  connectionsLost: number;
  /** Error envelopes the adapters received since the start, by code name. */
  errors: Record<string, number>;
}

/**
 * Reply of the operator load's `stopWindow` call: the commands issued between its
 * `startWindow` and `stopWindow` calls, and how each was answered.
 */
export interface OperatorWindow {
  windowMs: number;
  /** Commands sent in the window. */
  sent: number;
  /** Send ticks in the window skipped because the operator held no lease. */
  ticksWithoutLease: number;
  /** Commands of the window acked APPLIED by their adapter. */
  applied: number;
  /** Commands of the window acked with any other status, by status name. */
  refused: Record<string, number>;
  /** Commands of the window without any ack a grace period after the window. */
  unanswered: number;
  /** Leases lost since the start (each then acquired again), by LeaseState cause. */
  leasesLost: Record<string, number>;
  /** Coded errors the operators received since the start, by code name. */
  errors: Record<string, number>;
  eventLoopDelayP99Ms: number;
  /** Operator connections that dropped or left, since the start. */
  clientsLost: number;
}

/** Reply of the operator load's `estop` call: when each operator sent its EStop (wallClockMs), by device. */
export type EStopsSent = Record<string, number>;

/** Reply of the device load's `estops` call: the first EStop each adapter received, by device. */
export type EStopsReceived = Record<string, { receivedAtMs: number; raisedAtMs: number }>;

/** The profile every bench device announces. */
export function benchProfile(deviceId: string, hz: number): tsunagi.v1.IDeviceProfile {
  return {
    deviceId,
    deviceClass: tsunagi.v1.DeviceClass.DEVICE_CLASS_EXCAVATOR,
    driver: "bench",
    vendor: "tsunagi",
    model: "control-bench",
    axes: [{ name: axisName, mode: tsunagi.v1.AxisMode.AXIS_MODE_VELOCITY, unit: "rad", maxRate: axisMaxRate, rateUnit: "rad/s" }],
    watchdogWindowMs,
    latencyBudgetMs,
    telemetryRateHz: telemetryHz,
    controlRateHz: hz,
  };
}

/** A small, always valid setpoint for command `seq`: a slow sine well inside max_rate. */
export function axisValueFor(seq: number): number {
  return 0.2 * axisMaxRate * Math.sin(seq / 25);
}

