/**
 * The e-stop of a teleop room (docs/safety.md, "E-stop rights"): who may raise and reset
 * one, and the order things happen in. Raising stops the devices first, every one of
 * them before any is latched (latching means lease events, broadcasts, audit and logs,
 * which must not delay the next device's stop); then each device's lease latches it
 * and every participant is told. Operators, supervisors and admins may raise one, for
 * one device or all; with neither a device nor `all` it stops everything (control.proto:
 * when in doubt, stop), and so does one naming a device the room does not have, which is
 * then answered DEVICE_UNKNOWN. Only a supervisor (or admin) resets, and a reset moves
 * nothing: motion needs a fresh lease.
 *
 * The sender gets one answer: the reply (its request's correlation id), or the coded
 * refusal. The notices go to everyone else; after a refusal that still stopped devices
 * (an unknown device), to the sender too, since the refusal does not say what stopped.
 *
 * @example
 *   const estops = new EmergencyStop({ slots, now: Date.now, broadcast, latched: (deviceId, latch) => count(latch.source), roomId });
 *   const outcome = estops.raise(sender, envelope.estop);
 *   if ("refused" in outcome) reject(client, outcome.refused.code, outcome.refused.message);
 *   else reply(client, { estop: outcome.reply });
 */
import { ErrorCode, type tsunagi } from "../../proto/index.ts";
import { estopRoles, resetRoles, type Role } from "../../server/auth/tokens.ts";
import type { DeviceSlot } from "./DeviceSlot.ts";
/** An EStop.raised_at_ms further than this from the room's clock is not believed, ms. */
const PLAUSIBLE_CLOCK_SKEW_MS = 10_000;
/** Longest reason kept, characters. */
const MAX_REASON = 200;

/** Who pressed the button or asked for the reset. */
export interface EStopSender {
  sessionId: string;
  role: Role;
  subject: string;
}

/** What to answer the sender: the notice as latched, or a coded refusal. */
export type EStopOutcome<Notice> =
  | { readonly reply: Notice }
  | { readonly refused: { readonly code: ErrorCode; readonly message: string } };

/** What the e-stop needs from its room. */
export interface EmergencyStopHost {
  /** The room's devices, by id. */
  slots: ReadonlyMap<string, DeviceSlot>;
  /** Server clock, ms. */
  now(): number;
  /** Sends an envelope to every participant but `exceptSessionId` (the sender, who gets the reply instead). */
  broadcast(envelope: tsunagi.v1.IEnvelope, exceptSessionId?: string): void;
  /** An e-stop latched on a device: count it by source; `first` when it was not latched before (worth a log line). */
  latched(deviceId: string, latch: { by: string; reason: string; source: string; first: boolean }): void;
  /** For refusals naming the room. */
  roomId: string;
  /** Sends a coded Error to one participant, if still in the room. */
  tell(sessionId: string, code: ErrorCode, message: string): void;
}

export class EmergencyStop {
  /** The room's devices, clock, and how to tell everyone. */
  private readonly host: EmergencyStopHost;
  /** Who last reset each device, by device id: told if its adapter refuses the reset. */
  private readonly lastResetBy = new Map<string, string>();

  constructor(host: EmergencyStopHost) {
    this.host = host;
  }

  /**
   * A participant's e-stop: the devices stop, then latch. Refused FORBIDDEN for a role that
   * may not, stopping nothing. One naming a device not in the room stops every device
   * (when in doubt, stop: the sender meant to stop something), then is refused DEVICE_UNKNOWN.
   */
  raise(sender: EStopSender | undefined, estop: tsunagi.v1.EStop): EStopOutcome<tsunagi.v1.IEStop> {
    if (!sender || !estopRoles.includes(sender.role)) {
      return refused(ErrorCode.FORBIDDEN, `role "${sender?.role}" may not raise an e-stop (allowed: ${estopRoles.join(", ")})`);
    }
    const { slots } = this.host;
    const named = estop.deviceId && !estop.all ? slots.get(estop.deviceId) : undefined;
    const unknown = !!estop.deviceId && !estop.all && named === undefined;
    const targets = named ? [named] : [...slots.values()];
    const by = `${sender.subject} (${sender.sessionId})`;
    const given = estop.reason?.slice(0, MAX_REASON) || `e-stop by ${sender.role}`;
    const reason = unknown ? `${given} (named unknown device "${estop.deviceId.slice(0, 64)}": every device stopped)` : given;
    // The sender's clock (synced to ours) says when the button was pressed; keep it when plausible, so
    // the device can tell the whole operator→device latency. Our own time otherwise.
    const now = this.host.now();
    const pressedAt = Math.abs(now - (estop.raisedAtMs || 0)) <= PLAUSIBLE_CLOCK_SKEW_MS ? estop.raisedAtMs : now;
    for (const slot of targets) slot.link?.sendEStop(estopNotice(slot, by, reason, pressedAt));
    // A refusal does not say what stopped: then the sender gets the notices too.
    const except = unknown ? undefined : sender.sessionId;
    for (const slot of targets) this.latch(slot, by, reason, sender.role, pressedAt, false, except);
    if (unknown) return refused(ErrorCode.DEVICE_UNKNOWN, `no device "${estop.deviceId.slice(0, 64)}" in room ${this.host.roomId}: every device of the room was stopped`);
    return { reply: { deviceId: estop.deviceId, all: estop.all || !estop.deviceId, reason, raisedBy: by, raisedAtMs: estop.raisedAtMs } };
  }

