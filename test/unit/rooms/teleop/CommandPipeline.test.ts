/**
 * CommandPipeline: the room's admission of commands and actions, against a DeviceSlot
 * over a FakeDeviceLink on a FakeRoomClock. The order of the refusals is the contract's
 * (control.proto, ControlCommand): with every fault from one check on present, the
 * verdict is that check's.
 */
import { describe, expect, it } from "vitest";
import { tsunagi } from "../../../../proto/index.ts";
import { CommandPipeline, type Verdict } from "../../../../rooms/teleop/CommandPipeline.ts";
import { commandBurst } from "../../../../rooms/teleop/DeviceSlot.ts";
import { latencyBudgetMs } from "../../../../rooms/teleop/LatencyBudget.ts";
import { BUDGET_MS, HOLDER, deviceWithHolder, testProfile } from "./deviceSetup.ts";

const Status = tsunagi.v1.CommandAck.Status;
const DEFAULT_BUDGET_MS = 150;

/** The checks, in the order the pipeline must apply them to commands. */
const commandOrder = ["ESTOPPED", "NO_LEASE", "RATE_LIMITED", "EXPIRED", "STALE", "DEVICE_OFFLINE", "OUT_OF_BOUNDS"] as const;
type Fault = (typeof commandOrder)[number];

function setup(profile = testProfile()) {
  const device = deviceWithHolder(profile);
  const pipeline = new CommandPipeline({ now: device.clock.now, budgetMs: (sent) => latencyBudgetMs(sent, DEFAULT_BUDGET_MS) });
  return { ...device, pipeline };
}

/** The verdict as one word: the refusal's status name, "RATE_LIMITED", or "admitted". */
function outcome(verdict: Verdict): string {
  if (verdict.verdict === "refused") return Status[verdict.status];
  return verdict.verdict === "rate-limited" ? "RATE_LIMITED" : "admitted";
}

/**
 * A device whose state (and a request whose fields) carry each fault named, then the
 * verdict on a holder's command (or action). Seq 10 went through before, so STALE is a
 * command with seq 5.
 */
function judge(faults: ReadonlySet<Fault>, kind: "command" | "action" = "command"): string {
  const { pipeline, slot, lease, link, clock, command, action } = setup();
  expect(outcome(pipeline.admitCommand(slot, HOLDER, command({ seq: 10 })))).toBe("admitted");
  const fields = {
    ...(faults.has("NO_LEASE") ? { leaseId: "someone-else's" } : {}),
    ...(faults.has("EXPIRED") ? { deadlineMs: clock.now() - 1 } : {}),
  };
  if (faults.has("DEVICE_OFFLINE")) { link.close(); slot.linkClosed(link); }
  if (faults.has("RATE_LIMITED")) while (slot.takeToken());
  if (faults.has("ESTOPPED")) lease.estop("supervisor", "test");
  if (kind === "action") return outcome(pipeline.admitAction(slot, HOLDER, action({ ...fields, ...(faults.has("OUT_OF_BOUNDS") ? { value: 99 } : {}) })));
  return outcome(pipeline.admitCommand(slot, HOLDER, command({
    ...fields, seq: faults.has("STALE") ? 5 : 11, ...(faults.has("OUT_OF_BOUNDS") ? { axes: [{ name: "boom", value: 5 }] } : {}),
  })));
}

describe("CommandPipeline: the order of the checks", () => {
  it("admits a command with no fault", () => {
    expect(judge(new Set())).toBe("admitted");
  });

  it.each(commandOrder.map((fault, index) => [fault, index] as const))("refuses %s ahead of every later check", (fault, index) => {
    expect(judge(new Set(commandOrder.slice(index)))).toBe(fault);
  });

  it.each(commandOrder)("refuses %s on its own", (fault) => {
    expect(judge(new Set([fault]))).toBe(fault);
  });

  it("checks an action in the same order, without a seq", () => {
    const actionOrder = commandOrder.filter((fault) => fault !== "STALE");
    for (const [index, fault] of actionOrder.entries()) {
      expect(judge(new Set(actionOrder.slice(index)), "action"), `${fault} first`).toBe(fault);
    }
    expect(judge(new Set(["STALE"]), "action")).toBe("admitted");
  });
});

