/**
 * The driver ↔ wire mapping: DeviceProfile from each simulated driver (classes, modes,
 * optional bounds, rates, parameters) and Telemetry sampled from them (pose, joints from
 * the driver or the Hal, battery, faults, the adapter's safety fields). Both survive an
 * encode/decode round trip.
 */
import { describe, it, expect } from "vitest";
import { TELEMETRY_LIMITS, sampleTelemetry, toProtoProfile } from "../../../../devices/adapter/mapping.ts";
import { SimDrone, SimExcavator } from "../../../../devices/drivers/index.ts";
import { tsunagi } from "../../../../proto/index.ts";

const safety = { deviceId: "d-1", sampledAtMs: 1_700_000_000_123.5, estopped: false, watchdogTripped: false, lastApplied: undefined };

describe("toProtoProfile", () => {
  it("maps the excavator, leaving min/max out where the driver has none", () => {
    const driver = new SimExcavator({ watchdogMs: 150, latencyBudgetMs: 40 });
    const profile = toProtoProfile("ex-1", driver.profile(), 20);
    expect(tsunagi.v1.DeviceProfile.verify(profile)).toBeNull();
    const decoded = tsunagi.v1.DeviceProfile.decode(tsunagi.v1.DeviceProfile.encode(profile).finish());
    const plain = tsunagi.v1.DeviceProfile.toObject(decoded, { defaults: false });
    expect(plain).toMatchObject({
      deviceId: "ex-1", deviceClass: tsunagi.v1.DeviceClass.DEVICE_CLASS_EXCAVATOR, driver: "sim-excavator",
      watchdogWindowMs: 150, latencyBudgetMs: 40, telemetryRateHz: 20, controlRateHz: 100, parameters: { trackGaugeM: 2.4 },
    });
    expect(plain.axes[1]).toEqual({ name: "boom", mode: tsunagi.v1.AxisMode.AXIS_MODE_VELOCITY, unit: "rad", min: -0.6, max: 1, maxRate: 0.4, rateUnit: "rad/s" });
    expect(plain.axes[0]).toEqual({ name: "swing", mode: tsunagi.v1.AxisMode.AXIS_MODE_VELOCITY, unit: "rad", maxRate: 1, rateUnit: "rad/s" });
    expect(plain.axes[4]).toEqual({ name: "left-track", mode: tsunagi.v1.AxisMode.AXIS_MODE_VELOCITY, unit: "m", maxRate: 1.5, rateUnit: "m/s" });
  });

  it("maps the drone, with vz bounded by the geofence", () => {
    const profile = toProtoProfile("dr-1", new SimDrone().profile(), 10);
    expect(profile.deviceClass).toBe(tsunagi.v1.DeviceClass.DEVICE_CLASS_DRONE);
    expect(profile.axes!.map((a) => a.name)).toEqual(["vx", "vy", "vz", "yaw-rate"]);
    expect(profile.axes![2]).toMatchObject({ min: 0, max: 50, maxRate: 2 });
    expect(profile.axes![0]).not.toHaveProperty("min");
    expect(profile.parameters).toMatchObject({ geofenceRadiusM: 100, linkLossHoldMs: 3000 });
  });

  it("maps an unknown class to OTHER and an unknown mode to not commandable", () => {
    const base = new SimExcavator().profile();
    const odd = { ...base, deviceClass: "hovercraft", axes: [{ ...base.axes[0], mode: "magic" }] } as unknown as typeof base;
    const profile = toProtoProfile("x", odd, 5);
    expect(profile.deviceClass).toBe(tsunagi.v1.DeviceClass.DEVICE_CLASS_OTHER);
    expect(profile.axes![0].mode).toBe(tsunagi.v1.AxisMode.AXIS_MODE_UNSPECIFIED);
  });
});

