/**
 * SimDrone: the arm -> take-off -> fly -> land sequence, setpoint limits, the geofence,
 * the battery (critical -> lands by itself), the link-loss failsafe (hover, then land,
 * and no setpoints until the link is back and the operator sends a fresh command), and
 * what the watchdog's zeroMotion() does to a drone (hover, never fall). Time is stepped
 * explicitly.
 */
import { afterEach, describe, it, expect, vi } from "vitest";
import { FlightCommandError, FlightState, SimDrone, type SimDroneOptions } from "../../../../../devices/drivers/sim-drone/index.ts";
import { ComponentState, HalStateError, type HalEvent } from "../../../../../devices/hal/index.ts";

function run(drone: SimDrone, ms: number, onStep?: () => void): void {
  for (let t = 0; t < ms; t += 10) {
    drone.step(10);
    onStep?.();
  }
}

function setup(options: SimDroneOptions = {}) {
  const drone = new SimDrone(options);
  const events: HalEvent[] = [];
  drone.hal.addObserver({ onEvent: (event) => void events.push(event) });
  drone.init();
  const ofType = <T extends HalEvent["type"]>(type: T) => events.filter((e): e is Extract<HalEvent, { type: T }> => e.type === type);
  return { drone, events, ofType, transitions: () => ofType("flight-state-changed").map((e) => e.to) };
}

/** A drone hovering at `altitudeM`. */
function flying(options: SimDroneOptions = {}, altitudeM = 10) {
  const context = setup(options);
  context.drone.arm();
  context.drone.takeOff(altitudeM);
  run(context.drone, altitudeM * 1000 + 10);
  expect(context.drone.flightState).toBe(FlightState.Flying);
  return context;
}

function refusal(fn: () => void): string {
  try {
    fn();
  } catch (error) {
    if (error instanceof FlightCommandError) return error.reason;
    throw error;
  }
  throw new Error("expected the command to be refused");
}

afterEach(() => {
  vi.useRealTimers();
});

describe("flight sequence", () => {
  it("arms, takes off, flies, lands and disarms", () => {
    const { drone, transitions } = setup();
    expect(drone.flightState).toBe(FlightState.Disarmed);
    drone.arm();
    drone.takeOff(10);
    expect(drone.flightState).toBe(FlightState.TakingOff);
    run(drone, 5_000);
    expect(drone.telemetry().pose.z).toBeCloseTo(5, 9); // 1 m/s climb
    run(drone, 5_000);
    expect(drone.flightState).toBe(FlightState.Flying);
    expect(drone.telemetry().pose.z).toBe(10); // no overshoot

    drone.setVelocity({ vx: 2 });
    run(drone, 5_000);
    expect(drone.telemetry().pose).toMatchObject({ y: 0, z: 10 });
    expect(drone.telemetry().pose.x).toBeCloseTo(10, 9);
    expect(drone.telemetry().velocity.vx).toBeCloseTo(2, 9);

    // yaw a quarter turn, then "forward" is +y in the site frame
    drone.setVelocity({ yawRate: 0.5 });
    drone.step(Math.PI * 1000);
    drone.setVelocity({ vx: 1 });
    run(drone, 2_000);
    expect(drone.telemetry().pose.heading).toBeCloseTo(Math.PI / 2, 9);
    expect(drone.telemetry().pose.x).toBeCloseTo(10, 9);
    expect(drone.telemetry().pose.y).toBeCloseTo(2, 9);

    drone.land();
    expect(drone.flightState).toBe(FlightState.Landing);
    run(drone, 19_990);
    expect(drone.flightState).toBe(FlightState.Landing); // 0.5 m/s from 10 m takes 20 s
    run(drone, 10);
    expect(drone.flightState).toBe(FlightState.Disarmed);
    expect(drone.telemetry()).toMatchObject({ stateReason: "landed", pose: { z: 0 }, velocity: { vx: 0, vy: 0 } });
    expect(transitions()).toEqual(["armed", "taking-off", "flying", "landing", "disarmed"]);
  });

  it("refuses commands that do not fit the flight state", () => {
    const { drone } = setup();
    expect(refusal(() => drone.takeOff(10))).toBe("wrong-state"); // not armed
    expect(refusal(() => drone.setVelocity({ vx: 1 }))).toBe("wrong-state");
    drone.arm();
    expect(refusal(() => drone.arm())).toBe("wrong-state");
    expect(refusal(() => drone.setVelocity({ vx: 1 }))).toBe("wrong-state"); // armed but on the ground
    drone.takeOff(5);
    expect(refusal(() => drone.setVelocity({ vx: 1 }))).toBe("wrong-state"); // still climbing
    expect(refusal(() => drone.disarm())).toBe("wrong-state"); // in the air
    expect(() => drone.takeOff(Number.NaN)).toThrow(/finite/);
    const error = (() => { try { drone.disarm(); } catch (e) { return e as FlightCommandError; } })()!;
    expect(error.code).toBe("COMMAND_REFUSED");
    expect(error.flightState).toBe(FlightState.TakingOff);
  });

  it("needs init() before anything", () => {
    const drone = new SimDrone();
    expect(() => drone.arm()).toThrow(HalStateError);
  });

  it("hold() aborts a take-off or a landing and hovers", () => {
    const { drone } = setup();
    drone.arm();
    drone.takeOff(20);
    run(drone, 3_000);
    drone.hold();
    expect(drone.flightState).toBe(FlightState.Flying);
    run(drone, 1_000);
    expect(drone.telemetry().pose.z).toBeCloseTo(3, 9);
    drone.land();
    run(drone, 1_000);
    drone.hold();
    run(drone, 1_000);
    expect(drone.flightState).toBe(FlightState.Flying);
    expect(drone.telemetry().pose.z).toBeCloseTo(2.5, 9);
  });
});