describe("CommandPipeline: lease, seq and deadline", () => {
  it("renews the holder's lease with every command, even one refused later on", () => {
    const { pipeline, slot, lease, clock, command } = setup();
    clock.advance(900);
    expect(outcome(pipeline.admitCommand(slot, HOLDER, command({ axes: [{ name: "boom", value: 5 }] })))).toBe("OUT_OF_BOUNDS");
    clock.advance(900);
    lease.expire();
    expect(lease.holder?.sessionId).toBe(HOLDER);
  });

  it("consumes the seq and feeds the watchdog mirror only for what it admits", () => {
    const { pipeline, slot, clock, command } = setup();
    clock.advance(100);
    const renewedAt = slot.lastRenewAt;
    pipeline.admitCommand(slot, HOLDER, command({ seq: 7, axes: [{ name: "boom", value: 5 }] }));
    expect([slot.lastSeq, slot.lastRenewAt]).toEqual([0, renewedAt]);
    pipeline.admitCommand(slot, HOLDER, command({ seq: 7 }));
    expect([slot.lastSeq, slot.lastRenewAt]).toEqual([7, clock.now()]);
    expect(outcome(pipeline.admitCommand(slot, HOLDER, command({ seq: 7 })))).toBe("STALE");
  });

  it("answers the deadline in force: the command's, cut to issued + the profile's budget", () => {
    const { pipeline, slot, clock, command } = setup();
    const now = clock.now();
    expect(pipeline.admitCommand(slot, HOLDER, command({ seq: 1, deadlineMs: now + 10_000 }))).toMatchObject({ verdict: "admitted", deadlineMs: now + BUDGET_MS });
    expect(pipeline.admitCommand(slot, HOLDER, command({ seq: 2, deadlineMs: now + 20 }))).toMatchObject({ verdict: "admitted", deadlineMs: now + 20 });
    const late = pipeline.admitCommand(slot, HOLDER, command({ seq: 3, issuedAtMs: now - BUDGET_MS - 1, deadlineMs: now + 10_000 }));
    expect(late).toMatchObject({ verdict: "refused", status: Status.EXPIRED });
    expect(late.verdict === "refused" && late.detail).toMatch(/past the deadline/);
    expect(pipeline.admitCommand(slot, HOLDER, command({ seq: 4, deadlineMs: 0 }))).toMatchObject({ verdict: "refused", status: Status.EXPIRED });
  });
});

describe("CommandPipeline: the holder's rate allowance", () => {
  it("lets the holder burst commandBurst(profile), then drops the excess, telling the holder at most once a second", () => {
    const { pipeline, slot, clock, command } = setup();
    const burst = commandBurst(testProfile());
    let seq = 0;
    const send = () => pipeline.admitCommand(slot, HOLDER, command({ seq: ++seq, issuedAtMs: clock.now(), deadlineMs: clock.now() + BUDGET_MS }));
    /** Sends until one is not admitted; answers that one's verdict. */
    const drain = () => { let verdict; do verdict = send(); while (verdict.verdict === "admitted"); return verdict; };
    for (let i = 0; i < burst; i++) expect(outcome(send())).toBe("admitted");
    expect(send()).toMatchObject({ verdict: "rate-limited", report: true });
    expect(send()).toMatchObject({ verdict: "rate-limited", report: false });
    clock.advance(999);
    expect(outcome(send())).toBe("admitted"); // a second's refill
    expect(drain()).toMatchObject({ verdict: "rate-limited", report: false });
    clock.advance(1);
    expect(drain()).toMatchObject({ verdict: "rate-limited", report: true });
  });

  it("sizes the allowance by the device's control rate", () => {
    const { pipeline, slot, clock, command } = setup(testProfile({ controlRateHz: 150 }));
    let admitted = 0;
    for (let seq = 1; seq <= 400; seq++) {
      if (pipeline.admitCommand(slot, HOLDER, command({ seq, issuedAtMs: clock.now() })).verdict === "admitted") admitted++;
    }
    expect(admitted).toBe(300);
  });

  it("cannot be spent by anyone else: a visitor's flood of four times the allowance leaves the holder's next command through", () => {
    const { pipeline, slot, leaseId, command } = setup();
    const burst = commandBurst(testProfile());
    for (let i = 0; i < 4 * burst; i++) {
      expect(pipeline.admitCommand(slot, "visitor-1", command({ seq: 100 + i, leaseId }))).toMatchObject({ verdict: "refused", status: Status.NO_LEASE });
    }
    for (let seq = 1; seq <= burst; seq++) expect(outcome(pipeline.admitCommand(slot, HOLDER, command({ seq })))).toBe("admitted");
  });

  it("draws actions on the same allowance", () => {
    const { pipeline, slot, action } = setup();
    const burst = commandBurst(testProfile());
    for (let i = 0; i < burst; i++) expect(outcome(pipeline.admitAction(slot, HOLDER, action()))).toBe("admitted");
    expect(outcome(pipeline.admitAction(slot, HOLDER, action()))).toBe("RATE_LIMITED");
  });
});
