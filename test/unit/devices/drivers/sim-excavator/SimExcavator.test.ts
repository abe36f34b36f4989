/**
 * SimExcavator: joints follow velocity commands and stop at their limits, commands are
 * clamped to the rate limits, the tracks drive a differential-drive base, the watchdog
 * stop works, and the profile is plain JSON. Time is stepped explicitly.
 */
import { afterEach, describe, it, expect, vi } from "vitest";
import { SimExcavator } from "../../../../../devices/drivers/sim-excavator/index.ts";
import { ComponentState, type HalEvent } from "../../../../../devices/hal/index.ts";

/** Steps `ms` of simulated time at the model's 100 Hz. */
function run(excavator: SimExcavator, ms: number): void {
  for (let t = 0; t < ms; t += 10) excavator.step(10);
}

function ready(options: ConstructorParameters<typeof SimExcavator>[0] = {}) {
  const excavator = new SimExcavator(options);
  const events: HalEvent[] = [];
  excavator.hal.addObserver({ onEvent: (event) => void events.push(event) });
  excavator.init();
  return { excavator, events, limitEvents: () => events.filter((e) => e.type === "limit-reached") };
}

const joint = (excavator: SimExcavator, name: string) => excavator.joints().find((j) => j.name === name)!;

afterEach(() => {
  vi.useRealTimers();
});

describe("joints", () => {
  it("integrate their velocity commands", () => {
    const { excavator } = ready();
    expect(joint(excavator, "arm").position).toBe(-1.5); // the default travel pose
    excavator.hal.actuator("boom").setValue("velocity", 0.2);
    excavator.hal.actuator("arm").setValue("velocity", -0.3);
    excavator.hal.actuator("bucket").setValue("velocity", 0.5);
    run(excavator, 1_000);
    expect(joint(excavator, "boom").position).toBeCloseTo(0.2, 9);
    expect(joint(excavator, "boom").velocity).toBeCloseTo(0.2, 9);
    expect(joint(excavator, "arm").position).toBeCloseTo(-1.8, 9);
    expect(joint(excavator, "bucket").position).toBeCloseTo(0.5, 9);
    expect(joint(excavator, "swing")).toEqual({ name: "swing", position: 0, velocity: 0 });
    expect(excavator.hal.actuator("boom").getValue("position").value).toBeCloseTo(0.2, 9);
  });

  it("stop at their position limits and say so once per arrival", () => {
    const { excavator, limitEvents } = ready();
    const boom = excavator.hal.actuator("boom");
    boom.setValue("velocity", 0.4);
    run(excavator, 5_000); // would reach 2.0 rad unclamped; the limit is 1.0
    expect(joint(excavator, "boom")).toEqual({ name: "boom", position: 1.0, velocity: 0 });
    expect(limitEvents()).toHaveLength(1);
    expect(limitEvents()[0]).toMatchObject({ componentId: "boom", axis: "boom", limit: "max", applied: 1.0 });

    boom.setValue("velocity", -0.4);
    run(excavator, 500);
    expect(joint(excavator, "boom").position).toBeCloseTo(0.8, 9);
    run(excavator, 5_000);
    expect(joint(excavator, "boom").position).toBe(-0.6);
    expect(limitEvents().map((e) => (e as { limit: string }).limit)).toEqual(["max", "min"]);
  });

  it("clamp commands to the rate limit, announcing when clamping starts", () => {
    const { excavator, limitEvents } = ready();
    const boom = excavator.hal.actuator("boom");
    boom.setValue("velocity", 3); // max 0.4 rad/s
    boom.setValue("velocity", 3); // still clamped: no second event
    run(excavator, 1_000);
    expect(joint(excavator, "boom").position).toBeCloseTo(0.4, 9);
    expect(limitEvents()).toEqual([expect.objectContaining({ axis: "boom", limit: "rate", requested: 3, applied: 0.4 })]);

    boom.setValue("velocity", -0.1); // within limits: re-arms the event
    boom.setValue("velocity", -9);
    expect(limitEvents()).toHaveLength(2);
    expect(limitEvents()[1]).toMatchObject({ requested: -9, applied: -0.4 });
  });

  it("swing is continuous by default and wraps to (-π, π]", () => {
    const { excavator, limitEvents } = ready();
    excavator.hal.actuator("swing").setValue("velocity", 1);
    run(excavator, 4_000);
    expect(joint(excavator, "swing").position).toBeCloseTo(4 - 2 * Math.PI, 9);
    expect(limitEvents()).toEqual([]);
    expect(excavator.profile().axes.find((a) => a.name === "swing")).toEqual({ name: "swing", mode: "velocity", unit: "rad", rateUnit: "rad/s", maxRate: 1 });
  });

  it("do not move before init() and refuse commands", () => {
    const excavator = new SimExcavator();
    expect(() => excavator.hal.actuator("boom").setValue("velocity", 0.2)).toThrow(/needs state ready/);
    run(excavator, 1_000);
    expect(joint(excavator, "boom").position).toBe(0);
  });

  it("accept per-joint configuration and reject an impossible one", () => {
    const { excavator } = ready({ joints: { boom: { max: 0.5, maxRate: 1 } } });
    excavator.hal.actuator("boom").setValue("velocity", 1);
    run(excavator, 1_000);
    expect(joint(excavator, "boom").position).toBe(0.5);
    expect(() => new SimExcavator({ joints: { arm: { initial: 3 } } })).toThrow(/outside/);
    expect(() => new SimExcavator({ joints: { boom: { min: 1, max: 0 } } })).toThrow(TypeError);
  });
});

