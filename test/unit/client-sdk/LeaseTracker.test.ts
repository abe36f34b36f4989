/**
 * LeaseTracker: whose lease it is, repeats left out, and a demotion reported once with
 * the room's explanation.
 */
import { describe, it, expect } from "vitest";
import { LeaseTracker } from "../../../client-sdk/LeaseTracker.ts";
import { tsunagi } from "../../../proto/index.ts";

const lease = (fields: Partial<tsunagi.v1.ILeaseState>) =>
  tsunagi.v1.LeaseState.create({ deviceId: "ex-1", ttlMs: 1000, online: true, ...fields });
const ours = (leaseId: string) => lease({ leaseId, holderSessionId: "me", holderRole: "operator", expiresAtMs: 5000 });

/** A tracker for session "me", whose session ends when `session.closed` is set. */
function tracker() {
  const session = { closed: false };
  return { session, tracker: new LeaseTracker("ex-1", { sessionId: () => "me", sessionClosed: () => session.closed }) };
}

describe("LeaseTracker", () => {
  it("holds a lease with an id held by this session, while the session is open", () => {
    const { session, tracker: leases } = tracker();
    expect(leases.holding).toBe(false);
    leases.update(lease({ leaseId: "", holderSessionId: "me" }));
    expect(leases.holding).toBe(false);
    leases.update(lease({ leaseId: "lease-1", holderSessionId: "someone" }));
    expect(leases.holding).toBe(false);
    expect(leases.update(ours("lease-2"))).toEqual({ wasHolding: false });
    expect(leases.holding).toBe(true);
    session.closed = true;
    expect(leases.holding).toBe(false);
  });

  it("leaves out a LeaseState that repeats the current one, such as a reply without a cause", () => {
    const { tracker: leases } = tracker();
    const broadcast = lease({ leaseId: "lease-1", holderSessionId: "other", cause: "preempted" });
    expect(leases.update(broadcast)).toBeDefined();
    expect(leases.update(lease({ leaseId: "lease-1", holderSessionId: "other", cause: "" }))).toBeUndefined();
    expect(leases.update(lease({ leaseId: "lease-1", holderSessionId: "other", cause: "transferred" }))).toBeDefined();
    expect(leases.update(lease({ leaseId: "lease-1", holderSessionId: "other", cause: "transferred", estopped: true }))).toBeDefined();
    expect(leases.lease?.estopped).toBe(true);
  });

  it("reports the end of our lease for the latency budget as a demotion, once, with the room's notice", () => {
    const { tracker: leases } = tracker();
    leases.update(ours("lease-1"));
    leases.demotionNotice("round trip above budget: demoted");
    const ended = lease({ leaseId: "", endedLeaseId: "lease-1", cause: "latency-budget" });
    expect(leases.update(ended)).toEqual({
      wasHolding: true,
      demoted: { deviceId: "ex-1", endedLeaseId: "lease-1", message: "round trip above budget: demoted", lease: ended },
    });
    leases.update(ours("lease-2"));
    const again = lease({ leaseId: "", endedLeaseId: "lease-2", cause: "latency-budget" });
    expect(leases.update(again)?.demoted).toMatchObject({ endedLeaseId: "lease-2", message: undefined });
  });

  it("is no demotion when the lease that ended was someone else's, or ended for another cause", () => {
    const { tracker: leases } = tracker();
    leases.update(lease({ leaseId: "lease-1", holderSessionId: "other" }));
    expect(leases.update(lease({ leaseId: "", endedLeaseId: "lease-1", cause: "latency-budget" }))).toEqual({ wasHolding: false });
    leases.update(ours("lease-2"));
    expect(leases.update(lease({ leaseId: "", endedLeaseId: "lease-2", cause: "watchdog" }))).toEqual({ wasHolding: true });
  });
});
