/**
 * RoomVoice against a fake room and a fake voice backend: grants by role (speak, listen,
 * none), VOICE_UNAVAILABLE without voice or with its SFU down or failing, grants
 * rate-limited; a feed is heard only once it publishes; VoiceHear carries the whole set,
 * coalesced; leaving ends the grant and others stop hearing it; a host's mute reaches the
 * SFU when the member publishes; release closes the voice room.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ErrorCode, tsunagi } from "../../../../proto/index.ts";
import { everyoneRoomVoice, HEAR_COALESCE_MS, VOICE_GRANT_BURST } from "../../../../rooms/shared/RoomVoice.ts";
import { HANDOFF_VOICE_LINGER_MS } from "../../../../server/voice/VoiceBackend.ts";
import { FakeClient } from "../../../fixtures/fakes/FakeClient.ts";
import { FakeVoiceBackend } from "../../../fixtures/fakes/FakeVoiceBackend.ts";

const ROOM = "teleop__site-7";

function envelope(body: tsunagi.v1.IEnvelope, correlationId = 5): tsunagi.v1.Envelope {
  return tsunagi.v1.Envelope.decode(tsunagi.v1.Envelope.encode({ correlationId, ...body }).finish());
}

/** A room with RoomVoice (everyone hears every speaker; operators speak, visitors listen, devices nothing). */
function setUp(options: { backend?: FakeVoiceBackend | undefined } = {}) {
  const backend = "backend" in options ? options.backend : new FakeVoiceBackend();
  const sent: Array<{ sessionId: string; envelope: tsunagi.v1.IEnvelope }> = [];
  const refusals: Array<{ sessionId: string; code: number; message: string; correlationId: unknown }> = [];
  const present = new Set<string>();
  let retired = false;
  const grants: Record<string, number> = {};
  let hearUpdates = 0;
  const handlers = new Map<string, (client: any, envelope: tsunagi.v1.Envelope) => void>();
  const voice = everyoneRoomVoice({
    roomId: ROOM, backend: () => backend, present: (sessionId) => present.has(sessionId), moving: () => retired,
    rights: (role) => (role === "operator" ? "speak" : role === "visitor" ? "listen" : undefined),
    send: (client, envelope) => sent.push({ sessionId: client.sessionId, envelope }),
    reject: (client, code, message, correlationId) => refusals.push({ sessionId: client.sessionId, code, message, correlationId }),
    logger: { info() {}, warn() {}, error() {} },
    metrics: { voiceGrants: { inc: ({ outcome }: { outcome: string }) => { grants[outcome] = (grants[outcome] ?? 0) + 1; } }, voiceHearUpdates: { inc: () => { hearUpdates++; } } } as any,
  });
  voice.register((kind, handler) => handlers.set(kind, handler));
  const join = (sessionId: string, role: string) => {
    present.add(sessionId);
    return new FakeClient(sessionId, { role, sub: sessionId, name: sessionId.toUpperCase() }).asClient();
  };
  const ask = (client: any, body: tsunagi.v1.IEnvelope) => handlers.get(Object.keys(body)[0]!)!(client, envelope(body));
  /** Joins voice and, when it speaks, publishes. */
  const speak = async (client: any) => {
    ask(client, { voiceJoin: { speak: true } });
    await vi.advanceTimersByTimeAsync(0);
    const grant = sent.filter((s) => s.sessionId === client.sessionId && s.envelope.voiceGrant).at(-1)!.envelope.voiceGrant!;
    if (grant.speak) ask(client, { voiceReady: { feedId: grant.feedId } });
    return grant;
  };
  const hearOf = (sessionId: string) => sent.filter((s) => s.sessionId === sessionId && s.envelope.voiceHear).map((s) => s.envelope.voiceHear!);
  const heard = (sessionId: string) => (hearOf(sessionId).at(-1)?.feeds ?? []).map((feed) => feed.feedId).sort();
  return { voice, backend, sent, refusals, present, grants, join, ask, speak, hearOf, heard, hearUpdates: () => hearUpdates, retire: (moving = true) => { retired = moving; } };
}

beforeEach(() => { vi.useFakeTimers(); });
afterEach(() => { vi.useRealTimers(); });

