/**
 * The four velocity axes every drone driver offers, whatever flies it (the simulated
 * drone's model, a MAVLink autopilot): body frame, forward / left / up in m/s and yaw
 * rate counter-clockwise in rad/s, so an operator's controls fit any drone. One list,
 * one description per axis, one way to profile them.
 *
 * @example
 *   for (const axis of droneAxes) hal.add(new MyAxis(axis, ...droneAxisDescriptions[axis]));
 *   profile.axes = droneAxisProfiles({ maxHorizontalSpeed: 5, maxVerticalSpeed: 2.5, maxYawRate: 1.5, maxAltitudeM: 120 });
 */
import type { AxisProfile } from "./types.ts";

export const droneAxes = ["vx", "vy", "vz", "yaw-rate"] as const;
export type DroneAxisName = (typeof droneAxes)[number];

/** Each axis' HAL properties: its name, the unit of the position its velocity integrates, and what positive means. */
export const droneAxisDescriptions: Readonly<Record<DroneAxisName, { name: string; unit: string; description: string }>> = {
  vx: { name: "Forward velocity", unit: "m", description: "body frame, forward positive, m/s" },
  vy: { name: "Lateral velocity", unit: "m", description: "body frame, left positive, m/s" },
  vz: { name: "Vertical velocity", unit: "m", description: "up positive, m/s" },
  "yaw-rate": { name: "Yaw rate", unit: "rad", description: "counter-clockwise positive, rad/s" },
};

export interface DroneLimits {
  maxHorizontalSpeed: number;
  maxVerticalSpeed: number;
  maxYawRate: number;
  /** vz's position (the altitude) is bounded by [0, this]. */
  maxAltitudeM: number;
}

/** The highest rate of an axis under `limits`. */
export function droneAxisRate(axis: DroneAxisName, limits: DroneLimits): number {
  return axis === "vz" ? limits.maxVerticalSpeed : axis === "yaw-rate" ? limits.maxYawRate : limits.maxHorizontalSpeed;
}

/** The four axes as the DeviceProfile publishes them. */
export function droneAxisProfiles(limits: DroneLimits): AxisProfile[] {
  return droneAxes.map((axis): AxisProfile => ({
    name: axis, mode: "velocity", unit: droneAxisDescriptions[axis].unit,
    ...(axis === "vz" ? { min: 0, max: limits.maxAltitudeM } : {}),
    rateUnit: axis === "yaw-rate" ? "rad/s" : "m/s", maxRate: droneAxisRate(axis, limits),
  }));
}
