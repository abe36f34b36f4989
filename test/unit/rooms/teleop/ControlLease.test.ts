/**
 * ControlLease: each transition on its own (acquire, release, transfer, preempt, renew
 * and expiry, e-stop and reset, events, close). The seeded model test and the race of
 * two operators are in ControlLease.model.test.ts. Time is a plain number passed in;
 * nothing here waits.
 */
import { describe, it, expect, vi } from "vitest";
import { ControlLease, DEFAULT_LEASE_TTL_MS, type ControlLeaseEventName } from "../../../../rooms/teleop/ControlLease.ts";
import type { Role } from "../../../../server/auth/tokens.ts";
import { TTL, grantedId, reasonOf, setup } from "./controlLeaseSetup.ts";

describe("ControlLease: acquire", () => {
  it("grants a free lease with a fresh id and a TTL", () => {
    const { lease, events } = setup();
    const result = lease.acquire("op-a", "operator", 100);
    expect(result).toMatchObject({ status: "granted", fresh: true, lease: { deviceId: "ex-1", leaseId: "L1", sessionId: "op-a", role: "operator", grantedAt: 100, expiresAt: 100 + TTL } });
    expect(lease.holder?.sessionId).toBe("op-a");
    expect(lease.expiresAt).toBe(1100);
    expect(events.map(([name]) => name)).toEqual(["granted"]);
  });

  it("lets the holder ask again: same lease, renewed, no event", () => {
    const { lease, events } = setup();
    lease.acquire("op-a", "operator", 0);
    const again = lease.acquire("op-a", "operator", 600);
    expect(again).toMatchObject({ status: "granted", fresh: false, lease: { leaseId: "L1", expiresAt: 600 + TTL } });
    expect(events).toHaveLength(1);
  });

  it("refuses another session while held: HELD_BY_OTHER, naming the holder", () => {
    const { lease } = setup();
    lease.acquire("op-a", "operator", 0);
    const result = lease.acquire("op-b", "operator", 10);
    expect(result).toMatchObject({ status: "refused", reason: "HELD_BY_OTHER", holderSessionId: "op-a" });
    expect(lease.holder?.sessionId).toBe("op-a");
    // a supervisor is refused too: taking over is preempt(), never a plain acquire
    expect(reasonOf(lease.acquire("sup", "supervisor", 20))).toBe("HELD_BY_OTHER");
  });

  it("refuses roles that may not control: ROLE_NOT_ALLOWED", () => {
    const { lease } = setup();
    for (const role of ["visitor", "host", "device", "admin", "pilot" as Role] as Role[]) {
      expect(reasonOf(lease.acquire("x", role, 0))).toBe("ROLE_NOT_ALLOWED");
    }
    expect(lease.holder).toBeUndefined();
    expect(grantedId(lease.acquire("sup", "supervisor", 0))).toBe("L1");
  });
});

describe("ControlLease: release and disconnect", () => {
  it("release ends the lease; its id is dead; another session gets a fresh id", () => {
    const { lease, events } = setup();
    lease.acquire("op-a", "operator", 0);
    expect(lease.release("op-a", 10)).toMatchObject({ status: "released", lease: { leaseId: "L1" } });
    expect(events[1]).toEqual(["released", { lease: expect.objectContaining({ leaseId: "L1" }), cause: "released" }]);
    expect(lease.holder).toBeUndefined();
    expect(reasonOf(lease.check("op-a", "L1", 20))).toBe("LEASE_ENDED");
    expect(reasonOf(lease.renew("op-a", "L1", 20))).toBe("LEASE_ENDED");
    expect(grantedId(lease.acquire("op-b", "operator", 30))).toBe("L2");
    // the same session acquiring again gets a new id, never the old one
    lease.release("op-b", 40);
    expect(grantedId(lease.acquire("op-a", "operator", 50))).toBe("L3");
    expect(reasonOf(lease.check("op-a", "L1", 50))).toBe("LEASE_ENDED");
  });

  it("release by a non-holder: NOT_HOLDER, nothing changes", () => {
    const { lease, events } = setup();
    expect(reasonOf(lease.release("op-a", 0))).toBe("NOT_HOLDER");
    lease.acquire("op-a", "operator", 0);
    expect(reasonOf(lease.release("op-b", 1))).toBe("NOT_HOLDER");
    expect(lease.holder?.leaseId).toBe("L1");
    expect(events).toHaveLength(1);
  });

  it("a dropped holder connection ends the lease at once", () => {
    const { lease, events } = setup();
    lease.acquire("op-a", "operator", 0);
    expect(reasonOf(lease.holderDisconnected("op-b", 1))).toBe("NOT_HOLDER");
    expect(lease.holderDisconnected("op-a", 2)).toMatchObject({ status: "released", lease: { leaseId: "L1" } });
    expect(events.at(-1)).toEqual(["released", { lease: expect.objectContaining({ leaseId: "L1" }), cause: "disconnected" }]);
    expect(lease.holder).toBeUndefined();
    expect(reasonOf(lease.check("op-a", "L1", 3))).toBe("LEASE_ENDED");
  });
});