describe("tracks and base pose", () => {
  it("equal speeds drive straight along the heading", () => {
    const { excavator } = ready();
    excavator.hal.actuator("left-track").setValue("velocity", 1);
    excavator.hal.actuator("right-track").setValue("velocity", 1);
    run(excavator, 2_000);
    expect(excavator.pose().x).toBeCloseTo(2, 9);
    expect(excavator.pose().y).toBeCloseTo(0, 9);
    expect(excavator.pose().heading).toBeCloseTo(0, 9);

    const north = ready({ initialPose: { heading: Math.PI / 2 } }).excavator;
    north.hal.actuator("left-track").setValue("velocity", -0.5);
    north.hal.actuator("right-track").setValue("velocity", -0.5);
    run(north, 2_000);
    expect(north.pose().x).toBeCloseTo(0, 9);
    expect(north.pose().y).toBeCloseTo(-1, 9); // reversing
  });

  it("opposite speeds turn in place, counter-clockwise when the right track runs forward", () => {
    const { excavator } = ready({ trackGaugeM: 2.4 });
    excavator.hal.actuator("left-track").setValue("velocity", -0.6);
    excavator.hal.actuator("right-track").setValue("velocity", 0.6);
    run(excavator, 1_000);
    expect(excavator.pose().heading).toBeCloseTo(0.5, 9); // (0.6 - -0.6) / 2.4 rad/s for 1 s
    expect(excavator.pose().x).toBeCloseTo(0, 9);
    expect(excavator.pose().y).toBeCloseTo(0, 9);
  });

  it("unequal speeds follow an arc, whatever the step size", () => {
    const fine = ready({ trackGaugeM: 2 }).excavator;
    const coarse = ready({ trackGaugeM: 2 }).excavator;
    for (const excavator of [fine, coarse]) {
      excavator.hal.actuator("left-track").setValue("velocity", 0.5);
      excavator.hal.actuator("right-track").setValue("velocity", 1.5);
    }
    // speed 1 m/s, turn rate 0.5 rad/s: a circle of radius 2 m; a quarter turn takes π s
    const quarterTurnMs = Math.PI * 1000;
    for (let t = 0; t < 3_140; t += 10) fine.step(10);
    fine.step(quarterTurnMs - 3_140);
    coarse.step(quarterTurnMs);
    for (const excavator of [fine, coarse]) {
      expect(excavator.pose().x).toBeCloseTo(2, 9);
      expect(excavator.pose().y).toBeCloseTo(2, 9);
      expect(excavator.pose().heading).toBeCloseTo(Math.PI / 2, 9);
    }
  });

  it("tracks are clamped to their top speed", () => {
    const { excavator, limitEvents } = ready({ maxTrackSpeed: 1.5 });
    excavator.hal.actuator("left-track").setValue("velocity", 4);
    excavator.hal.actuator("right-track").setValue("velocity", 4);
    run(excavator, 1_000);
    expect(excavator.pose().x).toBeCloseTo(1.5, 9);
    expect(limitEvents().map((e) => e.componentId)).toEqual(["left-track", "right-track"]);
  });
});

