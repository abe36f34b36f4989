/**
 * The host tools of an expo hall (HostCommand, AnalyticsRequest): announcements to the
 * hall or to one area, booth presentations, the pinned message, and moderation (mute,
 * unmute, kick, ban, unban; a mute silences chat and voice), plus the hall's live analytics for hosts.
 *
 * A command is answered (HostResult) once the room's snapshot holding it is stored in its
 * region's Redis and the replica region's (RoomSnapshots.writeNow): a host action that
 * was acknowledged survives the loss of the node. A command applies hall-wide: the zone that takes it stores what must outlive it (bans,
 * mutes, the pin, presentations) in the hall's keys, applies it to its own visitors and
 * publishes it to the other zones (a hall event), each of which applies it to theirs
 * (`apply`). Each host may send HOST_COMMANDS_PER_SECOND, bursts of HOST_COMMAND_BURST:
 * every command fans out hall-wide, so even a host is bounded (a leaked host token must
 * not flood the hall).
 *
 * @example
 *   const tools = new HostTools({ hallId, zoneId, areaIds, boothIds, hall, ... });
 *   await tools.load();                                     // the pin and presentations so far
 *   room.onEnvelope("hostCommand", (client, envelope) => tools.command(visitorOf(client), envelope));
 *   welcome.pinned = tools.pinned; welcome.presentations = tools.presentations();
 */
import { ErrorCode, tsunagi } from "../../proto/index.ts";
import { TokenBucket } from "../../common/TokenBucket.ts";
import type { Logger } from "../../server/observability/logging.ts";
import { framedEnvelope } from "./FrameEncoder.ts";
import { deliverEach } from "./Delivery.ts";
import type { HallChannels, HallEventBody, HallVisitorRecord } from "./HallChannels.ts";
import { MAX_TEXT, type Visitor } from "./model.ts";
import { notStoredBeyondNode } from "../shared/notStored.ts";

const Action = tsunagi.v1.Moderate.Action;
/** Host commands one host may send: per second, and the burst on top. */
export const HOST_COMMANDS_PER_SECOND = 5;
export const HOST_COMMAND_BURST = 20;
/** Longest presentation title and moderation reason, characters. */
const MAX_TITLE = 200;

type CorrelationId = tsunagi.v1.IEnvelope["correlationId"];

/** What HostTools needs of its zone room. */
export interface HostToolsHost {
  readonly hallId: string;
  /** "" for an unzoned hall. */
  readonly zoneId: string;
  /** Areas an announcement may name (booths included), and booths a presentation may. */
  readonly areaIds: ReadonlySet<string>;
  readonly boothIds: ReadonlySet<string>;
  /** The hall's keys, and its events to the other zones. */
  readonly hall: Pick<HallChannels, "visitor" | "ban" | "unban" | "mute" | "pin" | "pinned" | "present" | "presentations" | "publishEvent">;
  /** This room's visitors. */
  visitors(): Iterable<Visitor>;
  localById(visitorId: number): Visitor | undefined;
  /** A coded refusal to the sender, answering its request. */
  reject(visitor: Visitor, code: number, message: string, correlationId: CorrelationId): void;
  send(visitor: Visitor, envelope: tsunagi.v1.IEnvelope): void;
  /** A visitor's mute changed (`visitor.mutedUntil`): its voice follows. */
  muted(visitor: Visitor): void;
  /** Ends a visitor's session for good (kick, ban): a notice of `action`, the coded error `code`, and the close. */
  remove(visitor: Visitor, action: tsunagi.v1.Moderate.Action, code: number, message: string, reason: string): void;
  /** The hall's analytics, every zone's. */
  report(): Promise<tsunagi.v1.IAnalyticsReport>;
  /** Resolves once what the room holds now is stored where a failover restores it from (its snapshot); rejects when it could not be. */
  stored(): Promise<void>;
  readonly logger: Pick<Logger, "info" | "error">;
  now(): number;
}

