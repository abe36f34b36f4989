/**
 * How every HTTP route of the node answers: JSON and text bodies that are never cached,
 * and refusals as `{code, error}` with an HTTP status a stock SDK understands and the
 * code leading the message ("[4404 UNKNOWN_ROOM] …"), since stock SDKs keep only the
 * status and the message.
 *
 * @example
 *   return jsonResponse(200, { hallId });
 *   return codedErrorResponse(ErrorCode.FORBIDDEN, "hosts only");
 */
import { ErrorCode, errorCodeName } from "../../proto/index.ts";

/** HTTP status for a coded error: stock SDKs surface the status, ours read `code` too. */
export function httpStatusFor(code: number): number {
  switch (code) {
    case ErrorCode.TOKEN_MISSING: case ErrorCode.TOKEN_INVALID: case ErrorCode.TOKEN_EXPIRED: case ErrorCode.AUTH_FAILED:
      return 401;
    case ErrorCode.FORBIDDEN: return 403;
    case ErrorCode.UNKNOWN_ROOM: case ErrorCode.MATCHMAKE_NO_HANDLER: case ErrorCode.MATCHMAKE_INVALID_ROOM_ID:
    case ErrorCode.MATCHMAKE_INVALID_CRITERIA:
      return 404;
    case ErrorCode.ROOM_CONFLICT: case ErrorCode.ROOM_FULL:
    case ErrorCode.ROOM_MOVED: case ErrorCode.HANDOFF_IN_PROGRESS: case ErrorCode.NOT_ROOM_OWNER:
      return 409;
    case ErrorCode.HANDOFF_FAILED: return 502;
    case ErrorCode.MATCHMAKE_EXPIRED: return 410;
    case ErrorCode.RATE_LIMITED: return 429;
    case ErrorCode.NODE_DRAINING: case ErrorCode.OVERLOADED: case ErrorCode.REGION_UNAVAILABLE: return 503;
    case ErrorCode.FRAME_TOO_LARGE: return 413;
    case ErrorCode.REQUEST_TIMEOUT: return 408;
    case ErrorCode.BAD_FRAME: case ErrorCode.WRONG_TYPE: case ErrorCode.MALFORMED_PROTOBUF: case ErrorCode.LAYOUT_INVALID:
      return 400;
    default: return 500;
  }
}

export function textResponse(status: number, body: string, contentType = "text/plain; charset=utf-8", headers: Record<string, string> = {}): Response {
  return new Response(body, { status, headers: { "content-type": contentType, "cache-control": "no-store", ...headers } });
}

export function jsonResponse(status: number, body: unknown): Response {
  return textResponse(status, JSON.stringify(body), "application/json");
}

/** A refusal: `{code, error: "[code NAME] message", ...extra}` with the code's HTTP status. */
export function codedErrorResponse(code: number, message: string, extra: Record<string, unknown> = {}): Response {
  return textResponse(httpStatusFor(code), codedErrorJson(code, message, extra), "application/json");
}

/**
 * Runs a JSON route's work: its result answered 200, or what it threw answered as a coded
 * refusal (an error without a code is INTERNAL). `refused` is told each refusal (to count
 * it, and log an INTERNAL one); `extra` adds fields of the error to the answer.
 */
export async function answerJson(
  run: () => Promise<unknown>,
  refused: (code: number, error: unknown) => void,
  extra: (error: unknown) => Record<string, unknown> = () => ({}),
): Promise<Response> {
  try {
    return jsonResponse(200, await run());
  } catch (error) {
    const code = typeof (error as { code?: unknown }).code === "number" ? (error as { code: number }).code : ErrorCode.INTERNAL;
    refused(code, error);
    return codedErrorResponse(code, (error as Error).message, extra(error));
  }
}

/** The JSON text of a refusal, for the edge that writes it without a Response. */
export function codedErrorJson(code: number, message: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ code, error: `[${code} ${errorCodeName(code)}] ${message}`, ...extra });
}

/** The token of an `Authorization: Bearer …` header, or undefined. */
export function bearerToken(authorization: string | null | undefined): string | undefined {
  return authorization?.match(/^Bearer\s+(.+)$/i)?.[1];
}
