/**
 * A participant's commands and actions on their way to the device and their answers on
 * the way back: each admitted by the CommandPipeline (or answered by the room, origin
 * ROOM), forwarded through the device's link, and its ack or result relayed to the
 * sender, counted in the metrics and the audit summary. An action's result reaches its
 * sender once its audit entry is stored (CommandAudit.stored).
 *
 * @example
 *   const relay = new CommandRelay({ pipeline, participants, audit, metrics, reject });
 *   relay.command(client, slot, envelope);   // a ControlCommand envelope
 */
import type { Client } from "@colyseus/core";
import { ErrorCode, TRUSTED, tsunagi } from "../../proto/index.ts";
import type { NodeMetrics } from "../../server/observability/metrics.ts";
import { roomAck, roomActionResult } from "../../server/gateway/DeviceLink.ts";
import type { CommandAudit } from "./CommandAudit.ts";
import { originName, statusName } from "./CommandAudit.ts";
import { notStoredBeyondNode } from "../shared/notStored.ts";
import type { CommandPipeline, Verdict } from "./CommandPipeline.ts";
import type { DeviceSlot } from "./DeviceSlot.ts";
import type { Participants } from "./Participants.ts";

type Envelope = tsunagi.v1.Envelope;
const Status = tsunagi.v1.CommandAck.Status;

/** What the relay needs from its room. */
export interface CommandRelayHost {
  pipeline: CommandPipeline;
  participants: Participants;
  audit: CommandAudit;
  metrics: NodeMetrics;
  /** A coded error to one client, logged and counted. */
  reject(client: Client, code: number, message: string, correlationId: Envelope["correlationId"]): void;
}

export class CommandRelay {
  /** The room's pipeline, participants, audit and metrics. */
  private readonly host: CommandRelayHost;

  constructor(host: CommandRelayHost) {
    this.host = host;
  }

  /** A ControlCommand for `slot`'s device: refused by the room, or forwarded and acked by the adapter; the sender gets its one ack. */
  command(client: Client, slot: DeviceSlot, envelope: Envelope): void {
    const command = envelope.controlCommand as tsunagi.v1.ControlCommand;
    const verdict = this.host.pipeline.admitCommand(slot, client.sessionId, command);
    if (verdict.verdict === "refused") { this.ackToClient(client, slot, roomAck(command, verdict.status, verdict.detail)); return; }
    if (verdict.verdict === "rate-limited") { this.rateLimited(client, verdict, envelope.correlationId); return; }
    command.deadlineMs = verdict.deadlineMs;
    verdict.link.sendCommand(command, (ack) => this.ackToClient(client, slot, ack));
  }

  /**
   * A discrete manoeuvre (arm, take off, land): the command pipeline's checks but the
   * seq; forwarded, it is answered by the adapter. Every action sent under a lease its
   * sender was granted is recorded in the audit log with its outcome.
   */
  action(client: Client, slot: DeviceSlot, envelope: Envelope): void {
    const action = envelope.deviceAction as tsunagi.v1.DeviceAction;
    const correlationId = envelope.correlationId;
    const { participants, audit, metrics } = this.host;
    const reply = (result: tsunagi.v1.ActionResult) => {
      metrics.actions.inc({ status: statusName(result.status), origin: originName(result.origin) });
      const participant = participants.get(client.sessionId);
      audit.recordAction(action, result, { sessionId: client.sessionId, subject: participant?.subject });
      if (!participant) return;
      // Answered once its audit entry is stored beyond this node (an acknowledged action is never lost).
      audit.stored().then(
        () => { if (participants.get(client.sessionId)) participants.send(client, { correlationId, actionResult: result }, TRUSTED); },
        () => { if (participants.get(client.sessionId)) this.host.reject(client, ErrorCode.REGION_UNAVAILABLE, notStoredBeyondNode(`the action's result (${statusName(result.status)}) is known`, "its audit entry"), correlationId); },
      );
    };
    const verdict = this.host.pipeline.admitAction(slot, client.sessionId, action);
    if (verdict.verdict === "refused") { reply(roomActionResult(action, verdict.status, verdict.detail)); return; }
    if (verdict.verdict === "rate-limited") { this.rateLimited(client, verdict, correlationId); return; }
    action.deadlineMs = verdict.deadlineMs;
    verdict.link.sendAction(action, reply);
  }

  /** Over the device's allowance: dropped, and the holder told with a coded error at most once a second. */
  private rateLimited(client: Client, verdict: Extract<Verdict, { verdict: "rate-limited" }>, correlationId: Envelope["correlationId"]) {
    if (verdict.report) this.host.reject(client, ErrorCode.RATE_LIMITED, verdict.detail, correlationId);
    else this.host.metrics.errors.inc({ code: "RATE_LIMITED", source: "teleop" });
  }

  private ackToClient(client: Client, slot: DeviceSlot, ack: tsunagi.v1.CommandAck) {
    this.host.metrics.countCommand(ack.status, ack.origin);
    this.host.audit.countCommand(slot.deviceId, client.sessionId, ack);
    // The adapter refused under the current lease because its own watchdog killed it:
    // end the lease here too, so the operator knows to acquire again.
    if (ack.origin === tsunagi.v1.CommandAck.Origin.ADAPTER && ack.status === Status.NO_LEASE && slot.lease.holder?.leaseId === ack.leaseId) slot.revoke("watchdog");
    if (!this.host.participants.has(client.sessionId)) return;
    this.host.participants.send(client, { correlationId: 0, commandAck: ack }, TRUSTED);
  }
}
