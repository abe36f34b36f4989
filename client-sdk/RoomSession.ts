/**
 * A joined room: a Colyseus `Room` plus protobuf envelopes with request/reply, coded
 * errors, automatic reconnection surfaced as events, and listeners that cannot break
 * the socket handlers they run in. It answers the room's round-trip probes (Ping →
 * Pong) by itself, so a teleoperation room can measure the operator's link.
 *
 * @example
 *   const session = await client.joinOrCreate("session", { roomId: "hall-1" });
 *   session.on("reconnecting", ({ attempt, maxRetries }) => banner(`reconnecting ${attempt}/${maxRetries}`));
 *   session.on("leave", ({ error }) => error?.retryable && rejoin());
 *   const reply = await session.request({ ping: { clientTimeMs: performance.now() } });
 *   if (reply.body === "pong") console.log("rtt", performance.now() - reply.pong.clientTimeMs);
 */
import type { Room } from "@colyseus/sdk";
import {
  decodeEnvelope, encodeEnvelope, ErrorCode, DEFAULT_MAX_ENVELOPE_BYTES, ENVELOPE_MESSAGE_TYPE,
  type Envelope, type IEnvelope, type tsunagi,
} from "../proto/index.ts";
import { TsunagiError, fromCloseCode, fromServerError } from "./errors.ts";
import { SafeEmitter, reportListenerError } from "../common/SafeEmitter.ts";
import { InputLog, RoomFollower, abandon, type HandoffEvent, type SeatReservation } from "./RoomFollower.ts";
import { SessionRecovery } from "./SessionRecovery.ts";
import { PendingRequests, type OpenRequest } from "./PendingRequests.ts";
import { DeviceSnapshots, type DeviceSnapshot } from "./DeviceSnapshots.ts";
import { regionRttsOf } from "../proto/regionRtts.ts";

import type { LeaveEvent, ReconnectionSettings, RequestOptions, RoomSessionEvents, RoomSessionOptions } from "./sessionTypes.ts";

export type { HandoffEvent, SeatReservation } from "./RoomFollower.ts";
export type { DeviceSnapshot } from "./DeviceSnapshots.ts";
export type { LeaveEvent, ReconnectingEvent, ReconnectionSettings, RequestOptions, RoomSessionEvents, RoomSessionOptions } from "./sessionTypes.ts";

/** Colyseus' CloseCode.CONSENTED (@colyseus/shared-types): the client chose to leave. */
const CLOSE_CONSENTED = 4000;

export class RoomSession<State = any> {
  /** The Colyseus room now: another one after the room moved (the `handoff` event). */
  private current: Room<any, State>;
  /** The region this session was matchmade through (the one its room is in, after a handoff), if known. */
  readonly region?: { id?: string; url: string; rttMs?: number };
  /** Requests awaiting replies; at most maxPendingRequests. */
  private readonly requests: PendingRequests;
  /** Handlers for envelopes that are not replies to a request. */
  private readonly envelopeHandlers = new Set<(envelope: Envelope) => void>();
  /** error / leave / reconnecting / reconnected, to the application's listeners. */
  private readonly events: SafeEmitter<RoomSessionEvents>;
  /** Where exceptions from listeners and handlers are reported instead of thrown. */
  private readonly onListenerError: (error: unknown, source: string) => void;
  /** Default bound on each request, in ms. */
  private readonly requestTimeoutMs: number;
  /** Largest envelope accepted from the server. */
  private readonly maxEnvelopeBytes: number;
  /** How long leave() waits for the server's close before ending locally, in ms. */
  private readonly leaveTimeoutMs: number;
  /** Whether the room's Pings are answered here (see RoomSessionOptions.answerPings). */
  private readonly answerPings: boolean;
  /** The newest DeviceProfile and LeaseState per device, since joining. */
  private readonly devices = new DeviceSnapshots();
  /** Set once the session has ended; the leave event has been emitted. */
  private closedWith?: LeaveEvent;
  /** Set when leave() was called, so the close that follows is not reported as an error. */
  private leaving = false;
  /** The last input number given to an envelope (Envelope.input_seq). */
  private lastInputSeq = 0;
  /** Numbered envelopes of the last resendWindowMs: sent again to a room's new home. */
  private readonly inputs: InputLog;
  /** Follows the room when it moves (RoomFollower.ts). */
  private readonly follower: RoomFollower<State>;
  /** This client's round trips to the regions, reported to the room. */
  private readonly regionRtts?: RoomSessionOptions["regionRtts"];
  private readonly rttTimer?: ReturnType<typeof setInterval>;
  private readonly reconnection?: ReconnectionSettings;
  /** Finds the room again after its node was lost (SessionRecovery.ts). */
  private readonly recovery?: SessionRecovery;

