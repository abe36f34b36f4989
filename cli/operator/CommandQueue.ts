/**
 * Runs the console's commands one after another, in the order typed, each to its end (a
 * lease request waits for its reply) before the next starts; runNow() runs one at once
 * beside them, which is how an e-stop never waits behind a pending command.
 *
 * Bounded: at most `maxPending` commands wait. A line past that is refused (its command
 * never runs), so a script piped faster than the room answers cannot grow the queue
 * without limit; the end of input is not a command and is never refused.
 *
 * A command's failure is reported and the next one runs: a TypeError is the command's
 * own refusal (bad arguments, not holding the lease), anything else a failure (the room
 * refused, no reply).
 *
 * @example
 *   const queue = new CommandQueue({ refused: (m) => say("invalid", m), failed: report, stopped: () => exiting });
 *   queue.enqueue(() => controls.acquire());
 *   void queue.runNow(() => controls.estop());
 */

/** Commands waiting at most, by default. */
export const MAX_PENDING_COMMANDS = 100;

/** What the queue tells its owner, and asks it. */
export interface CommandQueueHost {
  /** A command refused itself (it threw a TypeError): its message. */
  refused(message: string): void;
  /** A command failed otherwise. */
  failed(error: unknown): void;
  /** Whether the console is on its way out: waiting commands then do nothing. */
  stopped(): boolean;
}

/** A command: what it does, synchronously or not. */
export type Command = () => unknown;

export class CommandQueue {
  /** How failures are reported, and whether to stop. */
  private readonly host: CommandQueueHost;
  /** Commands waiting at most. */
  private readonly maxPending: number;
  /** Settles when the last command queued has run. */
  private tail: Promise<void> = Promise.resolve();
  /** Commands queued and not yet finished. */
  private pending = 0;

  constructor(host: CommandQueueHost, maxPending: number = MAX_PENDING_COMMANDS) {
    this.host = host;
    this.maxPending = maxPending;
  }

  /** Commands queued and not yet finished. */
  get size(): number {
    return this.pending;
  }

  /** Queues `command` after the others; false (and it never runs) when maxPending are waiting. */
  enqueue(command: Command): boolean {
    if (this.pending >= this.maxPending) return false;
    this.pending++;
    this.tail = this.tail.then(async () => {
      try {
        if (!this.host.stopped()) await this.runReporting(command);
      } finally {
        this.pending--;
      }
    });
    return true;
  }

  /** Runs `command` now, beside whatever is queued; settles when it is done (failures reported). */
  runNow(command: Command): Promise<void> {
    return this.runReporting(command);
  }

  /** Settles once every command queued so far has run. */
  idle(): Promise<void> {
    return this.tail;
  }

  private async runReporting(command: Command): Promise<void> {
    try {
      await command();
    } catch (error) {
      if (error instanceof TypeError) this.host.refused(error.message);
      else this.host.failed(error);
    }
  }
}
