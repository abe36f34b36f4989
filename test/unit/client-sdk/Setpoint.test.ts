/**
 * Setpoint: clamped values by name and by index, neutral with position axes left out,
 * and back to neutral when the profile's axes change.
 */
import { describe, it, expect } from "vitest";
import { Setpoint } from "../../../client-sdk/Setpoint.ts";
import { tsunagi } from "../../../proto/index.ts";
import { excavatorProfile } from "../../fixtures/fakes/deviceProfiles.ts";

const profileOf = (overrides: Partial<tsunagi.v1.IDeviceProfile> = {}) => tsunagi.v1.DeviceProfile.fromObject(excavatorProfile("ex-1", overrides));
const Mode = tsunagi.v1.AxisMode;

describe("Setpoint", () => {
  it("refuses values before a profile, then sets them clamped, by name or index, all or nothing", () => {
    const setpoint = new Setpoint("ex-1");
    expect(() => setpoint.set({ boom: 0.1 })).toThrow(/no DeviceProfile for ex-1/);
    setpoint.adopt(profileOf());
    expect(setpoint.values).toEqual([0, 0, 0, 0, 0, 0]);
    expect(setpoint.set({ boom: 3, swing: -0.5 })).toEqual({ boom: 0.4, swing: -0.5 });
    expect(() => setpoint.set({ arm: 0.1, nope: 1 })).toThrow(TypeError);
    expect(setpoint.values).toEqual([-0.5, 0.4, 0, 0, 0, 0]);
    expect(setpoint.setByIndex([undefined, null, 0.2])).toEqual({ arm: 0.2 });
    expect(setpoint.values).toEqual([-0.5, 0.4, 0.2, 0, 0, 0]);
  });

  it("leaves position axes out of commands until set; neutral leaves them out again", () => {
    const setpoint = new Setpoint("ex-1");
    setpoint.adopt(profileOf({ axes: [
      { name: "stick", mode: Mode.AXIS_MODE_POSITION, min: -1, max: 1 },
      { name: "drive", mode: Mode.AXIS_MODE_VELOCITY, maxRate: 2 },
      { name: "grip", mode: Mode.AXIS_MODE_TORQUE, maxEffort: 5 },
    ] }));
    expect(setpoint.values).toEqual([undefined, 0, 0]);
    expect(setpoint.byName).toEqual({ drive: 0, grip: 0 });
    setpoint.set({ stick: 3, grip: 9 });
    expect(setpoint.byName).toEqual({ stick: 1, drive: 0, grip: 5 });
    expect(setpoint.neutralValues()).toEqual([undefined, 0, 0]);
    setpoint.neutral();
    expect(setpoint.values).toEqual([undefined, 0, 0]);
  });

  it("keeps its values for a profile with the same axes, and returns to neutral when they change", () => {
    const setpoint = new Setpoint("ex-1");
    setpoint.adopt(profileOf());
    setpoint.set({ boom: 0.3 });
    setpoint.adopt(profileOf({ driver: "renamed", telemetryRateHz: 20 }));
    expect(setpoint.byName.boom).toBe(0.3);
    const slower = profileOf();
    slower.axes[1].maxRate = 0.2;
    setpoint.adopt(slower);
    expect(setpoint.byName.boom).toBe(0);
    expect(setpoint.set({ boom: 1 })).toEqual({ boom: 0.2 });
  });
});