describe("ControlLease: transfer", () => {
  it("the holder hands over; the target gets a fresh id, the old one dies", () => {
    const { lease, events } = setup();
    lease.acquire("op-a", "operator", 0);
    const result = lease.transfer("op-a", "op-b", "operator", 100);
    expect(result).toMatchObject({ status: "granted", fresh: true, lease: { leaseId: "L2", sessionId: "op-b", grantedAt: 100, expiresAt: 100 + TTL }, previous: { leaseId: "L1", sessionId: "op-a" } });
    expect(events.at(-1)?.[0]).toBe("transferred");
    expect(lease.holder?.sessionId).toBe("op-b");
    expect(reasonOf(lease.check("op-a", "L1", 101))).toBe("LEASE_ENDED");
    expect(reasonOf(lease.check("op-a", "L2", 101))).toBe("NOT_HOLDER");
    expect(lease.check("op-b", "L2", 101).status).toBe("valid");
    expect(reasonOf(lease.renew("op-b", "L1", 101))).toBe("NOT_HOLDER");
  });

  it("refuses a non-holder, a transfer to itself, and a target role that may not control", () => {
    const { lease } = setup();
    expect(reasonOf(lease.transfer("op-a", "op-b", "operator", 0))).toBe("NOT_HOLDER");
    lease.acquire("op-a", "operator", 0);
    expect(reasonOf(lease.transfer("op-b", "op-c", "operator", 1))).toBe("NOT_HOLDER");
    expect(reasonOf(lease.transfer("op-a", "op-a", "operator", 1))).toBe("INVALID_TARGET");
    expect(reasonOf(lease.transfer("op-a", "guest", "visitor", 1))).toBe("ROLE_NOT_ALLOWED");
    expect(lease.holder?.leaseId).toBe("L1");
    // to a supervisor is fine
    expect(lease.transfer("op-a", "sup", "supervisor", 2)).toMatchObject({ status: "granted", lease: { sessionId: "sup", role: "supervisor" } });
  });
});

describe("ControlLease: preempt", () => {
  it("a supervisor takes the lease from its holder, with a fresh id", () => {
    const { lease, events } = setup();
    lease.acquire("op-a", "operator", 0);
    const result = lease.preempt("sup", "supervisor", 50);
    expect(result).toMatchObject({ status: "granted", fresh: true, lease: { leaseId: "L2", sessionId: "sup" }, previous: { leaseId: "L1", sessionId: "op-a" } });
    expect(events.at(-1)).toEqual(["preempted", { previous: expect.objectContaining({ leaseId: "L1" }), lease: expect.objectContaining({ leaseId: "L2" }) }]);
    expect(reasonOf(lease.renew("op-a", "L1", 60))).toBe("LEASE_ENDED");
    expect(reasonOf(lease.acquire("op-a", "operator", 60))).toBe("HELD_BY_OTHER");
  });

  it("only a supervisor may: NOT_SUPERVISOR", () => {
    const { lease } = setup();
    lease.acquire("op-a", "operator", 0);
    for (const role of ["operator", "admin", "host", "visitor"] as Role[]) expect(reasonOf(lease.preempt("x", role, 1))).toBe("NOT_SUPERVISOR");
    expect(lease.holder?.leaseId).toBe("L1");
  });

  it("on a free lease it is an acquire; by the holder a renewal; one supervisor preempts another", () => {
    const { lease, events } = setup();
    expect(lease.preempt("sup-a", "supervisor", 0)).toMatchObject({ status: "granted", fresh: true, lease: { leaseId: "L1" } });
    expect(events.at(-1)?.[0]).toBe("granted");
    expect(lease.preempt("sup-a", "supervisor", 500)).toMatchObject({ status: "granted", fresh: false, lease: { leaseId: "L1", expiresAt: 500 + TTL } });
    expect(lease.preempt("sup-b", "supervisor", 600)).toMatchObject({ status: "granted", fresh: true, lease: { leaseId: "L2", sessionId: "sup-b" } });
  });
});

