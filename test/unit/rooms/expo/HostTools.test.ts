/**
 * HostTools against a fake zone room (the hall's keys in an in-memory presence): only
 * hosts, within their allowance; announcements to the hall or one area; presentations
 * and the pin stored for joiners; mute, kick and ban applied here, stored, and published
 * for the other zones, which apply them with apply(); analytics for hosts only.
 */
import { describe, expect, it } from "vitest";
import { ErrorCode, tsunagi } from "../../../../proto/index.ts";
import { HOST_COMMAND_BURST, HostTools } from "../../../../rooms/expo/HostTools.ts";
import { FakeHostToolsHost } from "../../../fixtures/fakes/FakeHostToolsHost.ts";
import { fakeEntity, fakeVisitor, type FakeVisitor } from "../../../fixtures/fakes/FakeVisitor.ts";

const Action = tsunagi.v1.Moderate.Action;

function request(body: tsunagi.v1.IEnvelope): tsunagi.v1.Envelope {
  return tsunagi.v1.Envelope.decode(tsunagi.v1.Envelope.encode({ correlationId: 9, ...body }).finish());
}
const command = (hostCommand: tsunagi.v1.IHostCommand) => request({ hostCommand });

/** A host, Ben on the stage, and Chie elsewhere. */
function setUp() {
  const room = new FakeHostToolsHost();
  const host = room.join(fakeVisitor(fakeEntity(1, 0, 0, { name: "Host", role: "host" }), { isHost: true, subject: "host-sub" }));
  const ben = room.join(fakeVisitor(fakeEntity(2, 0, 0), { areas: ["stage"], subject: "ben" }));
  const chie = room.join(fakeVisitor(fakeEntity(3, 0, 0), { subject: "chie" }));
  return { room, tools: new HostTools(room), host, ben, chie };
}

const received = (visitor: FakeVisitor) => visitor.fakeClient.envelopes();

describe("HostTools: who may", () => {
  it("refuses a visitor FORBIDDEN, and a host past its burst RATE_LIMITED", async () => {
    const { room, tools, host, ben } = setUp();
    await tools.command(ben, command({ pin: { text: "mine" } }));
    expect(room.refusals).toMatchObject([{ visitorId: 2, code: ErrorCode.FORBIDDEN }]);
    for (let i = 0; i <= HOST_COMMAND_BURST; i++) await tools.command(host, command({ announce: { text: `n${i}` } }));
    expect(room.refusals.slice(1)).toMatchObject([{ visitorId: 1, code: ErrorCode.RATE_LIMITED }]);
    room.time += 1000; // five more a second
    await tools.command(host, command({ announce: { text: "later" } }));
    expect(room.refusals).toHaveLength(2);
  });

  it("refuses a command without a body, and analytics to a visitor", async () => {
    const { room, tools, host, ben } = setUp();
    await tools.command(host, command({}));
    await tools.analytics(ben, request({ analyticsRequest: {} }));
    expect(room.refusals.map((r) => r.code)).toEqual([ErrorCode.WRONG_TYPE, ErrorCode.FORBIDDEN]);
    await tools.analytics(host, request({ analyticsRequest: {} }));
    expect(room.replies).toMatchObject([{ visitorId: 1, envelope: { correlationId: 9, analyticsReport: { uniqueVisitors: 3 } } }]);
  });
});

describe("HostTools: written before acknowledged", () => {
  it("answers a command only once the room's snapshot holding it is stored; one that could not be is refused REGION_UNAVAILABLE, saying so", async () => {
    const { room, tools, host } = setUp();
    await tools.command(host, command({ pin: { text: "Welcome" } }));
    expect(room.storedCalls).toEqual([0]); // stored before the HostResult went
    expect(room.replies).toMatchObject([{ visitorId: 1, envelope: { correlationId: 9, hostResult: { detail: "pinned" } } }]);
    room.storeFails = true;
    await tools.command(host, command({ announce: { text: "Closing soon" } }));
    expect(room.replies).toHaveLength(1);
    expect(room.refusals).toMatchObject([{ visitorId: 1, code: ErrorCode.REGION_UNAVAILABLE, message: expect.stringContaining("could not be stored beyond this node") }]);
    expect(room.logged.some((line) => line.startsWith("error: host host-sub: announced to the hall, but not stored"))).toBe(true);
  });
});

