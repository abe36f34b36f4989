/**
 * LatencyBudget: probes of lease holders, strikes, demotion to observer and the refusal
 * that lasts until the demotion ends, on a FakeRoomClock with a host that records what the
 * budget asks of its room.
 */
import { describe, expect, it } from "vitest";
import { tsunagi } from "../../../../proto/index.ts";
import { BUDGET_STRIKES, LatencyBudget, MAX_DEMOTIONS, type BudgetHolder, type Demotion } from "../../../../rooms/teleop/LatencyBudget.ts";
import { FakeRoomClock } from "../../../fixtures/fakes/FakeRoomClock.ts";

const DEFAULT_BUDGET_MS = 150;
const DEMOTION_MS = 10_000;

/** A room of devices "a" and "b", each held by op-1 (subject "alice") unless a test changes `holders`. */
function setup(demotionMs = DEMOTION_MS) {
  const clock = new FakeRoomClock();
  const holder = (fields: Partial<BudgetHolder> = {}): BudgetHolder => ({
    sessionId: "op-1", subject: "alice", online: true, deviceRttMs: 0, profile: tsunagi.v1.DeviceProfile.create({ latencyBudgetMs: 50 }), ...fields,
  });
  const holders = new Map<string, BudgetHolder | undefined>([["a", holder()], ["b", holder()]]);
  const pings: Array<{ sessionId: string; correlationId: number; at: number }> = [];
  const demotions: Demotion[] = [];
  const budget = new LatencyBudget(["a", "b"], {
    now: clock.now, defaultBudgetMs: DEFAULT_BUDGET_MS, demotionMs,
    holder: (deviceId) => holders.get(deviceId),
    ping: (sessionId, correlationId, at) => pings.push({ sessionId, correlationId, at }),
    demoted: (demotion) => {
      demotions.push(demotion);
      // As the room does: every lease of the demoted session ends.
      for (const [deviceId, current] of holders) {
        if (current?.sessionId === demotion.sessionId) { holders.set(deviceId, undefined); budget.leaseChanged(deviceId); }
      }
    },
  });
  /** Probes device "a"'s holder and answers after `rttMs`. */
  const roundTrip = (rttMs: number, sessionId = "op-1") => {
    holders.set("b", undefined); // only "a" is probed here
    budget.probeHolders();
    const probe = pings.at(-1)!;
    clock.advance(rttMs);
    budget.answer(sessionId, probe.correlationId);
  };
  return { clock, budget, holders, holder, pings, demotions, roundTrip };
}