export class HostTools {
  /** The zone room, its hall and its visitors. */
  private readonly host: HostToolsHost;
  /** Each host's command allowance, made on its first command. */
  private readonly allowances = new WeakMap<Visitor, TokenBucket>();
  /** Live presentations by booth id, for the welcome of joiners. */
  private readonly live = new Map<string, tsunagi.v1.IBoothState>();
  /** The pinned message, for everyone and every joiner. */
  pinned: tsunagi.v1.IPinnedMessage = { text: "" };

  constructor(host: HostToolsHost) {
    this.host = host;
  }

  /** Reads the pin and the presentations the hall has so far (a zone opening, or a hall opened again). */
  async load(): Promise<void> {
    const pinned = await this.host.hall.pinned();
    if (pinned) this.pinned = pinned;
    for (const state of await this.host.hall.presentations()) this.live.set(state.boothId!, state);
  }

  /** The live presentations. */
  presentations(): tsunagi.v1.IBoothState[] {
    return [...this.live.values()];
  }

  /** A HostCommand from `visitor`: refused unless a host within its allowance; else applied hall-wide and answered with a HostResult. */
  async command(visitor: Visitor, envelope: tsunagi.v1.Envelope): Promise<void> {
    const { host } = this;
    const correlationId = envelope.correlationId;
    const refuse = (code: number, message: string) => host.reject(visitor, code, message, correlationId);
    if (!visitor.isHost) return refuse(ErrorCode.FORBIDDEN, `host tools need the host role (you are ${visitor.entity.role})`);
    const allowance = this.allowanceOf(visitor);
    if (!allowance.take()) {
      return refuse(ErrorCode.RATE_LIMITED, `host commands limited to ${HOST_COMMANDS_PER_SECOND}/s (burst ${HOST_COMMAND_BURST}): retry in ${allowance.retryAfterMs()} ms`);
    }
    const command = envelope.hostCommand!;
    const now = host.now();
    const by = visitor.entity.name;
    const log = (what: string, fields: Record<string, unknown> = {}) =>
      host.logger.info({ hallId: host.hallId, zoneId: host.zoneId || undefined, host: visitor.subject, ...fields }, `host ${visitor.subject}: ${what}`);
    // Acknowledged once stored where a failover restores it from (written before acknowledged).
    const reply = async (delivered: number, detail: string) => {
      try {
        await host.stored();
      } catch (error) {
        host.logger.error({ err: error, hallId: host.hallId }, `host ${visitor.subject}: ${detail}, but not stored beyond this node`);
        return refuse(ErrorCode.REGION_UNAVAILABLE, notStoredBeyondNode(detail));
      }
      host.send(visitor, { correlationId, hostResult: { delivered, detail } });
    };
    try {
      switch (command.command) {
        case "announce": {
          const { text, areaId } = command.announce!;
          if (!text || text.length > MAX_TEXT) return refuse(ErrorCode.WRONG_TYPE, `announcement text must be 1..${MAX_TEXT} characters`);
          if (areaId && !host.areaIds.has(areaId)) return refuse(ErrorCode.UNKNOWN_TARGET, `no area or booth "${areaId.slice(0, 64)}" in hall "${host.hallId}"`);
          const announcement = { text, areaId: areaId ?? "", fromName: by, atMs: now };
          const delivered = this.announce(announcement);
          host.hall.publishEvent({ type: "announce", announcement });
          log(`announced to ${areaId ? `area ${areaId}` : "the hall"}`, { delivered });
          return reply(delivered, areaId ? `announced in ${areaId}` : "announced to the hall");
        }
        case "presentation": {
          const { boothId, live, title } = command.presentation!;
          if (!boothId || !host.boothIds.has(boothId)) return refuse(ErrorCode.UNKNOWN_TARGET, `no booth "${(boothId ?? "").slice(0, 64)}" in hall "${host.hallId}"`);
          if ((title ?? "").length > MAX_TITLE) return refuse(ErrorCode.WRONG_TYPE, `presentation title must be at most ${MAX_TITLE} characters`);
          const state: tsunagi.v1.IBoothState = { boothId, live: !!live, title: title ?? "", presenter: live ? by : "", sinceMs: now };
          await host.hall.present(state);
          const delivered = this.present(state);
          host.hall.publishEvent({ type: "presentation", state });
          log(`${live ? "started" : "stopped"} the presentation at ${boothId}`);
          return reply(delivered, `${live ? "started" : "stopped"} presentation at ${boothId}`);
        }
        case "pin": {
          const text = command.pin!.text ?? "";
          if (text.length > MAX_TEXT) return refuse(ErrorCode.WRONG_TYPE, `pinned text must be at most ${MAX_TEXT} characters`);
          const pinned = { text, by: text ? by : "", atMs: now };
          await host.hall.pin(pinned);
          const delivered = this.pin(pinned);
          host.hall.publishEvent({ type: "pin", pinned });
          log(text ? "pinned a message" : "unpinned the message");
          return reply(delivered, text ? "pinned" : "unpinned");
        }
        case "moderate":
          return await this.moderate(visitor, command.moderate!, refuse, log, reply);
        default:
          return refuse(ErrorCode.WRONG_TYPE, "HostCommand needs one of announce, presentation, moderate, pin");
      }
    } catch (error) {
      host.logger.error({ err: error, hallId: host.hallId }, "host command failed");
      return refuse(ErrorCode.INTERNAL, `host command failed: ${(error as Error).message}`);
    }
  }

