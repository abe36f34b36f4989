/**
 * Direct heartbeats between nodes, beside the registry's: twice per cluster.heartbeatMs
 * (probeIntervalMs) this node asks each peer the registry last listed for `GET /healthz` (over cluster.peerRoutes
 * when set), and keeps when the peer last answered as itself (its node id in the answer;
 * a draining 503 counts) and when a probe of it last failed.
 *
 * Why: the registry's silence rule (EtcdNodeRegistry) sees a node stop only through
 * etcd, and etcd says nothing while it elects a leader. When the region lost held the
 * leader, every node's entry stops changing at once, dead or alive, and the rule must
 * start its clocks again after the election, which put detection near 2 s. A peer that
 * also failed every direct probe over the silence bound is known to be down, not waiting
 * for the election: the registry keeps its clock across the gap (PeerWitness) and drops
 * it at its first look after the election.
 *
 * What it is not: it is evidence, never a decision. Nothing is claimed on it; the
 * registry still removes an entry only when the entry itself has not changed for the
 * bound, so a node's ownership (confirmed by its own puts) has lapsed first. A peer cut
 * off from this node alone but heartbeating to etcd changes its entry, and keeps it.
 *
 * silentFor() counts only failed probes: from the last answer, or from one interval
 * before the first failure when that is later, to the last failure. A stall of this
 * process (no probes sent) makes no peer silent; failures after it count from then.
 *
 * @example
 *   const probe = new PeerProbe(rpc, "tokyo-1", probeIntervalMs(250, 900), 900, (nodeId, ms) => log.warn(...));
 *   registry.watchPeers?.(probe);   // the registry tells it whom to probe, asks it across gaps
 *   const stop = probe.start();
 */
import { performance } from "node:perf_hooks";
import type { NodeRpc } from "./NodeRpc.ts";
import type { NodeInfo } from "./types.ts";

/** What the registry's silence rule asks across a gap in its watching, and tells of every list. */
export interface PeerWitness {
  /** The nodes the registry listed just now: the peers to probe. */
  know(nodes: readonly NodeInfo[]): void;
  /** For how long, in ms, every probe of `nodeId` failed (0: it answered last, or no probe failed). */
  silentFor(nodeId: string): number;
}

interface Peer {
  info: NodeInfo;
  /** performance.now() when the probe it last answered was sent (or when it was first listed). */
  heardAt: number;
  /** performance.now() when the first and the last failed probe since that answer were sent (undefined: none failed). */
  failingSince?: number;
  failedAt?: number;
  /** Date.now() when its silence first reached the bound (reported once per silence). */
  lostAt?: number;
  probing: boolean;
}

/**
 * The probe interval: at most half the heartbeat interval, and dividing the bound evenly,
 * so a peer that died just after answering is reported one bound after that answer (plus
 * a probe's latency), not up to an interval later. 900 ms and 250 ms: 112.5 ms.
 */
export function probeIntervalMs(heartbeatMs: number, boundMs: number): number {
  return boundMs / Math.ceil((2 * boundMs) / heartbeatMs);
}

/** How long a peer's loss is remembered after the registry stopped listing it (Failover reads it then). */
const LOSS_KEPT_MS = 60_000;

export class PeerProbe implements PeerWitness {
  private readonly peers = new Map<string, Peer>();
  /** Date.now() when each peer was reported lost, kept a while after it left the list. */
  private readonly losses = new Map<string, number>();

  constructor(
    private readonly rpc: NodeRpc,
    private readonly selfId: string,
    private readonly intervalMs: number,
    /** The silence after which a peer is reported lost (cluster.nodeTtlMs). */
    private readonly boundMs: number,
    private readonly onLost: (nodeId: string, silentMs: number) => void = () => {},
  ) {}

  know(nodes: readonly NodeInfo[]) {
    const listed = new Set<string>();
    for (const info of nodes) {
      if (info.nodeId === this.selfId) continue;
      listed.add(info.nodeId);
      const peer = this.peers.get(info.nodeId);
      if (peer) peer.info = info;
      else this.peers.set(info.nodeId, { info, heardAt: performance.now(), probing: false });
    }
    for (const nodeId of this.peers.keys()) if (!listed.has(nodeId)) this.peers.delete(nodeId);
    const forgotten = Date.now() - LOSS_KEPT_MS;
    for (const [nodeId, at] of this.losses) if (at < forgotten || (listed.has(nodeId) && this.peers.get(nodeId)?.lostAt === undefined)) this.losses.delete(nodeId);
  }

  silentFor(nodeId: string): number {
    const peer = this.peers.get(nodeId);
    return peer ? this.silence(peer) : 0;
  }

  private silence(peer: Peer): number {
    if (peer.failedAt === undefined || peer.failingSince === undefined) return 0;
    // From the last answer, or from one interval before the first failure when that is later (a stall here sent nothing between);
    // in whole intervals, as the probes go (a timer's few ms early or late do not cost an interval).
    const ms = peer.failedAt - Math.max(peer.heardAt, peer.failingSince - this.intervalMs);
    return Math.max(0, Math.round(ms / this.intervalMs) * this.intervalMs);
  }

  /** Date.now() when `nodeId`'s silence reached the bound (while it lasts, and a while after the registry dropped it); undefined otherwise. */
  lostAt(nodeId: string): number | undefined {
    return this.losses.get(nodeId);
  }

  /** Probes every peer each interval (one probe in flight per peer); returns the stop. */
  start(): () => void {
    const timer = setInterval(() => { for (const peer of this.peers.values()) void this.probe(peer); }, this.intervalMs);
    timer.unref?.();
    return () => clearInterval(timer);
  }

  private async probe(peer: Peer) {
    if (peer.probing) return;
    peer.probing = true;
    // Every time is the probe's send time, so answers and failures fall on one grid (the probes' latencies apart would not).
    const sentAt = performance.now();
    try {
      if (await this.rpc.answersAs(peer.info, "/healthz", this.boundMs / 2)) {
        peer.heardAt = sentAt;
        peer.failingSince = peer.failedAt = undefined;
        peer.lostAt = undefined;
        this.losses.delete(peer.info.nodeId);
        return;
      }
      peer.failedAt = sentAt;
      peer.failingSince ??= peer.failedAt;
      const silentMs = Math.round(this.silence(peer));
      if (peer.lostAt === undefined && silentMs >= this.boundMs && this.peers.get(peer.info.nodeId) === peer) {
        peer.lostAt = Date.now();
        this.losses.set(peer.info.nodeId, peer.lostAt);
        this.onLost(peer.info.nodeId, silentMs);
      }
    } finally {
      peer.probing = false;
    }
  }
}
