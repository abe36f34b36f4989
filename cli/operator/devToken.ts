/**
 * The console's access token when none is given: a dev token from the node's
 * `GET /dev/token` (only a loopback node in dev mode serves one), issued to a subject
 * that says who sits at the console, for the room's audit log.
 *
 * @example
 *   const token = options.token ?? await fetchDevToken("http://127.0.0.1:2567", "operator", 5000);
 *   tokenIdentity(token);   // "operator operator-cli:alice@host"
 */
import os from "node:os";
import { ErrorCode } from "../../proto/index.ts";
import { TsunagiError, fromServerError } from "../../client-sdk/errors.ts";

/** Longest audit subject the node accepts. */
const MAX_SUBJECT_CHARS = 64;

/** A dev token for `role` from the node at `node`; TsunagiError saying why not (TOKEN_MISSING when the node is not in dev mode). */
export async function fetchDevToken(node: string, role: string, timeoutMs: number): Promise<string> {
  const url = `${node}/dev/token?role=${encodeURIComponent(role)}&sub=${encodeURIComponent(consoleSubject())}`;
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    if ((error as Error)?.name === "TimeoutError") throw new TsunagiError(ErrorCode.REGION_UNAVAILABLE, `GET ${node}/dev/token: no answer within ${timeoutMs / 1000} s`);
    const coded = fromServerError(error);
    throw new TsunagiError(coded.code, `GET ${node}/dev/token (for a dev token): ${coded.message}`, { cause: error });
  }
  const body = await response.text();
  if (response.status === 404) {
    throw new TsunagiError(ErrorCode.TOKEN_MISSING, `a token is needed: ${node} does not issue dev tokens (GET /dev/token answered 404; the node is not in dev mode). Pass --token JWT or set TSUNAGI_TOKEN`);
  }
  if (!response.ok) {
    let detail: { code?: unknown; error?: unknown } = {};
    try { detail = JSON.parse(body); } catch { /* not JSON: the status alone says it */ }
    const message = `GET /dev/token answered ${response.status}${typeof detail.error === "string" ? `: ${detail.error}` : ""}`;
    throw fromServerError({ code: typeof detail.code === "number" ? detail.code : response.status, message });
  }
  if (!body) throw new TsunagiError(ErrorCode.TOKEN_MISSING, "GET /dev/token answered with an empty token");
  return body.trim();
}

/** "operator-cli:alice@host": who is at the console. */
function consoleSubject(): string {
  let user = "someone";
  try { user = os.userInfo().username || user; } catch { /* no passwd entry (containers) */ }
  return `operator-cli:${user}@${os.hostname()}`.replace(/[^A-Za-z0-9_.:@-]/g, "_").slice(0, MAX_SUBJECT_CHARS);
}

/** "operator operator-cli:alice@host" from the token's payload, when it reads as a JWT. */
export function tokenIdentity(token: string): string | undefined {
  try {
    const payload = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8")) as { role?: unknown; sub?: unknown };
    if (typeof payload.role !== "string") return undefined;
    return typeof payload.sub === "string" ? `${payload.role} ${payload.sub}` : payload.role;
  } catch {
    return undefined; // not a JWT (an opaque token): the joined line just leaves the identity out
  }
}