describe("safety and lifecycle", () => {
  it("zeroMotion() stops every joint and track, even with one component faulted", () => {
    const { excavator } = ready();
    for (const id of ["swing", "boom", "arm", "bucket", "left-track", "right-track"]) excavator.hal.actuator(id).setValue("velocity", 0.3);
    run(excavator, 100);
    excavator.track("left").injectFault("hydraulic pressure lost");
    const report = excavator.hal.zeroMotion();
    expect(report.failed).toEqual([]);
    expect(report.stopped).toEqual(["swing", "boom", "arm", "bucket", "left-track", "right-track"]);

    const before = { joints: excavator.joints(), pose: excavator.pose() };
    run(excavator, 1_000);
    expect(excavator.joints().map((j) => j.position)).toEqual(before.joints.map((j) => j.position));
    expect(excavator.pose()).toEqual(before.pose);
    expect(excavator.telemetry().faults).toEqual([{ componentId: "left-track", reason: "hydraulic pressure lost" }]);
  });

  it("a faulted track is braked and does not resume its old command after reinit", () => {
    const { excavator } = ready();
    const left = excavator.track("left");
    left.setValue("velocity", 1);
    excavator.hal.actuator("right-track").setValue("velocity", 1);
    left.injectFault("sensor lost");
    expect(excavator.telemetry().tracks).toEqual({ left: 0, right: 1 });
    left.reinit();
    expect(left.state).toBe(ComponentState.Ready);
    expect(excavator.telemetry().tracks).toEqual({ left: 0, right: 1 });
  });

  it("rejects nonsense step sizes", () => {
    const { excavator } = ready();
    for (const dt of [0, -10, Number.NaN, Number.POSITIVE_INFINITY]) expect(() => excavator.step(dt)).toThrow(TypeError);
  });

  it("finalize() stops the loop and finalises every component", () => {
    const { excavator } = ready();
    excavator.start();
    const report = excavator.finalize();
    expect(excavator.running).toBe(false);
    expect(report.failed).toEqual([]);
    expect(excavator.hal.list().every((c) => c.state === ComponentState.Finalized)).toBe(true);
  });

  it("start() steps at 100 Hz on the timer and stop() ends it", () => {
    vi.useFakeTimers({ now: 0 });
    const { excavator } = ready({ tickClock: () => Date.now() });
    excavator.hal.actuator("left-track").setValue("velocity", 1);
    excavator.hal.actuator("right-track").setValue("velocity", 1);
    excavator.start();
    excavator.start(); // idempotent
    vi.advanceTimersByTime(1_000);
    expect(excavator.telemetry().simTimeMs).toBe(1_000);
    expect(excavator.pose().x).toBeCloseTo(1, 9);
    excavator.stop();
    vi.advanceTimersByTime(1_000);
    expect(excavator.telemetry().simTimeMs).toBe(1_000);
  });
});

describe("profile and telemetry", () => {
  it("describes the device as plain JSON", () => {
    const profile = new SimExcavator({ trackGaugeM: 2.2 }).profile();
    expect(JSON.parse(JSON.stringify(profile))).toStrictEqual(profile);
    expect(profile).toMatchObject({
      driver: "sim-excavator", deviceClass: "excavator", watchdogMs: 200, latencyBudgetMs: 50, stepHz: 100,
      parameters: { trackGaugeM: 2.2 },
    });
    expect(profile.axes.map((a) => a.name)).toEqual(["swing", "boom", "arm", "bucket", "left-track", "right-track"]);
    expect(profile.axes[1]).toEqual({ name: "boom", mode: "velocity", unit: "rad", min: -0.6, max: 1.0, rateUnit: "rad/s", maxRate: 0.4 });
    expect(profile.axes[4]).toEqual({ name: "left-track", mode: "velocity", unit: "m", rateUnit: "m/s", maxRate: 1.5 });
  });

  it("reports pose, joints, tracks and component states, stamped by the injected clock", () => {
    const { excavator } = ready({ clock: () => 1_700_000_000_000 });
    const telemetry = excavator.telemetry();
    expect(JSON.parse(JSON.stringify(telemetry))).toStrictEqual(telemetry);
    expect(telemetry).toMatchObject({ timestamp: 1_700_000_000_000, simTimeMs: 0, pose: { x: 0, y: 0, heading: 0 }, faults: [] });
    expect(Object.values(telemetry.components)).toEqual(Array(6).fill("ready"));
  });
});
