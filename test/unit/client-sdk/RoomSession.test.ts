/**
 * RoomSession on a real @colyseus/sdk Room whose socket is a fake: frames go in through
 * the Room's own frame dispatcher and come out of the fake connection, so the SDK's
 * parsing, queueing and reconnection code runs as it does against a server.
 */
import { describe, it, expect, vi, beforeEach, afterEach } from "vitest";
import { Room, Protocol } from "@colyseus/sdk";
import { encode, decode } from "@colyseus/schema";
import { RoomSession, type RoomSessionOptions } from "../../../client-sdk/RoomSession.ts";
import { TsunagiError } from "../../../client-sdk/errors.ts";
import { decodeEnvelope, encodeEnvelope, errorEnvelope, ErrorCode, type Envelope, type IEnvelope } from "../../../proto/index.ts";

/** Stands in for the SDK's Connection: records what the Room sends. */
class FakeConnection {
  isOpen = true;
  sent: Uint8Array[] = [];
  reconnects: Array<{ reconnectionToken: string }> = [];
  closed = 0;
  events = {};
  /** What the "socket" does when closed from this side; set by joinedSession. */
  onClientClose?: (code: number) => void;
  send(data: Uint8Array) { this.sent.push(new Uint8Array(data)); }
  sendUnreliable(data: Uint8Array) { this.send(data); }
  reconnect(params: { reconnectionToken: string }) { this.reconnects.push(params); }
  close(code?: number) {
    this.closed++;
    this.isOpen = false;
    // like a WebSocket: the close event comes later; without a code it reads 1005
    setTimeout(() => this.onClientClose?.(code ?? 1005), 0);
  }
}

const utf8 = (text: string) => new TextEncoder().encode(text);

/** JOIN_ROOM as a server sends it: reconnection token, serializer id, no state. */
function joinFrame(reconnectionToken = "token-1"): Uint8Array {
  const token = utf8(reconnectionToken);
  const serializer = utf8("none");
  return Uint8Array.from([Protocol.JOIN_ROOM, token.length, ...token, serializer.length, ...serializer, 0]);
}

function bytesFrame(type: string, payload: Uint8Array): Uint8Array {
  const buffer = new Uint8Array(16 + type.length + payload.length);
  const it = { offset: 1 };
  buffer[0] = Protocol.ROOM_DATA_BYTES;
  encode.string(buffer, type, it);
  buffer.set(payload, it.offset);
  return buffer.subarray(0, it.offset + payload.length);
}

function errorFrame(code: number, message: string): Uint8Array {
  const buffer = new Uint8Array(32 + message.length * 3);
  const it = { offset: 1 };
  buffer[0] = Protocol.ERROR;
  encode.number(buffer, code, it);
  encode.string(buffer, message, it);
  return buffer.subarray(0, it.offset);
}

/** Hands a frame to the Room the way its transport does (an ArrayBuffer of its own). */
function deliver(room: Room, frame: Uint8Array) {
  (room as unknown as { onMessageCallback(event: { data: ArrayBuffer }): void }).onMessageCallback({ data: frame.slice().buffer });
}

function serverSends(room: Room, envelope: IEnvelope | Uint8Array) {
  deliver(room, bytesFrame("pb", envelope instanceof Uint8Array ? envelope : encodeEnvelope(envelope)));
}

/** Envelopes in frames the Room sent (or queued), in order. */
function envelopesIn(frames: Uint8Array[]): Envelope[] {
  return frames.filter((frame) => frame[0] === Protocol.ROOM_DATA_BYTES).map((frame) => {
    const it = { offset: 1 };
    expect(decode.string(frame as any, it)).toBe("pb");
    return decodeEnvelope(frame.subarray(it.offset));
  });
}

/**
 * The socket closed, as Room.connect's onclose handler reacts (@colyseus/sdk 0.18.4):
 * 1001/1005/1006/4010 after the join are a drop followed by reconnection, anything else
 * is a leave.
 */
