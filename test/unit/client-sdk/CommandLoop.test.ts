/**
 * CommandLoop on fake timers against a fake host (test/fixtures/fakes/FakeCommandLoopHost.ts):
 * the rate, the per-lease sequence numbers, the heartbeat period, the confirmed stop, the
 * input hook, and that nothing is ever queued.
 */
import { describe, it, expect, beforeEach, afterEach, vi } from "vitest";
import { CommandLoop, DEFAULT_DEADLINE_MS } from "../../../client-sdk/CommandLoop.ts";
import { Setpoint } from "../../../client-sdk/Setpoint.ts";
import { tsunagi } from "../../../proto/index.ts";
import { FakeCommandLoopHost, heldLease } from "../../fixtures/fakes/FakeCommandLoopHost.ts";
import { excavatorProfile } from "../../fixtures/fakes/deviceProfiles.ts";

const Status = tsunagi.v1.CommandAck.Status;

let host: FakeCommandLoopHost;
let setpoint: Setpoint;

/** A loop over the excavator profile (watchdog 200 ms, budget 50 ms) at `rateHz`. */
function loopAt(rateHz: number, input?: () => Record<string, number> | undefined) {
  return new CommandLoop({ deviceId: "ex-1", rateHz, setpoint, input }, host);
}

/** The values of a command by axis index (an omitted value is 0 on the wire). */
const valuesOf = (command: tsunagi.v1.IControlCommand) => (command.axes ?? []).map((axis) => axis.value ?? 0);
const isNeutral = (command: tsunagi.v1.IControlCommand) => valuesOf(command).every((value) => value === 0);
const ack = (leaseId: string, seq: number, status = Status.APPLIED) => tsunagi.v1.CommandAck.create({ deviceId: "ex-1", leaseId, seq, status });

beforeEach(() => {
  vi.useFakeTimers();
  host = new FakeCommandLoopHost();
  host.currentProfile = tsunagi.v1.DeviceProfile.fromObject(excavatorProfile("ex-1"));
  setpoint = new Setpoint("ex-1");
  setpoint.adopt(host.currentProfile);
});
afterEach(() => {
  vi.useRealTimers();
});

describe("CommandLoop: commands", () => {
  it("sends nothing without a held lease, then one command at once and one every 1/rateHz", () => {
    const loop = loopAt(50);
    loop.start();
    vi.advanceTimersByTime(100);
    expect(host.sent).toEqual([]);
    host.lease = heldLease("lease-1");
    loop.reconcile();
    expect(host.commands()).toHaveLength(1);
    vi.advanceTimersByTime(100);
    expect(host.commands()).toHaveLength(6);
    expect(host.heartbeats()).toEqual([]); // commands count as heartbeats
    loop.halt();
  });

  it("numbers commands per lease from 1, with server times and the profile's budget as deadline", () => {
    const loop = loopAt(100);
    host.lease = heldLease("lease-1");
    loop.start();
    vi.advanceTimersByTime(20);
    loop.leaseChanged("lease-2");
    host.lease = heldLease("lease-2");
    vi.advanceTimersByTime(20);
    const commands = host.commands();
    expect(commands.map((c) => `${c.leaseId}/${c.seq}`)).toEqual(["lease-1/1", "lease-1/2", "lease-1/3", "lease-2/1", "lease-2/2"]);
    expect(host.commandsSent).toEqual(commands.map((c) => `${c.leaseId}/${c.seq}`));
    for (const command of commands) {
      expect(command.issuedAtMs).toBeGreaterThanOrEqual(Date.now() - 1000 + host.serverAheadMs);
      expect(command.deadlineMs! - command.issuedAtMs!).toBe(50);
    }
    loop.halt();
  });

  it("uses DEFAULT_DEADLINE_MS when the profile gives no latency budget", () => {
    host.currentProfile = tsunagi.v1.DeviceProfile.fromObject(excavatorProfile("ex-1", { latencyBudgetMs: 0 }));
    host.lease = heldLease("lease-1");
    loopAt(50).start();
    const [command] = host.commands();
    expect(command.deadlineMs! - command.issuedAtMs!).toBe(DEFAULT_DEADLINE_MS);
  });

  it("keeps no queue: what could not go out is never sent later, and seq counts only what went out", () => {
    const loop = loopAt(100);
    host.lease = heldLease("lease-1");
    setpoint.set({ boom: 0.1 });
    loop.start();
    host.wireUp = false; // reconnecting: nine ticks go nowhere
    vi.advanceTimersByTime(90);
    setpoint.set({ boom: 0.2 });
    host.wireUp = true;
    vi.advanceTimersByTime(10);
    const commands = host.commands();
    expect(commands.map((c) => c.seq)).toEqual([1, 2]);
    expect(commands.map((c) => valuesOf(c)[1])).toEqual([0.1, 0.2]);
    loop.halt();
  });
});