describe("RoomVoice: grants", () => {
  it("grants speaking to a speaking role, listening to a listening role, and refuses a role without voice FORBIDDEN", async () => {
    const room = setUp();
    const op = await room.speak(room.join("op", "operator"));
    expect(op).toMatchObject({ room: ROOM, speak: true, codec: "opus/48000/2", token: "token-1" });
    expect(room.sent.find((s) => s.envelope.voiceGrant)!.envelope.correlationId).toBe(5);
    const watcher = await room.speak(room.join("watcher", "visitor"));
    expect(watcher.speak).toBe(false);
    room.ask(room.join("dev", "device"), { voiceJoin: { speak: true } });
    await vi.advanceTimersByTimeAsync(0);
    expect(room.refusals).toMatchObject([{ sessionId: "dev", code: ErrorCode.FORBIDDEN, correlationId: 5 }]);
    expect(room.backend!.calls).toEqual([`grant ${ROOM} op speak`, `grant ${ROOM} watcher listen`]);
    expect(room.grants).toEqual({ granted: 2, forbidden: 1 });
  });

  it("refuses VOICE_UNAVAILABLE without voice on the node, with its SFU down, or when the SFU fails the grant", async () => {
    const none = setUp({ backend: undefined });
    none.ask(none.join("op", "operator"), { voiceJoin: {} });
    const room = setUp();
    room.backend!.up = false;
    room.ask(room.join("op", "operator"), { voiceJoin: {} });
    room.backend!.up = true;
    room.backend!.failNext = new Error("Janus refused");
    room.ask(room.join("op2", "operator"), { voiceJoin: {} });
    await vi.advanceTimersByTimeAsync(0);
    expect(none.refusals).toMatchObject([{ code: ErrorCode.VOICE_UNAVAILABLE, message: expect.stringMatching(/runs no voice/) }]);
    expect(room.refusals).toMatchObject([{ sessionId: "op", code: ErrorCode.VOICE_UNAVAILABLE }, { sessionId: "op2", code: ErrorCode.VOICE_UNAVAILABLE }]);
    expect(room.grants).toEqual({ unavailable: 1, failed: 1 });
  });

  it("rate-limits grants per session, and ends a grant that arrives after its holder left", async () => {
    const room = setUp();
    const op = room.join("op", "operator");
    for (let i = 0; i <= VOICE_GRANT_BURST; i++) room.ask(op, { voiceJoin: {} });
    await vi.advanceTimersByTimeAsync(0);
    expect(room.refusals).toMatchObject([{ code: ErrorCode.RATE_LIMITED }]);
    const late = room.join("late", "operator");
    room.ask(late, { voiceJoin: {} });
    room.present.delete("late");
    await vi.advanceTimersByTimeAsync(0);
    expect(room.backend!.calls.at(-1)).toBe(`leave ${ROOM} late`);
    expect(room.voice.member("late")).toBeUndefined();
  });

  it("refuses a VoiceReady before a grant, from a listener, or naming another feed, WRONG_TYPE", async () => {
    const room = setUp();
    const op = room.join("op", "operator");
    room.ask(op, { voiceReady: { feedId: "x" } });
    await room.speak(room.join("watcher", "visitor"));
    room.ask(room.join("watcher", "visitor"), { voiceReady: { feedId: "watcher-feed2" } });
    room.ask(op, { voiceJoin: { speak: true } });
    await vi.advanceTimersByTimeAsync(0);
    room.ask(op, { voiceReady: { feedId: "someone-else" } });
    expect(room.refusals.map((r) => [r.code, r.correlationId])).toEqual([[ErrorCode.WRONG_TYPE, 0], [ErrorCode.WRONG_TYPE, 0], [ErrorCode.WRONG_TYPE, 0]]);
    expect(room.refusals.map((r) => r.message)).toEqual([expect.stringMatching(/no voice grant/), expect.stringMatching(/listen/), expect.stringMatching(/not your grant/)]);
  });
});