function socketClosed(room: Room, connection: FakeConnection, code: number, reason = "") {
  connection.isOpen = false;
  if ([1001, 1005, 1006, 4010].includes(code)) {
    room.onDrop.invoke(code, reason);
    (room as unknown as { handleReconnection(code: number, reason: string): void }).handleReconnection(code, reason);
  } else {
    room.onLeave.invoke(code, reason);
  }
}

function joinedSession(options: RoomSessionOptions = {}) {
  const room = new Room("session");
  const connection = new FakeConnection();
  room.connection = connection as unknown as Room["connection"];
  room.roomId = "room-1";
  room.sessionId = "session-1";
  connection.onClientClose = (code) => socketClosed(room, connection, code);
  deliver(room, joinFrame());
  connection.sent.length = 0; // the JOIN_ROOM acknowledgement
  const listenerErrors: Array<[unknown, string]> = [];
  const session = new RoomSession(room, { onListenerError: (error, source) => listenerErrors.push([error, source]), ...options });
  return { room, connection, session, listenerErrors };
}

beforeEach(() => {
  // the SDK narrates reconnection on console.info
  vi.spyOn(console, "info").mockImplementation(() => {});
});
afterEach(() => {
  vi.restoreAllMocks();
  vi.useRealTimers();
});

describe("RoomSession basics", () => {
  it("exposes the room's identity", () => {
    const { session } = joinedSession({ region: { id: "jp-osaka", url: "http://osaka" } });
    expect(session.sessionId).toBe("session-1");
    expect(session.roomId).toBe("room-1");
    expect(session.reconnectionToken).toBe("room-1:token-1");
    expect(session.region?.id).toBe("jp-osaka");
    expect(session.closed).toBe(false);
  });

  it("sends envelopes as sendBytes(\"pb\") and Colyseus messages as send()", () => {
    const { session, connection } = joinedSession();
    session.sendEnvelope({ ping: { clientTimeMs: 1 } });
    session.send("chat", { text: "hi" });
    expect(envelopesIn(connection.sent)).toMatchObject([{ body: "ping", ping: { clientTimeMs: 1 } }]);
    expect(connection.sent[1][0]).toBe(Protocol.ROOM_DATA);
  });

  it("refuses an envelope that cannot be encoded with TsunagiError(WRONG_TYPE)", () => {
    const { session, connection } = joinedSession();
    expect(() => session.sendEnvelope({ ping: {}, pong: {} })).toThrow(TsunagiError);
    try { session.sendEnvelope({ correlationId: 1 }); } catch (error) {
      expect((error as TsunagiError).code).toBe(ErrorCode.WRONG_TYPE);
    }
    expect(connection.sent.length).toBe(0);
  });
});

