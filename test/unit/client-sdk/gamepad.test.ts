/**
 * The gamepad mapping, pure: standard-layout pads in, axis values by name out, for the
 * excavator (ISO pattern), the drone (mode 2) and any other device.
 */
import { describe, it, expect } from "vitest";
import {
  gamepadToAxes, gamepadWantsEStop, defaultGamepadMapping, applyDeadzone, StandardGamepad, type GamepadLike,
} from "../../../client-sdk/gamepad.ts";
import { tsunagi } from "../../../proto/index.ts";
import { excavatorProfile, droneProfile } from "../../fixtures/fakes/deviceProfiles.ts";

const excavator = excavatorProfile("ex-1");
const drone = droneProfile("drone-1");

/** A standard-layout pad at rest, with some sticks or buttons set. */
function pad(axes: Partial<Record<number, number>> = {}, buttons: Partial<Record<number, GamepadLike["buttons"][number]>> = {}): GamepadLike {
  return {
    axes: [0, 1, 2, 3].map((i) => axes[i] ?? 0),
    buttons: Array.from({ length: 17 }, (_, i) => buttons[i] ?? { pressed: false, value: 0 }),
  };
}

describe("applyDeadzone", () => {
  it("reads 0 inside the deadzone and rescales the rest to reach ±1", () => {
    expect(applyDeadzone(0.05, 0.08)).toBe(0);
    expect(applyDeadzone(-0.08, 0.08)).toBe(0);
    expect(applyDeadzone(0.54, 0.08)).toBeCloseTo(0.5, 12);
    expect(applyDeadzone(-1, 0.08)).toBe(-1);
    expect(applyDeadzone(1.3, 0.08)).toBe(1); // a pad that over-reports stays within ±1
    expect(applyDeadzone(Number.NaN, 0.08)).toBe(0);
  });
});

describe("gamepadToAxes: excavator, ISO pattern", () => {
  it("gives every excavator axis 0 at rest", () => {
    expect(gamepadToAxes(pad(), excavator)).toEqual({ swing: 0, boom: 0, arm: 0, bucket: 0, "left-track": 0, "right-track": 0 });
  });

  it("left stick: X swings (right = clockwise, swing −), Y drives the arm (forward = out, arm +)", () => {
    expect(gamepadToAxes(pad({ [StandardGamepad.leftStickX]: 1 }), excavator)).toMatchObject({ swing: -1.0, arm: 0 });
    expect(gamepadToAxes(pad({ [StandardGamepad.leftStickY]: -1 }), excavator)).toMatchObject({ arm: 0.6, swing: 0 });
  });

  it("right stick: Y drives the boom (back = up, boom +), X the bucket (right = dump +, left = curl −)", () => {
    expect(gamepadToAxes(pad({ [StandardGamepad.rightStickY]: 1 }), excavator)).toMatchObject({ boom: 0.4 });
    expect(gamepadToAxes(pad({ [StandardGamepad.rightStickY]: -1 }), excavator)).toMatchObject({ boom: -0.4 });
    expect(gamepadToAxes(pad({ [StandardGamepad.rightStickX]: -1 }), excavator)).toMatchObject({ bucket: -1.0 });
  });

  it("triggers drive the tracks forward, scaled past the deadzone; a held bumper reverses", () => {
    const half = pad({}, { [StandardGamepad.leftTrigger]: { pressed: true, value: 0.54 }, [StandardGamepad.rightTrigger]: { pressed: true, value: 1 } });
    const forward = gamepadToAxes(half, excavator);
    expect(forward["left-track"]).toBeCloseTo(0.75, 12); // 0.5 of 1.5 m/s
    expect(forward["right-track"]).toBe(1.5);
    const reverse = pad({}, { [StandardGamepad.rightTrigger]: { pressed: true, value: 1 }, [StandardGamepad.rightBumper]: true });
    expect(gamepadToAxes(reverse, excavator)["right-track"]).toBe(-1.5);
    // a digital trigger (a boolean, or pressed without a value) reads full
    expect(gamepadToAxes(pad({}, { [StandardGamepad.leftTrigger]: true }), excavator)["left-track"]).toBe(1.5);
    expect(gamepadToAxes(pad({}, { [StandardGamepad.leftTrigger]: { pressed: true } }), excavator)["left-track"]).toBe(1.5);
  });

  it("applies the deadzone: stick drift near centre sends nothing", () => {
    const drifting = pad({ 0: 0.07, 1: -0.05, 2: 0.079, 3: -0.02 }, { [StandardGamepad.leftTrigger]: { pressed: false, value: 0.03 } });
    expect(Object.values(gamepadToAxes(drifting, excavator)).every((v) => v === 0)).toBe(true);
    const wider = defaultGamepadMapping(excavator, { deadzone: 0.2 });
    expect(gamepadToAxes(pad({ 3: 0.15 }), excavator, wider).boom).toBe(0);
    expect(gamepadToAxes(pad({ 3: 0.6 }), excavator, wider).boom).toBeCloseTo(0.2, 12); // (0.6-0.2)/0.8 × 0.4
    expect(() => defaultGamepadMapping(excavator, { deadzone: 1 })).toThrow(TypeError);
  });

  it("stops when the pad is missing or unplugged", () => {
    const zeros = { swing: 0, boom: 0, arm: 0, bucket: 0, "left-track": 0, "right-track": 0 };
    expect(gamepadToAxes(null, excavator)).toEqual(zeros);
    expect(gamepadToAxes(undefined, excavator)).toEqual(zeros);
    expect(gamepadToAxes({ ...pad({ 3: 1 }), connected: false }, excavator)).toEqual(zeros);
  });
});

