/**
 * Chat in an expo hall: the hall channel, a booth's channel (for visitors at the booth)
 * and direct messages to a visitor in any zone.
 *
 * Each message is checked in order: a channel, the text (1..MAX_TEXT characters), the
 * sender's mute, a booth target (a booth of the hall the sender stands in); all of them
 * local and cheap. Then it spends the sender's allowance (`expo.chatPerSecond`, bursts of
 * `expo.chatBurst`) BEFORE anything costs a Redis round trip: a direct message to a
 * visitor in another zone is looked up in the hall's register only after that, so a
 * flood of messages to made-up visitor ids is refused by the allowance, not by Redis.
 * The hall channel then spends the zone's allowance (`expo.hallChatPerSecond`), and the
 * moderation hooks (those registered for the process, then the built-in word filter) may
 * pass, mask or refuse it. Delivery
 * is to this zone's recipients, never echoing to the sender (its reply is the echo); a
 * hall message, or a direct one to a visitor in another zone, goes to the other zones as
 * a hall event.
 *
 * @example
 *   const chat = new HallChat({ hallId, zoneId, boothIds, limits: config.expo, ... });
 *   room.onEnvelope("chatSend", (client, envelope) => chat.send(visitorOf(client), envelope));
 *   // a chat event from another zone:
 *   chat.deliver(event.message, event.toVisitorId);
 */
import { ErrorCode, TRUSTED, tsunagi } from "../../proto/index.ts";
import { TokenBucket } from "../../common/TokenBucket.ts";
import { moderate, wordFilter, type ChatChannelKind, type ModerationHook } from "./ChatPolicy.ts";
import { framedEnvelope } from "./FrameEncoder.ts";
import { deliverEach } from "./Delivery.ts";
import type { HallEventBody, HallVisitorRecord } from "./HallChannels.ts";
import { MAX_TEXT, type Visitor } from "./model.ts";

const Kind = tsunagi.v1.ChatChannel.Kind;
/** A direct message's target: a visitor id as the hall numbers them. */
const VISITOR_ID_TEXT = /^[1-9][0-9]{0,9}$/;

/** Moderation hooks every expo hall of this process runs before its built-in word filter. */
const moderationHooks: ModerationHook[] = [];

/** Adds a moderation hook for every expo hall of this process (an external service, a classifier...); returns its removal. */
export function registerModerationHook(hook: ModerationHook): () => void {
  moderationHooks.push(hook);
  return () => { const i = moderationHooks.indexOf(hook); if (i >= 0) moderationHooks.splice(i, 1); };
}

/** The chat settings of `expo` in the node's config. */
export interface ChatLimits {
  readonly chatPerSecond: number;
  readonly chatBurst: number;
  readonly hallChatPerSecond: number;
  readonly moderationTimeoutMs: number;
  /** Words the built-in filter masks. */
  readonly blockedWords: readonly string[];
}

/** What HallChat needs of its zone room. */
export interface HallChatHost {
  readonly hallId: string;
  /** "" for an unzoned hall. */
  readonly zoneId: string;
  readonly boothIds: ReadonlySet<string>;
  readonly limits: ChatLimits;
  /** This room's visitors. */
  visitors(): Iterable<Visitor>;
  /** This room's visitor with that id. */
  localById(visitorId: number): Visitor | undefined;
  /** Whether the visitor is still in this room (after the awaits of moderation). */
  isHere(visitor: Visitor): boolean;
  /** The hall register's record of a visitor id (any zone); undefined when it is not in the hall. */
  hallVisitor(visitorId: string): Promise<HallVisitorRecord | undefined>;
  /** Tells the hall's other zones. */
  publish(event: HallEventBody): void;
  /** A coded refusal to the sender, answering its request. */
  reject(visitor: Visitor, code: number, message: string, correlationId: tsunagi.v1.IEnvelope["correlationId"]): void;
  send(visitor: Visitor, envelope: tsunagi.v1.IEnvelope, options?: { trusted?: boolean }): void;
  now(): number;
}

export class HallChat {
  /** The zone room, its settings and its visitors. */
  private readonly host: HallChatHost;
  /** Each sender's allowance, made on its first message. */
  private readonly allowances = new WeakMap<Visitor, TokenBucket>();
  /** The hall channel's allowance in this zone, everyone's messages together. */
  private readonly hallAllowance: TokenBucket;
  /** The built-in moderation: the word filter, when the config blocks words. */
  private readonly builtin: ModerationHook[];
  /** Messages numbered in this zone room, for their ids. */
  private sent = 0;

  constructor(host: HallChatHost) {
    this.host = host;
    const { hallChatPerSecond, blockedWords } = host.limits;
    this.hallAllowance = new TokenBucket(hallChatPerSecond, Math.max(1, Math.ceil(hallChatPerSecond)), () => host.now());
    this.builtin = blockedWords.length ? [wordFilter([...blockedWords], "mask")] : [];
  }