describe("setpoint limits and geofence", () => {
  it("clamps setpoints: horizontal speed as a vector, vertical and yaw per axis", () => {
    const { drone, ofType } = flying({ config: { maxHorizontalSpeed: 5, maxVerticalSpeed: 2, maxYawRate: 1.5 } });
    drone.setVelocity({ vx: 4, vy: 4, vz: -7, yawRate: 3 });
    const { setpoint } = drone.telemetry();
    expect(Math.hypot(setpoint.vx, setpoint.vy)).toBeCloseTo(5, 9);
    expect(setpoint.vx).toBeCloseTo(setpoint.vy, 9); // direction kept
    expect(setpoint.vz).toBe(-2);
    expect(setpoint.yawRate).toBe(1.5);
    expect(ofType("limit-reached").map((e) => e.axis)).toEqual(["vx", "vy", "vz", "yaw-rate"]);
    drone.setVelocity({ vx: 4, vy: 4, vz: -7, yawRate: 3 });
    expect(ofType("limit-reached")).toHaveLength(4); // still clamped: no repeats
  });

  it("stops at the fence radius, slides along it, and says so once", () => {
    const { drone, ofType } = flying({ config: { geofence: { maxRadiusM: 20 } } });
    drone.setVelocity({ vx: 5 });
    run(drone, 10_000); // would be 50 m out
    expect(drone.telemetry().pose.x).toBeCloseTo(20, 9);
    expect(drone.telemetry().velocity.vx).toBeCloseTo(0, 9);
    expect(ofType("geofence")).toHaveLength(1);
    expect(ofType("geofence")[0]).toMatchObject({ componentId: "flight", boundary: "radius", limitM: 20 });

    drone.setVelocity({ vx: 1, vy: 3 }); // outward and along: only the outward part is cut
    run(drone, 2_000);
    const { x, y } = drone.telemetry().pose;
    expect(Math.hypot(x, y)).toBeCloseTo(20, 6);
    expect(y).toBeGreaterThan(5);
    expect(drone.flightState).toBe(FlightState.Flying);
  });

  it("stops at the ceiling, clamps a take-off target above it, and keeps a minimum flight altitude", () => {
    const { drone, ofType } = setup({ config: { geofence: { maxAltitudeM: 30 }, minFlightAltitudeM: 2 } });
    drone.arm();
    drone.takeOff(100);
    expect(ofType("geofence")).toEqual([expect.objectContaining({ boundary: "altitude", limitM: 30 })]);
    run(drone, 31_000);
    expect(drone.telemetry().pose.z).toBe(30);
    drone.setVelocity({ vz: 2 });
    run(drone, 1_000);
    expect(drone.telemetry().pose.z).toBe(30);
    expect(ofType("geofence")).toHaveLength(2);

    drone.setVelocity({ vz: -2 });
    run(drone, 30_000);
    expect(drone.telemetry().pose.z).toBe(2); // only land() goes lower
    expect(drone.flightState).toBe(FlightState.Flying);
    expect(ofType("limit-reached").filter((e) => e.limit === "min")).toEqual([expect.objectContaining({ axis: "vz", applied: 2 })]);
  });
});

