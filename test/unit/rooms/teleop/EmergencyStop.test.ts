/**
 * EmergencyStop: who may raise and reset, and the order: every device is told to stop
 * before any is latched. Devices are DeviceSlots over FakeDeviceLinks on a FakeRoomClock.
 */
import { describe, expect, it } from "vitest";
import { ErrorCode, tsunagi } from "../../../../proto/index.ts";
import { ControlLease } from "../../../../rooms/teleop/ControlLease.ts";
import { DeviceSlot } from "../../../../rooms/teleop/DeviceSlot.ts";
import { EmergencyStop, type EStopSender } from "../../../../rooms/teleop/EmergencyStop.ts";
import { FakeRoomClock } from "../../../fixtures/fakes/FakeRoomClock.ts";
import { FakeDeviceLink } from "../../../fixtures/fakes/FakeDeviceLink.ts";

const operator: EStopSender = { sessionId: "op-1", role: "operator", subject: "olga" };
const supervisor: EStopSender = { sessionId: "sup-1", role: "supervisor", subject: "sam" };

/** Two devices; `order` records stops sent and latches, as they happen. */
function setup() {
  const clock = new FakeRoomClock();
  const order: string[] = [];
  const slots = new Map<string, DeviceSlot>();
  const links = new Map<string, FakeDeviceLink>();
  for (const deviceId of ["ex-1", "dr-1"]) {
    const lease = new ControlLease({ deviceId, clock: clock.now });
    lease.on("estopped", () => order.push(`latch ${deviceId}`));
    const slot = new DeviceSlot({ deviceId, lease, now: clock.now });
    const link = new FakeDeviceLink(deviceId);
    const sendEStop = link.sendEStop.bind(link);
    link.sendEStop = (estop) => { order.push(`stop ${deviceId}`); return sendEStop(estop); };
    slot.attach(link, {});
    slots.set(deviceId, slot);
    links.set(deviceId, link);
  }
  const broadcasts: tsunagi.v1.IEnvelope[] = [];
  /** Who each broadcast left out (the sender, who gets the reply), in order. */
  const excepted: Array<string | undefined> = [];
  const counted: string[] = [];
  const told: Array<{ sessionId: string; code: ErrorCode; message: string }> = [];
  const estops = new EmergencyStop({
    slots, now: clock.now, broadcast: (envelope, except) => { broadcasts.push(envelope); excepted.push(except); }, roomId: "site-1",
    latched: (deviceId, { source, first }) => { counted.push(`${deviceId} ${source}${first ? "" : " again"}`); },
    tell: (sessionId, code, message) => { told.push({ sessionId, code, message }); },
  });
  const estop = (fields: Partial<tsunagi.v1.IEStop>) => tsunagi.v1.EStop.create({ reason: "test", ...fields });
  return { clock, order, slots, links, broadcasts, excepted, counted, told, estops, estop };
}

describe("EmergencyStop: raising", () => {
  it("stops every device before latching any, then tells everyone", () => {
    const { estops, estop, order, slots, broadcasts } = setup();
    const outcome = estops.raise(operator, estop({ all: true, reason: "person in the swing radius" }));
    expect(order).toEqual(["stop ex-1", "stop dr-1", "latch ex-1", "latch dr-1"]);
    expect([...slots.values()].every((slot) => slot.lease.estopped)).toBe(true);
    expect(broadcasts.map((envelope) => envelope.estop?.deviceId)).toEqual(["ex-1", "dr-1"]);
    expect(outcome).toEqual({ reply: expect.objectContaining({ all: true, reason: "person in the swing radius", raisedBy: "olga (op-1)" }) });
  });

  it("stops everything when the e-stop names neither a device nor all; one device when it names one", () => {
    const first = setup();
    first.estops.raise(operator, first.estop({}));
    expect(first.order.filter((step) => step.startsWith("latch"))).toEqual(["latch ex-1", "latch dr-1"]);
    const second = setup();
    second.estops.raise(operator, second.estop({ deviceId: "dr-1" }));
    expect(second.order).toEqual(["stop dr-1", "latch dr-1"]);
  });

  it("refuses roles that may not (FORBIDDEN), stopping nothing", () => {
    const { estops, estop, order } = setup();
    for (const role of ["visitor", "host"] as const) {
      expect(estops.raise({ ...operator, role }, estop({ all: true }))).toMatchObject({ refused: { code: ErrorCode.FORBIDDEN } });
      expect(estops.raise({ ...operator, role }, estop({ deviceId: "ex-9" }))).toMatchObject({ refused: { code: ErrorCode.FORBIDDEN } });
    }
    expect(estops.raise(undefined, estop({ all: true }))).toMatchObject({ refused: { code: ErrorCode.FORBIDDEN } });
    expect(order).toEqual([]);
  });

  it("an e-stop naming a device not in the room stops and latches every device, then answers DEVICE_UNKNOWN; the sender is told what stopped", () => {
    const { estops, estop, order, slots, links, broadcasts, excepted } = setup();
    const outcome = estops.raise(operator, estop({ deviceId: "ex-9", reason: "typo in the id" }));
    expect(outcome).toMatchObject({ refused: { code: ErrorCode.DEVICE_UNKNOWN, message: expect.stringContaining("every device of the room was stopped") } });
    expect(order).toEqual(["stop ex-1", "stop dr-1", "latch ex-1", "latch dr-1"]);
    expect([...slots.values()].every((slot) => slot.lease.estopped)).toBe(true);
    expect(links.get("ex-1")!.estops[0]!.reason).toContain('unknown device "ex-9"');
    // the refusal does not say what stopped, so the notices reach the sender too
    expect(broadcasts.map((envelope) => envelope.estop?.deviceId)).toEqual(["ex-1", "dr-1"]);
    expect(excepted).toEqual([undefined, undefined]);
  });

  it("the sender is left out of its own e-stop's notices: its reply is its one answer", () => {
    const { estops, estop, excepted } = setup();
    estops.raise(operator, estop({ deviceId: "ex-1" }));
    estops.raise(operator, estop({ all: true }));
    expect(excepted).toEqual(["op-1", "op-1", "op-1"]);
  });

  it("keeps the sender's press time when plausible (within 10 s of the room's clock), the room's own otherwise", () => {
    const { estops, estop, links, clock } = setup();
    estops.raise(operator, estop({ deviceId: "ex-1", raisedAtMs: clock.now() - 9_000 }));
    estops.raise(operator, estop({ deviceId: "dr-1", raisedAtMs: clock.now() - 11_000 }));
    expect([links.get("ex-1")!.estops[0].raisedAtMs, links.get("dr-1")!.estops[0].raisedAtMs]).toEqual([clock.now() - 9_000, clock.now()]);
  });

  it("latches an e-stop the device raised itself, counted by its source", () => {
    const { estops, slots, links, counted } = setup();
    estops.deviceRaised(slots.get("ex-1")!, tsunagi.v1.EStop.create({ reason: "" }));
    expect(slots.get("ex-1")!.lease.estopLatch).toMatchObject({ by: "device:ex-1", reason: "raised on the device" });
    expect(links.get("ex-1")!.estops).toHaveLength(1);
    estops.raise(operator, tsunagi.v1.EStop.create({ deviceId: "ex-1" }));
    expect(counted).toEqual(["ex-1 device", "ex-1 operator again"]);
  });
});

