/**
 * The MAVLink driver flying the MAVLink test vehicle in-process: its axes' frames (body
 * forward / left / up and a counter-clockwise yaw rate, against MAVLink's forward / right /
 * down and clockwise) and the pose it reports, the watchdog's zeroMotion(), setpoints
 * refused on the ground and withheld during a take-off, and the operator's link lost and
 * restored.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { common, type MavLinkData } from "node-mavlink";
import { ComponentState } from "../../../../../devices/hal/index.ts";
import type { MavlinkDrone } from "../../../../../devices/drivers/mavlink/index.ts";
import { TEST, holds, startRig, stopRig, takeOff, until, type Rig, refusal } from "./harness.ts";

type Pose = { x: number; y: number; z: number; yaw: number };

let rig: Rig | undefined;

afterEach(async () => {
  vi.restoreAllMocks();
  await stopRig(rig);
  rig = undefined;
});

/** Numbers with -0 made 0 (MAVLink's sign flips give -0), for toEqual. */
function plain<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).map(([key, v]) => [key, typeof v === "number" ? v + 0 : v])) as T;
}

function pose(drone: MavlinkDrone): Pose {
  return (drone.telemetry() as { pose: Pose }).pose;
}


/** Every SET_POSITION_TARGET_LOCAL_NED the driver sends from now on, with the vehicle's altitude and phase at that moment. */
function recordSetpoints(rig: Rig): { message: common.SetPositionTargetLocalNed; altitude: number; at: number }[] {
  const sent: { message: common.SetPositionTargetLocalNed; altitude: number; at: number }[] = [];
  const link = rig.drone.vehicle.link!;
  const send = link.send.bind(link);
  vi.spyOn(link, "send").mockImplementation((message: MavLinkData) => {
    if (message instanceof common.SetPositionTargetLocalNed) sent.push({ message, altitude: rig.vehicle.state.altitude, at: performance.now() });
    return send(message);
  });
  return sent;
}

describe("frames", () => {
  it("flies body left/up/counter-clockwise as MAVLink right/down/clockwise, and reports an ENU pose matching the vehicle's NED", TEST, async () => {
    rig = await startRig();
    const { drone, vehicle } = rig;
    await takeOff(rig, 3);
    expect(vehicle.state.yaw).toBeCloseTo(0, 3); // facing north

    // left, facing north: west, NED y decreasing
    drone.hal.actuator("vy").setValue("velocity", 1);
    await vehicle.waitFor((s) => s.velocity.vy < -0.8, 3000, "moving west");
    expect(plain(vehicle.state.velocityTarget)).toEqual({ vx: 0, vy: -1, vz: 0 });
    await vehicle.waitFor((s) => s.position.y < -0.6, 5000, "0.6 m west of home");
    expect(Math.abs(vehicle.state.position.x)).toBeLessThan(0.1);
    drone.hal.actuator("vy").setValue("velocity", 0);

    // up: altitude rises (NED vz negative)
    const altitudeBefore = vehicle.state.altitude;
    drone.hal.actuator("vz").setValue("velocity", 0.5);
    await vehicle.waitFor((s) => s.velocityTarget.vz === -0.5 && s.velocityTarget.vy === 0, 2000, "climbing at 0.5 m/s");
    await vehicle.waitFor((s) => s.altitude > altitudeBefore + 0.3, 5000, "0.3 m higher");
    drone.hal.actuator("vz").setValue("velocity", 0);

    // counter-clockwise: NED yaw (clockwise from north) decreasing
    drone.hal.actuator("yaw-rate").setValue("velocity", 0.3);
    await vehicle.waitFor((s) => s.yawRate < -0.25, 3000, "turning counter-clockwise");
    await vehicle.waitFor((s) => s.yaw < -0.2, 5000, "yawed 0.2 rad counter-clockwise");
    drone.hal.actuator("yaw-rate").setValue("velocity", 0);
    await vehicle.waitFor((s) => Math.abs(s.yawRate) < 0.01 && Math.hypot(s.velocity.vx, s.velocity.vy, s.velocity.vz) < 0.02, 5000, "hovering");

    // the driver's pose: ENU (x east, y north, z up; yaw counter-clockwise from east)
    await until(() => Math.abs(pose(drone).yaw - (Math.PI / 2 - vehicle.state.yaw)) < 0.05, 2000, "the driver's pose caught up");
    const { position, altitude, yaw } = vehicle.state;
    const reported = pose(drone);
    expect(Math.abs(reported.x - position.y)).toBeLessThan(0.5);
    expect(Math.abs(reported.y - position.x)).toBeLessThan(0.5);
    expect(Math.abs(reported.z - altitude)).toBeLessThan(0.5);
    expect(reported.x).toBeLessThan(-0.5); // west
    expect(reported.yaw).toBeGreaterThan(Math.PI / 2 + 0.15); // turned left of north
    expect(Math.abs(reported.yaw - (Math.PI / 2 - yaw))).toBeLessThan(0.05);
  });
});