describe("battery", () => {
  it("warns when low and lands by itself at critical, then refuses to fly again", () => {
    const { drone, ofType, transitions } = flying({
      config: { battery: { initialPct: 31, lowPct: 30, criticalPct: 28, hoverDrainPctPerS: 0.1, drainPctPerMetre: 0 } },
    }, 2);
    // the climb to 2 m took 0.2 %: about 9.8 s of hover to low, about 29.8 s to critical
    drone.setVelocity({ vx: 1 });
    run(drone, 10_000);
    expect(ofType("battery-low")).toHaveLength(1);
    expect(drone.flightState).toBe(FlightState.Flying);
    run(drone, 20_000);
    expect(ofType("battery-critical")).toHaveLength(1);
    expect(drone.flightState).toBe(FlightState.Landing);
    expect(drone.telemetry().stateReason).toBe("battery critical");
    expect(drone.telemetry().faults).toContain("battery-critical");

    expect(refusal(() => drone.hold())).toBe("battery-critical");
    expect(refusal(() => drone.setVelocity({ vx: 1 }))).toBe("wrong-state");
    run(drone, 5_000);
    expect(drone.flightState).toBe(FlightState.Disarmed);
    expect(drone.telemetry().pose.z).toBe(0);
    expect(refusal(() => drone.arm())).toBe("battery-critical");
    expect(transitions().slice(-2)).toEqual(["landing", "disarmed"]);
    expect(drone.hal.sensor("battery").read().value).toBeLessThan(28);
  });

  it("drains faster with motion than hovering", () => {
    const hover = flying({}, 5).drone;
    const moving = flying({}, 5).drone;
    moving.setVelocity({ vx: 5 });
    run(hover, 10_000);
    run(moving, 10_000);
    expect(hover.telemetry().batteryPct - moving.telemetry().batteryPct).toBeCloseTo(0.5, 9); // 50 m at 0.01 %/m
  });
});

describe("link-loss failsafe", () => {
  it("hovers, then lands without dropping, and refuses setpoints until the link is back and the operator re-arms", () => {
    const { drone, ofType, transitions } = flying({ config: { linkLossHoldMs: 3_000, landingSpeed: 0.5 } });
    drone.setVelocity({ vx: 2, vz: 0.5 });
    run(drone, 1_000);
    const heldAt = drone.telemetry().pose;

    drone.linkLost();
    expect(drone.flightState).toBe(FlightState.Failsafe);
    expect(ofType("link-lost")).toHaveLength(1);
    expect(refusal(() => drone.setVelocity({ vx: 1 }))).toBe("link-down");
    run(drone, 2_990);
    expect(drone.flightState).toBe(FlightState.Failsafe);
    expect(drone.telemetry().pose).toEqual(heldAt); // held in place, not coasting
    expect(drone.telemetry().faults).toContain("link-lost");

    drone.linkRestored();
    // the link alone is not enough: setpoints still need a fresh command
    expect(refusal(() => drone.setVelocity({ vx: 1 }))).toBe("wrong-state");
    run(drone, 10);
    expect(drone.flightState).toBe(FlightState.Landing);
    expect(drone.telemetry().stateReason).toBe("link lost: hold time over");

    let previousZ = drone.telemetry().pose.z;
    run(drone, 30_000, () => {
      const { z } = drone.telemetry().pose;
      expect(previousZ - z).toBeLessThanOrEqual(0.5 * 0.01 + 1e-12); // never faster than the landing speed
      previousZ = z;
    });
    expect(drone.flightState).toBe(FlightState.Disarmed);
    expect(drone.telemetry().pose).toMatchObject({ x: heldAt.x, y: heldAt.y, z: 0 });
    expect(refusal(() => drone.setVelocity({ vx: 1 }))).toBe("wrong-state");
    drone.arm(); // the fresh command
    expect(drone.flightState).toBe(FlightState.Armed);
    expect(transitions()).toEqual(["armed", "taking-off", "flying", "failsafe", "landing", "disarmed", "armed"]);
  });

  it("hands control back in the air after the link returns and the operator sends hold", () => {
    const { drone } = flying();
    drone.linkLost();
    run(drone, 1_000);
    expect(refusal(() => drone.hold())).toBe("link-down");
    drone.linkRestored();
    drone.hold();
    expect(drone.flightState).toBe(FlightState.Flying);
    drone.setVelocity({ vx: 1 });
    run(drone, 1_000);
    expect(drone.telemetry().pose.x).toBeCloseTo(1, 9);
  });

  it("on the ground: disarms an armed drone and refuses to arm until the link is back", () => {
    const { drone } = setup();
    drone.arm();
    drone.linkLost();
    expect(drone.flightState).toBe(FlightState.Disarmed);
    expect(refusal(() => drone.arm())).toBe("link-down");
    drone.linkRestored();
    drone.arm();
    expect(drone.flightState).toBe(FlightState.Armed);
  });

  it("lets a landing in progress carry on", () => {
    const { drone } = flying({}, 4);
    drone.land();
    drone.linkLost();
    expect(drone.flightState).toBe(FlightState.Landing);
    run(drone, 8_010);
    expect(drone.flightState).toBe(FlightState.Disarmed);
  });
});

