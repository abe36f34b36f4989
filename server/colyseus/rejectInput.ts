/**
 * Sending coded errors to clients. Every bad input gets the same three things: a coded
 * error to the sender, a log line and a metric, and nothing else is disturbed.
 */
import type { Client } from "@colyseus/core";
import { errorCodeName } from "../../proto/index.ts";
import type { Logger } from "../observability/logging.ts";
import type { NodeMetrics } from "../observability/metrics.ts";
import { trySend } from "../../common/trySend.ts";

export interface ErrorSink {
  logger: Logger;
  metrics: NodeMetrics;
}

/**
 * Reports a coded error to one client: `client.error()` (the SDK's `room.onError(code,
 * message)`), a warn log line with the session and room, and `tsunagi_errors_total`.
 */
export function rejectInput(sink: ErrorSink, client: Client, code: number, message: string, context: { roomId?: string; source: string }) {
  sink.metrics.errors.inc({ code: errorCodeName(code), source: context.source });
  sink.logger.warn({ sessionId: client.sessionId, roomId: context.roomId, code: errorCodeName(code), source: context.source }, message);
  // the socket may already be closing; the log line and the metric stand anyway
  trySend(() => client.error(code, message));
}
