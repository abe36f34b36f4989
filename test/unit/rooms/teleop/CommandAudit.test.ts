/**
 * CommandAudit: the per-second command summaries and the records of a teleop room,
 * against a FakeAuditSink on a FakeRoomClock (whose `every` stands in for the room's timers).
 */
import { describe, expect, it, vi } from "vitest";
import { tsunagi } from "../../../../proto/index.ts";
import { AUDIT_STORED_WAIT_MS, CommandAudit, MAX_GRANTS_REMEMBERED, SUMMARY_MS } from "../../../../rooms/teleop/CommandAudit.ts";
import { FakeAuditSink } from "../../../fixtures/fakes/FakeAuditSink.ts";
import { FakeRoomClock } from "../../../fixtures/fakes/FakeRoomClock.ts";

const Status = tsunagi.v1.CommandAck.Status;
const Origin = tsunagi.v1.CommandAck.Origin;

function setup() {
  const clock = new FakeRoomClock(5_000);
  const sink = new FakeAuditSink();
  const failures: Array<{ error: unknown; type: string }> = [];
  const audit = new CommandAudit({ sink, now: clock.now, every: clock.every, onAppendFailed: (error, type) => failures.push({ error, type }) });
  const ack = (leaseId: string, seq: number, status: tsunagi.v1.CommandAck.Status) => tsunagi.v1.CommandAck.create({ deviceId: "ex-1", leaseId, seq, status, origin: Origin.ADAPTER });
  /** Lets appends (promises) settle. */
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  return { clock, sink, failures, audit, ack, settle };
}

describe("CommandAudit: command summaries", () => {
  it("counts each status of a lease's commands in one summary, written once a second", async () => {
    const { clock, sink, audit, ack, settle } = setup();
    audit.granted("ex-1", "L1", "op-a");
    const from = clock.now();
    for (const [seq, status] of [[1, Status.APPLIED], [2, Status.APPLIED], [2, Status.STALE], [4, Status.EXPIRED], [3, Status.APPLIED]] as const) {
      audit.countCommand("ex-1", "op-a", ack("L1", seq, status));
      clock.advance(100);
    }
    await settle();
    expect(sink.entries).toEqual([]); // 500 ms in: nothing written yet
    clock.advance(SUMMARY_MS - 501);
    await settle();
    expect(sink.entries).toEqual([]);
    clock.advance(1);
    await settle();
    expect(sink.entries).toEqual([{
      type: "commands.summary",
      data: { deviceId: "ex-1", leaseId: "L1", sessionId: "op-a", counts: { APPLIED: 3, STALE: 1, EXPIRED: 1 }, firstSeq: 1, lastSeq: 4, from, to: from + 400 },
    }]);
    // A quiet second writes nothing; the next busy one writes its own summary.
    clock.advance(SUMMARY_MS);
    audit.countCommand("ex-1", "op-a", ack("L1", 9, Status.OUT_OF_BOUNDS));
    clock.advance(SUMMARY_MS);
    await settle();
    expect(sink.ofType("commands.summary").map((data) => data.counts)).toEqual([{ APPLIED: 3, STALE: 1, EXPIRED: 1 }, { OUT_OF_BOUNDS: 1 }]);
  });

  it("keeps one summary per device", async () => {
    const { clock, sink, audit, ack, settle } = setup();
    audit.granted("ex-1", "L1", "op-a");
    audit.granted("dr-1", "L2", "op-b");
    audit.countCommand("ex-1", "op-a", ack("L1", 1, Status.APPLIED));
    audit.countCommand("dr-1", "op-b", ack("L2", 1, Status.NO_LEASE));
    clock.advance(SUMMARY_MS);
    await settle();
    expect(sink.ofType("commands.summary").map((data) => [data.deviceId, data.counts])).toEqual([["ex-1", { APPLIED: 1 }], ["dr-1", { NO_LEASE: 1 }]]);
  });

  it("counts only commands sent under a lease granted to their sender", async () => {
    const { clock, sink, audit, ack, settle } = setup();
    audit.granted("ex-1", "L1", "op-a");
    audit.countCommand("ex-1", "visitor", ack("L1", 1, Status.NO_LEASE)); // someone else's lease
    audit.countCommand("ex-1", "op-a", ack("made-up", 2, Status.NO_LEASE)); // a lease never granted
    audit.countCommand("ex-1", "op-a", ack("", 3, Status.NO_LEASE));
    audit.countCommand("dr-1", "op-a", ack("L1", 4, Status.NO_LEASE)); // granted on another device
    clock.advance(SUMMARY_MS);
    await settle();
    expect(sink.entries).toEqual([]);
  });

  it("closes a lease's summary when the next lease's first command comes, or when the lease ends", async () => {
    const { sink, audit, ack, settle } = setup();
    audit.granted("ex-1", "L1", "op-a");
    audit.granted("ex-1", "L2", "op-b");
    audit.countCommand("ex-1", "op-a", ack("L1", 1, Status.APPLIED));
    audit.countCommand("ex-1", "op-b", ack("L2", 1, Status.APPLIED));
    await settle();
    expect(sink.ofType("commands.summary").map((data) => data.leaseId)).toEqual(["L1"]);
    audit.flushDevice("ex-1");
    await settle();
    expect(sink.ofType("commands.summary").map((data) => data.leaseId)).toEqual(["L1", "L2"]);
  });

  it(`remembers the last ${MAX_GRANTS_REMEMBERED} grants of a device, so a late ack still counts under who sent it`, async () => {
    const { clock, sink, audit, ack, settle } = setup();
    for (let n = 1; n <= MAX_GRANTS_REMEMBERED + 1; n++) audit.granted("ex-1", `L${n}`, "op-a");
    expect(audit.wasGranted("ex-1", "L1", "op-a")).toBe(false);
    expect(audit.wasGranted("ex-1", "L2", "op-a")).toBe(true);
    audit.countCommand("ex-1", "op-a", ack("L2", 1, Status.APPLIED));
    clock.advance(SUMMARY_MS);
    await settle();
    expect(sink.ofType("commands.summary").map((data) => data.leaseId)).toEqual(["L2"]);
  });
});