  /** An AnalyticsRequest: the hall's report, for hosts only. */
  async analytics(visitor: Visitor, envelope: tsunagi.v1.Envelope): Promise<void> {
    if (!visitor.isHost) return this.host.reject(visitor, ErrorCode.FORBIDDEN, "analytics are for hosts", envelope.correlationId);
    const report = await this.host.report();
    this.host.send(visitor, { correlationId: envelope.correlationId, analyticsReport: report });
  }

  /** Applies another zone's host event to this zone's visitors (chat events are HallChat's). */
  apply(event: Exclude<HallEventBody, { type: "chat" | "sensors" }>): void {
    switch (event.type) {
      case "announce": this.announce(event.announcement); return;
      case "presentation": this.present(event.state); return;
      case "pin": this.pin(event.pinned); return;
      case "mute": this.mute(event.subject, event.untilMs, event.reason); return;
      case "kick": this.kick(event.visitorId, event.reason); return;
      case "ban": this.ban(event.subject, event.reason); return;
    }
  }

  private async moderate(hostVisitor: Visitor, command: tsunagi.v1.IModerate, refuse: (code: number, message: string) => void,
    log: (what: string, fields?: Record<string, unknown>) => void, reply: (delivered: number, detail: string) => void): Promise<void> {
    const { host } = this;
    const reason = (command.reason ?? "").slice(0, MAX_TITLE);
    const action = command.action ?? Action.ACTION_UNSPECIFIED;
    let subject = command.subject ?? "";
    let record: HallVisitorRecord | undefined;
    if (command.visitorId) {
      record = await host.hall.visitor(command.visitorId);
      if (!record) return refuse(ErrorCode.UNKNOWN_TARGET, `no visitor ${command.visitorId} in hall "${host.hallId}"`);
      subject = record.subject;
    }
    const needsVisitor = action === Action.MUTE || action === Action.UNMUTE || action === Action.KICK;
    if (needsVisitor && !record) return refuse(ErrorCode.WRONG_TYPE, "mute, unmute and kick need a visitor_id");
    if ((action === Action.BAN || action === Action.UNBAN) && !subject) return refuse(ErrorCode.WRONG_TYPE, "ban needs a visitor_id or a subject; unban needs a subject");
    if (subject === hostVisitor.subject && action !== Action.UNMUTE && action !== Action.UNBAN) return refuse(ErrorCode.WRONG_TYPE, "a host cannot mute, kick or ban themselves");
    switch (action) {
      case Action.MUTE:
      case Action.UNMUTE: {
        const untilMs = action === Action.UNMUTE ? 0 : command.seconds ? host.now() + command.seconds * 1000 : 1;
        await host.hall.mute(subject, untilMs);
        const delivered = this.mute(subject, untilMs, reason);
        host.hall.publishEvent({ type: "mute", subject, untilMs, reason });
        log(`${untilMs ? "muted" : "unmuted"} ${subject}`, { visitorId: command.visitorId, seconds: command.seconds || undefined });
        return reply(delivered, `${untilMs ? "muted" : "unmuted"} visitor ${command.visitorId}`);
      }
      case Action.KICK: {
        const delivered = this.kick(command.visitorId!, reason);
        host.hall.publishEvent({ type: "kick", visitorId: command.visitorId!, reason });
        log(`kicked ${subject}`, { visitorId: command.visitorId, reason });
        return reply(delivered, `kicked visitor ${command.visitorId}`);
      }
      case Action.BAN: {
        await host.hall.ban(subject);
        const delivered = this.ban(subject, reason);
        host.hall.publishEvent({ type: "ban", subject, reason });
        log(`banned ${subject}`, { visitorId: command.visitorId || undefined, reason });
        return reply(delivered, `banned ${subject}`);
      }
      case Action.UNBAN: {
        await host.hall.unban(subject);
        log(`unbanned ${subject}`);
        return reply(0, `unbanned ${subject}`);
      }
      default:
        return refuse(ErrorCode.WRONG_TYPE, "Moderate needs an action: MUTE, UNMUTE, KICK, BAN or UNBAN");
    }
  }

