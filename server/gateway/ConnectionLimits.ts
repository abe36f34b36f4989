/**
 * The limits on each adapter connection at the gateway, and how a connection is told it
 * passed one: its frame rate (past it, a welcomed device's e-stops still pass, within
 * their own budget), frames whose seal does not open (counted; told at most once a
 * second), and every coded error to the adapter (counted, its log line throttled per
 * connection and code). Nothing here closes a connection: one garbled frame must not cut
 * a machine off its operator. Kept apart from DeviceGateway, which owns the listener and
 * the handshake.
 *
 * @example
 *   const limits = new ConnectionLimits({ maxFrameBytes, maxMessagesPerSecond, logger, metrics, now, sendFrame });
 *   if (!limits.withinRate(ws, bytes)) return;
 *   limits.report(ws, ErrorCode.WRONG_TYPE, "…", correlationId);
 */
import { decodeStopEnvelope, ErrorCode, errorEnvelope, errorCodeName } from "../../proto/index.ts";
import { SEAL_REFUSAL_TEXT, type SealRefusal } from "../../proto/deviceAuth.ts";
import { FloodWindow, STOP_FRAMES_PER_SECOND } from "../../common/FloodWindow.ts";
import { LogThrottle } from "../../common/LogThrottle.ts";
import { trySend } from "../../common/trySend.ts";
import type { Logger } from "../observability/logging.ts";
import type { NodeMetrics } from "../observability/metrics.ts";

/** The part of a connection's state (DeviceGateway's, in uWS user data) the limits read and keep. */
export interface LimitedConnection {
  /** The handshake's state; only an "online" (welcomed) device's e-stops pass the rate limit. */
  readonly state: string;
  /** The remote address, for log lines. */
  readonly remote: string;
  /** The device, once welcomed, for log lines. */
  readonly link?: { readonly deviceId: string };
  /** The connection's frames per second, for the rate limit. */
  flood: FloodWindow;
  /** The device's e-stops past the rate limit (STOP_FRAMES_PER_SECOND); made on the first. */
  stopBudget?: FloodWindow;
  /** Bounds the log lines of this connection's refusals, per code; made on the first. */
  logThrottle?: LogThrottle;
  /** When the adapter was last told of a refused frame (told at most once a second). */
  sealReportedAt: number;
}

/** A socket as the limits use it: its connection's state. */
export interface LimitedSocket {
  getUserData(): LimitedConnection;
}

export interface ConnectionLimitsOptions<S extends LimitedSocket> {
  /** Largest frame accepted from a device (an e-stop past the rate is decoded within it). */
  maxFrameBytes: number;
  /** Frames per second per connection before excess is dropped with RATE_LIMITED. */
  maxMessagesPerSecond: number;
  logger: Logger;
  metrics: NodeMetrics;
  now: () => number;
  /** Writes one envelope's bytes to the socket (sealed once the channel is); uWS's send result. */
  sendFrame(ws: S, bytes: Uint8Array): number;
}

export class ConnectionLimits<S extends LimitedSocket> {
  /** Bounds, clock, log, metrics and the gateway's one way to write a frame. */
  private readonly options: ConnectionLimitsOptions<S>;

  constructor(options: ConnectionLimitsOptions<S>) {
    this.options = options;
  }

  /**
   * Whether a frame is within the connection's rate. Past it, a welcomed device's EStop
   * still is (stopping is always allowed), within its own small budget; only a frame that
   * decodes as an EStop counts, not one that merely starts like one.
   */
  withinRate(ws: S, bytes: Uint8Array): boolean {
    const connection = ws.getUserData();
    if (connection.flood.admit()) return true;
    if (connection.state === "online" && decodeStopEnvelope(bytes, this.options.maxFrameBytes)?.body === "estop") {
      connection.stopBudget ??= new FloodWindow(STOP_FRAMES_PER_SECOND, this.options.now);
      if (connection.stopBudget.admit()) return true;
    }
    if (connection.flood.drop() === "tell") {
      this.report(ws, ErrorCode.RATE_LIMITED, `more than ${this.options.maxMessagesPerSecond} frames per second; excess dropped`, 0);
    } else {
      this.options.metrics.errors.inc({ code: errorCodeName(ErrorCode.RATE_LIMITED), source: "gateway" });
    }
    return false;
  }

  /** A coded error to the adapter, counted, and logged at most once a second per connection and code; the connection stays. */
  report(ws: S, code: number, message: string, correlationId: number): void {
    const connection = ws.getUserData();
    this.options.metrics.errors.inc({ code: errorCodeName(code), source: "gateway" });
    const heldBack = this.logThrottle(connection).admit(code);
    if (heldBack !== undefined) {
      const more = heldBack > 0 ? ` (and ${heldBack} more like it from this connection, not logged)` : "";
      this.options.logger.warn({ deviceId: connection.link?.deviceId, remote: connection.remote, code: errorCodeName(code), heldBack }, `device channel: ${message}${more}`);
    }
    trySend(() => this.options.sendFrame(ws, errorEnvelope(code, message, correlationId)));
  }

  /** Whether a line of `kind` from this connection may be logged now (one a second). */
  logAllowed(ws: S, kind: string): boolean {
    return this.logThrottle(ws.getUserData()).admit(kind) !== undefined;
  }

  /**
   * A frame from the adapter that did not open: dropped unread and counted; the log line
   * and the adapter's coded error at most once a second (a forger on the path must not
   * turn its frames into a flood of ours). The connection stays.
   */
  refusedFrame(ws: S, reason: SealRefusal): void {
    const connection = ws.getUserData();
    this.options.metrics.deviceFramesRefused.inc({ reason });
    const now = this.options.now();
    if (now - connection.sealReportedAt < 1000) return;
    connection.sealReportedAt = now;
    this.report(ws, ErrorCode.AUTH_FAILED, `dropped a frame ${SEAL_REFUSAL_TEXT[reason]}: nothing in it was acted upon (more are counted, not reported, for a second)`, 0);
  }

  /** The connection's bound on log lines, per kind (an error code, "estop"...). */
  private logThrottle(connection: LimitedConnection): LogThrottle {
    return connection.logThrottle ??= new LogThrottle(undefined, this.options.now);
  }
}
