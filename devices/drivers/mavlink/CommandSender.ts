/**
 * MAVLink's command protocol from the GCS side: a COMMAND_LONG, answered by the
 * vehicle's COMMAND_ACK for that command. Without an ack within `ackTimeoutMs` the
 * command goes again with `confirmation` counting up (so the vehicle can tell a resend
 * from a new command), at most `retries` more times. IN_PROGRESS acks extend the wait;
 * ACCEPTED resolves; any other result (DENIED, TEMPORARILY_REJECTED, UNSUPPORTED,
 * FAILED...) rejects with a CommandRefusal naming it. A newer command with the same id
 * supersedes the one in flight, as a vehicle answers only the newest.
 *
 * @example
 *   const commands = new CommandSender(link, { systemId: 1, componentId: 1 });
 *   await commands.send(common.MavCmd.COMPONENT_ARM_DISARM, [1]);   // resolves on ACCEPTED
 */
import { common, type MavLinkData } from "node-mavlink";
import type { MavlinkIds } from "./MavlinkLink.ts";

export interface CommandTiming {
  /** Wait for the ack of one attempt, ms. */
  ackTimeoutMs: number;
  /** Further attempts after the first. */
  retries: number;
}

export const DEFAULT_COMMAND_TIMING: CommandTiming = { ackTimeoutMs: 500, retries: 3 };

/** The vehicle answered, and not ACCEPTED; or it never answered. */
export class CommandRefusal extends Error {
  readonly command: string;
  /** MAV_RESULT name ("DENIED"), or "NO_ACK" / "SUPERSEDED" / "CLOSED". */
  readonly result: string;

  constructor(command: string, result: string, message: string) {
    super(message);
    this.name = "CommandRefusal";
    this.command = command;
    this.result = result;
  }
}

export interface CommandLink {
  send(message: MavLinkData): boolean;
  onMessage(listener: (message: MavLinkData) => void): () => void;
}

interface Pending {
  params: number[];
  attempt: number;
  timer: NodeJS.Timeout;
  resolve: () => void;
  reject: (error: CommandRefusal) => void;
}

export function commandName(command: number): string {
  return common.MavCmd[command] ?? `MAV_CMD ${command}`;
}

export class CommandSender {
  /** Commands sent, retried, and settled by outcome, for the adapter's status. */
  readonly counters = { sent: 0, retries: 0, accepted: 0, refused: 0, unanswered: 0 };
  private readonly link: CommandLink;
  private readonly target: MavlinkIds;
  private readonly timing: CommandTiming;
  private readonly pending = new Map<number, Pending>();
  private readonly unsubscribe: () => void;

  constructor(link: CommandLink, target: MavlinkIds, timing: CommandTiming = DEFAULT_COMMAND_TIMING) {
    this.link = link;
    this.target = target;
    this.timing = timing;
    this.unsubscribe = link.onMessage((message) => {
      if (message instanceof common.CommandAck) this.acked(message);
    });
  }

  /** Sends `command` with up to 7 params; settles on the vehicle's answer, or after the last retry. */
  send(command: number, params: number[] = []): Promise<void> {
    this.pending.get(command)?.reject(new CommandRefusal(commandName(command), "SUPERSEDED", `${commandName(command)} was superseded by a newer one`));
    return new Promise<void>((resolve, reject) => {
      const entry: Pending = { params, attempt: 0, timer: undefined as unknown as NodeJS.Timeout, resolve, reject };
      const settle = (outcome: () => void) => {
        clearTimeout(entry.timer);
        if (this.pending.get(command) === entry) this.pending.delete(command);
        outcome();
      };
      entry.resolve = () => settle(resolve);
      entry.reject = (error) => settle(() => reject(error));
      this.pending.set(command, entry);
      this.attempt(command, entry);
    });
  }

  /** Rejects everything in flight (the link is closing). */
  close(): void {
    for (const [command, entry] of this.pending) entry.reject(new CommandRefusal(commandName(command), "CLOSED", "the MAVLink link closed"));
    this.unsubscribe();
  }

  private attempt(command: number, entry: Pending): void {
    const message = new common.CommandLong();
    message.targetSystem = this.target.systemId;
    message.targetComponent = this.target.componentId;
    message.command = command as common.MavCmd;
    message.confirmation = entry.attempt;
    const [p1 = 0, p2 = 0, p3 = 0, p4 = 0, p5 = 0, p6 = 0, p7 = 0] = entry.params;
    Object.assign(message, { _param1: p1, _param2: p2, _param3: p3, _param4: p4, _param5: p5, _param6: p6, _param7: p7 });
    this.link.send(message);
    this.counters.sent++;
    if (entry.attempt > 0) this.counters.retries++;
    entry.timer = setTimeout(() => {
      if (entry.attempt >= this.timing.retries) {
        this.counters.unanswered++;
        entry.reject(new CommandRefusal(commandName(command), "NO_ACK", `${commandName(command)}: no COMMAND_ACK after ${entry.attempt + 1} attempts`));
        return;
      }
      entry.attempt++;
      this.attempt(command, entry);
    }, this.timing.ackTimeoutMs);
  }

  private acked(ack: common.CommandAck): void {
    const entry = this.pending.get(ack.command);
    if (!entry) return;
    if (ack.result === common.MavResult.IN_PROGRESS) {
      clearTimeout(entry.timer);
      entry.timer = setTimeout(() => this.attempt(ack.command, entry), this.timing.ackTimeoutMs * 4);
      return;
    }
    if (ack.result === common.MavResult.ACCEPTED) {
      this.counters.accepted++;
      entry.resolve();
      return;
    }
    this.counters.refused++;
    const result = common.MavResult[ack.result] ?? String(ack.result);
    entry.reject(new CommandRefusal(commandName(ack.command), result, `the vehicle answered ${commandName(ack.command)} with ${result}`));
  }
}
