/**
 * A session following its room to another node or region (handoff.proto): RoomSession's
 * part of a move, apart so the session stays readable.
 *
 * - InputLog keeps every numbered envelope the session sent for a while (bounded by
 *   time, not by a count): what a room's new home lacks is sent again from it.
 * - RoomFollower takes the seat a RoomHandoff names at once, waits there for the new
 *   home's SessionResumed while the old home still takes what the application sends,
 *   then sends the new home again, in order, the envelopes it has not applied, and hands
 *   the session over to it. A move called off (RoomHandoff `cancelled`, or a new home
 *   that closes before resuming) leaves the session where it was; one it cannot follow
 *   at all ends it (ROOM_MOVED: join again through matchmaking).
 *
 * @example
 *   const inputs = new InputLog(2000);
 *   inputs.keep(seq, bytes);                           // each numbered envelope sent
 *   const follower = new RoomFollower(host);
 *   void follower.follow(envelope.roomHandoff);        // a RoomHandoff arrived
 */
import type { Room } from "@colyseus/sdk";
import { decodeEnvelope, ErrorCode, ENVELOPE_MESSAGE_TYPE, type tsunagi } from "../proto/index.ts";
import { TsunagiError, fromCloseCode, fromServerError } from "./errors.ts";

/** A Colyseus seat reservation, as RoomHandoff carries it. */
export interface SeatReservation {
  name: string;
  roomId: string;
  sessionId: string;
  processId: string;
  publicAddress?: string;
}

export interface HandoffEvent {
  roomId: string;
  sessionId: string;
  /** The region the room left, and the one it is in now. */
  fromRegionId: string;
  toRegionId: string;
  reason: string;
  /** Numbered envelopes sent again to the new home (the old one had not applied them). */
  resent: number;
  /** From the RoomHandoff to the SessionResumed, ms. */
  pauseMs: number;
}

/** A kept envelope: its number, when it was sent, its bytes, and its request's correlation id (0: none). */
interface KeptInput {
  seq: number;
  at: number;
  bytes: Uint8Array;
  correlationId: number;
  /** False for what must not be sent again after the room's node was lost: a lease request (no lease survives a failover). */
  afterLoss: boolean;
}

/** The numbered envelopes of the last `windowMs`, oldest first. */
export class InputLog {
  private readonly sent: KeptInput[] = [];

  constructor(private readonly windowMs: number) {}

  /** While held (a session recovering its room), nothing expires. */
  private held = false;

  hold(held: boolean): void { this.held = held; }

  keep(seq: number, bytes: Uint8Array, correlationId = 0, afterLoss = true): void {
    const now = performance.now();
    this.sent.push({ seq, at: now, bytes, correlationId, afterLoss });
    if (this.held) return;
    let expired = 0;
    while (expired < this.sent.length && now - this.sent[expired].at > this.windowMs) expired++;
    if (expired) this.sent.splice(0, expired);
  }

  /** The request `correlationId` was refused (an Error reply): it was not applied, and is not to be sent again to a new home. */
  refused(correlationId: number): void {
    const at = this.sent.findIndex((input) => input.correlationId === correlationId);
    if (at >= 0) this.sent.splice(at, 1);
  }

  /**
   * Sends `room` again every kept envelope numbered above `seq`, in order; how many.
   * `afterLoss` (the room came back from a snapshot after its node was lost): lease
   * requests are not sent again, so no lease is granted in the restored room but by a
   * request made after it; their correlation ids go to `withheld`.
   */
  resendAbove(room: Room<any, any>, seq: number, afterLoss = false, withheld: (correlationId: number) => void = () => {}): number {
    let resent = 0;
    for (const input of this.sent) {
      if (input.seq <= seq) continue;
      if (afterLoss && !input.afterLoss) { if (input.correlationId) withheld(input.correlationId); continue; }
      room.sendBytes(ENVELOPE_MESSAGE_TYPE, input.bytes);
      resent++;
    }
    return resent;
  }
}

/** What the follower needs of its session. */
export interface FollowerHost<State> {
  current(): Room<any, State>;
  closed(): boolean;
  /** Takes a seat reservation: the joined room. Undefined: the session cannot follow. */
  follow?: (reservation: SeatReservation) => Promise<Room<any, State>>;
  maxEnvelopeBytes: number;
  regionId(): string | undefined;
  inputs: InputLog;
  guard(source: string, fn: () => void): void;
  /** The session goes on in `room`, in region `regionId`. */
  switchTo(room: Room<any, State>, regionId: string): void;
  receiveEnvelope(bytes: Uint8Array): void;
  /** A request not sent again to a room restored after its node was lost (a lease request): it fails. */
  withheld(correlationId: number): void;
  moved(event: HandoffEvent): void;
  failed(error: TsunagiError): void;
  /** The session cannot follow: it ends (ROOM_MOVED). */
  end(handoff: tsunagi.v1.IRoomHandoff, why: string): void;
}