  constructor(room: Room<any, State>, options: RoomSessionOptions = {}) {
    this.current = room;
    this.region = options.region;
    this.requests = new PendingRequests(options.maxPendingRequests ?? 256);
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.maxEnvelopeBytes = options.maxEnvelopeBytes ?? DEFAULT_MAX_ENVELOPE_BYTES;
    this.leaveTimeoutMs = options.leaveTimeoutMs ?? 5000;
    this.answerPings = options.answerPings ?? true;
    this.onListenerError = options.onListenerError ?? ((error, source) => console.error(`tsunagi: ${source} threw`, error));
    this.events = new SafeEmitter<RoomSessionEvents>(this.onListenerError);
    this.inputs = new InputLog(options.resendWindowMs ?? 2000);
    this.reconnection = options.reconnection;
    this.follower = new RoomFollower<State>({
      current: () => this.current,
      closed: () => this.closedWith !== undefined,
      follow: options.follow,
      maxEnvelopeBytes: this.maxEnvelopeBytes,
      regionId: () => this.region?.id,
      inputs: this.inputs,
      guard: (source, fn) => this.guard(source, fn),
      switchTo: (room, regionId) => {
        this.current = room;
        this.attach(room);
        (this as { region?: RoomSessionOptions["region"] }).region = { ...this.region, url: this.region?.url ?? "", id: regionId, rttMs: undefined };
      },
      receiveEnvelope: (bytes) => this.receiveEnvelope(bytes),
      withheld: (correlationId) => this.requests.fail(correlationId, new TsunagiError(ErrorCode.LEASE_NOT_HELD, "the room's node was lost before it granted this lease request, and no lease survives a failover: ask again", { retryable: true })),
      moved: (event) => { this.reportRtts(); this.events.emit("handoff", event); },
      failed: (error) => this.events.emit("error", error),
      end: (handoff, why) => this.endMoved(handoff, why),
    });
    const resume = options.resume;
    if (resume && options.follow) {
      this.recovery = new SessionRecovery({
        roomId: () => this.current.roomId,
        sessionId: () => this.current.sessionId,
        closed: () => this.closedWith !== undefined,
        connected: () => this.current.connection?.isOpen === true,
        resume,
        follow: (handoff) => this.follower.follow(handoff, true),
        holdInputs: (held) => this.inputs.hold(held),
        failed: (error) => this.guard("recovery", () => this.endRecovered(error)),
      }, { windowMs: options.recoveryWindowMs });
    }
    this.attach(room);
    this.regionRtts = options.regionRtts;
    if (this.regionRtts) {
      this.reportRtts();
      this.rttTimer = setInterval(() => this.guard("region rtts", () => this.reportRtts()), options.rttReportMs ?? 30_000);
      (this.rttTimer as { unref?: () => void }).unref?.();
    }
  }

  /** The underlying Colyseus room, for what this class does not wrap (schema callbacks…). A room that moves is another Colyseus room afterwards (the `handoff` event). */
  get room(): Room<any, State> { return this.current; }

  /** Listens to `room`; each callback acts only while `room` is the session's current room. */
  private attach(room: Room<any, State>) {
    applyReconnectionSettings(room, this.reconnection);
    const ours = (fn: () => void) => { if (room === this.current) fn(); };
    // Every callback below runs inside the SDK's socket handlers: an exception there
    // would skip the SDK's remaining work for the frame, so none may escape.
    room.onMessage(ENVELOPE_MESSAGE_TYPE, (bytes: Uint8Array) => this.guard("envelope", () => ours(() => this.receiveEnvelope(bytes))));
    room.onError((code: number, message?: string) => this.guard("room error", () => ours(() => this.receiveRoomError(code, message))));
    room.onDrop((code: number, reason?: string) => this.guard("drop", () => ours(() => this.receiveDrop(code, reason))));
    room.onReconnect(() => this.guard("reconnect", () => ours(() => { this.recovery?.stop(); this.events.emit("reconnected"); })));
    room.onLeave((code: number, reason?: string) => this.guard("leave", () => ours(() => this.receiveLeave(code, reason))));
  }

