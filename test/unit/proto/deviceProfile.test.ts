import { describe, expect, it } from "vitest";
import { deviceClassName, effectiveDeadlineMs, enrolledClassProblem, profileProblem } from "../../../proto/deviceProfile.ts";
import { tsunagi } from "../../../proto/index.ts";

describe("effectiveDeadlineMs", () => {
  const now = 1_000_000;

  it("is the earlier of the deadline and issued + budget", () => {
    expect(effectiveDeadlineMs({ issuedAtMs: now - 10, deadlineMs: now + 500 }, now, 50)).toBe(now + 40);
    expect(effectiveDeadlineMs({ issuedAtMs: now - 10, deadlineMs: now + 20 }, now, 50)).toBe(now + 20);
  });

  it("takes an issue time ahead of the checker's clock as now: a fast clock cannot stretch a command's life", () => {
    expect(effectiveDeadlineMs({ issuedAtMs: now + 60_000, deadlineMs: now + 120_000 }, now, 50)).toBe(now + 50);
  });

  it("is NaN (expired) without a deadline or with a value that is not a number", () => {
    expect(effectiveDeadlineMs({ issuedAtMs: now, deadlineMs: 0 }, now, 50)).toBeNaN();
    expect(effectiveDeadlineMs({ issuedAtMs: now }, now, 50)).toBeNaN();
    expect(effectiveDeadlineMs({ issuedAtMs: Number.NaN, deadlineMs: now + 10 }, now, 50)).toBeNaN();
  });

  it("uses the deadline alone when there is no budget", () => {
    expect(effectiveDeadlineMs({ issuedAtMs: now + 60_000, deadlineMs: now + 120_000 }, now, 0)).toBe(now + 120_000);
  });
});

describe("profileProblem", () => {
  const valid = (): tsunagi.v1.IDeviceProfile => ({
    deviceId: "ex-1", deviceClass: tsunagi.v1.DeviceClass.DEVICE_CLASS_EXCAVATOR, telemetryRateHz: 10, controlRateHz: 50,
    axes: [{ name: "swing", mode: tsunagi.v1.AxisMode.AXIS_MODE_VELOCITY, maxRate: 1 }],
  });

  it("accepts a usable profile, also one that states no control rate", () => {
    expect(profileProblem(valid(), "ex-1")).toBeUndefined();
    expect(profileProblem({ ...valid(), controlRateHz: 0 }, "ex-1")).toBeUndefined();
  });

  it("refuses a control rate that is not a number within 0-1000 (it sets the device's command allowance)", () => {
    for (const controlRateHz of [Number.POSITIVE_INFINITY, Number.NaN, -1, 1001]) {
      expect(profileProblem({ ...valid(), controlRateHz }, "ex-1")).toMatch(/control_rate_hz/);
    }
  });
});

describe("enrolledClassProblem", () => {
  const Class = tsunagi.v1.DeviceClass;
  it("passes a profile whose class is the enrolled one, by enrolment's names (rc-car for DEVICE_CLASS_RC_CAR)", () => {
    expect(deviceClassName(Class.DEVICE_CLASS_RC_CAR)).toBe("rc-car");
    expect(enrolledClassProblem({ deviceClass: Class.DEVICE_CLASS_EXCAVATOR }, "excavator")).toBeUndefined();
    expect(enrolledClassProblem({ deviceClass: Class.DEVICE_CLASS_RC_CAR }, "rc-car")).toBeUndefined();
    expect(enrolledClassProblem({ deviceClass: Class.DEVICE_CLASS_OTHER }, "other")).toBeUndefined();
  });

  it("names the mismatch: another class, an unset one, or one this build does not know", () => {
    expect(enrolledClassProblem({ deviceClass: Class.DEVICE_CLASS_DRONE }, "excavator")).toContain("device_class drone is not the class the device was enrolled as (excavator)");
    expect(enrolledClassProblem({ deviceClass: Class.DEVICE_CLASS_UNSPECIFIED }, "excavator")).toBeDefined();
    expect(enrolledClassProblem({ deviceClass: 42 as tsunagi.v1.DeviceClass }, "excavator")).toContain("42");
    expect(enrolledClassProblem({ deviceClass: Class.DEVICE_CLASS_EXCAVATOR }, "forklift")).toBeDefined();
  });
});