describe("hal.zeroMotion()", () => {
  it("sends a zero setpoint at once: the vehicle's velocity target is zero within 300 ms", TEST, async () => {
    rig = await startRig();
    const { drone, vehicle } = rig;
    await takeOff(rig, 3);
    drone.hal.actuator("vx").setValue("velocity", 2);
    await vehicle.waitFor((s) => s.velocityTarget.vx === 2 && s.velocity.vx > 1.5, 3000, "flying north at 2 m/s");

    const sent = recordSetpoints(rig);
    const zeroedAt = performance.now();
    const report = drone.hal.zeroMotion();
    expect(report.stopped).toEqual(["vx", "vy", "vz", "yaw-rate"]);
    expect(report.failed).toEqual([]);
    // sent from within zeroMotion(), not at the loop's next tick
    expect(sent.length).toBeGreaterThanOrEqual(1);
    const { vx, vy, vz, yawRate } = sent[0]!.message;
    expect(plain({ vx, vy, vz, yawRate })).toEqual({ vx: 0, vy: 0, vz: 0, yawRate: 0 });
    await vehicle.waitFor((s) => s.velocityTarget.vx === 0 && s.velocityTarget.vy === 0 && s.velocityTarget.vz === 0, 300, "a zero velocity target");
    expect(performance.now() - zeroedAt).toBeLessThan(300);
    expect(drone.hal.actuator("vx").state).toBe(ComponentState.Ready);
  });
});

describe("setpoints and take-off", () => {
  it("refuses setpoints on the ground, disarmed or armed, saying GUIDED and take off", TEST, async () => {
    rig = await startRig();
    const { drone, vehicle } = rig;
    await until(() => drone.available(), 3000, "available");
    const disarmed = refusal(() => drone.hal.actuator("vx").setValue("velocity", 1));
    expect(disarmed.code).toBe("COMMAND_REFUSED");
    expect(disarmed.message).toMatch(/GUIDED/);
    expect(disarmed.message).toMatch(/take off/);

    drone.perform("arm", 0);
    await until(() => drone.vehicle.vehicleState.armed && drone.vehicle.vehicleState.modeName === "GUIDED", 3000, "armed in GUIDED");
    const sent = recordSetpoints(rig);
    for (const axis of ["vx", "vy", "vz", "yaw-rate"]) {
      const armed = refusal(() => drone.hal.actuator(axis).setValue("velocity", 0.5));
      expect(armed.code).toBe("COMMAND_REFUSED");
      expect(armed.message).toMatch(/needs the vehicle flying in GUIDED \(it is armed in GUIDED at 0\.0 m\); take off/);
      expect(drone.hal.actuator(axis).state).toBe(ComponentState.Ready);
    }
    await holds(() => sent.length === 0, 300, "no setpoint sent on the ground");
    expect(plain(vehicle.state.velocityTarget)).toEqual({ vx: 0, vy: 0, vz: 0 });
  });

  it("sends no setpoint while the vehicle climbs after \"takeoff\", so it reaches its target altitude", TEST, async () => {
    rig = await startRig();
    const { drone, vehicle } = rig;
    await until(() => drone.available(), 3000, "available");
    drone.perform("arm", 0);
    await until(() => drone.vehicle.vehicleState.armed && drone.vehicle.vehicleState.modeName === "GUIDED", 3000, "armed in GUIDED");

    const target = 3;
    const sent = recordSetpoints(rig);
    drone.perform("takeoff", target);
    await vehicle.waitFor((s) => s.altitude > 1, 5000, "climbing");
    // ArduCopter ends a take-off at the first setpoint: none may reach it before it is there
    await vehicle.waitFor((s) => s.velocity.vz > -0.02 && s.altitude > 1, 10_000, "the climb over");
    await until(() => drone.vehicle.airborne, 1000, "the driver sees it airborne");
    const settled = vehicle.state.altitude;
    const early = sent.filter((entry) => entry.altitude < target - 0.1);
    expect(early.map((entry) => entry.altitude.toFixed(2)), "setpoints sent during the climb, at these altitudes").toEqual([]);
    expect(settled).toBeGreaterThan(target - 0.1);
    expect(settled).toBeLessThan(target + 0.2);
  });
});