  get sessionId(): string { return this.room.sessionId; }
  get roomId(): string { return this.room.roomId; }
  get state(): State { return this.room.state; }
  /** `roomId:token`, for TsunagiClient.reconnect() after the SDK gave up (e.g. the node died). */
  get reconnectionToken(): string { return this.room.reconnectionToken; }
  /** True once the session has ended. */
  get closed(): boolean { return this.closedWith !== undefined; }
  /** True while the SDK is trying to reconnect. */
  get reconnecting(): boolean { return !this.closed && this.room.reconnection.isReconnecting; }

  on<K extends keyof RoomSessionEvents>(event: K, listener: RoomSessionEvents[K]): () => void {
    return this.events.on(event, listener);
  }
  once<K extends keyof RoomSessionEvents>(event: K, listener: RoomSessionEvents[K]): () => void {
    return this.events.once(event, listener);
  }
  off<K extends keyof RoomSessionEvents>(event: K, listener: RoomSessionEvents[K]): void {
    this.events.off(event, listener);
  }

  /** A Colyseus message (msgpack). Buffered by the SDK while reconnecting. */
  send(type: string | number, message?: unknown): void {
    this.assertOpen();
    this.room.send(type as never, message as never);
  }

  /** Listens to a Colyseus message type; returns the function that stops listening. */
  onMessage<T = unknown>(type: string | number, handler: (message: T) => void): () => void {
    return this.room.onMessage(type as never, ((message: T) => this.guard(`"${type}" handler`, () => handler(message))) as never);
  }

  /**
   * Sends a protobuf Envelope (`sendBytes("pb", …)`). Throws TsunagiError(WRONG_TYPE)
   * for an envelope that cannot be encoded. Buffered by the SDK while reconnecting.
   */
  sendEnvelope(envelope: IEnvelope): void {
    this.assertOpen();
    let bytes: Uint8Array;
    const inputSeq = this.lastInputSeq + 1;
    try {
      bytes = encodeEnvelope({ ...envelope, inputSeq });
    } catch (error) {
      throw fromServerError(error);
    }
    this.lastInputSeq = inputSeq;
    // Kept for a move: the old home applies it until its freeze, carries it through the
    // switch, or drops it after; the new home is sent again whatever it lacks.
    this.inputs.keep(inputSeq, bytes, envelope.correlationId ?? 0, !envelope.leaseRequest);
    const wasOpen = this.room.connection?.isOpen === true;
    this.room.sendBytes(ENVELOPE_MESSAGE_TYPE, bytes);
    if (!wasOpen) {
      // @colyseus/sdk 0.18.4 queues a sendBytes() made while disconnected as a view of
      // its shared scratch buffer, which the next send overwrites. Keep a copy instead.
      const queue = this.room.reconnection.enqueuedMessages;
      const last = queue[queue.length - 1];
      if (last) last.data = last.data.slice();
    }
  }

  /**
   * Sends `body` with a fresh correlation id and resolves with the reply envelope that
   * echoes it. Rejects with TsunagiError: the code of an `error` reply; RATE_LIMITED
   * when maxPendingRequests are already waiting; REGION_UNAVAILABLE when no reply came
   * within `timeoutMs`; the leave error (or code 0 after leave()) when the session ends.
   */
  request(body: Omit<IEnvelope, "correlationId">, timeoutMs: number = this.requestTimeoutMs, options?: RequestOptions): Promise<Envelope> {
    if (this.closedWith) return Promise.reject(this.closedError());
    let request: OpenRequest;
    try {
      request = this.requests.open(timeoutMs, options?.notice === true);
    } catch (error) {
      return Promise.reject(error);
    }
    try {
      this.sendEnvelope({ ...body, correlationId: request.correlationId });
    } catch (error) {
      request.fail(fromServerError(error));
    }
    return request.reply;
  }