describe("LatencyBudget: probes and strikes", () => {
  it("pings each online device's holder, and waits for an answer within the budget before probing again", () => {
    const { budget, holders, holder, pings, clock } = setup();
    holders.set("b", holder({ sessionId: "op-2", online: false }));
    budget.probeHolders();
    expect(pings.map((ping) => ping.sessionId)).toEqual(["op-1"]);
    clock.advance(50);
    budget.probeHolders();
    expect(pings).toHaveLength(1); // the probe is still in time
    clock.advance(1);
    budget.probeHolders();
    expect(pings).toHaveLength(2); // given up on: a strike, and a new probe
  });

  it(`demotes after ${BUDGET_STRIKES} round trips in a row over the budget (holder's plus the device's)`, () => {
    const { budget, holders, holder, demotions, roundTrip, clock } = setup();
    holders.set("a", holder({ deviceRttMs: 20 }));
    roundTrip(31); // 51 > 50
    roundTrip(31);
    expect(demotions).toEqual([]);
    roundTrip(31);
    expect(demotions).toEqual([expect.objectContaining({ deviceId: "a", sessionId: "op-1", subject: "alice", rttMs: 51, budgetMs: 50, until: clock.now() + DEMOTION_MS })]);
    expect(demotions[0].message).toMatch(/round trip to a is 51\.0 ms, above its 50 ms budget: demoted to observer for 10 s/);
    expect(budget.demotionLeftMs("alice")).toBe(DEMOTION_MS);
  });

  it("forgives the strikes on one round trip within the budget", () => {
    const { demotions, roundTrip } = setup();
    roundTrip(60);
    roundTrip(60);
    roundTrip(50); // exactly the budget is within it
    roundTrip(60);
    roundTrip(60);
    expect(demotions).toEqual([]);
    roundTrip(60);
    expect(demotions).toHaveLength(1);
  });

  it("counts a probe unanswered for a whole budget as a strike", () => {
    const { budget, holders, demotions, clock } = setup();
    holders.set("b", undefined);
    for (let probe = 0; probe <= BUDGET_STRIKES; probe++) {
      budget.probeHolders();
      clock.advance(51);
    }
    expect(demotions).toEqual([expect.objectContaining({ deviceId: "a", rttMs: 51 })]);
  });

  it("starts over for a new lease: strikes and a probe in flight belong to the previous holder", () => {
    const { budget, holders, holder, demotions, roundTrip, pings, clock } = setup();
    roundTrip(60);
    roundTrip(60);
    budget.leaseChanged("a");
    roundTrip(60);
    expect(demotions).toEqual([]);
    budget.probeHolders();
    const previous = pings.at(-1)!;
    budget.leaseChanged("a");
    holders.set("a", holder({ sessionId: "op-2", subject: "bob" }));
    clock.advance(60);
    budget.answer("op-2", previous.correlationId); // sent to op-1: says nothing of op-2
    roundTrip(60, "op-2");
    roundTrip(60, "op-2");
    expect(demotions).toEqual([]);
  });

  it("judges against the profile's budget, or the server's default when the profile names none", () => {
    const { holders, holder, demotions, roundTrip } = setup();
    holders.set("a", holder({ profile: tsunagi.v1.DeviceProfile.create({}) }));
    for (let i = 0; i < BUDGET_STRIKES; i++) roundTrip(DEFAULT_BUDGET_MS);
    expect(demotions).toEqual([]);
    for (let i = 0; i < BUDGET_STRIKES; i++) roundTrip(DEFAULT_BUDGET_MS + 1);
    expect(demotions).toEqual([expect.objectContaining({ budgetMs: DEFAULT_BUDGET_MS })]);
  });

  it("ignores a pong from anyone but the holder, and one answering no probe", () => {
    const { budget, holders, demotions, pings, clock } = setup();
    holders.set("b", undefined);
    for (let i = 0; i < BUDGET_STRIKES; i++) {
      budget.probeHolders();
      const { correlationId } = pings.at(-1)!;
      clock.advance(10);
      budget.answer("op-2", correlationId);
      budget.answer("op-1", correlationId + 1000);
      clock.advance(50);
      budget.answer("op-1", correlationId); // the real answer, late: a strike
    }
    expect(demotions).toHaveLength(1);
  });
});

describe("LatencyBudget: demotion", () => {
  it("refuses the demoted identity until the demotion ends, whatever session it comes back in", () => {
    const { budget, roundTrip, clock } = setup();
    for (let i = 0; i < BUDGET_STRIKES; i++) roundTrip(60);
    clock.advance(DEMOTION_MS - 1);
    expect(budget.demotionLeftMs("alice")).toBe(1);
    expect(budget.demotionLeftMs("bob")).toBe(0);
    clock.advance(1);
    expect(budget.demotionLeftMs("alice")).toBe(0);
  });

  it("ends the demoted holder's other leases in the same round without probing them", () => {
    const { budget, holders, demotions, pings, clock } = setup();
    for (let probe = 0; probe < BUDGET_STRIKES; probe++) {
      budget.probeHolders();
      clock.advance(51);
    }
    const sent = pings.length;
    budget.probeHolders(); // both devices' third strike is due
    // The first demotion ended op-1's lease of "b" too: no strike, and no probe for anyone.
    expect(demotions).toHaveLength(1);
    expect([...holders.values()]).toEqual([undefined, undefined]);
    expect(pings).toHaveLength(sent);
  });

  it(`remembers at most ${MAX_DEMOTIONS} demoted identities, forgetting the oldest`, () => {
    const { budget, holders, holder, roundTrip } = setup(1e9);
    for (let n = 0; n <= MAX_DEMOTIONS; n++) {
      holders.set("a", holder({ sessionId: `op-${n}`, subject: `user-${n}` }));
      for (let i = 0; i < BUDGET_STRIKES; i++) roundTrip(60, `op-${n}`);
    }
    expect(budget.demotionLeftMs("user-0")).toBe(0);
    expect(budget.demotionLeftMs("user-1")).toBeGreaterThan(0);
    expect(budget.demotionLeftMs(`user-${MAX_DEMOTIONS}`)).toBeGreaterThan(0);
  });
});