describe("CommandAudit: records", () => {
  it("records an action's outcome only when sent under a lease granted to its sender", async () => {
    const { sink, audit, settle } = setup();
    audit.granted("dr-1", "L1", "op-a");
    const action = tsunagi.v1.DeviceAction.create({ deviceId: "dr-1", leaseId: "L1", action: "takeoff", value: 3 });
    const result = tsunagi.v1.ActionResult.create({ deviceId: "dr-1", action: "takeoff", status: Status.APPLIED, origin: Origin.ADAPTER, detail: "" });
    audit.recordAction(action, result, { sessionId: "op-a", subject: "pilot" });
    audit.recordAction(action, result, { sessionId: "visitor", subject: "someone" });
    await settle();
    expect(sink.ofType("action")).toEqual([{
      deviceId: "dr-1", action: "takeoff", value: 3, leaseId: "L1", sessionId: "op-a", subject: "pilot", status: "APPLIED", origin: "adapter", detail: "",
    }]);
  });

  it("hands a failed append to the host, never to the caller", async () => {
    const { sink, failures, audit, settle } = setup();
    sink.failWith = new Error("redis unreachable");
    expect(() => audit.record("lease.estopped", { deviceId: "ex-1" })).not.toThrow();
    await settle();
    expect(failures).toEqual([{ error: sink.failWith, type: "lease.estopped" }]);
  });
});

describe("CommandAudit: what acknowledges an audited event waits for it to be stored", () => {
  it("stored() resolves once the sink has stored the records so far, and rejects after AUDIT_STORED_WAIT_MS when it has not", async () => {
    const { sink, audit } = setup();
    let release!: () => void;
    sink.holdFlush = new Promise<void>((resolve) => { release = resolve; });
    audit.record("lease.granted", { deviceId: "ex-1" });
    let stored = false;
    const waiting = audit.stored().then(() => { stored = true; });
    await new Promise((resolve) => setImmediate(resolve));
    expect(stored).toBe(false); // the sink holds it back: not acknowledged yet
    release();
    await waiting;
    expect(stored).toBe(true);

    vi.useFakeTimers();
    try {
      sink.holdFlush = new Promise<void>(() => {}); // never stored
      const late = audit.stored();
      const outcome = late.then(() => "stored", (error: Error) => error.message);
      await vi.advanceTimersByTimeAsync(AUDIT_STORED_WAIT_MS - 1);
      await vi.advanceTimersByTimeAsync(1);
      expect(await outcome).toMatch(/did not store its entries within 3000 ms/);
    } finally {
      vi.useRealTimers();
    }
  });
});
