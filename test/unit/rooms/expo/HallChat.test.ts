/**
 * HallChat against a fake zone room: the hall, booth and direct channels reach exactly
 * their recipients (never the sender), messages for other zones are published, refusals
 * are coded (no channel, bad text, muted, unknown or forbidden target, rates), and
 * moderation masks or refuses before delivery.
 */
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode, tsunagi } from "../../../../proto/index.ts";
import { HallChat, registerModerationHook } from "../../../../rooms/expo/HallChat.ts";
import { FakeHallChatHost } from "../../../fixtures/fakes/FakeHallChatHost.ts";
import { fakeEntity, fakeVisitor, type FakeVisitor } from "../../../fixtures/fakes/FakeVisitor.ts";

const Kind = tsunagi.v1.ChatChannel.Kind;

/** A ChatSend as the room decodes it. */
function chatEnvelope(kind: number, target: string, text: string, correlationId = 7): tsunagi.v1.Envelope {
  return tsunagi.v1.Envelope.decode(tsunagi.v1.Envelope.encode({ correlationId, chatSend: { channel: { kind, target }, text } }).finish());
}

/** A room of three: Aiko (the sender), Ben at the acme booth, Chie elsewhere. */
function setUp() {
  const room = new FakeHallChatHost();
  const aiko = room.join(fakeVisitor(fakeEntity(1, 0, 0, { name: "Aiko" }), { areas: ["acme"] }));
  const ben = room.join(fakeVisitor(fakeEntity(2, 0, 0), { areas: ["acme"] }));
  const chie = room.join(fakeVisitor(fakeEntity(3, 0, 0)));
  return { room, chat: new HallChat(room), aiko, ben, chie };
}

const texts = (visitor: FakeVisitor) => visitor.fakeClient.envelopes().map((e) => e.chatMessage?.text);

const removals: Array<() => void> = [];
afterEach(() => { for (const remove of removals.splice(0)) remove(); });

describe("HallChat: delivery", () => {
  it("the hall channel reaches everyone but the sender, goes to the other zones, and answers the sender with its message", async () => {
    const { room, chat, aiko, ben, chie } = setUp();
    await chat.send(aiko, chatEnvelope(Kind.HALL, "", "hello all"));
    expect([texts(aiko), texts(ben), texts(chie)]).toEqual([[], ["hello all"], ["hello all"]]);
    expect(room.published).toMatchObject([{ type: "chat", message: { text: "hello all", fromVisitorId: 1, fromName: "Aiko" } }]);
    expect(room.replies).toMatchObject([{ visitorId: 1, trusted: true, envelope: { correlationId: 7, chatMessage: { text: "hello all" } } }]);
    expect(room.replies[0].envelope.chatMessage!.messageId).toMatch(/^west-/);
  });

  it("a booth channel reaches those at the booth only, and stays in the zone; a visitor not at the booth may not use it", async () => {
    const { room, chat, aiko, ben, chie } = setUp();
    await chat.send(aiko, chatEnvelope(Kind.BOOTH, "acme", "at the booth"));
    expect([texts(ben), texts(chie)]).toEqual([["at the booth"], []]);
    expect(room.published).toEqual([]);
    await chat.send(chie, chatEnvelope(Kind.BOOTH, "acme", "let me in"));
    expect(room.refusals).toMatchObject([{ visitorId: 3, code: ErrorCode.FORBIDDEN }]);
    await chat.send(aiko, chatEnvelope(Kind.BOOTH, "nope", "?"));
    expect(room.refusals[1]).toMatchObject({ visitorId: 1, code: ErrorCode.UNKNOWN_TARGET });
  });

  it("a direct message reaches its one recipient here, or goes to the other zones for one there; an unknown one is refused", async () => {
    const { room, chat, aiko, ben, chie } = setUp();
    await chat.send(aiko, chatEnvelope(Kind.DIRECT, "3", "psst"));
    expect([texts(ben), texts(chie)]).toEqual([[], ["psst"]]);
    expect(room.published).toEqual([]);
    room.elsewhere.add(40);
    await chat.send(aiko, chatEnvelope(Kind.DIRECT, "40", "over there?"));
    expect(room.published).toMatchObject([{ type: "chat", toVisitorId: 40, message: { text: "over there?" } }]);
    for (const target of ["41", "0", "x1", "12345678901"]) await chat.send(aiko, chatEnvelope(Kind.DIRECT, target, "anyone?"));
    expect(room.refusals.map((r) => r.code)).toEqual(Array(4).fill(ErrorCode.UNKNOWN_TARGET));
  });

  it("deliver() hands another zone's message to this zone's recipients", () => {
    const { chat, aiko, ben, chie } = setUp();
    const message = { messageId: "east-1", channel: { kind: Kind.BOOTH, target: "acme" }, fromVisitorId: 40, fromName: "East", text: "from the east", atMs: 1 };
    expect(chat.deliver(message)).toBe(2);
    expect([texts(aiko), texts(ben), texts(chie)]).toEqual([["from the east"], ["from the east"], []]);
    expect(chat.deliver({ ...message, channel: { kind: Kind.DIRECT, target: "3" } }, 3)).toBe(1);
  });

  it("a recipient whose socket refuses the send is not counted as reached", () => {
    const { chat, ben } = setUp();
    ben.fakeClient.closing = new Error("socket closed");
    expect(chat.deliver({ messageId: "m", channel: { kind: Kind.HALL }, fromVisitorId: 1, text: "hi", atMs: 1 })).toBe(1);
  });

  it("no answer goes to a sender that left while its message was moderated", async () => {
    const { room, chat, aiko } = setUp();
    removals.push(registerModerationHook(async () => { room.leave(aiko); return { action: "allow" }; }));
    await chat.send(aiko, chatEnvelope(Kind.HALL, "", "bye"));
    expect(room.replies).toEqual([]);
  });
});