describe("RoomSession requests", () => {
  it("resolves with the reply that echoes the correlation id", async () => {
    const { session, room, connection } = joinedSession();
    const reply = session.request({ ping: { clientTimeMs: 12.5 } });
    const [sent] = envelopesIn(connection.sent);
    expect(sent.correlationId).toBe(1);
    serverSends(room, { correlationId: 999, pong: { clientTimeMs: 0, serverTimeMs: 0 } }); // someone else's
    serverSends(room, { correlationId: sent.correlationId, pong: { clientTimeMs: 12.5, serverTimeMs: 100 } });
    const envelope = await reply;
    expect(envelope.body).toBe("pong");
    expect(envelope.pong).toMatchObject({ clientTimeMs: 12.5, serverTimeMs: 100 });
  });

  it("matches concurrent replies that arrive out of order", async () => {
    const { session, room, connection } = joinedSession();
    const first = session.request({ ping: { clientTimeMs: 1 } });
    const second = session.request({ ping: { clientTimeMs: 2 } });
    const [a, b] = envelopesIn(connection.sent);
    expect(a.correlationId).not.toBe(b.correlationId);
    serverSends(room, { correlationId: b.correlationId, pong: { clientTimeMs: 2 } });
    serverSends(room, { correlationId: a.correlationId, pong: { clientTimeMs: 1 } });
    expect((await first).pong?.clientTimeMs).toBe(1);
    expect((await second).pong?.clientTimeMs).toBe(2);
  });

  it("rejects with the code of an error reply", async () => {
    const { session, room, connection } = joinedSession();
    const reply = session.request({ ping: {} });
    const [sent] = envelopesIn(connection.sent);
    serverSends(room, errorEnvelope(ErrorCode.RATE_LIMITED, "slow down", sent.correlationId));
    const error = await reply.catch((e) => e);
    expect(error).toBeInstanceOf(TsunagiError);
    expect(error).toMatchObject({ code: ErrorCode.RATE_LIMITED, message: "slow down", retryable: true });
  });

  it("times out, and hands a late reply to onEnvelope", async () => {
    const { session, room, connection } = joinedSession();
    const late: Envelope[] = [];
    session.onEnvelope((envelope) => late.push(envelope));
    const error = await session.request({ ping: {} }, 20).catch((e) => e);
    expect(error).toMatchObject({ code: ErrorCode.REGION_UNAVAILABLE, retryable: true });
    expect(error.message).toMatch(/within 20 ms/);
    const [sent] = envelopesIn(connection.sent);
    serverSends(room, { correlationId: sent.correlationId, pong: {} });
    expect(late.map((e) => e.correlationId)).toEqual([sent.correlationId]);
  });

  it("bounds the requests in flight with RATE_LIMITED", async () => {
    const { session } = joinedSession({ maxPendingRequests: 2 });
    const pending = [session.request({ ping: {} }), session.request({ ping: {} })];
    pending.forEach((p) => p.catch(() => {}));
    const error = await session.request({ ping: {} }).catch((e) => e);
    expect(error).toMatchObject({ code: ErrorCode.RATE_LIMITED });
    await session.leave(false);
  });

  it("rejects every pending request when the session ends", async () => {
    const { session, room, connection } = joinedSession();
    const requests = [session.request({ ping: {} }), session.request({ ping: {} })].map((p) => p.catch((e) => e));
    socketClosed(room, connection, 4001, "shutting down");
    for (const error of await Promise.all(requests)) {
      expect(error).toBeInstanceOf(TsunagiError);
      expect(error.code).toBe(ErrorCode.NODE_DRAINING);
    }
    await expect(session.request({ ping: {} })).rejects.toMatchObject({ code: ErrorCode.NODE_DRAINING });
  });
});

describe("RoomSession envelopes and errors from the server", () => {
  it("delivers pushed envelopes to every handler; a throwing handler breaks nothing", () => {
    const { session, room, listenerErrors } = joinedSession();
    const seen: string[] = [];
    session.onEnvelope(() => { throw new Error("handler bug"); });
    const off = session.onEnvelope((envelope) => seen.push(envelope.body!));
    serverSends(room, { pong: { serverTimeMs: 1 } });
    serverSends(room, errorEnvelope(ErrorCode.MALFORMED_PROTOBUF, "bad bytes", 0));
    expect(seen).toEqual(["pong", "error"]);
    expect(listenerErrors.map(([, source]) => source)).toEqual(["envelope handler", "envelope handler"]);
    off();
    serverSends(room, { pong: {} });
    expect(seen.length).toBe(2);
  });

  it("reports an envelope that does not decode as an error event, never a throw", () => {
    const { session, room } = joinedSession();
    const errors: TsunagiError[] = [];
    session.on("error", (error) => errors.push(error));
    expect(() => serverSends(room, Uint8Array.from([0xff, 0xff, 0xff]))).not.toThrow();
    expect(errors.map((e) => e.code)).toEqual([ErrorCode.MALFORMED_PROTOBUF]);
    // the room still dispatches what follows
    const pushed: Envelope[] = [];
    session.onEnvelope((e) => pushed.push(e));
    serverSends(room, { pong: {} });
    expect(pushed.length).toBe(1);
  });

  it("turns room errors into coded error events; throwing listeners cannot stop the others", () => {
    const { session, room, listenerErrors } = joinedSession();
    const errors: TsunagiError[] = [];
    session.on("error", () => { throw new Error("listener bug"); });
    session.on("error", (error) => errors.push(error));
    deliver(room, errorFrame(ErrorCode.RATE_LIMITED, "too many messages"));
    deliver(room, errorFrame(ErrorCode.UNKNOWN_MESSAGE, "no handler for teleport"));
    expect(errors.map((e) => [e.code, e.message])).toEqual([
      [ErrorCode.RATE_LIMITED, "too many messages"],
      [ErrorCode.UNKNOWN_MESSAGE, "no handler for teleport"],
    ]);
    expect(listenerErrors.length).toBe(2);
    expect(listenerErrors[0][1]).toBe('"error" listener');
  });

  it("ignores the SDK's code-less socket error events (the close reports the outcome)", () => {
    const { session, room } = joinedSession();
    const errors: TsunagiError[] = [];
    session.on("error", (error) => errors.push(error));
    room.onError.invoke(undefined as unknown as number, undefined);
    expect(errors).toEqual([]);
  });
});