  /** To everyone here, or to exactly those inside the announcement's area. */
  private announce(announcement: tsunagi.v1.IAnnouncement): number {
    const areaId = announcement.areaId;
    return deliverEach(this.host.visitors(), framedEnvelope({ announcement }), areaId ? (visitor) => visitor.areas.has(areaId) : undefined);
  }

  private present(state: tsunagi.v1.IBoothState): number {
    if (state.live) this.live.set(state.boothId!, state);
    else this.live.delete(state.boothId!);
    return deliverEach(this.host.visitors(), framedEnvelope({ boothState: state }));
  }

  private pin(pinned: tsunagi.v1.IPinnedMessage): number {
    this.pinned = pinned;
    return deliverEach(this.host.visitors(), framedEnvelope({ pinnedMessage: pinned }));
  }

  private mute(subject: string, untilMs: number, reason: string): number {
    let delivered = 0;
    for (const visitor of this.host.visitors()) {
      if (visitor.subject !== subject) continue;
      visitor.mutedUntil = untilMs;
      this.host.muted(visitor);
      this.host.send(visitor, { moderationNotice: { action: untilMs ? Action.MUTE : Action.UNMUTE, reason, untilMs } });
      delivered++;
    }
    return delivered;
  }

  private kick(visitorId: number, reason: string): number {
    const visitor = this.host.localById(visitorId);
    if (!visitor) return 0;
    this.host.remove(visitor, Action.KICK, ErrorCode.KICKED, `a host removed you from the hall${reason ? `: ${reason}` : ""}`, reason);
    return 1;
  }

  private ban(subject: string, reason: string): number {
    let delivered = 0;
    for (const visitor of [...this.host.visitors()]) {
      if (visitor.subject !== subject) continue;
      this.host.remove(visitor, Action.BAN, ErrorCode.BANNED, `a host banned you from this hall${reason ? `: ${reason}` : ""}`, reason);
      delivered++;
    }
    return delivered;
  }

  private allowanceOf(visitor: Visitor): TokenBucket {
    let allowance = this.allowances.get(visitor);
    if (!allowance) this.allowances.set(visitor, allowance = new TokenBucket(HOST_COMMANDS_PER_SECOND, HOST_COMMAND_BURST, () => this.host.now()));
    return allowance;
  }
}