describe("EmergencyStop: reset", () => {
  it("lets only a supervisor (or admin) reset, tells the device and everyone, and moves nothing", () => {
    const { estops, estop, slots, links, broadcasts, excepted } = setup();
    estops.raise(operator, estop({ deviceId: "ex-1" }));
    const reset = tsunagi.v1.Reset.create({ deviceId: "ex-1", reason: "area cleared" });
    expect(estops.reset(operator, reset)).toMatchObject({ refused: { code: ErrorCode.FORBIDDEN } });
    expect(estops.reset(supervisor, tsunagi.v1.Reset.create({ deviceId: "ex-9" }))).toMatchObject({ refused: { code: ErrorCode.DEVICE_UNKNOWN } });
    expect(estops.reset(supervisor, reset)).toEqual({ reply: { deviceId: "ex-1", by: "sam (sup-1)", reason: "area cleared" } });
    expect(slots.get("ex-1")!.lease.estopped).toBe(false);
    expect(slots.get("ex-1")!.lease.holder).toBeUndefined();
    expect(links.get("ex-1")!.resets).toEqual([{ deviceId: "ex-1", by: "sam (sup-1)", reason: "area cleared" }]);
    expect(broadcasts.at(-1)).toEqual({ correlationId: 0, reset: { deviceId: "ex-1", by: "sam (sup-1)", reason: "area cleared" } });
    expect(excepted.at(-1)).toBe("sup-1"); // the supervisor's one answer is the reply
    expect(estops.reset({ ...supervisor, role: "admin" }, reset)).toMatchObject({ refused: { code: ErrorCode.WRONG_TYPE } }); // nothing latched now
  });

  it("an adapter refusing the reset (ESTOP_LOCAL: raised at the machine) is relayed to the supervisor who reset, and its announced latch latches the room again", () => {
    const { estops, slots, told } = setup();
    const slot = slots.get("ex-1")!;
    estops.deviceRaised(slot, tsunagi.v1.EStop.create({ reason: "technician pressed stop" }));
    expect(estops.reset(supervisor, tsunagi.v1.Reset.create({ deviceId: "ex-1" }))).toHaveProperty("reply");
    expect(slot.lease.estopped).toBe(false);

    const refusal = tsunagi.v1.Error.create({ code: ErrorCode.ESTOP_LOCAL, message: "device ex-1: reset refused: the e-stop was raised at the machine" });
    expect(estops.deviceRefusedReset(slot, refusal)).toBe(true);
    expect(told).toEqual([{ sessionId: "sup-1", code: ErrorCode.ESTOP_LOCAL, message: refusal.message }]);
    estops.deviceRaised(slot, tsunagi.v1.EStop.create({ reason: "reset refused" })); // the adapter's notice that follows
    expect(slot.lease.estopped).toBe(true);
    expect(estops.deviceRefusedReset(slot, tsunagi.v1.Error.create({ code: ErrorCode.WRONG_TYPE, message: "x" }))).toBe(false);
    expect(told).toHaveLength(1);
  });
});
