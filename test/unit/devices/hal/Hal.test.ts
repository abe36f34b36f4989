/**
 * Hal: the registry, init/finalize of everything, event relay, and zeroMotion(), which
 * the adapter's watchdog calls and which must stop what it can and never throw.
 */
import { describe, it, expect } from "vitest";
import { ComponentState, Hal } from "../../../../devices/hal/index.ts";
import { TestActuator, TestSensor, recorder, thrown } from "./fixtures.ts";

function machine() {
  const hal = new Hal();
  const boom = hal.add(new TestActuator("boom"));
  const arm = hal.add(new TestActuator("arm"));
  const servo = hal.add(new TestActuator("servo", { modes: ["position"] }));
  const battery = hal.add(new TestSensor("battery"));
  return { hal, boom, arm, servo, battery };
}

describe("Hal registry", () => {
  it("holds components by id and says which ids exist when one is missing", () => {
    const { hal, boom, battery } = machine();
    expect(hal.get("boom")).toBe(boom);
    expect(hal.actuator("boom")).toBe(boom);
    expect(hal.sensor("battery")).toBe(battery);
    expect(hal.find("nope")).toBeUndefined();
    expect(hal.list().map((c) => c.id)).toEqual(["boom", "arm", "servo", "battery"]);

    const unknown = thrown(() => hal.get("stick"));
    expect(unknown.code).toBe("UNKNOWN_COMPONENT");
    expect(unknown.message).toContain("registered: boom, arm, servo, battery");
    expect(thrown(() => hal.add(new TestActuator("boom"))).code).toBe("DUPLICATE_COMPONENT");
    expect(thrown(() => hal.actuator("battery")).code).toBe("WRONG_KIND");
    expect(thrown(() => hal.sensor("boom")).code).toBe("WRONG_KIND");
  });

  it("relays every component's events and errors to its observers until removed", () => {
    const { hal, boom } = machine();
    const observer = recorder();
    hal.addObserver(observer);
    hal.initAll();
    expect(observer.events.filter((e) => e.type === "state-changed").map((e) => e.componentId)).toEqual(["boom", "arm", "servo", "battery"]);

    boom.failApply = true;
    expect(thrown(() => boom.setValue("velocity", 1)).code).toBe("COMMAND_FAILED");
    expect(observer.errors.map((e) => [e.code, e.componentId])).toEqual([["COMMAND_FAILED", "boom"]]);

    expect(hal.remove("boom")).toBe(true);
    boom.reinit();
    expect(observer.events.filter((e) => e.componentId === "boom" && e.type === "state-changed").at(-1)).toMatchObject({ to: "fault" });
  });

  it("initAll() tries every component, then names the ones that failed", () => {
    const { hal, boom, arm, servo } = machine();
    arm.failInit = true;
    servo.failInit = true;
    const error = thrown(() => hal.initAll());
    expect(error.code).toBe("INIT_FAILED");
    expect(error.message).toMatch(/^2 of 4 components failed to initialise: arm: .*; servo: /);
    expect(error.cause).toBeInstanceOf(AggregateError);
    expect(boom.state).toBe(ComponentState.Ready);
    expect(arm.state).toBe(ComponentState.Fault);
    expect(hal.get("battery").state).toBe(ComponentState.Ready);
  });

  it("finalizeAll() finalises last-registered first and never throws", () => {
    const { hal, arm } = machine();
    const order: string[] = [];
    hal.addObserver({ onEvent: (e) => { if (e.type === "state-changed" && e.to === "finalized") order.push(e.componentId); } });
    const errors = recorder();
    hal.addObserver(errors);
    hal.initAll();
    arm.failFinalize = true;
    const report = hal.finalizeAll();
    expect(order).toEqual(["battery", "servo", "arm", "boom"]);
    expect(report.finalized).toEqual(["battery", "servo", "boom"]);
    expect(report.failed.map((f) => [f.componentId, f.error.code])).toEqual([["arm", "FINALIZE_FAILED"]]);
    expect(errors.errors.map((e) => e.code)).toEqual(["FINALIZE_FAILED"]); // heard once, not twice
    expect(hal.list().every((c) => c.state === ComponentState.Finalized)).toBe(true);
  });
});

describe("Hal.zeroMotion()", () => {
  it("commands zero velocity to every velocity-capable actuator", () => {
    const { hal, boom, arm, servo } = machine();
    hal.initAll();
    boom.setValue("velocity", 0.7);
    arm.setValue("velocity", -0.3);
    const report = hal.zeroMotion();
    expect(report).toEqual({ stopped: ["boom", "arm"], skipped: [], failed: [] });
    expect(boom.values.get("velocity")).toBe(0);
    expect(arm.values.get("velocity")).toBe(0);
    expect(servo.applied).toEqual([]); // position-only: nothing to zero
  });

  it("never throws: a faulted component still gets its stop, a failing one is reported, the rest stop", () => {
    const hal = new Hal();
    const faulted = hal.add(new TestActuator("faulted"));
    const broken = hal.add(new TestActuator("broken"));
    const healthy = hal.add(new TestActuator("healthy"));
    const notStarted = hal.add(new TestActuator("not-started"));
    const observer = recorder();
    hal.addObserver(observer);
    // an observer whose handlers throw must not turn zeroMotion into a throw either
    hal.addObserver({ onEvent: () => { throw new Error("bad observer"); }, onError: () => { throw new Error("bad observer"); } });
    faulted.init();
    broken.init();
    healthy.init();
    healthy.setValue("velocity", 1);
    faulted.setValue("velocity", 1);
    faulted.fail("overcurrent");
    broken.failStop = true;

    let report: ReturnType<Hal["zeroMotion"]> | undefined;
    expect(() => { report = hal.zeroMotion(); }).not.toThrow();
    expect(report!.stopped).toEqual(["faulted", "healthy"]);
    expect(report!.skipped).toEqual(["not-started"]);
    expect(report!.failed.map((f) => [f.componentId, f.error.code])).toEqual([["broken", "STOP_FAILED"]]);
    expect(faulted.values.get("velocity")).toBe(0);
    expect(healthy.values.get("velocity")).toBe(0);
    expect(broken.state).toBe(ComponentState.Fault);
    expect(notStarted.applied).toEqual([]);

    const stopFailures = observer.errors.filter((e) => e.code === "STOP_FAILED");
    expect(stopFailures).toHaveLength(1);
    expect(stopFailures[0].componentId).toBe("broken");
    expect((stopFailures[0].cause as Error).message).toBe("stop not acknowledged");
    expect(observer.events.some((e) => e.type === "fault" && e.componentId === "broken")).toBe(true);
  });

  it("skips finalized components and is harmless on an empty Hal", () => {
    expect(new Hal().zeroMotion()).toEqual({ stopped: [], skipped: [], failed: [] });
    const { hal } = machine();
    hal.initAll();
    hal.finalizeAll();
    expect(hal.zeroMotion()).toEqual({ stopped: [], skipped: ["boom", "arm"], failed: [] });
  });
});
