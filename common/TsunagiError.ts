/**
 * The one error class applications, the SDK and the edge adapter handle: an ErrorCode
 * (proto/index.ts, shared with the server) and a `retryable` flag that tells "retry"
 * from "give up".
 *
 * @example
 *   try { await client.joinOrCreate("expo"); }
 *   catch (error) {
 *     if (error instanceof TsunagiError && error.retryable) setTimeout(retry, backoff);
 *     else showFatal(error.codeName, error.message);
 *   }
 */
import { errorCodeName, isRetryable } from "../proto/index.ts";

export class TsunagiError extends Error {
  /** An ErrorCode value. Kept as a number so codes from a newer server survive. */
  readonly code: number;
  /** Whether the same operation may succeed later (see isRetryable in proto/index.ts). */
  readonly retryable: boolean;

  constructor(code: number, message: string, options: { retryable?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "TsunagiError";
    this.code = code;
    this.retryable = options.retryable ?? isRetryable(code);
  }

  /** "REGION_UNAVAILABLE" for 4505; the number as text for a code this build does not know. */
  get codeName(): string {
    return errorCodeName(this.code);
  }
}
