/**
 * How the fuzzer judges one case. Every refusal must carry a code from the contract that
 * says what was wrong: codes that only say "something failed" (INTERNAL, and Colyseus'
 * catch-alls MATCHMAKE_UNHANDLED and APPLICATION_ERROR) count as uncoded, like a missing
 * code, an HTTP 5xx or a socket closed without a reason.
 */
import { ErrorCode, isKnownErrorCode } from "../../proto/index.ts";

export type Verdict =
  | { kind: "ok" }
  /** Nothing was judged: the input never reached the server (no seat, or the client library could not encode it). */
  | { kind: "skipped" }
  | { kind: "uncoded"; detail: string }
  | { kind: "hang"; detail: string };

export const OK: Verdict = Object.freeze({ kind: "ok" });
export const SKIPPED: Verdict = Object.freeze({ kind: "skipped" });

/** How long any answer may take before the case counts as a hang, ms (generous: the machine is shared). */
export const ANSWER_TIMEOUT_MS = 5000;

const CATCH_ALL_CODES = new Set<number>([ErrorCode.ERROR_CODE_UNSPECIFIED, ErrorCode.INTERNAL, ErrorCode.MATCHMAKE_UNHANDLED, ErrorCode.APPLICATION_ERROR]);

/** Whether `code` names what was wrong. */
export function isSpecificCode(code: unknown): boolean {
  return isKnownErrorCode(code) && !CATCH_ALL_CODES.has(code);
}

/** WebSocket close codes that explain themselves: normal closes, and the contract's 4xxx codes. */
export function isCodedClose(code: number): boolean {
  return code === 1000 || code === 1001 || code === 1008 || code === 1009 || (code >= 4000 && code <= 4999);
}

/** The first problem wins; `ok` only if there was none. */
export function verdictOf(problems: readonly string[], hang?: string): Verdict {
  if (hang) return { kind: "hang", detail: hang };
  return problems.length ? { kind: "uncoded", detail: problems[0] } : OK;
}

/** Rejects with a hang description if `promise` does not settle within `ms`. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new HangError(`no answer within ${ms} ms: ${what}`)), ms);
    promise.then((value) => { clearTimeout(timer); resolve(value); }, (error) => { clearTimeout(timer); reject(error); });
  });
}

export class HangError extends Error {}
