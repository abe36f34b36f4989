/**
 * Pings to connected adapters that must be answered in time: the gateway's way to tell a
 * live adapter from a stale socket when a second connection claims the same device
 * (DeviceGateway.settleDuplicate). Pending probes live in a Map keyed by correlation
 * id, each with its timer; close() settles them all.
 *
 * @example
 *   const probes = new LivenessProbes(1000, Date.now);
 *   const alive = await probes.ping((envelope) => link.write(envelope));
 *   // in the frame handler: case "pong": probes.answered(correlationId);
 */
import type { IEnvelope } from "../../proto/index.ts";

/** What settleDuplicate needs of a device's link. */
export interface ProbedLink {
  readonly online: boolean;
  write(envelope: IEnvelope): boolean;
}

export class LivenessProbes {
  /** How long an adapter has to answer, ms. */
  private readonly timeoutMs: number;
  /** Server clock, for the Ping's time. */
  private readonly now: () => number;
  /** Settles each pending probe, by correlation id. */
  private readonly pending = new Map<number, (alive: boolean) => void>();
  /** Correlation ids count down from the top, so they never meet a link's own, which count up. */
  private nextId = Number.MAX_SAFE_INTEGER;

  constructor(timeoutMs: number, now: () => number) {
    this.timeoutMs = timeoutMs;
    this.now = now;
  }

  /** Sends a Ping through `write`; resolves true if its Pong comes back within the timeout, false otherwise (or if it could not be sent). */
  ping(write: (envelope: IEnvelope) => boolean): Promise<boolean> {
    const correlationId = this.nextId--;
    return new Promise<boolean>((resolve) => {
      const settle = (alive: boolean) => { clearTimeout(timer); this.pending.delete(correlationId); resolve(alive); };
      const timer = setTimeout(() => settle(false), this.timeoutMs);
      this.pending.set(correlationId, settle);
      if (!write({ correlationId, ping: { clientTimeMs: this.now() } })) settle(false);
    });
  }

  /**
   * A device proved itself while a link of it may be connected (`current()` reads it):
   * "refuse" when that link's adapter answers a ping in time and is still the device's
   * link (two adapters for one device: the one connected keeps it), "replace" when there
   * is none or it stays silent (a stale socket of an adapter that came back).
   */
  async settleDuplicate(current: () => ProbedLink | undefined): Promise<"replace" | "refuse"> {
    const previous = current();
    if (!previous?.online) return "replace";
    const answered = await this.ping((envelope) => previous.write(envelope));
    return answered && current() === previous && previous.online ? "refuse" : "replace";
  }

  /** A Pong arrived: whether it answered a pending probe (which then resolves true). */
  answered(correlationId: number): boolean {
    const settle = this.pending.get(correlationId);
    settle?.(true);
    return settle !== undefined;
  }

  /** Settles every pending probe as unanswered. */
  close(): void {
    for (const settle of [...this.pending.values()]) settle(false);
  }
}