  /** A ChatSend from `visitor`: checked, rate-limited, moderated, delivered; the sender gets its message back or a coded refusal. */
  async send(visitor: Visitor, envelope: tsunagi.v1.Envelope): Promise<void> {
    const { host } = this;
    const correlationId = envelope.correlationId;
    const send = envelope.chatSend!;
    const now = host.now();
    const kind = channelKind(send.channel?.kind);
    const target = send.channel?.target ?? "";
    const refuse = (code: number, message: string) => host.reject(visitor, code, message, correlationId);
    if (!kind) return refuse(ErrorCode.WRONG_TYPE, "chat needs a channel: HALL, BOOTH (target: booth id) or DIRECT (target: visitor id)");
    if (typeof send.text !== "string" || send.text.trim().length === 0 || send.text.length > MAX_TEXT) {
      return refuse(ErrorCode.WRONG_TYPE, `chat text must be 1..${MAX_TEXT} characters`);
    }
    if (visitor.mutedUntil === 1 || visitor.mutedUntil > now) {
      return refuse(ErrorCode.MUTED, visitor.mutedUntil === 1 ? "a host muted you: no chat until unmuted" : `a host muted you: no chat until ${new Date(visitor.mutedUntil).toISOString()}`);
    }
    const unknownVisitor = () => refuse(ErrorCode.UNKNOWN_TARGET, `no visitor "${target.slice(0, 20)}" in hall "${host.hallId}"`);
    let toVisitor: number | undefined;
    if (kind === "booth") {
      if (!host.boothIds.has(target)) return refuse(ErrorCode.UNKNOWN_TARGET, `no booth "${target.slice(0, 64)}" in hall "${host.hallId}"`);
      if (!visitor.areas.has(target)) return refuse(ErrorCode.FORBIDDEN, `booth chat is for visitors at booth "${target}": walk into it first`);
    } else if (kind === "direct") {
      toVisitor = VISITOR_ID_TEXT.test(target) ? Number(target) : NaN;
      if (!Number.isSafeInteger(toVisitor)) return unknownVisitor();
    }
    // The sender's allowance is spent before any Redis lookup (the hall's register, below):
    // what a sender can make us do is bounded by its allowance, whatever it sends.
    const { chatPerSecond, chatBurst, hallChatPerSecond, moderationTimeoutMs } = host.limits;
    const allowance = this.allowanceOf(visitor);
    if (!allowance.take()) return refuse(ErrorCode.RATE_LIMITED, `chat limited to ${chatPerSecond}/s (burst ${chatBurst}): retry in ${allowance.retryAfterMs()} ms`);
    if (kind === "direct" && !host.localById(toVisitor!) && !(await host.hallVisitor(target))) return unknownVisitor();
    if (kind === "hall" && !this.hallAllowance.take()) return refuse(ErrorCode.RATE_LIMITED, `the hall channel is busy (over ${hallChatPerSecond} messages/s): retry shortly`);
    const entity = visitor.entity;
    const verdict = await moderate([...moderationHooks, ...this.builtin], {
      channel: { kind, target }, text: send.text,
      from: { visitorId: entity.id, subject: visitor.subject, name: entity.name, role: entity.role },
    }, moderationTimeoutMs);
    if (verdict.action === "reject") return refuse(ErrorCode.MODERATED, `message refused by moderation: ${verdict.reason}`);
    const message: tsunagi.v1.IChatMessage = {
      messageId: `${host.zoneId || "hall"}-${process.pid.toString(36)}-${(++this.sent).toString(36)}`,
      channel: { kind: send.channel!.kind, target }, fromVisitorId: entity.id, fromName: entity.name,
      text: verdict.action === "replace" ? verdict.text : send.text, atMs: now,
    };
    if (kind === "direct") {
      this.deliver(message, toVisitor);
      if (!host.localById(toVisitor!)) host.publish({ type: "chat", message, toVisitorId: toVisitor });
    } else {
      this.deliver(message);
      if (kind === "hall") host.publish({ type: "chat", message });
    }
    if (host.isHere(visitor)) host.send(visitor, { correlationId, chatMessage: message }, TRUSTED);
  }

  /** Delivers a message to this zone's recipients (never to its sender); how many it reached. */
  deliver(message: tsunagi.v1.IChatMessage, toVisitorId?: number): number {
    const kind = channelKind(message.channel?.kind);
    const target = message.channel?.target ?? "";
    return deliverEach(this.host.visitors(), framedEnvelope({ chatMessage: message }), (visitor) => {
      if (visitor.entity.id === message.fromVisitorId) return false;
      if (kind === "direct") return visitor.entity.id === toVisitorId;
      if (kind === "booth") return visitor.areas.has(target);
      return true;
    });
  }

  private allowanceOf(visitor: Visitor): TokenBucket {
    let allowance = this.allowances.get(visitor);
    if (!allowance) this.allowances.set(visitor, allowance = new TokenBucket(this.host.limits.chatPerSecond, this.host.limits.chatBurst, () => this.host.now()));
    return allowance;
  }
}

function channelKind(kind: number | null | undefined): ChatChannelKind | undefined {
  switch (kind) {
    case Kind.HALL: return "hall";
    case Kind.BOOTH: return "booth";
    case Kind.DIRECT: return "direct";
    default: return undefined;
  }
}
