/**
 * The first thing every client frame meets, for every room type.
 *
 * Colyseus silently ignores frames with an unknown protocol byte, drops a client
 * without a word when it floods past `maxMessagesPerSecond`, and can throw out of its
 * socket callback on a truncated frame. Here each of those becomes a coded error to the
 * sender, a log line and a metric, while the room and every other client go on.
 */
import { Room, Protocol, ClientState, transportClientClasses } from "./internals.ts";
import { ENVELOPE_FRAME_PREFIX, isEnvelopeFrame } from "./envelopeFrame.ts";
import { ErrorCode, decodeStopEnvelope } from "../../proto/index.ts";
import { rejectInput, type ErrorSink } from "./rejectInput.ts";
import { FloodWindow, STOP_FRAMES_PER_SECOND } from "../../common/FloodWindow.ts";
import { estopRoles, resetRoles, type Role } from "../auth/tokens.ts";

/** Client→server protocol codes Colyseus understands. */
const knownCodes = new Set<number>([
  Protocol.JOIN_ROOM, Protocol.LEAVE_ROOM, Protocol.ROOM_DATA, Protocol.ROOM_DATA_BYTES,
  Protocol.PING, Protocol.ROOM_INPUT_RELIABLE, Protocol.ROOM_INPUT_UNRELIABLE, Protocol.ROOM_REQUEST,
]);
const PROTOCOL_CODE_MASK = 0x3f;
/** Session control frames are never rate-limited: a flooder must still be able to leave. */
const controlCodes = new Set<number>([Protocol.JOIN_ROOM, Protocol.LEAVE_ROOM, Protocol.PING]);

/** Set on a client while Colyseus dispatches its frame (see keepAliveOnBadPayload). */
const dispatchingKey = Symbol("tsunagi.dispatching");
const leaveGuardedKey = Symbol("tsunagi.leaveGuarded");
const WITH_ERROR = 4002;

/**
 * Colyseus answers an undecodable or invalid payload by closing the socket without a
 * word. Here the sender gets a coded error instead and keeps its session: one bad
 * message is not worth a dropped operator or visitor.
 */
function keepAliveOnBadPayload(client: any, sink: ErrorSink, roomId: string) {
  if (client[leaveGuardedKey]) return;
  client[leaveGuardedKey] = true;
  const leave = client.leave;
  client.leave = function guardedLeave(this: unknown, code?: number, reason?: string) {
    if (client[dispatchingKey] && code === WITH_ERROR) {
      rejectInput(sink, client, ErrorCode.WRONG_TYPE, "message payload could not be decoded or failed validation", { roomId, source: "payload" });
      return;
    }
    return leave.call(this, code, reason);
  };
}

/** Each client's budget of stops past its flood limit, kept on the client object. */
const stopBudgetKey = Symbol("tsunagi.stopBudget");

/**
 * Whether a frame over the flood limit still goes through: stopping is always allowed to
 * those who may drive. Only an envelope that decodes as an EStop (or a Reset) counts, not
 * one whose first tags merely look like one; only from a role that may send it (the token's,
 * as the room's check will read it); and only within the sender's own small budget of
 * STOP_FRAMES_PER_SECOND. The decode runs for over-limit frames that start like a stop, never
 * on the path of frames within the limit.
 */
function stopPassesFlood(client: any, code: number, buffer: Buffer, maxFrameBytes: number): boolean {
  if (code !== Protocol.ROOM_DATA_BYTES || !isEnvelopeFrame(buffer)) return false;
  const stop = decodeStopEnvelope(buffer.subarray(ENVELOPE_FRAME_PREFIX.length), maxFrameBytes);
  if (!stop) return false;
  const role: Role | undefined = client.auth?.role;
  if (!role || !(stop.body === "estop" ? estopRoles : resetRoles).includes(role)) return false;
  const budget: FloodWindow = client[stopBudgetKey] ??= new FloodWindow(STOP_FRAMES_PER_SECOND);
  return budget.admit();
}

/** A room's handler of envelope frames, set by handleEnvelopeFrames(). */
const envelopeHandlerKey = Symbol("tsunagi.envelopeHandler");

/** Handles an Envelope's bytes from a client. */
export type EnvelopeFrameHandler = (client: any, envelopeBytes: Uint8Array) => void;

/**
 * Routes a room's "pb" frames, once screened, straight to `handler`: past Colyseus'
 * message dispatch (the type string decoded again, the event emitter, the debug hook),
 * which is most of what a command costs the node before the room sees it. What Colyseus
 * would have done for the frame that matters here is done here: a leaving client's
 * frames are dropped, and the client's last-message time is kept.
 */