describe("RoomVoice: who hears whom", () => {
  it("a feed is heard once it publishes; everyone is told the whole set, coalesced; one leaving is heard no more", async () => {
    const room = setUp();
    const a = await room.speak(room.join("a", "operator"));
    const b = await room.speak(room.join("b", "operator"));
    const watcher = room.join("w", "visitor");
    await room.speak(watcher);
    await vi.advanceTimersByTimeAsync(HEAR_COALESCE_MS);
    expect(room.heard("a")).toEqual([b.feedId]);
    expect(room.heard("b")).toEqual([a.feedId]);
    expect(room.heard("w")).toEqual([a.feedId, b.feedId].sort());
    // Versions only grow, one per change.
    const versions = room.hearOf("w").map((hear) => hear.version ?? 0);
    expect(versions).toEqual([...versions].sort((x, y) => x - y));

    room.voice.leave("a");
    await vi.advanceTimersByTimeAsync(HEAR_COALESCE_MS);
    expect(room.heard("b")).toEqual([]);
    expect(room.heard("w")).toEqual([b.feedId]);
    expect(room.backend!.calls).toContain(`leave ${ROOM} a`);
  });

  it("a burst of changes is one VoiceHear per member, and none when nothing changed", async () => {
    const room = setUp();
    await room.speak(room.join("a", "operator"));
    await room.speak(room.join("b", "operator"));
    const c = room.join("c", "operator");
    room.ask(c, { voiceJoin: { speak: true } });
    const watcher = room.join("w", "visitor");
    await room.speak(watcher);
    await vi.advanceTimersByTimeAsync(HEAR_COALESCE_MS);
    const told = room.hearOf("w").length;
    for (let i = 0; i < 10; i++) room.voice.changed("a");
    await vi.advanceTimersByTimeAsync(HEAR_COALESCE_MS * 2);
    expect(room.hearOf("w")).toHaveLength(told); // nothing changed: nothing sent
    // In one turn: A leaves and C starts publishing. W is told once, with both.
    room.voice.leave("a");
    room.ask(c, { voiceReady: { feedId: room.voice.member("c")!.feedId } });
    await vi.advanceTimersByTimeAsync(HEAR_COALESCE_MS * 2);
    expect(room.hearOf("w")).toHaveLength(told + 1);
    expect(room.heard("w")).toEqual([room.voice.member("b")!.feedId, room.voice.member("c")!.feedId].sort());
  });

  it("a new grant replaces the old feed for everyone", async () => {
    const room = setUp();
    const a = room.join("a", "operator");
    const first = await room.speak(a);
    await room.speak(room.join("b", "operator"));
    await vi.advanceTimersByTimeAsync(HEAR_COALESCE_MS);
    expect(room.heard("b")).toEqual([first.feedId]);
    const second = await room.speak(a);
    await vi.advanceTimersByTimeAsync(HEAR_COALESCE_MS);
    expect(second.feedId).not.toBe(first.feedId);
    expect(room.heard("b")).toEqual([second.feedId]);
  });

  it("a host's mute reaches the SFU now if the member publishes, else when it does; release closes the voice room", async () => {
    const room = setUp();
    await room.speak(room.join("a", "operator"));
    room.voice.mute("a", true);
    const b = room.join("b", "operator");
    room.ask(b, { voiceJoin: { speak: true } });
    await vi.advanceTimersByTimeAsync(0);
    room.voice.mute("b", true);
    expect(room.backend!.calls.filter((c) => c.startsWith("mute"))).toEqual([`mute ${ROOM} a true`]);
    const grant = room.sent.filter((s) => s.sessionId === "b" && s.envelope.voiceGrant).at(-1)!.envelope.voiceGrant!;
    room.ask(b, { voiceReady: { feedId: grant.feedId } });
    expect(room.backend!.calls.filter((c) => c.startsWith("mute"))).toEqual([`mute ${ROOM} a true`, `mute ${ROOM} b true`]);
    room.voice.release();
    expect(room.backend!.calls.at(-1)).toBe(`release ${ROOM}`);
  });
});

describe("RoomVoice in a room that moved away", () => {
  it("lets its members' voice and its voice room linger, unchanged (until a move called off), so they join the new home's before this one goes", async () => {
    const room = setUp();
    await room.speak(room.join("a", "operator"));
    await room.speak(room.join("b", "operator"));
    await vi.advanceTimersByTimeAsync(HEAR_COALESCE_MS);
    const told = room.hearUpdates();
    room.retire();
    room.voice.leave("b");
    await vi.advanceTimersByTimeAsync(HEAR_COALESCE_MS);
    expect(room.hearUpdates()).toBe(told); // A still hears B, as it was
    // The move is called off: A is told what changed meanwhile.
    room.retire(false);
    await vi.advanceTimersByTimeAsync(500);
    expect(room.heard("a")).toEqual([]);
    room.retire();
    room.voice.leave("a");
    room.voice.release();
    expect(room.backend!.calls.slice(-3)).toEqual([`leave ${ROOM} b after ${HANDOFF_VOICE_LINGER_MS}`, `leave ${ROOM} a after ${HANDOFF_VOICE_LINGER_MS}`, `release ${ROOM} after ${HANDOFF_VOICE_LINGER_MS}`]);
  });
});

describe("RoomVoice without grants", () => {
  it("releases nothing when no one ever had voice", () => {
    const room = setUp();
    room.voice.release();
    expect(room.backend!.calls).toEqual([]);
  });
});