describe("sampleTelemetry", () => {
  it("samples the excavator: pose with heading as yaw, joints and tracks, component faults", () => {
    const driver = new SimExcavator({ initialPose: { x: 1, y: 2, heading: 0.5 } });
    driver.init();
    driver.hal.actuator("boom").setValue("velocity", 0.2);
    driver.hal.actuator("left-track").setValue("velocity", 0.7);
    driver.step(100);
    driver.joint("bucket").injectFault("valve stuck");
    const profile = toProtoProfile("ex-1", driver.profile(), 20);
    const telemetry = sampleTelemetry(driver, profile, { ...safety, estopped: true, watchdogTripped: true, lastApplied: { leaseId: "L1", seq: 9 } });
    expect(tsunagi.v1.Telemetry.verify(telemetry)).toBeNull();
    expect(telemetry).toMatchObject({ deviceId: "d-1", sampledAtMs: safety.sampledAtMs, estopped: true, watchdogTripped: true, leaseId: "L1", lastAppliedSeq: 9 });
    expect(telemetry.pose).toMatchObject({ z: 0, roll: 0, pitch: 0, yaw: expect.any(Number) });
    expect(telemetry.pose!.yaw).not.toBe(0);
    const joints = Object.fromEntries(telemetry.joints!.map((j) => [j.name, j]));
    expect(joints.boom.position).toBeCloseTo(0.02, 9);
    expect(joints.boom.velocity).toBeCloseTo(0.2, 9);
    expect(joints.arm.position).toBe(-1.5);
    expect(joints["left-track"]).toMatchObject({ position: 0, velocity: 0.7 });
    expect(telemetry.battery).toBeUndefined();
    expect(telemetry.faults).toEqual([{ code: "COMPONENT_FAULT", message: "bucket: valve stuck", severity: tsunagi.v1.Fault.Severity.ERROR }]);
  });

  it("samples the drone: altitude, battery, string faults as codes, axis velocities through the Hal", () => {
    const drone = new SimDrone({ config: { battery: { initialPct: 20 } } });
    drone.init();
    drone.arm();
    drone.takeOff(2);
    while (drone.flightState !== "flying") drone.step(10);
    drone.setVelocity({ vx: 1 });
    drone.step(10);
    drone.linkLost();
    const profile = toProtoProfile("dr-1", drone.profile(), 10);
    const telemetry = sampleTelemetry(drone, profile, safety);
    expect(telemetry.pose!.z).toBeCloseTo(2, 6);
    expect(telemetry.battery!.percent).toBeLessThan(20);
    expect(telemetry.faults!.map((f) => f.code)).toEqual(["LINK_LOST", "BATTERY_LOW"]);
    expect(telemetry.faults!.every((f) => f.severity === tsunagi.v1.Fault.Severity.WARNING)).toBe(true);
    const vx = telemetry.joints!.find((j) => j.name === "vx")!;
    expect(vx.velocity).toBeCloseTo(1, 6);
    expect(telemetry.leaseId).toBe("");
    expect(telemetry.lastAppliedSeq).toBe(0);
  });

  it("reports 0 for axes the Hal cannot read (not initialised)", () => {
    const driver = new SimExcavator();
    const profile = toProtoProfile("ex-1", driver.profile(), 20);
    const telemetry = sampleTelemetry(driver, profile, safety);
    expect(telemetry.joints!.find((j) => j.name === "right-track")).toEqual({ name: "right-track", position: 0, velocity: 0 });
  });

  it("maps a real device's extras: geo, status texts, fault records, and a sensors device's readings, beacons and alerts, each bounded", () => {
    const driver = new SimExcavator();
    const raw = {
      geo: { lat: 35.6812, lon: 139.7671, altMslM: 45, altRelativeM: 5 },
      statusTexts: Array.from({ length: 12 }, (_, i) => ({ severity: i === 11 ? 99 : 6, text: `text ${i}`, atMs: i })),
      faults: [{ code: "VEHICLE_LOST", message: "no HEARTBEAT for 3000 ms", severity: "critical" }, { code: "ODD", severity: "nonsense" }, "battery-low"],
      readings: [
        { sensorId: "co2-1", kind: "co2", value: 812, unit: "ppm", area: "west", x: 1, y: 2, readAtMs: 5, online: true },
        { sensorId: "env-1", kind: "temperature", value: 21, unit: "°C", area: "", readAtMs: 6, online: false },
      ],
      beacons: Array.from({ length: TELEMETRY_LIMITS.beacons + 10 }, (_, i) => ({ beaconId: `b${i}`, x: i, y: 0, area: "west", rssi: -60.7, seenAtMs: i, receivers: 2 })),
      alerts: [{ area: "west", kind: "co2", sensorId: "co2-1", value: 1250, threshold: 1000, raisedAtMs: 9 }, "not an alert"],
    };
    const sample = sampleTelemetry({ ...driver, hal: driver.hal, telemetry: () => raw, mode: () => "GUIDED" } as never, toProtoProfile("x-1", driver.profile(), 20), safety);
    const decoded = tsunagi.v1.Telemetry.decode(tsunagi.v1.Telemetry.encode(sample).finish());
    expect(decoded.geo).toMatchObject({ lat: 35.6812, lon: 139.7671, altMslM: 45, altRelativeM: 5 });
    expect(decoded.statusTexts.map((t) => t.text)).toEqual(["text 4", "text 5", "text 6", "text 7", "text 8", "text 9", "text 10", "text 11"]);
    expect(decoded.statusTexts.at(-1)!.severity).toBe(7);
    expect(decoded.faults.map((f) => [f.code, f.severity])).toEqual([
      ["VEHICLE_LOST", tsunagi.v1.Fault.Severity.CRITICAL], ["ODD", tsunagi.v1.Fault.Severity.WARNING], ["BATTERY_LOW", tsunagi.v1.Fault.Severity.WARNING],
    ]);
    expect(decoded.readings[0]).toMatchObject({ sensorId: "co2-1", value: 812, hasPosition: true, x: 1, y: 2, online: true });
    expect(decoded.readings[1]).toMatchObject({ sensorId: "env-1", hasPosition: false, online: false });
    expect(decoded.beacons).toHaveLength(TELEMETRY_LIMITS.beacons);
    expect(decoded.beacons[0]).toMatchObject({ beaconId: "b0", rssi: -60, receivers: 2 });
    expect(decoded.alerts).toHaveLength(1);
    expect(decoded.mode).toBe("GUIDED");
    // a busy site's sample stays well inside the default 64 KiB frame
    expect(tsunagi.v1.Telemetry.encode(sample).finish().length).toBeLessThan(32 * 1024);
  });

  it("leaves the extras out for a machine that has none", () => {
    const driver = new SimExcavator();
    const sample = sampleTelemetry(driver, toProtoProfile("ex-1", driver.profile(), 20), safety);
    expect(sample.geo).toBeUndefined();
    expect(sample.statusTexts ?? []).toEqual([]);
    expect(sample.readings ?? []).toEqual([]);
  });
});