export function handleEnvelopeFrames(room: Room, handler: EnvelopeFrameHandler): void {
  (room as any)[envelopeHandlerKey] = handler;
}

/** Each client's flood window, kept on the client object. */
const floodKey = Symbol("tsunagi.flood");

export interface InputGuardOptions extends ErrorSink {
  maxMessagesPerSecond: number;
  maxFrameBytes: number;
}

let installed: { options: InputGuardOptions; original: Function } | undefined;

/** Counts traffic and screens client frames; idempotent, undone by uninstallInputGuard(). */
export function installInputGuard(options: InputGuardOptions) {
  if (installed) { installed.options = options; return; }
  const prototype = Room.prototype as any;
  const original = prototype._onMessage as (client: any, buffer: Buffer) => void;
  installed = { options, original };

  // Colyseus binds this once per client (`_onMessage.bind(room, client)`), so it is written
  // as a method: a named function expression gets its `name` redefined under tsx (esbuild's
  // keepNames), which sends every bind down V8's slow path, about 290 bytes more per client.
  prototype._onMessage = ({ guardedOnMessage(this: Room, client: any, buffer: Buffer) {
    const { metrics, maxMessagesPerSecond } = installed!.options;
    const sink = installed!.options;
    metrics.traffic.messagesIn++;
    metrics.traffic.bytesIn += buffer?.byteLength ?? 0;

    const code = buffer?.byteLength ? buffer[0] & PROTOCOL_CODE_MASK : -1;
    if (!knownCodes.has(code)) {
      rejectInput(sink, client, ErrorCode.BAD_FRAME,
        `frame is not a Colyseus protocol message (first byte ${buffer?.[0] ?? "none"})`, { roomId: this.roomId, source: "frame" });
      return;
    }

    if (buffer.byteLength > installed!.options.maxFrameBytes) {
      rejectInput(sink, client, ErrorCode.FRAME_TOO_LARGE,
        `frame of ${buffer.byteLength} bytes exceeds the ${installed!.options.maxFrameBytes}-byte limit: dropped`, { roomId: this.roomId, source: "frame" });
      return;
    }

    if (controlCodes.has(code)) {
      original.call(this, client, buffer);
      return;
    }

    const flood: FloodWindow = client[floodKey] ??= new FloodWindow(maxMessagesPerSecond);
    if (!flood.admit() && !stopPassesFlood(client, code, buffer, installed!.options.maxFrameBytes)) {
      if (flood.drop() === "tell") {
        rejectInput(sink, client, ErrorCode.RATE_LIMITED,
          `more than ${maxMessagesPerSecond} messages/s: excess dropped until the next second`, { roomId: this.roomId, source: "flood" });
      } else {
        metrics.errors.inc({ code: "RATE_LIMITED", source: "flood" });
      }
      return;
    }

    const envelopeHandler: EnvelopeFrameHandler | undefined = (this as any)[envelopeHandlerKey];
    if (envelopeHandler && code === Protocol.ROOM_DATA_BYTES && isEnvelopeFrame(buffer)) {
      if (client.state === ClientState.LEAVING) return;
      client._lastMessageTime = this.clock.currentTime;
      try {
        envelopeHandler(client, buffer.subarray(ENVELOPE_FRAME_PREFIX.length));
      } catch (error) {
        rejectInput(sink, client, ErrorCode.INTERNAL, `the room failed on this message: ${(error as Error).message}`, { roomId: this.roomId, source: "frame" });
        sink.logger.error({ err: error, roomId: this.roomId }, "envelope handler failed");
      }
      return;
    }

    keepAliveOnBadPayload(client, sink, this.roomId);
    client[dispatchingKey] = true;
    try {
      original.call(this, client, buffer);
    } catch (error) {
      rejectInput(sink, client, ErrorCode.BAD_FRAME,
        `frame could not be decoded: ${(error as Error).message}`, { roomId: this.roomId, source: "frame" });
    } finally {
      client[dispatchingKey] = false;
    }
  } }).guardedOnMessage;

  for (const target of transportClientClasses()) {
    const originalRaw = target.prototype.raw;
    target.prototype.raw = function countedRaw(this: unknown, data: Uint8Array, ...rest: unknown[]) {
      const { metrics } = installed!.options;
      metrics.traffic.messagesOut++;
      metrics.traffic.bytesOut += data.byteLength;
      return originalRaw.call(this, data, ...rest);
    };
    (target.prototype.raw as any).original = originalRaw;
  }
}

export function uninstallInputGuard() {
  if (!installed) return;
  (Room.prototype as any)._onMessage = installed.original;
  for (const target of transportClientClasses()) {
    const original = (target.prototype.raw as any).original;
    if (original) target.prototype.raw = original;
  }
  installed = undefined;
}