describe("RoomSession leave", () => {
  it("leave() sends LEAVE_ROOM and resolves with the server's close code", async () => {
    const { session, room, connection } = joinedSession();
    const leaves: unknown[] = [];
    session.on("leave", (event) => leaves.push(event));
    const left = session.leave();
    expect(connection.sent.at(-1)?.[0]).toBe(Protocol.LEAVE_ROOM);
    socketClosed(room, connection, 4000);
    expect(await left).toBe(4000);
    expect(leaves).toEqual([{ code: 4000, reason: "", error: undefined }]);
    expect(session.closed).toBe(true);
    expect(await session.leave()).toBe(4000);
    expect(() => session.send("chat", {})).toThrow(TsunagiError);
    expect(() => session.sendEnvelope({ ping: {} })).toThrow(/left the room/);
  });

  it("reports an unexpected close with its error, once", () => {
    const { session, room, connection } = joinedSession();
    const leaves: Array<{ code: number; error?: TsunagiError }> = [];
    session.on("leave", (event) => leaves.push(event));
    socketClosed(room, connection, 4503, "draining");
    room.onLeave.invoke(4503, "again");
    expect(leaves.length).toBe(1);
    expect(leaves[0].error).toMatchObject({ code: ErrorCode.NODE_DRAINING, retryable: true });
  });

  it("leave(false) closes without a reconnection attempt", async () => {
    const { session, room, connection } = joinedSession({ reconnection: { minUptime: 0, delay: 1, minDelay: 1 } });
    const reconnecting = vi.fn();
    session.on("reconnecting", reconnecting);
    (room as unknown as { joinedAtTime: number }).joinedAtTime = Date.now() - 60_000;
    const code = await session.leave(false);
    expect(code).toBe(1005);
    await new Promise((r) => setTimeout(r, 20));
    expect(reconnecting).not.toHaveBeenCalled();
    expect(connection.reconnects).toEqual([]);
    expect(connection.closed).toBe(1);
    expect(session.closed).toBe(true);
  });

  it("ends locally when the server does not confirm the leave in time", async () => {
    const { session, connection } = joinedSession({ leaveTimeoutMs: 30 });
    const leaves: unknown[] = [];
    session.on("leave", (event) => leaves.push(event));
    expect(await session.leave()).toBe(4000);
    expect(connection.closed).toBe(1);
    expect(leaves).toMatchObject([{ code: 4000, error: undefined }]);
  });
});

