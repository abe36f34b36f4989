/**
 * Where an e-stop came from decides who may clear it (docs/safety.md, "A local e-stop at
 * the adapter"): one raised at the machine needs a technician's reset there before a
 * supervisor's reset from afar clears it, and while the device's own stop is engaged
 * nothing clears it.
 */
import { describe, expect, it } from "vitest";
import { ErrorCode } from "../../../../proto/index.ts";
import { DEVICE, announce, handle, setup, statusOf } from "./safety-harness.ts";

const reset = { correlationId: 7, reset: { deviceId: DEVICE, by: "sam (sup-1)", reason: "area clear" } };

describe("SafetyController: the e-stop's origin", () => {
  it("a remote reset of a latch raised at the machine is refused ESTOP_LOCAL and the latch announced again; after the local reset, the remote one clears it", () => {
    const s = setup();
    s.safety.linkUp();
    s.safety.raiseEStop("technician pressed stop");
    expect(s.safety.state).toMatchObject({ estopped: true, estopOrigin: "local" });

    const refused = handle(s, reset)!;
    expect(s.safety.state.estopped).toBe(true);
    expect(refused.replies[0]).toMatchObject({ correlationId: 7, error: { code: ErrorCode.ESTOP_LOCAL } });
    expect(refused.replies[0].error!.message).toMatch(/raised at the machine.*local-reset/);
    expect(refused.replies[1].estop).toMatchObject({ deviceId: DEVICE, raisedBy: `device:${DEVICE}` }); // the room latches again
    expect(s.safety.counters.resetsRefused).toBe(1);
    announce(s, "L1");
    expect(statusOf(s, { leaseId: "L1", seq: 1, axes: [{ name: "boom", value: 0.3 }] })).toBe("ESTOPPED");

    expect(s.safety.localReset()).toMatchObject({ released: true });
    expect(s.safety.state).toMatchObject({ estopped: true, estopOrigin: "remote" }); // a local reset clears nothing by itself
    expect(handle(s, reset)!.replies).toEqual([]);
    expect(s.safety.state.estopped).toBe(false);
  });

  it("a latch the room raised needs only the supervisor's reset; a local reset has nothing to release", () => {
    const s = setup();
    handle(s, { correlationId: 0, estop: { deviceId: DEVICE, reason: "operator pressed e-stop", raisedBy: "op-1" } });
    expect(s.safety.state).toMatchObject({ estopped: true, estopOrigin: "remote" });
    expect(s.safety.localReset()).toMatchObject({ released: false });
    expect(handle(s, reset)!.replies).toEqual([]);
    expect(s.safety.state).toMatchObject({ estopped: false, estopOrigin: undefined });
  });

  it("the device's own stop latches once when it engages, and no reset clears it while engaged", () => {
    const s = setup();
    s.driver.hal.actuator("boom").setValue("velocity", 0.2);
    s.driver.ownStop = true;
    const notice = s.safety.pollDriverStop();
    expect(notice?.estop).toMatchObject({ deviceId: DEVICE, raisedBy: `device:${DEVICE}` });
    expect(s.driver.moving).toBe(false);
    expect(s.safety.pollDriverStop()).toBeUndefined(); // still engaged: raised once
    expect(s.safety.localReset()).toMatchObject({ released: false, detail: expect.stringContaining("still engaged") });
    expect(handle(s, reset)!.replies[0].error!.code).toBe(ErrorCode.ESTOP_LOCAL);
    expect(s.safety.state.estopped).toBe(true);

    s.driver.ownStop = false;
    expect(s.safety.pollDriverStop()).toBeUndefined();
    expect(s.safety.state.estopped).toBe(true); // released is not reset
    expect(handle(s, reset)!.replies[0].error!.code).toBe(ErrorCode.ESTOP_LOCAL);
    expect(s.safety.localReset()).toMatchObject({ released: true });
    expect(handle(s, reset)!.replies).toEqual([]);
    expect(s.safety.state.estopped).toBe(false);
  });

  it("a stop circuit the driver cannot read counts as engaged: when in doubt, stop", () => {
    const s = setup();
    s.driver.ownStop = "throws";
    expect(s.safety.pollDriverStop()?.estop).toBeDefined();
    expect(s.safety.state).toMatchObject({ estopped: true, estopOrigin: "local" });
  });
});