export class RoomFollower<State> {
  /** Set while following (joined there, waiting for SessionResumed). */
  private following = false;
  /** Calls off the move under way. */
  private cancel?: () => void;

  constructor(private readonly host: FollowerHost<State>) {}

  /**
   * Follows the room to the seat `handoff` names; resolves whether the session is there
   * now. `recovering`: the old home is lost (SessionRecovery), so a seat that cannot be
   * taken leaves the session to try again, instead of ending it.
   */
  async follow(handoff: tsunagi.v1.IRoomHandoff, recovering = false): Promise<boolean> {
    const { host } = this;
    if (handoff.cancelled) { this.cancel?.(); return false; }
    if (this.following || host.closed()) return false;
    const started = performance.now();
    const old = host.current();
    const fromRegionId = handoff.fromRegionId || host.regionId() || "";
    if (!host.follow) { host.end(handoff, "this session cannot follow a room (no follow function)"); return false; }
    this.following = true;
    let joining: Promise<Room<any, State>> | undefined;
    const early: Uint8Array[] = [];
    let unbind: (() => void) | undefined;
    let cancelled = false;
    const called = new Promise<never>((_, reject) => {
      this.cancel = () => { cancelled = true; reject(new TsunagiError(ErrorCode.HANDOFF_FAILED, "the move was called off")); };
    });
    called.catch(() => {});
    try {
      const reservation = JSON.parse(handoff.reservationJson ?? "") as SeatReservation;
      if (reservation?.sessionId !== old.sessionId || reservation.roomId !== old.roomId) {
        throw new TsunagiError(ErrorCode.WRONG_TYPE, "the handoff's seat is for another session or room");
      }
      joining = host.follow(reservation);
      const joined = await Promise.race([joining, called]);
      const resumed = await Promise.race([called, new Promise<tsunagi.v1.SessionResumed>((resolve, reject) => {
        const timer = setTimeout(() => reject(new TsunagiError(ErrorCode.REGION_UNAVAILABLE, "the room's new home did not resume the session")), Math.max(1, handoff.seatSeconds || 10) * 1000);
        unbind = joined.onMessage(ENVELOPE_MESSAGE_TYPE, (bytes: Uint8Array) => host.guard("handoff", () => {
          const envelope = decodeEnvelope(bytes, host.maxEnvelopeBytes);
          if (envelope.body === "sessionResumed") { clearTimeout(timer); resolve(envelope.sessionResumed as tsunagi.v1.SessionResumed); } else early.push(Uint8Array.from(bytes));
        }));
        joined.onLeave((code: number, reason?: string) => { clearTimeout(timer); reject(fromCloseCode(code, reason)); });
      })]);
      unbind?.();
      this.cancel = undefined;
      if (host.closed()) { void joined.leave(true).catch(() => {}); this.following = false; return false; }
      const toRegionId = resumed.regionId || handoff.regionId || "";
      host.switchTo(joined, toRegionId);
      const resent = host.inputs.resendAbove(joined, resumed.inputSeq, recovering, (correlationId) => host.withheld(correlationId));
      this.following = false;
      for (const bytes of early) host.receiveEnvelope(bytes);
      if (recovering) abandon(old);
      else void old.leave(true).catch(() => { /* the old home closes it anyway */ });
      host.moved({ roomId: joined.roomId, sessionId: joined.sessionId, fromRegionId, toRegionId, reason: handoff.reason ?? "", resent, pauseMs: Math.round(performance.now() - started) });
      return true;
    } catch (error) {
      unbind?.();
      this.cancel = undefined;
      this.following = false;
      void joining?.then((room) => room.leave(true)).catch(() => { /* never joined, or closed already */ });
      if (recovering) return false;
      if (!host.closed() && old.connection?.isOpen) {
        // Called off, or the new home failed before the switch: the old home goes on (it thaws).
        if (!cancelled) host.failed(fromServerError(error));
        return false;
      }
      host.end(handoff, (error as Error)?.message ?? String(error));
      return false;
    }
  }
}

/**
 * Lets go of a room whose node is lost: the SDK may have a reconnection attempt scheduled
 * on a timer it offers no way to cancel, so that attempt is made a no-op and whatever
 * socket is open or half-open is closed.
 */
export function abandon(room: Room<any, any>): void {
  room.reconnection.enabled = false;
  const connection = room.connection as { reconnect?: unknown; close?: () => void } | undefined;
  if (!connection) return;
  connection.reconnect = () => {};
  try { connection.close?.(); } catch { /* a socket that never opened */ }
}
