/**
 * answerLeaseRequest: a LeaseRequest decided against a ControlLease, with the demotion
 * rule of the latency budget and the coded errors the room answers with.
 */
import { describe, expect, it } from "vitest";
import { ErrorCode, tsunagi } from "../../../../proto/index.ts";
import { ControlLease } from "../../../../rooms/teleop/ControlLease.ts";
import { answerLeaseRequest, type LeaseParty } from "../../../../rooms/teleop/LeaseRequests.ts";

const Action = tsunagi.v1.LeaseRequest.Action;
const alice: LeaseParty = { sessionId: "alice-1", role: "operator", demotedMs: 0 };
const bob: LeaseParty = { sessionId: "bob-1", role: "operator", demotedMs: 0 };
const sam: LeaseParty = { sessionId: "sam-1", role: "supervisor", demotedMs: 0 };

function request(action: tsunagi.v1.LeaseRequest.Action, toSessionId = "") {
  return tsunagi.v1.LeaseRequest.create({ deviceId: "ex-1", action, toSessionId });
}

describe("answerLeaseRequest", () => {
  it("acquires, transfers, preempts and releases", () => {
    const lease = new ControlLease({ deviceId: "ex-1" });
    expect(answerLeaseRequest(lease, request(Action.ACQUIRE), alice, undefined, 1)).toMatchObject({ done: { status: "granted" } });
    expect(answerLeaseRequest(lease, request(Action.TRANSFER, "bob-1"), alice, bob, 2)).toMatchObject({ done: { status: "granted" } });
    expect(lease.holder?.sessionId).toBe("bob-1");
    expect(answerLeaseRequest(lease, request(Action.PREEMPT), sam, undefined, 3)).toMatchObject({ done: { status: "granted" } });
    expect(answerLeaseRequest(lease, request(Action.RELEASE), sam, undefined, 4)).toMatchObject({ done: { status: "released" } });
    expect(lease.holder).toBeUndefined();
  });

  it("refuses a demoted operator a lease, telling when to retry, but lets them release", () => {
    const lease = new ControlLease({ deviceId: "ex-1" });
    answerLeaseRequest(lease, request(Action.ACQUIRE), alice, undefined, 1);
    const demoted = { ...alice, demotedMs: 2_500 };
    for (const action of [Action.ACQUIRE, Action.PREEMPT]) {
      expect(answerLeaseRequest(lease, request(action), demoted, undefined, 2)).toEqual({
        refused: { code: ErrorCode.LATENCY_BUDGET_EXCEEDED, message: "demoted for exceeding a device's latency budget; retry in 3 s" },
      });
    }
    expect(answerLeaseRequest(lease, request(Action.RELEASE), demoted, undefined, 2)).toMatchObject({ done: { status: "released" } });
  });

  it("refuses a transfer to nobody in the room (WRONG_TYPE) or to a demoted operator (LATENCY_BUDGET_EXCEEDED)", () => {
    const lease = new ControlLease({ deviceId: "ex-1" });
    answerLeaseRequest(lease, request(Action.ACQUIRE), alice, undefined, 1);
    expect(answerLeaseRequest(lease, request(Action.TRANSFER, "ghost"), alice, undefined, 2)).toMatchObject({ refused: { code: ErrorCode.WRONG_TYPE } });
    expect(answerLeaseRequest(lease, request(Action.TRANSFER, "bob-1"), alice, { ...bob, demotedMs: 1 }, 2)).toMatchObject({ refused: { code: ErrorCode.LATENCY_BUDGET_EXCEEDED } });
    expect(lease.holder?.sessionId).toBe("alice-1");
  });

  it("answers the lease's refusals with their coded errors, and an unspecified action with WRONG_TYPE", () => {
    const lease = new ControlLease({ deviceId: "ex-1" });
    answerLeaseRequest(lease, request(Action.ACQUIRE), alice, undefined, 1);
    expect(answerLeaseRequest(lease, request(Action.ACQUIRE), bob, undefined, 2)).toMatchObject({ refused: { code: ErrorCode.LEASE_HELD } });
    expect(answerLeaseRequest(lease, request(Action.RELEASE), bob, undefined, 2)).toMatchObject({ refused: { code: ErrorCode.LEASE_NOT_HELD } });
    expect(answerLeaseRequest(lease, request(Action.PREEMPT), bob, undefined, 2)).toMatchObject({ refused: { code: ErrorCode.FORBIDDEN } });
    expect(answerLeaseRequest(lease, request(Action.ACTION_UNSPECIFIED), bob, undefined, 2)).toMatchObject({ refused: { code: ErrorCode.WRONG_TYPE } });
    lease.estop("sam", "test", 3);
    expect(answerLeaseRequest(lease, request(Action.ACQUIRE), bob, undefined, 4)).toMatchObject({ refused: { code: ErrorCode.ESTOPPED } });
  });
});