  /**
   * Handles envelopes the server sends that are not replies to a pending request
   * (pushes, late replies, error envelopes for bad input). Returns the function that
   * removes the handler.
   */
  onEnvelope(handler: (envelope: Envelope) => void): () => void {
    this.envelopeHandlers.add(handler);
    return () => { this.envelopeHandlers.delete(handler); };
  }

  /**
   * The newest DeviceProfile and LeaseState the room sent for `deviceId` (pushed or as
   * a reply), kept since the join: a TeleopRoom sends them once, when a participant
   * joins, and again only when they change. Empty for a device never heard of.
   */
  deviceSnapshot(deviceId: string): Readonly<DeviceSnapshot> {
    return this.devices.get(deviceId);
  }

  /**
   * Leaves the room (consented: the server may free the seat at once) and resolves with
   * the close code. Also stops a reconnection under way. Bounded: if the server does not
   * close within leaveTimeoutMs, the session ends locally.
   */
  async leave(consented: boolean = true): Promise<number> {
    if (this.closedWith) return this.closedWith.code;
    this.leaving = true;
    // Whatever close follows must end the session, not start a reconnection: the SDK
    // treats a client-side close without a code (leave(false)) as a drop.
    this.room.reconnection.enabled = false;
    if (this.room.connection?.isOpen) {
      const timer = setTimeout(() => this.guard("leave", () => this.endLocally("the server did not confirm the leave")), this.leaveTimeoutMs);
      try {
        return await this.room.leave(consented);
      } finally {
        clearTimeout(timer);
      }
    }
    this.endLocally("left while reconnecting");
    return CLOSE_CONSENTED;
  }

  // --- from the SDK -----------------------------------------------------------------

  private receiveEnvelope(bytes: Uint8Array) {
    let envelope: Envelope;
    try {
      envelope = decodeEnvelope(bytes, this.maxEnvelopeBytes);
    } catch (error) {
      this.events.emit("error", fromServerError(error));
      return;
    }
    const correlationId = envelope.correlationId;
    // The room's round-trip probe: answered here, once per session, before anything
    // else. Never a reply to one of our requests, even when its id (chosen by the room)
    // happens to equal one of ours.
    if (envelope.body === "ping" && correlationId && this.answerPings) {
      this.answerPing(correlationId, envelope.ping.clientTimeMs ?? 0);
      return;
    }
    if (envelope.body === "roomHandoff") {
      void this.follower.follow(envelope.roomHandoff as tsunagi.v1.RoomHandoff);
      return;
    }
    this.devices.remember(envelope);
    // A refused request was not applied: a room's new home is not sent it again (the application was told).
    if (envelope.body === "error" && correlationId) this.inputs.refused(correlationId);
    // A reply settles its request; a push (or a reply that is also a notice) goes to the handlers.
    if (this.requests.settle(envelope) !== "reply") this.dispatch(envelope);
  }

  /** Hands an envelope to the session's envelope handlers. */
  private dispatch(envelope: Envelope) {
    for (const handler of [...this.envelopeHandlers]) {
      try {
        handler(envelope);
      } catch (error) {
        reportListenerError(this.onListenerError, error, "envelope handler");
      }
    }
  }

  private receiveRoomError(code: number, message?: string) {
    // The SDK also calls onError with the socket's error event (no code) when a socket
    // fails; the close that follows reports the outcome (reconnecting or leave).
    if (typeof code !== "number") return;
    this.events.emit("error", fromServerError({ code, message }));
  }

  private receiveDrop(code: number, reason?: string) {
    // Looks for the room through the directory meanwhile: if its node is lost, the SDK's
    // reconnection to it never succeeds, and the room comes back elsewhere.
    if (!this.leaving) this.recovery?.start();
    // The SDK decides right after onDrop, in the same call, whether it will reconnect
    // (enabled, minUptime, retries left) and counts the attempt; read the outcome after.
    queueMicrotask(() => this.guard("drop", () => {
      const reconnection = this.room.reconnection;
      if (this.closedWith || !reconnection.isReconnecting) return;
      this.events.emit("reconnecting", { attempt: reconnection.retryCount, maxRetries: reconnection.maxRetries, code, reason });
    }));
  }

