/** The console's lines: the lease as the operator reads it, the status line, numbers without "-0.00". */
import { describe, it, expect } from "vitest";
import { actionResultText, fixed, leaseText, shortNumber, signed, statusLine } from "../../../../cli/operator/format.ts";
import { tsunagi } from "../../../../proto/index.ts";
import { excavatorProfile } from "../../../fixtures/fakes/deviceProfiles.ts";

const lease = (fields: Partial<tsunagi.v1.ILeaseState>) => tsunagi.v1.LeaseState.create({ deviceId: "ex-1", ttlMs: 1000, online: true, ...fields });
const noAcks = { samples: 0, acksByStatus: {} };

describe("the console's lines", () => {
  it("says whose lease it is, and for a lease event what ended and what to do", () => {
    expect(leaseText(undefined, "me")).toBe("unknown");
    expect(leaseText(lease({}), "me")).toBe("free");
    expect(leaseText(lease({ leaseId: "l-1", holderSessionId: "me" }), "me")).toBe("held by me");
    expect(leaseText(lease({ leaseId: "l-1", holderSessionId: "s-2", holderRole: "supervisor" }), "me")).toBe("held by supervisor s-2");
    expect(leaseText(lease({ leaseId: "l-1", holderSessionId: "me" }), "me", { endedOurs: false })).toBe("held by me (lease l-1, ttl 1000 ms)");
    expect(leaseText(lease({ endedLeaseId: "l-1", cause: "estopped", estopped: true }), "me", { endedOurs: true }))
      .toBe("free (ended l-1: estopped), e-stop latched; a supervisor must reset it before anyone drives");
    expect(leaseText(lease({ endedLeaseId: "l-1", cause: "watchdog", online: false }), "me", { endedOurs: true }))
      .toBe("free (ended l-1: watchdog), device offline; acquire to drive again");
    expect(leaseText(lease({ endedLeaseId: "l-1", cause: "released" }), "me", { endedOurs: true })).toBe("free (ended l-1: released)");
  });

  it("writes numbers with a fixed or an at-most number of decimals, and never -0", () => {
    expect([fixed(-0.0001), signed(0), signed(-0.004), signed(0.3), fixed(1.005, 1)]).toEqual(["0.00", "+0.00", "+0.00", "+0.30", "1.0"]);
    expect([shortNumber(0.30000001), shortNumber(-0.0001), shortNumber(50), shortNumber(-2.5)]).toEqual(["0.3", "0", "50", "-2.5"]);
  });

  it("puts lease, e-stop, link, loop, joints and ack round trips in the status line", () => {
    const profile = tsunagi.v1.DeviceProfile.fromObject(excavatorProfile("ex-1"));
    const telemetry = tsunagi.v1.Telemetry.fromObject({ deviceId: "ex-1", sampledAtMs: 10_000, joints: [{ name: "boom", position: 0.12, velocity: 0.3 }] });
    const facts = { mySessionId: "me", profile, telemetry, holding: true, started: true, rateHz: 50, serverNow: 10_500 };
    expect(statusLine({ ...facts, lease: lease({ leaseId: "l-1", holderSessionId: "me" }), latency: { samples: 20, ackRttP50Ms: 1.23, ackRttP99Ms: 4, acksByStatus: {} } }))
      .toBe("lease held by me | estopped no | online yes | sending 50 Hz | boom 0.12 rad @ +0.30/s | ack rtt p50 1.2 ms p99 4.0 ms (20 acks)");
    expect(statusLine({ ...facts, started: false, serverNow: 13_000, lease: lease({ estopped: true }), latency: noAcks }))
      .toBe("lease free | estopped yes | online yes | sending heartbeats | boom 0.12 rad @ +0.30/s (telemetry 3.0 s old) | ack rtt -");
  });

  it("says what became of an action", () => {
    const result = (status: tsunagi.v1.CommandAck.Status, detail = "") => tsunagi.v1.ActionResult.create({ status, detail });
    expect(actionResultText("takeoff", 2, result(tsunagi.v1.CommandAck.Status.APPLIED))).toBe("takeoff 2: applied");
    expect(actionResultText("arm", undefined, result(tsunagi.v1.CommandAck.Status.APPLIED))).toBe("arm: applied");
    expect(actionResultText("takeoff", 2, result(tsunagi.v1.CommandAck.Status.STATUS_UNSPECIFIED, "disarmed"))).toBe("takeoff: refused by the device disarmed");
    expect(actionResultText("land", undefined, result(tsunagi.v1.CommandAck.Status.ESTOPPED))).toBe("land: ESTOPPED");
  });
});