describe("gamepadToAxes: drone, mode 2", () => {
  it("left stick Y climbs, X yaws; right stick Y flies forward, X sideways", () => {
    expect(gamepadToAxes(pad({ [StandardGamepad.leftStickY]: -1 }), drone)).toEqual({ vx: 0, vy: 0, vz: 2, "yaw-rate": 0 });
    expect(gamepadToAxes(pad({ [StandardGamepad.leftStickX]: 1 }), drone)).toMatchObject({ "yaw-rate": -1.5 }); // right: clockwise
    expect(gamepadToAxes(pad({ [StandardGamepad.rightStickY]: -1 }), drone)).toMatchObject({ vx: 5 });
    expect(gamepadToAxes(pad({ [StandardGamepad.rightStickX]: 1 }), drone)).toMatchObject({ vy: -5 }); // right: vy is left-positive
  });

  it("is chosen by axis names when the device class is not set", () => {
    const unclassed = { ...drone, deviceClass: tsunagi.v1.DeviceClass.DEVICE_CLASS_UNSPECIFIED };
    expect(Object.keys(defaultGamepadMapping(unclassed).axes).sort()).toEqual(["vx", "vy", "vz", "yaw-rate"]);
  });
});

describe("gamepadToAxes: other devices", () => {
  const car: tsunagi.v1.IDeviceProfile = {
    deviceId: "car-1", deviceClass: tsunagi.v1.DeviceClass.DEVICE_CLASS_RC_CAR,
    axes: [
      { name: "throttle", mode: tsunagi.v1.AxisMode.AXIS_MODE_VELOCITY, maxRate: 3 },
      { name: "mast", mode: tsunagi.v1.AxisMode.AXIS_MODE_POSITION, min: 0, max: 1, maxRate: 0.1 },
      { name: "steer", mode: tsunagi.v1.AxisMode.AXIS_MODE_VELOCITY, maxRate: 0.5 },
      { name: "winch", mode: tsunagi.v1.AxisMode.AXIS_MODE_TORQUE, maxRate: 1, maxEffort: 40 },
    ],
  };

  it("puts the sticks on the first velocity or torque axes, up and right positive; position axes are left out", () => {
    expect(defaultGamepadMapping(car).axes).toEqual({
      throttle: { stick: StandardGamepad.leftStickY, invert: true },
      steer: { stick: StandardGamepad.leftStickX },
      winch: { stick: StandardGamepad.rightStickY, invert: true },
    });
    expect(gamepadToAxes(pad({ 0: 1, 1: -1, 3: -0.54 }), car)).toEqual({ throttle: 3, steer: 0.5, winch: expect.closeTo(20, 9) });
  });

  it("ignores mapping entries for axes the profile lacks", () => {
    const mapping = { axes: { throttle: { stick: 1, invert: true }, rudder: { stick: 2 } }, deadzone: 0 };
    expect(gamepadToAxes(pad({ 1: -0.5, 2: 1 }), car, mapping)).toEqual({ throttle: 1.5 });
  });
});

describe("gamepadWantsEStop", () => {
  it("is the back/select button (8) by default, and any button a mapping names", () => {
    expect(gamepadWantsEStop(pad())).toBe(false);
    expect(gamepadWantsEStop(pad({}, { [StandardGamepad.back]: { pressed: true, value: 1 } }))).toBe(true);
    expect(gamepadWantsEStop(pad({}, { 8: true }), defaultGamepadMapping(excavator))).toBe(true);
    expect(gamepadWantsEStop(pad({}, { 8: true }), { estopButton: 11 })).toBe(false);
    expect(gamepadWantsEStop(pad({}, { 11: true }), { estopButton: 11 })).toBe(true);
    expect(gamepadWantsEStop(pad({}, { 8: true }), { estopButton: undefined })).toBe(false);
    expect(gamepadWantsEStop(null)).toBe(false);
  });
});
