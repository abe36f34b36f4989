/**
 * HalComponent, HalActuator, HalSensor: the lifecycle state machine, misuse errors,
 * typed mode errors, timed values, and observers that cannot break the component.
 */
import { describe, it, expect } from "vitest";
import { ComponentState, HalError, HalStateError, UnsupportedModeError, type ActuatorMode } from "../../../../devices/hal/index.ts";
import { TestActuator, TestSensor, recorder, thrown } from "./fixtures.ts";

describe("component lifecycle", () => {
  it("goes Uninitialized -> Ready -> Finalized and announces each transition", () => {
    let now = 1_000;
    const actuator = new TestActuator("boom", { clock: () => now });
    const observer = recorder();
    actuator.addObserver(observer);
    expect(actuator.state).toBe(ComponentState.Uninitialized);

    actuator.init();
    expect(actuator.state).toBe(ComponentState.Ready);
    now = 2_000;
    actuator.finalize();
    expect(actuator.state).toBe(ComponentState.Finalized);

    expect(observer.events).toEqual([
      { type: "state-changed", componentId: "boom", timestamp: 1_000, from: "uninitialized", to: "ready", reason: "initialised" },
      { type: "state-changed", componentId: "boom", timestamp: 2_000, from: "ready", to: "finalized", reason: "finalized" },
    ]);
  });

  it("refuses use outside Ready with a HalStateError naming the operation and state", () => {
    const actuator = new TestActuator("boom");
    const sensor = new TestSensor("battery");
    for (const call of [() => actuator.setValue("velocity", 0.1), () => actuator.getValue(), () => sensor.read()]) {
      const error = thrown(call);
      expect(error).toBeInstanceOf(HalStateError);
      expect(error.code).toBe("INVALID_STATE");
      expect((error as HalStateError).state).toBe("uninitialized");
    }
    expect((thrown(() => actuator.setValue("velocity", 0.1)) as HalStateError).operation).toBe("setValue");

    actuator.init();
    expect(thrown(() => actuator.init()).code).toBe("INVALID_STATE"); // init twice
    actuator.finalize();
    actuator.finalize(); // idempotent
    for (const call of [() => actuator.setValue("velocity", 0), () => actuator.init(), () => actuator.reinit(), () => actuator.stop()]) {
      expect(thrown(call)).toBeInstanceOf(HalStateError);
    }
    expect(thrown(() => new TestActuator("fresh").reinit()).message).toMatch(/reinit\(\) needs state ready or fault, but the component is uninitialized/);
  });

  it("goes to Fault when the driver fails to initialise, and reinit() recovers", () => {
    const actuator = new TestActuator("arm");
    const observer = recorder();
    actuator.addObserver(observer);
    actuator.failInit = true;

    const error = thrown(() => actuator.init());
    expect(error.code).toBe("INIT_FAILED");
    expect((error.cause as Error).message).toBe("bus not found");
    expect(actuator.state).toBe(ComponentState.Fault);
    expect(actuator.faultReason).toMatch(/initialisation failed: bus not found/);
    expect(observer.errors.map((e) => e.code)).toEqual(["INIT_FAILED"]);
    expect(observer.events.map((e) => e.type)).toEqual(["state-changed", "fault"]);

    actuator.failInit = false;
    actuator.reinit();
    expect(actuator.state).toBe(ComponentState.Ready);
    expect(actuator.faultReason).toBeUndefined();
  });

  it("faults on a failed command, refuses commands in Fault, but still takes a stop", () => {
    const actuator = new TestActuator("bucket");
    actuator.init();
    actuator.failApply = true;
    const error = thrown(() => actuator.setValue("velocity", 0.5));
    expect(error.code).toBe("COMMAND_FAILED");
    expect(actuator.state).toBe(ComponentState.Fault);

    expect(thrown(() => actuator.setValue("velocity", 0.1)).code).toBe("INVALID_STATE");
    actuator.failApply = false;
    actuator.stop();
    expect(actuator.applied.at(-1)).toEqual({ mode: "velocity", value: 0 });
    expect(actuator.state).toBe(ComponentState.Fault); // a stop does not clear the fault
  });

  it("is Finalized even when the driver's shutdown fails, and says so", () => {
    const actuator = new TestActuator("swing");
    const observer = recorder();
    actuator.addObserver(observer);
    actuator.init();
    actuator.failFinalize = true;
    expect(thrown(() => actuator.finalize()).code).toBe("FINALIZE_FAILED");
    expect(actuator.state).toBe(ComponentState.Finalized);
    expect(observer.errors.map((e) => e.code)).toEqual(["FINALIZE_FAILED"]);
  });

  it("validates ids and freezes properties", () => {
    expect(() => new TestActuator("")).toThrow(TypeError);
    expect(() => new TestActuator("bad id with spaces")).toThrow(TypeError);
    const actuator = new TestActuator("ok-1");
    expect(Object.isFrozen(actuator.properties)).toBe(true);
    expect(Object.isFrozen(actuator.properties.limits)).toBe(true);
    expect(actuator.properties).toMatchObject({ unit: "rad", limits: { min: -1, max: 1, maxRate: 2 } });
  });
});

