/**
 * The gateway's count of sockets that have not completed their hello: each costs a
 * challenge, a timer and, once its hello arrives, a credential lookup, and a stranger
 * can open them by the thousand without knowing any device secret. So they are capped
 * per remote address and in total; a socket over either cap is refused at once
 * (DeviceGateway: Error RATE_LIMITED, close 4429), before any of that work.
 *
 * @example
 *   const pending = new PendingSockets({ perAddress: 16, total: 512 });
 *   if (pending.admit("203.0.113.7") !== "admitted") refuse();
 *   // welcomed, refused or closed:
 *   pending.release("203.0.113.7");
 */

/** The caps, both positive integers. */
export interface PendingLimits {
  /** Sockets without a completed hello from one remote address. */
  perAddress: number;
  /** Sockets without a completed hello in all. */
  total: number;
}

/** Which cap refused a socket, if any. */
export type PendingVerdict = "admitted" | "address" | "total";

export class PendingSockets {
  /** The caps. */
  readonly limits: PendingLimits;
  /** Pending sockets by remote address; an address leaves the map at 0. */
  private readonly byAddress = new Map<string, number>();
  /** Pending sockets in all. */
  private count = 0;
  /** When a refusal was last logged, ms. */
  private refusalLoggedAt = -Infinity;

  constructor(limits: PendingLimits) {
    for (const [name, value] of Object.entries(limits)) {
      if (!Number.isInteger(value) || value < 1) throw new TypeError(`PendingSockets ${name} must be a positive integer, got ${String(value)}`);
    }
    this.limits = limits;
  }

  /** Sockets pending now. */
  get size(): number {
    return this.count;
  }

  /** Counts one more pending socket from `address`, or says which cap refuses it (then nothing is counted). */
  admit(address: string): PendingVerdict {
    if (this.count >= this.limits.total) return "total";
    const fromAddress = this.byAddress.get(address) ?? 0;
    if (fromAddress >= this.limits.perAddress) return "address";
    this.byAddress.set(address, fromAddress + 1);
    this.count++;
    return "admitted";
  }

  /**
   * admit(), answering either the socket's release (idempotent: call it when the socket
   * completes its hello or closes) or the refusal's words for the adapter and the log;
   * `shouldLog` is true at most once a second of `nowMs`, so a flood of refusals costs
   * one log line a second.
   */
  admitOrRefuse(address: string, nowMs: number): { release: () => void } | { message: string; shouldLog: boolean } {
    const verdict = this.admit(address);
    if (verdict === "admitted") {
      let released = false;
      return { release: () => { if (!released) { released = true; this.release(address); } } };
    }
    const message = verdict === "address"
      ? `more than ${this.limits.perAddress} connections from ${address} have not completed their hello; try again later`
      : `more than ${this.limits.total} connections have not completed their hello; try again later`;
    const shouldLog = nowMs - this.refusalLoggedAt >= 1000;
    if (shouldLog) this.refusalLoggedAt = nowMs;
    return { message, shouldLog };
  }

  /** An admitted socket completed its hello or closed: it is pending no more. Call once per admit. */
  release(address: string): void {
    const fromAddress = this.byAddress.get(address);
    if (fromAddress === undefined) return;
    if (fromAddress <= 1) this.byAddress.delete(address);
    else this.byAddress.set(address, fromAddress - 1);
    this.count--;
  }
}
