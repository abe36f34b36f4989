/**
 * Sending coded errors to clients. Every bad input gets the same three things: a coded
 * error to the sender, a log line and a metric, and nothing else is disturbed.
 */
import type { Client } from "@colyseus/core";
import { ErrorCode } from "../../proto/index.ts";
import type { Logger } from "../../server/observability/logging.ts";
import type { NodeMetrics } from "../../server/observability/metrics.ts";

const codeNames = new Map<number, string>(
  Object.entries(ErrorCode).filter(([, v]) => typeof v === "number").map(([k, v]) => [v as number, k]),
);

/** `TOKEN_EXPIRED` for 4412; the number itself for codes outside the table. */
export function codeName(code: number): string {
  return codeNames.get(code) ?? String(code);
}

export interface ErrorSink {
  logger: Logger;
  metrics: NodeMetrics;
}

/**
 * Reports a coded error to one client: `client.error()` (the SDK's `room.onError(code,
 * message)`), a warn log line with the session and room, and `tsunagi_errors_total`.
 */
export function rejectInput(sink: ErrorSink, client: Client, code: number, message: string, context: { roomId?: string; source: string }) {
  sink.metrics.errors.inc({ code: codeName(code), source: context.source });
  sink.logger.warn({ sessionId: client.sessionId, roomId: context.roomId, code: codeName(code), source: context.source }, message);
  try {
    client.error(code, message);
  } catch {
    // the socket may already be closing; the log line and the metric still stand
  }
}