describe("actuator modes and values", () => {
  it("rejects a mode the component does not support with UnsupportedModeError", () => {
    const actuator = new TestActuator("boom", { modes: ["velocity"] });
    actuator.init();
    const error = thrown(() => actuator.setValue("torque", 1));
    expect(error).toBeInstanceOf(UnsupportedModeError);
    expect(error.code).toBe("UNSUPPORTED_MODE");
    expect((error as UnsupportedModeError).supported).toEqual(["velocity"]);
    // a mode string from the wire that is no mode at all gets the same error
    expect(thrown(() => actuator.setValue("speed" as ActuatorMode, 1))).toBeInstanceOf(UnsupportedModeError);
    expect(thrown(() => actuator.getValue("position"))).toBeInstanceOf(UnsupportedModeError);
    expect(actuator.applied).toEqual([]);
  });

  it("rejects non-finite values before the driver sees them", () => {
    const actuator = new TestActuator("boom");
    actuator.init();
    for (const value of [Number.NaN, Number.POSITIVE_INFINITY, "1" as unknown as number]) {
      expect(thrown(() => actuator.setValue("velocity", value)).code).toBe("INVALID_VALUE");
    }
    expect(actuator.applied).toEqual([]);
    expect(actuator.state).toBe(ComponentState.Ready);
  });

  it("reads timed values stamped by the injected clock", () => {
    let now = 5_000;
    const actuator = new TestActuator("boom", { modes: ["position", "velocity"], clock: () => now });
    const sensor = new TestSensor("battery", () => now);
    actuator.init();
    sensor.init();
    actuator.setValue("position", 0.25);
    now = 5_010;
    expect(actuator.getValue()).toEqual({ value: 0.25, timestamp: 5_010 });
    expect(actuator.getValue("velocity")).toEqual({ value: 0, timestamp: 5_010 });
    sensor.reading = 87.5;
    expect(sensor.read()).toEqual({ value: 87.5, timestamp: 5_010 });
    expect(sensor.kind).toBe("sensor");
    expect(actuator.kind).toBe("actuator");
  });

  it("stop() needs a velocity-capable actuator", () => {
    const servo = new TestActuator("servo", { modes: ["position"] });
    servo.init();
    expect(servo.velocityCapable).toBe(false);
    expect(thrown(() => servo.stop())).toBeInstanceOf(UnsupportedModeError);
  });
});

describe("observers", () => {
  it("a throwing observer breaks neither the component nor the other observers", () => {
    const actuator = new TestActuator("boom");
    const before = recorder();
    const after = recorder();
    actuator.addObserver(before);
    actuator.addObserver({ onEvent: () => { throw new Error("observer bug"); } });
    actuator.addObserver(after);

    actuator.init();
    expect(actuator.state).toBe(ComponentState.Ready);
    expect(before.events.map((e) => e.type)).toEqual(["state-changed"]);
    expect(after.events.map((e) => e.type)).toEqual(["state-changed"]);
    // the others hear that an observer is broken, with the original as cause
    expect(before.errors.map((e) => e.code)).toEqual(["OBSERVER_FAILED"]);
    expect((after.errors[0].cause as Error).message).toBe("observer bug");

    actuator.setValue("velocity", 0.5); // still commandable
    expect(actuator.getValue().value).toBe(0.5);
  });

  it("a throwing error handler is contained too", () => {
    const actuator = new TestActuator("arm");
    const other = recorder();
    actuator.addObserver({ onError: () => { throw new Error("error handler bug"); } });
    actuator.addObserver(other);
    actuator.failInit = true;
    expect(thrown(() => actuator.init()).code).toBe("INIT_FAILED");
    expect(other.errors.map((e) => e.code)).toEqual(["INIT_FAILED"]);
  });

  it("delivers to a snapshot, so an observer may remove itself mid-delivery", () => {
    const actuator = new TestActuator("boom");
    const calls: string[] = [];
    const selfRemoving = { onEvent: () => { calls.push("self"); actuator.removeObserver(selfRemoving); } };
    actuator.addObserver(selfRemoving);
    actuator.addObserver({ onEvent: () => void calls.push("next") });
    actuator.init();
    actuator.reinit(); // Ready -> Ready: no transition, no event
    actuator.finalize();
    expect(calls).toEqual(["self", "next", "next"]);
  });

  it("stops delivering after removeObserver and caps how many can be added", () => {
    const actuator = new TestActuator("boom");
    const observer = recorder();
    actuator.addObserver(observer);
    actuator.addObserver(observer); // the same one twice counts once
    expect(actuator.removeObserver(observer)).toBe(true);
    actuator.init();
    expect(observer.events).toEqual([]);

    for (let i = 0; i < 64; i++) actuator.addObserver({});
    const error = thrown(() => actuator.addObserver({}));
    expect(error).toBeInstanceOf(HalError);
    expect(error.code).toBe("TOO_MANY_OBSERVERS");
  });
});
