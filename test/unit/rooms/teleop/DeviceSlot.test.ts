/**
 * DeviceSlot: one device of a room over a FakeDeviceLink on a FakeRoomClock: its link, the
 * holder's rate allowance, the watchdog mirror, revocation causes, telemetry versions.
 */
import { describe, expect, it } from "vitest";
import { tsunagi } from "../../../../proto/index.ts";
import { commandBurst } from "../../../../rooms/teleop/DeviceSlot.ts";
import { FakeDeviceLink } from "../../../fixtures/fakes/FakeDeviceLink.ts";
import { DEVICE, HOLDER, deviceWithHolder, testProfile } from "./deviceSetup.ts";

/** Tokens the allowance hands out right now. */
function drain(slot: { takeToken(): boolean }): number {
  let taken = 0;
  while (slot.takeToken()) taken++;
  return taken;
}

describe("DeviceSlot: the rate allowance", () => {
  it("is twice the device's control rate, at least 100 a second, refilled continuously", () => {
    expect([commandBurst(undefined), commandBurst(testProfile({ controlRateHz: 20 })), commandBurst(testProfile({ controlRateHz: 150 }))]).toEqual([100, 100, 300]);
    const { slot, clock } = deviceWithHolder(testProfile({ controlRateHz: 150 }));
    expect(drain(slot)).toBe(300);
    clock.advance(100);
    expect(drain(slot)).toBe(30);
  });

  it("is full again at a new profile's rate, and follows the profile while none came", () => {
    const { slot, link } = deviceWithHolder(testProfile());
    drain(slot);
    link.receiveProfile(testProfile({ controlRateHz: 100 }));
    expect(drain(slot)).toBe(200);
    link.receiveProfile(testProfile({ controlRateHz: 100, driver: "reconfigured" })); // the same rate
    expect(drain(slot)).toBe(200);
    const { slot: bare } = deviceWithHolder(undefined);
    expect(drain(bare)).toBe(100);
  });

  it("tells the holder it is over the allowance at most once a second", () => {
    const { slot, clock } = deviceWithHolder();
    expect([slot.reportRateLimit(clock.now()), slot.reportRateLimit(clock.now())]).toEqual([true, false]);
    clock.advance(999);
    expect(slot.reportRateLimit(clock.now())).toBe(false);
    clock.advance(1);
    expect(slot.reportRateLimit(clock.now())).toBe(true);
  });
});

describe("DeviceSlot: lease and link", () => {
  it("mirrors the adapter's watchdog: a holder silent longer than the window (plus slack) is silent; a heartbeat is a sign of life once", () => {
    const { slot, clock } = deviceWithHolder(testProfile({ watchdogWindowMs: 100 }));
    slot.leaseChanged(clock.now());
    clock.advance(120);
    expect(slot.holderSilent(clock.now(), 20)).toBe(false);
    expect(slot.acceptHeartbeat(1, clock.now())).toBe(true);
    clock.advance(100);
    expect(slot.acceptHeartbeat(1, clock.now())).toBe(false); // a replay proves nothing
    clock.advance(21);
    expect(slot.holderSilent(clock.now(), 20)).toBe(true);
  });

  it("is never silent without a holder or without a link", () => {
    const { slot, clock, lease, link } = deviceWithHolder();
    clock.advance(10_000);
    lease.expire();
    expect(slot.holderSilent(clock.now(), 20)).toBe(false);
    lease.acquire(HOLDER, "operator");
    slot.linkClosed(link);
    expect(slot.holderSilent(clock.now() + 10_000, 20)).toBe(false);
  });

  it("names why it revoked the lease, once", () => {
    const { slot, lease } = deviceWithHolder();
    const causes: Array<string | undefined> = [];
    lease.on("released", () => causes.push(slot.takeRevokeCause()));
    slot.revoke("latency-budget");
    expect(causes).toEqual(["latency-budget"]);
    expect(slot.takeRevokeCause()).toBeUndefined();
  });

  it("ends the holder's lease when telemetry says the adapter's watchdog killed it, not for another lease", () => {
    const { slot, lease, leaseId } = deviceWithHolder();
    slot.newTelemetry(tsunagi.v1.Telemetry.create({ deviceId: DEVICE, watchdogTripped: true, leaseId: "an-older-lease" }));
    expect(lease.holder?.leaseId).toBe(leaseId);
    slot.newTelemetry(tsunagi.v1.Telemetry.create({ deviceId: DEVICE, watchdogTripped: true, leaseId }));
    expect(lease.holder).toBeUndefined();
    expect(slot.takeRevokeCause()).toBe("watchdog"); // the cause its LeaseState announces
  });

  it("forgets a closed link only if it is still the current one; a new link replaces the old one's handler", () => {
    const { slot, link } = deviceWithHolder();
    const telemetry: string[] = [];
    slot.attach(link, { onTelemetry: () => telemetry.push("first") });
    const next = new FakeDeviceLink(DEVICE, testProfile());
    slot.attach(next, { onTelemetry: () => telemetry.push("next") });
    link.receiveTelemetry(tsunagi.v1.Telemetry.create({ deviceId: DEVICE }));
    next.receiveTelemetry(tsunagi.v1.Telemetry.create({ deviceId: DEVICE }));
    expect(telemetry).toEqual(["next"]);
    expect(slot.linkClosed(link)).toBe(false);
    expect(slot.link).toBe(next);
    expect(slot.linkClosed(next)).toBe(true);
    expect(slot.link).toBeUndefined();
    expect(slot.leaseState()).toMatchObject({ deviceId: DEVICE, holderSessionId: HOLDER, online: false, estopped: false });
  });
});

describe("DeviceSlot: telemetry", () => {
  it("encodes the newest sample once for everyone, and knows who was sent it", () => {
    const { slot } = deviceWithHolder();
    let encodings = 0;
    const encode = (telemetry: tsunagi.v1.Telemetry) => new Uint8Array([++encodings, telemetry.sampledAtMs]);
    expect(slot.telemetryFrameOnce(encode)).toBeUndefined();
    slot.newTelemetry(tsunagi.v1.Telemetry.create({ deviceId: DEVICE, sampledAtMs: 7 }));
    expect(slot.telemetryFrameOnce(encode)).toEqual(new Uint8Array([1, 7]));
    expect(slot.telemetryFrameOnce(encode)).toEqual(new Uint8Array([1, 7]));
    expect(slot.telemetryDue("s1")).toBe(true);
    slot.telemetrySent("s1");
    expect(slot.telemetryDue("s1")).toBe(false);
    slot.newTelemetry(tsunagi.v1.Telemetry.create({ deviceId: DEVICE, sampledAtMs: 8 }));
    expect(slot.telemetryDue("s1")).toBe(true);
    expect(slot.telemetryFrameOnce(encode)).toEqual(new Uint8Array([2, 8]));
    slot.telemetrySent("s1");
    slot.forget("s1");
    expect(slot.telemetryDue("s1")).toBe(true);
  });
});
