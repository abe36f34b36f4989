/**
 * Sending coded errors to clients. Every bad input gets the same three things: a coded
 * error to the sender, a log line and a metric, and nothing else is disturbed.
 */
import type { Client } from "@colyseus/core";
import { errorCodeName } from "../../proto/index.ts";
import type { Logger } from "../observability/logging.ts";
import type { NodeMetrics } from "../observability/metrics.ts";
import { trySend } from "../../common/trySend.ts";
import { LogThrottle } from "../../common/LogThrottle.ts";

export interface ErrorSink {
  logger: Logger;
  metrics: NodeMetrics;
}

/** Each client's log throttle, kept on the client object. */
const logThrottleKey = Symbol("tsunagi.refusalLog");

/**
 * Reports a coded error to one client: `client.error()` (the SDK's `room.onError(code,
 * message)`), `tsunagi_errors_total`, and a warn log line with the session and room: at
 * most one a second per client and code (LogThrottle), the next one saying how many were
 * held back, so a client's flood of bad input is not a flood of log lines.
 */
export function rejectInput(sink: ErrorSink, client: Client, code: number, message: string, context: { roomId?: string; source: string }) {
  sink.metrics.errors.inc({ code: errorCodeName(code), source: context.source });
  const throttle: LogThrottle = (client as unknown as Record<symbol, LogThrottle>)[logThrottleKey] ??= new LogThrottle();
  const heldBack = throttle.admit(code);
  if (heldBack !== undefined) {
    const fields = { sessionId: client.sessionId, roomId: context.roomId, code: errorCodeName(code), source: context.source };
    if (heldBack > 0) sink.logger.warn({ ...fields, heldBack }, `${message} (and ${heldBack} more like it from this client, not logged)`);
    else sink.logger.warn(fields, message);
  }
  // the socket may already be closing; the log line and the metric stand anyway
  trySend(() => client.error(code, message));
}
