/**
 * The node registry in etcd: `<prefix>/nodes/<nodeId>` holds a node's NodeInfo on the
 * node's lease (EtcdSession). A heartbeat is a lease keep-alive and a put of the info;
 * a node that stops heartbeating loses its lease within its TTL, and with it this entry
 * and every room and device claim it holds. remove() revokes the lease (a clean
 * shutdown): all of them vanish at once.
 *
 * A lease's TTL is fixed when etcd grants it: the first heartbeat's `ttlMs` (rounded up
 * to whole seconds), or a later one's from the next grant on.
 *
 * The silence rule. etcd counts a lease's TTL in whole seconds, checks for expired
 * leases every half second, and renews every lease in full when a new leader takes over:
 * a node lost with the etcd leader's region keeps its lease for 2–3 s. So a node is
 * not waited for that long. With `silenceMs` set, list() follows each entry's revision
 * (every heartbeat writes it): an entry that has not changed for `silenceMs` of this
 * process' continuous watching is a dead node's. list() leaves it out and removes it, by
 * a compare on that revision, so its rooms and devices can be claimed at once (their
 * claims are taken over from a node without an entry). Watching is continuous while
 * list() succeeds at least every `silenceMs / 2`; after a longer gap (an etcd election,
 * a stall here) every entry's clock starts again, so a survivor whose heartbeats waited
 * for the election is not mistaken for a dead node; except an entry whose node's direct
 * probes are failing when the watching resumes (PeerProbe, given by watchPeers): it
 * keeps its clock, held to the probes, and goes once they too have failed for
 * `silenceMs` (usually at the first look after the election), unless it answers a probe
 * or its entry changes first, either of which starts its clock again.
 *
 * Why it is safe: a node's heartbeat puts its entry by a compare on the revision of its
 * last put, and counts its ownership confirmed until that put's *send* time plus the TTL,
 * less a margin (NodeLease.confirmEntry). A peer first sees a revision after it was
 * written, so it removes the entry no earlier than the TTL after that send. A node whose
 * entry was removed finds it gone at its next put: it counts its lease lost, and takes
 * no input until its claims are checked again (the directory's reassert()), where rooms
 * another node took are reported lost.
 */
import { performance } from "node:perf_hooks";
import { EtcdLeaseInvalidError } from "etcd3";
import type { NodeRegistry } from "../NodeRegistry.ts";
import type { PeerWitness } from "../PeerProbe.ts";
import type { NodeInfo } from "../types.ts";
import type { EtcdSession } from "./EtcdSession.ts";
import type { CallBound, NodeLease } from "./NodeLease.ts";
import { EtcdKeys, decodeNode, encode, prefixEnd } from "./keys.ts";
import { modIs, put, read, remove, txn } from "./txn.ts";

/** What a node's heartbeat knows of its own entry: the lease and revision of its last put. */
interface OwnEntry { leaseId: string; revision: string }

export class EtcdNodeRegistry implements NodeRegistry {
  private readonly keys: EtcdKeys;
  /** The entries this process puts, by node id. */
  private readonly own = new Map<string, OwnEntry>();
  /** Every entry seen by list(): its revision and since when (performance.now()) it has not changed. */
  private readonly seen = new Map<string, { revision: string; since: number; heldToProbes?: boolean }>();
  /** When list() last read the entries (performance.now()). */
  private lastWatched = -Infinity;
  /** Direct evidence of peers' silence, asked across a gap in the watching. */
  private witness?: PeerWitness;

  /** `silenceMs`: the silence rule's bound (the nodes' TTL); undefined: a node is dead only once its lease is. */
  constructor(private readonly session: EtcdSession, private readonly silenceMs?: number) {
    this.keys = new EtcdKeys(session.prefix);
  }

  async heartbeat(info: NodeInfo, ttlMs: number) {
    const options = this.session.callOptions();
    const lease = this.session.lease(info.nodeId, ttlMs);
    // A lease granted later (after a loss, or by a claim) carries this node's latest entry from the start.
    lease.onGrant = (leaseId, grantOptions) => this.putFresh(lease, info, leaseId, ttlMs, grantOptions);
    const leaseId = await lease.keepAlive(options);
    const mine = this.own.get(info.nodeId);
    if (mine?.leaseId !== leaseId) {
      await this.putOnLease(lease, info, leaseId, ttlMs, options);
      return;
    }
    const key = this.keys.node(info.nodeId);
    const sentAt = performance.now();
    let outcome;
    try {
      outcome = await txn(this.session, [modIs(key, mine.revision)], [put(key, encode(info, `node ${info.nodeId}'s entry`), leaseId)], [read(key)], options);
    } catch (error) {
      if (!(error instanceof EtcdLeaseInvalidError)) throw error;
      lease.invalid(leaseId);
      await this.onFreshLease(lease, info, ttlMs, options);
      return;
    }
    if (outcome.succeeded) {
      mine.revision = outcome.revision;
      lease.confirmEntry(leaseId, sentAt, ttlMs);
      return;
    }
    if (outcome.kv && String(outcome.kv.lease) === leaseId) {
      // Our own put whose answer was lost: follow it, and confirm nothing by it.
      mine.revision = String(outcome.kv.mod_revision);
      return;
    }
    // Removed by a peer (the silence rule), or taken by another process under our id.
    this.own.delete(info.nodeId);
    lease.declaredDead(leaseId);
    await this.onFreshLease(lease, info, ttlMs, options);
  }