describe("HallChat: refusals", () => {
  it("needs a channel and a text of 1..500 characters", async () => {
    const { room, chat, aiko } = setUp();
    await chat.send(aiko, chatEnvelope(Kind.KIND_UNSPECIFIED, "", "hi"));
    await chat.send(aiko, chatEnvelope(Kind.HALL, "", "   "));
    await chat.send(aiko, chatEnvelope(Kind.HALL, "", "x".repeat(501)));
    expect(room.refusals.map((r) => r.code)).toEqual([ErrorCode.WRONG_TYPE, ErrorCode.WRONG_TYPE, ErrorCode.WRONG_TYPE]);
    expect(room.refusals[0].correlationId).toEqual(expect.anything());
    expect(room.published).toEqual([]);
  });

  it("refuses a muted visitor MUTED, until unmuted or until the mute's end", async () => {
    const { room, chat, aiko } = setUp();
    aiko.mutedUntil = 1;
    await chat.send(aiko, chatEnvelope(Kind.HALL, "", "hi"));
    aiko.mutedUntil = room.time + 5000;
    await chat.send(aiko, chatEnvelope(Kind.HALL, "", "hi"));
    expect(room.refusals.map((r) => r.code)).toEqual([ErrorCode.MUTED, ErrorCode.MUTED]);
    room.time += 5001;
    await chat.send(aiko, chatEnvelope(Kind.HALL, "", "hi"));
    expect(room.refusals).toHaveLength(2);
  });

  it("limits each sender to its rate and burst, and the hall channel to the zone's; messages refused by local checks spend nothing", async () => {
    const { room, chat, aiko, ben, chie } = setUp();
    await chat.send(aiko, chatEnvelope(Kind.BOOTH, "nope", "nobody")); // an unknown booth: spends nothing
    await chat.send(aiko, chatEnvelope(Kind.HALL, "", "")); // no text: spends nothing
    for (let i = 0; i < 4; i++) await chat.send(aiko, chatEnvelope(Kind.BOOTH, "acme", `m${i}`)); // burst 3
    expect(room.refusals.map((r) => r.code)).toEqual([ErrorCode.UNKNOWN_TARGET, ErrorCode.WRONG_TYPE, ErrorCode.RATE_LIMITED]);
    room.refusals.splice(0, 1);
    room.time += 1000; // one more a second
    await chat.send(aiko, chatEnvelope(Kind.BOOTH, "acme", "again"));
    expect(room.refusals).toHaveLength(2);
    // the hall channel: 4 a second from everyone together
    for (const sender of [ben, ben, ben, chie, chie]) await chat.send(sender, chatEnvelope(Kind.HALL, "", "hall"));
    expect(room.refusals.slice(2).map((r) => [r.visitorId, r.code])).toEqual([[3, ErrorCode.RATE_LIMITED]]);
  });

  it("spends the sender's allowance before any Redis lookup: a flood of direct messages to unknown visitors costs at most a burst of lookups", async () => {
    const { room, chat, aiko, chie } = setUp();
    for (let i = 0; i < 50; i++) await chat.send(aiko, chatEnvelope(Kind.DIRECT, String(1000 + i), "anyone?"));
    expect(room.lookups).toBe(3); // the burst; the other 47 were refused by the allowance alone
    expect(room.refusals.map((r) => r.code)).toEqual([...Array(3).fill(ErrorCode.UNKNOWN_TARGET), ...Array(47).fill(ErrorCode.RATE_LIMITED)]);
    // a visitor of this zone needs no lookup at all
    await chat.send(chie, chatEnvelope(Kind.DIRECT, "1", "hi Aiko"));
    expect(room.lookups).toBe(3);
    expect(texts(aiko)).toEqual(["hi Aiko"]);
  });

  it("moderation: the built-in filter masks blocked words; a registered hook that refuses makes it MODERATED, before delivery", async () => {
    const { room, chat, aiko, ben } = setUp();
    await chat.send(aiko, chatEnvelope(Kind.HALL, "", "what the heck"));
    expect(texts(ben)).toEqual(["what the ****"]);
    removals.push(registerModerationHook((draft) => draft.text.includes("spam") ? { action: "reject", reason: "no spam" } : { action: "allow" }));
    room.time += 10_000;
    await chat.send(aiko, chatEnvelope(Kind.HALL, "", "buy spam"));
    expect(room.refusals).toMatchObject([{ code: ErrorCode.MODERATED, message: expect.stringContaining("no spam") }]);
    expect(texts(ben)).toHaveLength(1);
  });
});