describe("ControlLease: renew, check and expiry", () => {
  it("a heartbeat from the holder extends the lease from now; check does not", () => {
    const { lease } = setup();
    lease.acquire("op-a", "operator", 0);
    expect(lease.check("op-a", "L1", 900)).toMatchObject({ status: "valid", lease: { expiresAt: 1000 } });
    expect(lease.renew("op-a", "L1", 900)).toMatchObject({ status: "renewed", lease: { leaseId: "L1", expiresAt: 1900 } });
    expect(lease.check("op-a", "L1", 1899).status).toBe("valid");
    expect(lease.holder?.expiresAt).toBe(1900);
  });

  it("refuses another session's id (NOT_HOLDER) and an id it never granted (UNKNOWN_LEASE)", () => {
    const { lease } = setup();
    lease.acquire("op-a", "operator", 0);
    expect(reasonOf(lease.renew("op-b", "L1", 1))).toBe("NOT_HOLDER");
    expect(reasonOf(lease.check("op-a", "forged", 1))).toBe("UNKNOWN_LEASE");
    expect(reasonOf(lease.check("op-a", "", 1))).toBe("UNKNOWN_LEASE");
    expect(lease.holder?.expiresAt).toBe(TTL);
  });

  it("expires exactly at expiresAt, not before; a late heartbeat gets EXPIRED", () => {
    const { lease, events } = setup();
    lease.acquire("op-a", "operator", 0);
    expect(lease.expire(TTL - 1)).toBeUndefined();
    expect(lease.holder?.leaseId).toBe("L1");
    expect(lease.expire(TTL)).toMatchObject({ leaseId: "L1" });
    expect(events.at(-1)).toEqual(["expired", { lease: expect.objectContaining({ leaseId: "L1" }), at: TTL }]);
    expect(lease.holder).toBeUndefined();
    expect(lease.expire(TTL + 5)).toBeUndefined();
    expect(reasonOf(lease.renew("op-a", "L1", TTL + 5))).toBe("EXPIRED");
    expect(reasonOf(lease.check("op-b", "L1", TTL + 5))).toBe("NOT_HOLDER");
    expect(events.filter(([name]) => name === "expired")).toHaveLength(1);
  });

  it("notices a lapsed lease on any call, without expire(): expired fires before the new grant", () => {
    const { lease, events } = setup();
    lease.acquire("op-a", "operator", 0);
    expect(reasonOf(lease.renew("op-a", "L1", 5000))).toBe("EXPIRED");
    const { lease: second, events: secondEvents } = setup();
    second.acquire("op-a", "operator", 0);
    expect(grantedId(second.acquire("op-b", "operator", 5000))).toBe("L2");
    expect(secondEvents.map(([name]) => name)).toEqual(["granted", "expired", "granted"]);
    expect(events.map(([name]) => name)).toEqual(["granted", "expired"]);
  });

  it("the holder re-acquiring after expiry gets a fresh id", () => {
    const { lease } = setup();
    lease.acquire("op-a", "operator", 0);
    expect(lease.acquire("op-a", "operator", TTL)).toMatchObject({ status: "granted", fresh: true, lease: { leaseId: "L2" } });
  });

  it("time never runs backwards: an older `now` cannot revive or stretch a lease", () => {
    const { lease } = setup();
    lease.acquire("op-a", "operator", 1000);
    lease.expire(2000);
    expect(lease.holder).toBeUndefined();
    expect(grantedId(lease.acquire("op-b", "operator", 500))).toBe("L2");
    // granted at the latest time seen (2000), not at 500
    expect(lease.holder).toMatchObject({ grantedAt: 2000, expiresAt: 2000 + TTL });
  });

  it("uses the injected clock when no time is passed", () => {
    let now = 10_000;
    const { lease } = setup({ clock: () => now });
    lease.acquire("op-a", "operator");
    expect(lease.holder?.expiresAt).toBe(10_000 + TTL);
    now += TTL;
    expect(lease.expire()?.leaseId).toBe("L1");
  });

  it("remembers a bounded number of ended ids; older ones are still refused, as UNKNOWN_LEASE", () => {
    const { lease } = setup({ endedLeaseMemory: 2 });
    for (let i = 0; i < 3; i++) {
      lease.acquire("op-a", "operator", i);
      lease.release("op-a", i);
    }
    expect(reasonOf(lease.check("op-a", "L1", 10))).toBe("UNKNOWN_LEASE");
    expect(reasonOf(lease.check("op-a", "L2", 10))).toBe("LEASE_ENDED");
    expect(reasonOf(lease.check("op-a", "L3", 10))).toBe("LEASE_ENDED");
  });
});