  /** After a loss: a fresh lease, with the entry on it (its grant puts it; once more if that put failed). */
  private async onFreshLease(lease: NodeLease, info: NodeInfo, ttlMs: number, options: CallBound) {
    const leaseId = await lease.ensure(options);
    if (this.own.get(info.nodeId)?.leaseId !== leaseId) await this.putOnLease(lease, info, leaseId, ttlMs, options);
  }

  /** Puts the entry on `leaseId` whatever is there (a fresh lease, or one this process has not put the entry on yet). */
  private async putOnLease(lease: NodeLease, info: NodeInfo, leaseId: string, ttlMs: number, options: CallBound) {
    try {
      await this.putFresh(lease, info, leaseId, ttlMs, options);
    } catch (error) {
      if (!(error instanceof EtcdLeaseInvalidError)) throw error;
      // Gone between the keep-alive and the put: once more on a fresh lease.
      lease.invalid(leaseId);
      await this.putFresh(lease, info, await lease.ensure(options), ttlMs, options);
    }
  }

  private async putFresh(lease: NodeLease, info: NodeInfo, leaseId: string, ttlMs: number, options: CallBound) {
    const sentAt = performance.now();
    const { header } = await this.session.client.kv.put({ key: this.keys.node(info.nodeId), value: encode(info, `node ${info.nodeId}'s entry`), lease: leaseId }, options);
    this.own.set(info.nodeId, { leaseId, revision: String(header.revision) });
    lease.confirmEntry(leaseId, sentAt, ttlMs);
  }

  async remove(nodeId: string) {
    const options = this.session.callOptions();
    this.own.delete(nodeId);
    // Our own node: revoking its lease removes its entry, rooms and device claims together.
    if (await this.session.revoke(nodeId, options)) return;
    await this.session.client.kv.deleteRange({ key: this.keys.node(nodeId) }, options);
  }

  async list(regionId?: string) {
    const options = this.session.callOptions();
    const { kvs } = await this.session.client.kv.range({ key: Buffer.from(this.keys.nodes), range_end: prefixEnd(this.keys.nodes) }, options);
    const silent = this.silent(kvs.map((kv) => ({ nodeId: this.keys.idOf(kv.key, this.keys.nodes), revision: String(kv.mod_revision) })));
    const removed = new Set<string>();
    for (const { nodeId, revision, silentMs } of silent) {
      // Only if it is still the entry we watched: a heartbeat that lands meanwhile keeps it.
      const outcome = await txn(this.session, [modIs(this.keys.node(nodeId), revision)], [remove(this.keys.node(nodeId))], [], options);
      if (!outcome.succeeded) continue;
      removed.add(nodeId);
      this.seen.delete(nodeId);
      this.session.events.emit("silent", nodeId, silentMs);
    }
    const nodes = kvs.map(decodeNode).filter((node) => !removed.has(node.nodeId));
    this.witness?.know(nodes);
    return regionId ? nodes.filter((n) => n.regionId === regionId) : nodes;
  }

  watchPeers(witness: PeerWitness) {
    this.witness = witness;
  }

  async get(nodeId: string) {
    const { kvs } = await this.session.client.kv.range({ key: this.keys.node(nodeId) }, this.session.callOptions());
    return kvs[0] ? decodeNode(kvs[0]) : undefined;
  }

  /** The session is closed by its owner (backends), which revokes what is left. */
  async close() {}

  /** Updates what list() has watched with `entries` (read just now); the entries silent for silenceMs, none when the rule is off. */
  private silent(entries: Array<{ nodeId: string; revision: string }>): Array<{ nodeId: string; revision: string; silentMs: number }> {
    if (this.silenceMs === undefined) return [];
    const now = performance.now();
    // A gap in the watching: what happened in it is unknown, so every clock starts again.
    const continuous = now - this.lastWatched <= this.silenceMs / 2;
    this.lastWatched = now;
    const present = new Set<string>();
    const silent: Array<{ nodeId: string; revision: string; silentMs: number }> = [];
    for (const { nodeId, revision } of entries) {
      present.add(nodeId);
      const seen = this.seen.get(nodeId);
      const unchanged = seen?.revision === revision;
      // Across a gap, a clock goes on only on the direct probes' word: held to them while every probe of the node fails.
      const directSilence = this.witness?.silentFor(nodeId) ?? 0;
      if (seen && unchanged && !continuous && directSilence > 0) seen.heldToProbes = true;
      const heard = seen?.heldToProbes === true && directSilence === 0;
      if (!seen || !unchanged || (!continuous && !seen.heldToProbes) || heard) {
        this.seen.set(nodeId, { revision, since: now });
        continue;
      }
      // Our own entries are this process' to keep: never judged here.
      if (this.own.has(nodeId)) continue;
      if (seen.heldToProbes && directSilence < this.silenceMs) continue;
      if (now - seen.since >= this.silenceMs) silent.push({ nodeId, revision, silentMs: Math.round(now - seen.since) });
    }
    for (const nodeId of this.seen.keys()) if (!present.has(nodeId)) this.seen.delete(nodeId);
    return silent;
  }
}