describe("RoomSession reconnection", () => {
  const fast = { minUptime: 0, delay: 1, minDelay: 1, maxDelay: 5, maxRetries: 3 };

  it("applies the settings to the SDK's room.reconnection", () => {
    const backoff = (attempt: number, delay: number) => attempt * delay;
    const { room } = joinedSession({ reconnection: { ...fast, backoff, maxEnqueuedMessages: 50, enabled: true } });
    expect(room.reconnection).toMatchObject({ ...fast, backoff, maxEnqueuedMessages: 50, enabled: true });
  });

  it("surfaces a drop as reconnecting, then reconnected, and flushes what was sent meanwhile", async () => {
    const { session, room, connection } = joinedSession({ reconnection: fast });
    const events: string[] = [];
    session.on("reconnecting", ({ attempt, maxRetries, code }) => events.push(`reconnecting ${attempt}/${maxRetries} after ${code}`));
    session.on("reconnected", () => events.push("reconnected"));

    socketClosed(room, connection, 1006);
    await vi.waitFor(() => expect(events).toEqual(["reconnecting 1/3 after 1006"]));
    expect(session.reconnecting).toBe(true);
    await vi.waitFor(() => expect(connection.reconnects).toEqual([{ reconnectionToken: "token-1", skipHandshake: true }]));

    // sent while disconnected: queued by the SDK, each with its own bytes
    session.sendEnvelope({ correlationId: 0, ping: { clientTimeMs: 1 } });
    session.sendEnvelope({ correlationId: 0, ping: { clientTimeMs: 2 } });
    const reply = session.request({ ping: { clientTimeMs: 3 } });

    connection.isOpen = true;
    connection.sent.length = 0;
    deliver(room, joinFrame("token-2"));
    expect(events.at(-1)).toBe("reconnected");
    expect(session.reconnecting).toBe(false);
    expect(session.reconnectionToken).toBe("room-1:token-2");
    const flushed = envelopesIn(connection.sent);
    expect(flushed.map((e) => e.ping?.clientTimeMs)).toEqual([1, 2, 3]);

    serverSends(room, { correlationId: flushed[2].correlationId, pong: { clientTimeMs: 3 } });
    expect((await reply).pong?.clientTimeMs).toBe(3);
  });

  it("reports each failed attempt, then leaves with a retryable REGION_UNAVAILABLE", async () => {
    const { session, room, connection } = joinedSession({ reconnection: fast });
    const attempts: number[] = [];
    let leave: { code: number; error?: TsunagiError } | undefined;
    session.on("reconnecting", ({ attempt }) => attempts.push(attempt));
    session.on("leave", (event) => { leave = event; });
    // every reconnection attempt fails: its socket closes abnormally
    connection.reconnect = (params) => { connection.reconnects.push(params); setTimeout(() => socketClosed(room, connection, 1006), 1); };
    socketClosed(room, connection, 1006);
    await vi.waitFor(() => expect(leave).toBeDefined());
    expect(attempts).toEqual([1, 2, 3]);
    expect(connection.reconnects.length).toBe(3);
    expect(leave?.code).toBe(4003); // FAILED_TO_RECONNECT
    expect(leave?.error).toMatchObject({ code: ErrorCode.REGION_UNAVAILABLE, retryable: true });
  });

  it("does not reconnect a session younger than minUptime (SDK default 5 s)", async () => {
    const { session, room, connection } = joinedSession();
    const reconnecting = vi.fn();
    let leave: { code: number; error?: TsunagiError } | undefined;
    session.on("reconnecting", reconnecting);
    session.on("leave", (event) => { leave = event; });
    socketClosed(room, connection, 1006);
    await Promise.resolve();
    expect(reconnecting).not.toHaveBeenCalled();
    expect(leave?.error?.code).toBe(ErrorCode.REGION_UNAVAILABLE);
  });

  it("leave() during reconnection ends the session and cancels the scheduled attempt", async () => {
    const { session, room, connection } = joinedSession({ reconnection: { ...fast, minDelay: 30, delay: 30 } });
    const pending = session.request({ ping: {} }).catch((e) => e);
    socketClosed(room, connection, 1006);
    await vi.waitFor(() => expect(session.reconnecting).toBe(true));
    expect(await session.leave()).toBe(4000);
    expect(session.closed).toBe(true);
    expect(await pending).toMatchObject({ code: ErrorCode.ERROR_CODE_UNSPECIFIED });
    await new Promise((r) => setTimeout(r, 80));
    expect(connection.reconnects).toEqual([]); // the timer fired into a no-op
  });
});