describe("CommandLoop: heartbeats and stop", () => {
  it("while holding and stopped, heartbeats every min(watchdog / 2, ttl / 4), numbered per lease", () => {
    const loop = loopAt(50);
    host.lease = heldLease("lease-1", 1000);
    loop.reconcile();
    vi.advanceTimersByTime(350);
    expect(host.heartbeats().map((h) => h.seq)).toEqual([1, 2, 3]); // every 100 ms: half the 200 ms watchdog
    host.lease = heldLease("lease-2", 200);
    loop.leaseChanged("lease-2");
    vi.advanceTimersByTime(100); // the check due at 400 ms, then every 50 ms: a quarter of the new TTL
    expect(host.heartbeats().slice(3).map((h) => `${h.leaseId}/${h.seq}`)).toEqual(["lease-2/1", "lease-2/2"]);
    expect(host.commands()).toEqual([]);
    host.lease = undefined;
    loop.reconcile();
    const count = host.sent.length;
    vi.advanceTimersByTime(1000);
    expect(host.sent).toHaveLength(count);
  });

  it("stop() sends neutral at once and repeats it, neutral whatever is set, until an APPLIED ack confirms it", () => {
    const loop = loopAt(50);
    host.lease = heldLease("lease-1");
    setpoint.set({ boom: 0.3 });
    loop.start();
    vi.advanceTimersByTime(40);
    loop.stop();
    const stop = host.commands().at(-1)!;
    expect(isNeutral(stop)).toBe(true);
    expect(setpoint.byName.boom).toBe(0);
    setpoint.set({ boom: 0.3 }); // a stick moved while stopped
    vi.advanceTimersByTime(250);
    const repeats = host.commands().slice(host.commands().indexOf(stop) + 1);
    expect(repeats).toHaveLength(2);
    expect(repeats.every(isNeutral)).toBe(true);
    expect(host.heartbeats()).toEqual([]);

    loop.acked(ack("lease-1", Number(stop.seq) - 1)); // an older command: not the stop
    loop.acked(ack("lease-1", Number(repeats[0].seq), Status.EXPIRED));
    vi.advanceTimersByTime(100);
    expect(host.heartbeats()).toEqual([]);
    loop.acked(ack("lease-1", Number(repeats[0].seq)));
    const commands = host.commands().length;
    vi.advanceTimersByTime(300);
    expect(host.heartbeats().length).toBeGreaterThanOrEqual(2);
    expect(host.commands()).toHaveLength(commands);
    loop.halt();
  });
});

describe("CommandLoop: input", () => {
  it("reads the input hook at every tick; a throw sends neutral for that tick and is reported", () => {
    let input: () => Record<string, number> | undefined = () => ({ boom: 0.2 });
    const loop = loopAt(100, () => input());
    host.lease = heldLease("lease-1");
    loop.start();
    vi.advanceTimersByTime(10);
    input = () => { throw new Error("pad glitch"); };
    vi.advanceTimersByTime(10);
    input = () => undefined; // keeps what is set
    setpoint.set({ swing: 0.5 });
    vi.advanceTimersByTime(10);
    expect(host.commands().map((c) => valuesOf(c).slice(0, 2))).toEqual([[0, 0.2], [0, 0.2], [0, 0], [0.5, 0]]);
    expect(host.inputErrors.map((e) => e.message)).toEqual([expect.stringMatching(/pad glitch/)]);
    loop.halt();
  });
});
