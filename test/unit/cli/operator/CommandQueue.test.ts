/**
 * CommandQueue: typed commands run one after another in order, an e-stop beside them at
 * once, failures reported without stopping the queue, and the bound on waiting commands.
 */
import { describe, it, expect } from "vitest";
import { CommandQueue } from "../../../../cli/operator/CommandQueue.ts";

/** A queue whose reports land in `log`, stopped when `state.stopped` is set. */
function queueWithLog(maxPending?: number) {
  const log: string[] = [];
  const state = { stopped: false };
  const queue = new CommandQueue({
    refused: (message) => log.push(`invalid: ${message}`),
    failed: (error) => log.push(`error: ${(error as Error).message}`),
    stopped: () => state.stopped,
  }, maxPending);
  return { queue, log, state };
}

/** A promise and the function that settles it. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => { open = resolve; });
  return { opened, open };
}

describe("CommandQueue", () => {
  it("runs queued commands one after another, each to its end, in the order given", async () => {
    const { queue, log } = queueWithLog();
    const acquire = gate();
    queue.enqueue(async () => { log.push("acquire sent"); await acquire.opened; log.push("acquire answered"); });
    queue.enqueue(() => log.push("set"));
    await Promise.resolve();
    expect(log).toEqual(["acquire sent"]);
    acquire.open();
    await queue.idle();
    expect(log).toEqual(["acquire sent", "acquire answered", "set"]);
  });

  it("runs an e-stop at once, while a queued command still waits for its answer", async () => {
    const { queue, log } = queueWithLog();
    const acquire = gate();
    queue.enqueue(async () => { await acquire.opened; log.push("acquire answered"); });
    queue.enqueue(() => log.push("set"));
    await queue.runNow(() => log.push("estop"));
    expect(log).toEqual(["estop"]);
    acquire.open();
    await queue.idle();
    expect(log).toEqual(["estop", "acquire answered", "set"]);
  });

  it("reports a TypeError as the command's refusal, anything else as a failure, and goes on", async () => {
    const { queue, log } = queueWithLog();
    await queue.runNow(async () => { throw new Error("FORBIDDEN"); });
    queue.enqueue(() => { throw new TypeError("usage: set AXIS VALUE"); });
    queue.enqueue(async () => { throw new Error("LEASE_HELD"); });
    queue.enqueue(() => log.push("next"));
    await queue.idle();
    expect(log).toEqual(["error: FORBIDDEN", "invalid: usage: set AXIS VALUE", "error: LEASE_HELD", "next"]);
  });

  it("refuses a command past maxPending waiting ones; room is made as they finish", async () => {
    const { queue, log } = queueWithLog(2);
    const first = gate();
    expect(queue.enqueue(() => first.opened)).toBe(true);
    expect(queue.enqueue(() => log.push("second"))).toBe(true);
    expect(queue.enqueue(() => log.push("third"))).toBe(false);
    expect(queue.size).toBe(2);
    first.open();
    await queue.idle();
    expect(queue.size).toBe(0);
    expect(queue.enqueue(() => log.push("fourth"))).toBe(true);
    await queue.idle();
    expect(log).toEqual(["second", "fourth"]);
  });

  it("runs nothing more that waits once stopped (the console is on its way out)", async () => {
    const { queue, log, state } = queueWithLog();
    const first = gate();
    queue.enqueue(async () => { await first.opened; state.stopped = true; });
    queue.enqueue(() => log.push("set"));
    first.open();
    await queue.idle();
    expect(log).toEqual([]);
    expect(queue.size).toBe(0);
  });
});