describe("RoomSession and the room's round-trip probes", () => {
  it("answers a Ping with a Pong echoing its correlation id and time, at once", () => {
    const { session, room, connection } = joinedSession();
    const pushed: Envelope[] = [];
    session.onEnvelope((envelope) => pushed.push(envelope));
    const before = Date.now();
    serverSends(room, { correlationId: 77, ping: { clientTimeMs: 1234.5 } });
    const [pong] = envelopesIn(connection.sent);
    expect(pong).toMatchObject({ correlationId: 77, body: "pong", pong: { clientTimeMs: 1234.5 } });
    expect(pong.pong!.serverTimeMs).toBeGreaterThanOrEqual(before);
    expect(pong.pong!.serverTimeMs).toBeLessThanOrEqual(Date.now());
    expect(pushed).toEqual([]); // handled here, not handed on
  });

  it("never takes the room's Ping for the reply to one of our requests with the same id", async () => {
    const { session, room, connection } = joinedSession();
    const reply = session.request({ clockSyncPing: { t0Ms: 5 } });
    const [request] = envelopesIn(connection.sent);
    serverSends(room, { correlationId: request.correlationId, ping: { clientTimeMs: 9 } });
    serverSends(room, { correlationId: request.correlationId, clockSyncPong: { t0Ms: 5, t1Ms: 100, t2Ms: 101 } });
    expect((await reply).body).toBe("clockSyncPong");
    expect(envelopesIn(connection.sent).map((e) => e.body)).toEqual(["clockSyncPing", "pong"]);
  });

  it("hands a Ping on without answering when answerPings is false, or when it expects no reply", () => {
    const { session, room, connection } = joinedSession({ answerPings: false });
    const pushed: Envelope[] = [];
    session.onEnvelope((envelope) => pushed.push(envelope));
    serverSends(room, { correlationId: 3, ping: { clientTimeMs: 1 } });
    expect(pushed.map((e) => e.body)).toEqual(["ping"]);
    expect(connection.sent).toEqual([]);

    const other = joinedSession();
    const seen: Envelope[] = [];
    other.session.onEnvelope((envelope) => seen.push(envelope));
    serverSends(other.room, { correlationId: 0, ping: { clientTimeMs: 1 } });
    expect(seen.map((e) => e.body)).toEqual(["ping"]);
    expect(other.connection.sent).toEqual([]);
  });
});

describe("RoomSession device snapshots", () => {
  it("keeps the newest DeviceProfile and LeaseState per device, pushed or replied", async () => {
    const { session, room, connection } = joinedSession();
    expect(session.deviceSnapshot("ex-1")).toEqual({});
    serverSends(room, { deviceProfile: { deviceId: "ex-1", driver: "sim-excavator" } });
    serverSends(room, { leaseState: { deviceId: "ex-1", leaseId: "", ttlMs: 1000 } });
    serverSends(room, { leaseState: { deviceId: "drone-1", leaseId: "L9" } });
    expect(session.deviceSnapshot("ex-1").profile?.driver).toBe("sim-excavator");
    expect(session.deviceSnapshot("ex-1").lease?.leaseId).toBe("");
    const reply = session.request({ leaseRequest: { deviceId: "ex-1", action: 1 } });
    const [request] = envelopesIn(connection.sent);
    serverSends(room, { correlationId: request.correlationId, leaseState: { deviceId: "ex-1", leaseId: "L1", holderSessionId: "session-1" } });
    await reply;
    expect(session.deviceSnapshot("ex-1")).toMatchObject({ profile: { driver: "sim-excavator" }, lease: { leaseId: "L1" } });
    expect(session.deviceSnapshot("drone-1").lease?.leaseId).toBe("L9");
  });
});
