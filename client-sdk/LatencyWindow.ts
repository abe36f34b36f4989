/**
 * What the acks of the last commands say about latency: the send time of each command
 * until its ack arrives, and the last `size` acks, summarised as nearest-rank percentiles.
 *
 * Both stores are bounded. Past `maxUnacked` commands still waiting for their acks, the
 * oldest send time is forgotten (its ack, should it come, carries no round trip): acks
 * that never come must not grow the map. Past `size` acks, the oldest leaves the window.
 *
 * @example
 *   const window = new LatencyWindow({ size: 500 });
 *   window.commandSent("lease-1", 1, monotonicNow());
 *   const { rttMs } = window.ackReceived(ack, monotonicNow());
 *   window.stats();                       // { samples: 1, ackRttP50Ms: 12.5, ... }
 */
import { tsunagi } from "../proto/index.ts";

type CommandAck = tsunagi.v1.CommandAck;

const AckStatus = tsunagi.v1.CommandAck.Status;
const AckOrigin = tsunagi.v1.CommandAck.Origin;

/** Commands whose send time is kept for matching their acks, by default; older ones are forgotten. */
export const MAX_UNACKED = 1024;

/** What the acks of the last `latencyWindow` commands say. Percentiles are undefined without samples. */
export interface LatencyStats {
  /** Acks in the window. */
  samples: number;
  /** Operator-measured round trip, command sent → its ack arrived (local clock), ms. */
  ackRttP50Ms?: number;
  ackRttP99Ms?: number;
  /** Room → adapter → room round trip the room measured (CommandAck.device_round_trip_ms), median, ms. */
  deviceRoundTripP50Ms?: number;
  /** Operator → device latency the adapter measured across synced clocks (CommandAck.one_way_latency_ms), ms. */
  oneWayP50Ms?: number;
  oneWayP99Ms?: number;
  /** Status name of the newest ack ("APPLIED", "EXPIRED", ...). */
  lastAckStatus?: string;
  /** Acks in the window by status name. */
  acksByStatus: Record<string, number>;
}

/** Extra facts about an ack, measured here. */
export interface AckInfo {
  /** Command sent → ack arrived, on the local clock, ms; undefined for an ack of a command this instance did not send. */
  rttMs?: number;
}

export interface LatencyWindowOptions {
  /** Acks kept for stats(): a positive integer. */
  size: number;
  /** Send times kept for unacked commands. Default MAX_UNACKED. */
  maxUnacked?: number;
}

/** One ack, as stats() reads it. */
interface AckRecord {
  status: string;
  rttMs?: number;
  deviceRoundTripMs?: number;
  oneWayMs?: number;
}

/** Nearest-rank percentile of ascending `sorted`; undefined when empty. */
function percentile(sorted: readonly number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

export class LatencyWindow {
  /** How many acks stats() looks at. */
  private readonly size: number;
  /** How many send times wait for their acks at most. */
  private readonly maxUnacked: number;
  /** Send times of unacked commands by "leaseId/seq", oldest first. */
  private readonly sentAt = new Map<string, number>();
  /** The last `size` acks, oldest first. */
  private readonly acks: AckRecord[] = [];

  constructor(options: LatencyWindowOptions) {
    this.size = options.size;
    this.maxUnacked = options.maxUnacked ?? MAX_UNACKED;
  }

  /** A command went out at `atMs` (client clock): remembered until its ack. */
  commandSent(leaseId: string, seq: number, atMs: number): void {
    this.sentAt.set(`${leaseId}/${seq}`, atMs);
    if (this.sentAt.size > this.maxUnacked) this.sentAt.delete(this.sentAt.keys().next().value!);
  }

  /** An ack arrived at `atMs` (client clock): enters the window; answers its round trip when its command was ours. */
  ackReceived(ack: CommandAck, atMs: number): AckInfo {
    const key = `${ack.leaseId}/${ack.seq}`;
    const sentAt = this.sentAt.get(key);
    if (sentAt !== undefined) this.sentAt.delete(key);
    const rttMs = sentAt === undefined ? undefined : atMs - sentAt;
    // The room's own refusals carry no device figures; an adapter's ack may measure 0 ms one way.
    const fromAdapter = ack.origin === AckOrigin.ADAPTER;
    this.acks.push({
      status: AckStatus[ack.status] ?? String(ack.status),
      rttMs,
      deviceRoundTripMs: ack.deviceRoundTripMs > 0 ? ack.deviceRoundTripMs : undefined,
      oneWayMs: fromAdapter || ack.oneWayLatencyMs !== 0 ? ack.oneWayLatencyMs : undefined,
    });
    if (this.acks.length > this.size) this.acks.shift();
    return { rttMs };
  }

  /** Latency statistics over the acks in the window. */
  stats(): LatencyStats {
    const sorted = (pick: (record: AckRecord) => number | undefined) =>
      this.acks.map(pick).filter((v): v is number => v !== undefined).sort((a, b) => a - b);
    const rtt = sorted((r) => r.rttMs);
    const device = sorted((r) => r.deviceRoundTripMs);
    const oneWay = sorted((r) => r.oneWayMs);
    const acksByStatus: Record<string, number> = {};
    for (const record of this.acks) acksByStatus[record.status] = (acksByStatus[record.status] ?? 0) + 1;
    return {
      samples: this.acks.length,
      ackRttP50Ms: percentile(rtt, 0.5),
      ackRttP99Ms: percentile(rtt, 0.99),
      deviceRoundTripP50Ms: percentile(device, 0.5),
      oneWayP50Ms: percentile(oneWay, 0.5),
      oneWayP99Ms: percentile(oneWay, 0.99),
      lastAckStatus: this.acks.at(-1)?.status,
      acksByStatus,
    };
  }
}