describe("HAL surface", () => {
  it("zeroMotion() makes a flying drone hover in place, never fall", () => {
    const { drone } = flying();
    drone.setVelocity({ vx: 3, vy: -1, vz: 1, yawRate: 0.4 });
    run(drone, 1_000);
    const report = drone.hal.zeroMotion();
    expect(report).toEqual({ stopped: ["vx", "vy", "vz", "yaw-rate"], skipped: [], failed: [] });
    const hoverAt = drone.telemetry().pose;
    run(drone, 5_000);
    expect(drone.flightState).toBe(FlightState.Flying);
    expect(drone.telemetry().pose).toEqual(hoverAt);
    expect(drone.telemetry().setpoint).toEqual({ vx: 0, vy: 0, vz: 0, yawRate: 0 });
  });

  it("zeroMotion() stops a climb, but leaves a landing or a failsafe alone", () => {
    const climbing = setup().drone;
    climbing.arm();
    climbing.takeOff(10);
    run(climbing, 2_000);
    climbing.hal.zeroMotion();
    expect(climbing.flightState).toBe(FlightState.Flying);
    run(climbing, 1_000);
    expect(climbing.telemetry().pose.z).toBeCloseTo(2, 9);

    const landing = flying().drone;
    landing.land();
    expect(landing.hal.zeroMotion().failed).toEqual([]);
    expect(landing.flightState).toBe(FlightState.Landing);

    const failsafe = flying().drone;
    failsafe.linkLost();
    expect(failsafe.hal.zeroMotion().failed).toEqual([]);
    expect(failsafe.flightState).toBe(FlightState.Failsafe);

    const idle = new SimDrone();
    expect(idle.hal.zeroMotion()).toEqual({ stopped: [], skipped: ["vx", "vy", "vz", "yaw-rate"], failed: [] });
  });

  it("composes per-axis setpoints from what was asked, so the horizontal limit does not depend on axis order", () => {
    const { drone } = flying({ config: { maxHorizontalSpeed: 5 } });
    drone.hal.actuator("vx").setValue("velocity", 0);
    drone.hal.actuator("vy").setValue("velocity", 5);
    // The next command, axis by axis as the adapter applies it: full speed along x.
    drone.hal.actuator("vx").setValue("velocity", 5); // (5, 5) for a moment: limited to the 5 m/s vector
    drone.hal.actuator("vy").setValue("velocity", 0);
    expect(drone.telemetry().setpoint).toMatchObject({ vx: 5, vy: 0 });
  });

  it("takes velocity commands through its axis actuators, which refuse without faulting", () => {
    const { drone } = flying();
    drone.hal.actuator("vx").setValue("velocity", 2);
    drone.hal.actuator("yaw-rate").setValue("velocity", 0.1);
    run(drone, 1_000);
    expect(drone.hal.actuator("vx").getValue().value).toBeCloseTo(2, 9); // body frame, though the drone has yawed
    expect(drone.telemetry().setpoint).toMatchObject({ vx: 2, vy: 0, yawRate: 0.1 });
    expect(() => drone.hal.actuator("vz").setValue("position", 3)).toThrow(/cannot command mode "position"/);

    drone.land();
    expect(() => drone.hal.actuator("vx").setValue("velocity", 1)).toThrow(FlightCommandError);
    expect(drone.hal.actuator("vx").state).toBe(ComponentState.Ready);
    // a zero is "no input": accepted, and the landing carries on
    drone.hal.actuator("vz").setValue("velocity", 0);
    expect(drone.flightState).toBe(FlightState.Landing);
  });

  it("takes a zero setpoint during take-off as no input: the climb goes on (only stop() halts it)", () => {
    const { drone } = setup();
    drone.arm();
    drone.takeOff(5);
    run(drone, 500);
    for (const axis of ["vx", "vy", "vz", "yaw-rate"]) drone.hal.actuator(axis).setValue("velocity", 0);
    expect(drone.flightState).toBe(FlightState.TakingOff);
    run(drone, 6_000);
    expect(drone.flightState).toBe(FlightState.Flying);
    expect(drone.telemetry().pose.z).toBeCloseTo(5, 1);
  });

  it("offers its manoeuvres as actions, and an e-stop lands it", () => {
    const { drone } = setup();
    expect(drone.actions().map((a) => a.name)).toEqual(["arm", "takeoff", "hold", "land", "disarm"]);
    expect(drone.actions().find((a) => a.name === "takeoff")!.value).toMatchObject({ unit: "m", min: 1 });
    expect(refusal(() => drone.perform("takeoff", 5))).toBe("wrong-state");
    drone.perform("arm", 0);
    expect(drone.mode()).toBe("armed");
    drone.emergencyStop(); // armed on the ground: disarms
    expect(drone.mode()).toBe("disarmed");
    drone.perform("arm", 0);
    drone.perform("takeoff", 4);
    run(drone, 5_000);
    expect(drone.mode()).toBe("flying");
    drone.emergencyStop();
    expect(drone.mode()).toBe("landing");
    run(drone, 10_000);
    expect(drone.mode()).toBe("disarmed");
    expect(drone.telemetry().pose.z).toBe(0);
    expect(() => drone.perform("somersault", 0)).toThrow(/no action "somersault"/);
  });

  it("a faulted flight controller lands by itself and refuses everything but land and disarm", () => {
    const { drone } = flying({}, 2);
    drone.flightController.injectFault("IMU disagreement");
    expect(drone.flightState).toBe(FlightState.Landing);
    expect(drone.telemetry()).toMatchObject({ stateReason: "fault: IMU disagreement", faults: ["component-fault"] });
    expect(() => drone.hold()).toThrow(HalStateError);
    drone.land(); // allowed: the safe direction
    run(drone, 4_010);
    expect(drone.flightState).toBe(FlightState.Disarmed);
  });

  it("refuses to shut down in the air and finalises on the ground", () => {
    const { drone } = flying(); 
    expect(refusal(() => drone.finalize())).toBe("wrong-state");
    expect(drone.flightController.state).toBe(ComponentState.Ready);
    drone.land();
    run(drone, 20_010);
    const report = drone.finalize();
    expect(report.failed).toEqual([]);
    expect(drone.hal.list().every((c) => c.state === ComponentState.Finalized)).toBe(true);
  });

  it("start() steps at 100 Hz on the timer and stop() ends it", () => {
    vi.useFakeTimers({ now: 0 });
    const { drone } = setup({ tickClock: () => Date.now() });
    drone.arm();
    drone.takeOff(10);
    drone.start();
    vi.advanceTimersByTime(2_000);
    drone.stop();
    vi.advanceTimersByTime(2_000);
    expect(drone.telemetry().simTimeMs).toBe(2_000);
    expect(drone.telemetry().pose.z).toBeCloseTo(2, 9);
  });
});

