/**
 * A session's requests awaiting their replies: each gets a fresh correlation id (uint32,
 * from 1: 0 means "no reply expected", and Colyseus' own request ids are short varints
 * too), a bound in time, and at most `max` wait at once.
 *
 * @example
 *   const request = requests.open(10_000, false);            // throws RATE_LIMITED past max
 *   send({ ...body, correlationId: request.correlationId });  // or request.fail(error)
 *   requests.settle(reply);                                   // "reply", "notice" or "none"
 */
import { ErrorCode, type Envelope } from "../proto/index.ts";
import { TsunagiError } from "./errors.ts";

/** Correlation ids stay in uint32, like Colyseus' own request ids: short varints. */
const MAX_CORRELATION_ID = 0xffff_ffff;

/** A request awaiting its reply. */
interface Pending {
  resolve: (reply: Envelope) => void;
  reject: (error: TsunagiError) => void;
  /** Rejects the request when no reply came in time. */
  timer: ReturnType<typeof setTimeout>;
  /** The reply is also a notice for the session's envelope handlers (RequestOptions.notice). */
  notice: boolean;
}

export interface OpenRequest {
  correlationId: number;
  /** The reply, or the request's failure. */
  reply: Promise<Envelope>;
  /** It could not be sent: it fails with `error`. */
  fail(error: TsunagiError): void;
}

export class PendingRequests {
  private readonly pending = new Map<number, Pending>();
  /** Last correlation id handed out. */
  private lastCorrelationId = 0;

  constructor(private readonly max: number) {}

  /**
   * A new request, rejected REGION_UNAVAILABLE when no reply came within `timeoutMs`.
   * @throws TsunagiError RATE_LIMITED when `max` are already waiting.
   */
  open(timeoutMs: number, notice: boolean): OpenRequest {
    if (this.pending.size >= this.max) throw new TsunagiError(ErrorCode.RATE_LIMITED, `${this.pending.size} requests are already waiting for replies`);
    const correlationId = this.nextCorrelationId();
    let fail!: (error: TsunagiError) => void;
    const reply = new Promise<Envelope>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(correlationId);
        reject(new TsunagiError(ErrorCode.REGION_UNAVAILABLE, `no reply to request ${correlationId} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(correlationId, { resolve, reject, timer, notice });
      fail = (error) => {
        clearTimeout(timer);
        this.pending.delete(correlationId);
        reject(error);
      };
    });
    return { correlationId, reply, fail };
  }

  /**
   * Settles the request `envelope` answers (an Error body rejects it): "reply", or
   * "notice" when its reply is also a notice for the handlers; "none" when no request
   * waits for it (a push, a late reply).
   */
  settle(envelope: Envelope): "reply" | "notice" | "none" {
    const correlationId = envelope.correlationId;
    const waiting = correlationId ? this.pending.get(correlationId) : undefined;
    if (!waiting) return "none";
    this.pending.delete(correlationId);
    clearTimeout(waiting.timer);
    if (envelope.body === "error") {
      const { code, message, retryable } = envelope.error;
      waiting.reject(new TsunagiError(code ?? ErrorCode.INTERNAL, message || "request failed", { retryable: retryable ?? undefined }));
      return "reply";
    }
    waiting.resolve(envelope);
    return waiting.notice ? "notice" : "reply";
  }

  /** The request `correlationId` fails with `error`, if it still waits. */
  fail(correlationId: number, error: TsunagiError): void {
    const waiting = this.pending.get(correlationId);
    if (!waiting) return;
    this.pending.delete(correlationId);
    clearTimeout(waiting.timer);
    waiting.reject(error);
  }

  /** Every request fails with `error` (the session ended). */
  rejectAll(error: TsunagiError): void {
    for (const [, request] of this.pending) {
      clearTimeout(request.timer);
      request.reject(error);
    }
    this.pending.clear();
  }

  private nextCorrelationId(): number {
    do {
      this.lastCorrelationId = this.lastCorrelationId >= MAX_CORRELATION_ID ? 1 : this.lastCorrelationId + 1;
    } while (this.pending.has(this.lastCorrelationId));
    return this.lastCorrelationId;
  }
}