describe("ControlLease: e-stop latch and reset", () => {
  it("an e-stop ends the lease and latches: nothing is granted or accepted until a supervisor resets", () => {
    const { lease, events } = setup();
    lease.acquire("op-a", "operator", 0);
    expect(lease.estop("op-b", "person in the swing radius", 10)).toMatchObject({ status: "estopped", alreadyLatched: false, endedLease: { leaseId: "L1" } });
    expect(events.at(-1)).toEqual(["estopped", { latch: { by: "op-b", reason: "person in the swing radius", at: 10 }, endedLease: expect.objectContaining({ leaseId: "L1" }) }]);
    expect(lease.holder).toBeUndefined();
    expect(lease.estopped).toBe(true);
    expect(lease.estopLatch).toMatchObject({ by: "op-b" });

    expect(reasonOf(lease.acquire("op-a", "operator", 20))).toBe("ESTOPPED");
    expect(reasonOf(lease.acquire("sup", "supervisor", 20))).toBe("ESTOPPED");
    expect(reasonOf(lease.preempt("sup", "supervisor", 20))).toBe("ESTOPPED");
    expect(reasonOf(lease.renew("op-a", "L1", 20))).toBe("ESTOPPED");
    expect(reasonOf(lease.check("op-a", "L1", 20))).toBe("ESTOPPED");
    expect(reasonOf(lease.transfer("op-a", "op-b", "operator", 20))).toBe("ESTOPPED");
    expect(reasonOf(lease.release("op-a", 20))).toBe("NOT_HOLDER");

    // a second e-stop keeps the first latch
    expect(lease.estop("op-c", "again", 30)).toEqual({ status: "estopped", alreadyLatched: true });
    expect(lease.estopLatch?.by).toBe("op-b");
    expect(events.filter(([name]) => name === "estopped")).toHaveLength(1);

    expect(reasonOf(lease.reset("op-a", "operator", 40))).toBe("NOT_SUPERVISOR");
    expect(reasonOf(lease.reset("adm", "admin", 40))).toBe("NOT_SUPERVISOR");
    expect(lease.reset("sup", "supervisor", 50)).toEqual({ status: "reset" });
    expect(events.at(-1)).toEqual(["reset", { by: "sup", at: 50 }]);
    expect(lease.estopped).toBe(false);

    // the reset granted nothing, and the old lease stays dead: a fresh acquire is needed
    expect(lease.holder).toBeUndefined();
    expect(reasonOf(lease.check("op-a", "L1", 60))).toBe("LEASE_ENDED");
    expect(grantedId(lease.acquire("op-a", "operator", 60))).toBe("L2");
    expect(reasonOf(lease.renew("op-a", "L1", 61))).toBe("LEASE_ENDED");
  });

  it("e-stops a free lease too; reset without a latch is NOT_ESTOPPED", () => {
    const { lease } = setup();
    expect(reasonOf(lease.reset("sup", "supervisor", 0))).toBe("NOT_ESTOPPED");
    expect(lease.estop("device:ex-1", "physical button", 0)).toEqual({ status: "estopped", alreadyLatched: false });
    expect(reasonOf(lease.acquire("op-a", "operator", 1))).toBe("ESTOPPED");
  });
});