describe("profile and telemetry", () => {
  it("describes the device as plain JSON", () => {
    const profile = new SimDrone({ config: { geofence: { maxRadiusM: 80, maxAltitudeM: 40 } } }).profile();
    expect(JSON.parse(JSON.stringify(profile))).toStrictEqual(profile);
    expect(profile).toMatchObject({ driver: "sim-drone", deviceClass: "drone", watchdogMs: 200, latencyBudgetMs: 50, stepHz: 100 });
    expect(profile.axes.map((a) => [a.name, a.rateUnit, a.maxRate])).toEqual([["vx", "m/s", 5], ["vy", "m/s", 5], ["vz", "m/s", 2], ["yaw-rate", "rad/s", 1.5]]);
    expect(profile.axes[2]).toMatchObject({ min: 0, max: 40 });
    expect(profile.parameters).toMatchObject({ geofenceRadiusM: 80, geofenceAltitudeM: 40, linkLossHoldMs: 3_000 });
  });

  it("reports state, pose, velocity, battery and faults as plain JSON", () => {
    const { drone } = setup({ clock: () => 42 });
    const telemetry = drone.telemetry();
    expect(JSON.parse(JSON.stringify(telemetry))).toStrictEqual(telemetry);
    expect(telemetry).toMatchObject({
      timestamp: 42, state: "disarmed", batteryPct: 100, linkUp: true, faults: [],
      pose: { x: 0, y: 0, z: 0, heading: 0 }, velocity: { vx: 0, vy: 0, vz: 0, yawRate: 0 },
    });
    expect(telemetry.components).toEqual({ flight: "ready", vx: "ready", vy: "ready", vz: "ready", "yaw-rate": "ready", battery: "ready" });
  });

  it("rejects impossible configuration", () => {
    expect(() => new SimDrone({ config: { battery: { lowPct: 10, criticalPct: 20 } } })).toThrow(/thresholds/);
    expect(() => new SimDrone({ config: { geofence: { maxRadiusM: 0 } } })).toThrow(/maxRadiusM/);
  });
});