  private receiveLeave(code: number, reason?: string) {
    if (this.closedWith) return;
    if (!this.leaving && this.recovery) {
      // The old home does not hold the room any more (another node does), or the SDK
      // gave up reconnecting to a lost node: the recovery decides how this ends.
      if (code === ErrorCode.NOT_ROOM_OWNER) this.recovery.start();
      if (this.recovery.active) return;
    }
    this.finish(code, reason, this.leaving ? undefined : fromCloseCode(code, reason));
  }

  /** The session ends: pending requests fail, the application hears `leave`, once. */
  private finish(code: number, reason: string | undefined, error: TsunagiError | undefined) {
    clearInterval(this.rttTimer);
    this.closedWith = { code, reason, error };
    this.requests.rejectAll(this.closedError());
    this.envelopeHandlers.clear();
    this.events.emit("leave", { code, reason, error });
    this.events.removeAll();
  }

  // --- internals --------------------------------------------------------------------

  /** The room moved and this session did not follow: it ends, ROOM_MOVED (join again). */
  private endMoved(handoff: tsunagi.v1.IRoomHandoff, why: string) {
    if (this.closedWith) return;
    const old = this.current;
    old.reconnection.enabled = false;
    this.receiveLeave(ErrorCode.ROOM_MOVED, `room moved to ${handoff.regionId}; ${why}`);
    void old.leave(true).catch(() => {});
  }

  /** Recovery gave up: the session ends with its error, unless the SDK is still reconnecting to its node (its outcome ends it, or not). */
  private endRecovered(error: TsunagiError) {
    if (this.closedWith || this.room.reconnection.isReconnecting) return;
    abandon(this.current);
    this.finish(error.code, error.message, error);
  }

  /** Tells the room this client's round trip to each region (RegionRtts), if known. */
  private reportRtts() {
    // Not while reconnecting: the SDK would queue it among the application's messages; the next report goes.
    if (this.closedWith || this.room.connection?.isOpen !== true) return;
    const rttMs = regionRttsOf(this.regionRtts?.());
    if (rttMs) this.sendEnvelope({ regionRtts: { rttMs } });
  }

  /** Pong for the room's Ping: its time echoed, and ours (Unix epoch ms). */
  private answerPing(correlationId: number, clientTimeMs: number) {
    if (this.closedWith) return;
    // While reconnecting the SDK would queue the Pong and deliver it late, which would
    // only inflate the measured round trip; the room probes again.
    if (this.room.connection?.isOpen !== true) return;
    this.sendEnvelope({ correlationId, pong: { clientTimeMs, serverTimeMs: Date.now() } });
  }

  /** The error for using a session that has ended: why it ended, or code 0 (no server
   *  error: the application left). */
  private closedError(): TsunagiError {
    const left = this.closedWith;
    if (left?.error) return new TsunagiError(left.error.code, `the session ended: ${left.error.message}`, { cause: left.error });
    return new TsunagiError(ErrorCode.ERROR_CODE_UNSPECIFIED, "the session has left the room", { retryable: false });
  }

  /**
   * Ends the session without the server's close. The SDK may have a reconnection
   * attempt scheduled on a timer it offers no way to cancel: make that attempt a no-op,
   * close whatever socket is open or half-open, and run the SDK's own leave path.
   */
  private endLocally(reason: string) {
    if (this.closedWith) return;
    abandon(this.room);
    this.room.onLeave.invoke(CLOSE_CONSENTED, reason);
  }

  private assertOpen() {
    if (this.closedWith) throw this.closedError();
  }

  private guard(source: string, fn: () => void) {
    try {
      fn();
    } catch (error) {
      reportListenerError(this.onListenerError, error, source);
    }
  }
}

function applyReconnectionSettings(room: Room, settings: ReconnectionSettings | undefined) {
  if (!settings) return;
  const target = room.reconnection;
  for (const key of ["enabled", "maxRetries", "delay", "minDelay", "maxDelay", "minUptime", "backoff", "maxEnqueuedMessages"] as const) {
    if (settings[key] !== undefined) (target as unknown as Record<string, unknown>)[key] = settings[key];
  }
}