describe("HostTools: commands", () => {
  it("an announcement to an area reaches exactly those inside it; to the hall, everyone; both go to the other zones", async () => {
    const { room, tools, host, ben, chie } = setUp();
    await tools.command(host, command({ announce: { text: "On stage now", areaId: "stage" } }));
    expect([received(ben).length, received(chie).length, received(host).length]).toEqual([1, 0, 0]);
    await tools.command(host, command({ announce: { text: "Closing soon" } }));
    expect([received(ben).length, received(chie).length, received(host).length]).toEqual([2, 1, 1]);
    expect(room.events).toMatchObject([{ type: "announce", announcement: { areaId: "stage" }, from: "test-hall" }, { type: "announce" }]);
    expect(room.replies.map((r) => r.envelope.hostResult)).toMatchObject([{ delivered: 1 }, { delivered: 3 }]);
    await tools.command(host, command({ announce: { text: "x", areaId: "nowhere" } }));
    await tools.command(host, command({ announce: { text: "" } }));
    expect(room.refusals.map((r) => r.code)).toEqual([ErrorCode.UNKNOWN_TARGET, ErrorCode.WRONG_TYPE]);
  });

  it("a presentation and the pin are kept for joiners (and stored for the hall's other zones and reopening)", async () => {
    const { room, tools, host, ben } = setUp();
    await tools.command(host, command({ presentation: { boothId: "acme", live: true, title: "Robots" } }));
    await tools.command(host, command({ pin: { text: "Welcome" } }));
    expect(tools.presentations()).toMatchObject([{ boothId: "acme", live: true, title: "Robots", presenter: "Host" }]);
    expect(tools.pinned).toMatchObject({ text: "Welcome", by: "Host" });
    expect(received(ben).map((e) => e.body)).toEqual(["boothState", "pinnedMessage"]);
    const reopened = new HostTools(room);
    await reopened.load();
    expect(reopened.presentations()).toMatchObject([{ boothId: "acme", title: "Robots" }]);
    expect(reopened.pinned.text).toBe("Welcome");
    await tools.command(host, command({ presentation: { boothId: "acme", live: false } }));
    expect(tools.presentations()).toEqual([]);
    expect(await room.hall.presentations()).toEqual([]);
    await tools.command(host, command({ presentation: { boothId: "stage", live: true } })); // an area, not a booth
    expect(room.refusals).toMatchObject([{ code: ErrorCode.UNKNOWN_TARGET }]);
  });

  it("mute sets the visitor's mute here (its voice follows), stores it by subject and tells the other zones; unmute lifts it", async () => {
    const { room, tools, host, ben } = setUp();
    await tools.command(host, command({ moderate: { action: Action.MUTE, visitorId: 2, seconds: 60 } }));
    expect(ben.mutedUntil).toBe(room.time + 60_000);
    expect(await room.hall.mutedUntil("ben")).toBe(room.time + 60_000);
    expect(room.replies.find((r) => r.visitorId === 2)!.envelope.moderationNotice).toMatchObject({ action: Action.MUTE });
    expect(room.events).toMatchObject([{ type: "mute", subject: "ben", untilMs: room.time + 60_000 }]);
    await tools.command(host, command({ moderate: { action: Action.UNMUTE, visitorId: 2 } }));
    expect(ben.mutedUntil).toBe(0);
    expect(await room.hall.mutedUntil("ben")).toBe(0);
    expect(room.voiceMutes).toEqual([{ visitorId: 2, mutedUntil: room.time + 60_000 }, { visitorId: 2, mutedUntil: 0 }]);
  });

  it("kick removes the visitor with KICKED; ban removes it with BANNED and bans its subject; a host cannot target itself", async () => {
    const { room, tools, host } = setUp();
    await tools.command(host, command({ moderate: { action: Action.KICK, visitorId: 2, reason: "rude" } }));
    expect(room.removed).toEqual([{ visitorId: 2, action: Action.KICK, code: ErrorCode.KICKED, reason: "rude" }]);
    await tools.command(host, command({ moderate: { action: Action.BAN, visitorId: 3 } }));
    expect(room.removed[1]).toMatchObject({ visitorId: 3, action: Action.BAN, code: ErrorCode.BANNED });
    expect(await room.hall.isBanned("chie")).toBe(true);
    expect(room.events).toMatchObject([{ type: "kick", visitorId: 2 }, { type: "ban", subject: "chie" }]);
    await tools.command(host, command({ moderate: { action: Action.UNBAN, subject: "chie" } }));
    expect(await room.hall.isBanned("chie")).toBe(false);
    await tools.command(host, command({ moderate: { action: Action.KICK, visitorId: 1 } }));
    await tools.command(host, command({ moderate: { action: Action.MUTE, visitorId: 77 } }));
    await tools.command(host, command({ moderate: { action: Action.KICK, subject: "x" } }));
    expect(room.refusals.map((r) => r.code)).toEqual([ErrorCode.WRONG_TYPE, ErrorCode.UNKNOWN_TARGET, ErrorCode.WRONG_TYPE]);
  });
});

describe("HostTools: events from other zones", () => {
  it("apply() does here what the zone that took the command did there", () => {
    const { room, tools, ben, chie } = setUp();
    tools.apply({ type: "announce", announcement: { text: "from the east", areaId: "stage", fromName: "East", atMs: 1 } });
    tools.apply({ type: "pin", pinned: { text: "East pin" } });
    tools.apply({ type: "mute", subject: "chie", untilMs: 1, reason: "" });
    expect(received(ben).map((e) => e.body)).toEqual(["announcement", "pinnedMessage"]);
    expect(tools.pinned.text).toBe("East pin");
    expect(chie.mutedUntil).toBe(1);
    tools.apply({ type: "kick", visitorId: 2, reason: "" });
    tools.apply({ type: "ban", subject: "chie", reason: "" });
    tools.apply({ type: "kick", visitorId: 99, reason: "" }); // not here: nothing
    expect(room.removed.map((r) => [r.visitorId, r.code])).toEqual([[2, ErrorCode.KICKED], [3, ErrorCode.BANNED]]);
    expect(room.events).toEqual([]); // nothing published again
  });
});