describe("the operator's link", () => {
  it("lost in flight: BRAKE, then LAND after linkLossHoldMs, and setpoints refused meanwhile", TEST, async () => {
    rig = await startRig({ drone: { linkLossHoldMs: 500 } });
    const { drone, vehicle } = rig;
    await takeOff(rig, 3);
    drone.hal.actuator("vx").setValue("velocity", 1);
    await vehicle.waitFor((s) => s.velocity.vx > 0.5, 3000, "moving north");

    const lostAt = performance.now();
    drone.linkLost();
    await vehicle.waitFor((s) => s.mode === "BRAKE", 1000, "BRAKE");
    expect(plain(vehicle.state.velocityTarget)).toEqual({ vx: 0, vy: 0, vz: 0 });
    const refused = refusal(() => drone.hal.actuator("vx").setValue("velocity", 1));
    expect(refused.code).toBe("COMMAND_REFUSED");
    expect(refused.message).toMatch(/operator's link is down/);
    expect((drone.telemetry() as { faults: { code: string }[] }).faults.map((fault) => fault.code)).toContain("LINK_LOST");

    await vehicle.waitFor((s) => s.mode === "LAND", 2000, "LAND after the hold");
    expect(performance.now() - lostAt).toBeGreaterThanOrEqual(480);
    await vehicle.waitFor((s) => s.landed && !s.armed, 10_000, "landed and disarmed");
  });

  it("restored: \"hold\" takes control back in GUIDED and setpoints are accepted again", TEST, async () => {
    rig = await startRig({ drone: { linkLossHoldMs: 500 } });
    const { drone, vehicle } = rig;
    await takeOff(rig, 3);
    drone.linkLost();
    await vehicle.waitFor((s) => s.mode === "BRAKE", 1000, "BRAKE");
    expect(() => drone.perform("hold", 0)).toThrow(/operator's link is down/);

    drone.linkRestored();
    // the link's return alone changes nothing: still BRAKE, and setpoints still need GUIDED
    expect(refusal(() => drone.hal.actuator("vx").setValue("velocity", 1)).message).toMatch(/GUIDED/);
    drone.perform("hold", 0);
    await vehicle.waitFor((s) => s.mode === "GUIDED", 1000, "GUIDED on hold");
    await until(() => drone.mode() === "GUIDED", 1000, "the driver sees GUIDED");
    // the landing the hold timer would have started does not come
    await holds(() => vehicle.state.mode === "GUIDED", 700, "still GUIDED after linkLossHoldMs");

    drone.hal.actuator("vx").setValue("velocity", 1);
    await vehicle.waitFor((s) => s.velocityTarget.vx === 1 && s.velocity.vx > 0.5, 2000, "flying north again");
    drone.hal.actuator("vx").setValue("velocity", 0);
    drone.perform("land", 0);
    await vehicle.waitFor((s) => s.landed && !s.armed, 10_000, "landed and disarmed");
  });
});