describe("ControlLease: events and listeners", () => {
  it("a throwing listener cannot break the lease or the listeners after it; the error goes to onListenerError with its cause", () => {
    const failures: { error: Error; event: ControlLeaseEventName }[] = [];
    const lease = new ControlLease({ deviceId: "ex-1", ttlMs: TTL, onListenerError: (error, event) => failures.push({ error, event }) });
    const boom = new Error("listener bug");
    const after = vi.fn();
    lease.on("granted", () => { throw boom; });
    lease.on("granted", after);
    const result = lease.acquire("op-a", "operator", 0);
    expect(result.status).toBe("granted");
    expect(after).toHaveBeenCalledTimes(1);
    expect(failures).toHaveLength(1);
    expect(failures[0].event).toBe("granted");
    expect(failures[0].error.cause).toBe(boom);
    expect(failures[0].error.message).toMatch(/"granted" listener threw: listener bug/);
  });

  it("survives an onListenerError that throws too", () => {
    const lease = new ControlLease({ deviceId: "ex-1", ttlMs: TTL, onListenerError: () => { throw new Error("sink down"); } });
    lease.on("released", () => { throw new Error("bug"); });
    lease.acquire("op-a", "operator", 0);
    expect(lease.release("op-a", 1).status).toBe("released");
    expect(lease.holder).toBeUndefined();
  });

  it("reports to console.error by default", () => {
    const spy = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      const lease = new ControlLease({ deviceId: "ex-1" });
      lease.on("granted", () => { throw new Error("bug"); });
      lease.acquire("op-a", "operator", 0);
      expect(spy).toHaveBeenCalledTimes(1);
    } finally {
      spy.mockRestore();
    }
  });

  it("unsubscribes, and fires after the change so a listener may call back in", () => {
    const { lease } = setup();
    const seen: string[] = [];
    const off = lease.on("granted", ({ lease: grant }) => seen.push(grant.leaseId));
    // on release, hand control straight to a waiting operator
    lease.on("released", () => { lease.acquire("op-b", "operator", 5); });
    lease.acquire("op-a", "operator", 0);
    expect(lease.release("op-a", 5)).toMatchObject({ status: "released", lease: { leaseId: "L1" } });
    expect(lease.holder).toMatchObject({ sessionId: "op-b", leaseId: "L2" });
    expect(seen).toEqual(["L1", "L2"]);
    off();
    lease.release("op-b", 6);
    expect(seen).toEqual(["L1", "L2"]);
  });
});

describe("ControlLease: close and arguments", () => {
  it("close ends the lease (released, cause closed) and refuses everything after", () => {
    const { lease, events } = setup();
    lease.acquire("op-a", "operator", 0);
    lease.close(10);
    expect(events.at(-1)).toEqual(["released", { lease: expect.objectContaining({ leaseId: "L1" }), cause: "closed" }]);
    expect(lease.closed).toBe(true);
    expect(lease.holder).toBeUndefined();
    expect(reasonOf(lease.acquire("op-a", "operator", 20))).toBe("CLOSED");
    expect(reasonOf(lease.check("op-a", "L1", 20))).toBe("CLOSED");
    expect(reasonOf(lease.estop("op-a", "x", 20))).toBe("CLOSED");
    expect(reasonOf(lease.reset("sup", "supervisor", 20))).toBe("CLOSED");
    lease.close(30); // idempotent
  });

  it("throws TypeError for caller bugs", () => {
    expect(() => new ControlLease({ deviceId: "" })).toThrow(TypeError);
    expect(() => new ControlLease({ deviceId: "ex-1", ttlMs: 0 })).toThrow(TypeError);
    expect(() => new ControlLease({ deviceId: "ex-1", ttlMs: Number.NaN })).toThrow(TypeError);
    const { lease } = setup();
    expect(() => lease.acquire("", "operator", 0)).toThrow(TypeError);
    expect(() => lease.acquire("op-a", "operator", Number.NaN)).toThrow(TypeError);
    expect(() => lease.renew("op-a", undefined as unknown as string, 0)).toThrow(TypeError);
  });

  it("refuses to hand out a lease id twice, even from a broken id factory", () => {
    const lease = new ControlLease({ deviceId: "ex-1", ttlMs: TTL, newLeaseId: () => "same" });
    lease.acquire("op-a", "operator", 0);
    lease.release("op-a", 1);
    expect(() => lease.acquire("op-a", "operator", 2)).toThrow(/repeated lease id same/);
    expect(lease.holder).toBeUndefined();
  });

  it("makes unique random ids by default", () => {
    const lease = new ControlLease({ deviceId: "ex-1" });
    const ids = new Set<string>();
    for (let i = 0; i < 200; i++) {
      ids.add(grantedId(lease.acquire("op-a", "operator", i)));
      lease.release("op-a", i);
    }
    expect(ids.size).toBe(200);
    expect(DEFAULT_LEASE_TTL_MS).toBeGreaterThan(0);
  });
});