  /** The device stopped itself (a physical button, a driver fault): the room latches it too. */
  deviceRaised(slot: DeviceSlot, estop: tsunagi.v1.EStop): void {
    this.latch(slot, `device:${slot.deviceId}`, estop.reason || "raised on the device", "device", this.host.now(), true);
  }

  /** A supervisor's reset: the latch clears at the room and the adapter; nothing moves. Refused FORBIDDEN, DEVICE_UNKNOWN, or WRONG_TYPE (nothing latched). */
  reset(sender: EStopSender | undefined, reset: tsunagi.v1.Reset): EStopOutcome<tsunagi.v1.IReset> {
    if (!sender || !resetRoles.includes(sender.role)) return refused(ErrorCode.FORBIDDEN, `only a supervisor may reset an e-stop (you are ${sender?.role})`);
    const slot = this.host.slots.get(reset.deviceId);
    if (!slot) return refused(ErrorCode.DEVICE_UNKNOWN, `no device "${String(reset.deviceId).slice(0, 64)}" in room ${this.host.roomId}`);
    const result = slot.lease.reset(sender.sessionId, "supervisor");
    if (result.status === "refused") return refused(ErrorCode.WRONG_TYPE, result.message);
    const notice = { deviceId: slot.deviceId, by: `${sender.subject} (${sender.sessionId})`, reason: reset.reason?.slice(0, MAX_REASON) ?? "" };
    this.lastResetBy.set(slot.deviceId, sender.sessionId);
    slot.link?.sendReset(notice);
    this.host.broadcast({ correlationId: 0, reset: notice }, sender.sessionId);
    return { reply: notice };
  }

  /**
   * The adapter refused the last reset (ESTOP_LOCAL: the e-stop was raised at the
   * machine and a technician must reset it there first): the supervisor who reset is
   * told, with the adapter's code and words. The adapter announces its latch again, so
   * the room latches again through deviceRaised. Other codes from a device are not the
   * supervisor's business: false.
   */
  deviceRefusedReset(slot: DeviceSlot, error: tsunagi.v1.Error): boolean {
    if (error.code !== ErrorCode.ESTOP_LOCAL) return false;
    const sessionId = this.lastResetBy.get(slot.deviceId);
    if (sessionId !== undefined) this.host.tell(sessionId, ErrorCode.ESTOP_LOCAL, error.message.slice(0, MAX_REASON * 2));
    return true;
  }

  /** Stops the device first (unless the caller already did), then latches and tells everyone but `except` (the sender, who gets the reply). */
  private latch(slot: DeviceSlot, by: string, reason: string, source: string, raisedAtMs: number, stopDevice: boolean, except?: string): void {
    const notice = estopNotice(slot, by, reason, raisedAtMs);
    if (stopDevice) slot.link?.sendEStop(notice);
    const result = slot.lease.estop(by, reason, this.host.now());
    this.host.latched(slot.deviceId, { by, reason, source, first: result.status === "estopped" && !result.alreadyLatched });
    this.host.broadcast({ correlationId: 0, estop: notice }, except);
  }
}

/** The EStop a device and the participants are sent. */
function estopNotice(slot: DeviceSlot, raisedBy: string, reason: string, raisedAtMs: number): tsunagi.v1.IEStop {
  return { deviceId: slot.deviceId, reason, raisedBy, raisedAtMs };
}

function refused(code: ErrorCode, message: string): { refused: { code: ErrorCode; message: string } } {
  return { refused: { code, message } };
}
