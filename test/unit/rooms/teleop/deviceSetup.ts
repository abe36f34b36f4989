/**
 * What the unit tests of the teleop room's pieces share: a device profile, and one
 * device of a room (a DeviceSlot with its ControlLease) over a FakeDeviceLink, on a
 * FakeRoomClock, with an operator holding its lease.
 */
import { tsunagi } from "../../../../proto/index.ts";
import { ControlLease } from "../../../../rooms/teleop/ControlLease.ts";
import { DeviceSlot } from "../../../../rooms/teleop/DeviceSlot.ts";
import { FakeRoomClock } from "../../../fixtures/fakes/FakeRoomClock.ts";
import { FakeDeviceLink } from "../../../fixtures/fakes/FakeDeviceLink.ts";

export const DEVICE = "ex-1";
export const HOLDER = "op-a";
/** The profile's latency budget, ms. */
export const BUDGET_MS = 50;

/** An excavator-like profile: one velocity axis (boom, ±1 rad/s), one action with a value (lift, 0-10 m). */
export function testProfile(fields: Partial<tsunagi.v1.IDeviceProfile> = {}): tsunagi.v1.DeviceProfile {
  return tsunagi.v1.DeviceProfile.create({
    deviceId: DEVICE, deviceClass: tsunagi.v1.DeviceClass.DEVICE_CLASS_EXCAVATOR, telemetryRateHz: 10, latencyBudgetMs: BUDGET_MS,
    axes: [{ name: "boom", mode: tsunagi.v1.AxisMode.AXIS_MODE_VELOCITY, unit: "rad", maxRate: 1, rateUnit: "rad/s" }],
    actions: [{ name: "lift", hasValue: true, unit: "m", min: 0, max: 10 }],
    ...fields,
  });
}

/** One device with its adapter connected and HOLDER holding its lease. */
export function deviceWithHolder(profile: tsunagi.v1.DeviceProfile | undefined = testProfile()) {
  const clock = new FakeRoomClock();
  let leases = 0;
  const lease = new ControlLease({ deviceId: DEVICE, ttlMs: 1000, clock: clock.now, newLeaseId: () => `L${++leases}` });
  const slot = new DeviceSlot({ deviceId: DEVICE, lease, now: clock.now });
  const link = new FakeDeviceLink(DEVICE, profile);
  slot.attach(link, { onProfile: (sent) => slot.resetAllowance(sent) });
  lease.acquire(HOLDER, "operator");
  const leaseId = lease.holder!.leaseId;
  /** A command from the holder, valid unless `fields` say otherwise. */
  const command = (fields: Partial<tsunagi.v1.IControlCommand> = {}) => tsunagi.v1.ControlCommand.create({
    deviceId: DEVICE, leaseId, seq: 1, issuedAtMs: clock.now(), deadlineMs: clock.now() + BUDGET_MS, axes: [{ name: "boom", value: 0.5 }], ...fields,
  });
  /** An action from the holder, valid unless `fields` say otherwise. */
  const action = (fields: Partial<tsunagi.v1.IDeviceAction> = {}) => tsunagi.v1.DeviceAction.create({
    deviceId: DEVICE, leaseId, action: "lift", value: 3, issuedAtMs: clock.now(), deadlineMs: clock.now() + BUDGET_MS, ...fields,
  });
  return { clock, lease, slot, link, leaseId, command, action };
}
