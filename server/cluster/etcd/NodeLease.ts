/**
 * One node's etcd lease: what its registry entry, its rooms and its device claims are
 * attached to, so they vanish together when the node stops keeping it alive (a crash, a
 * SIGKILL, a partition from the quorum) or revokes it (a clean shutdown).
 *
 * Keep-alives are the node's heartbeats (`cluster.heartbeatMs`): the lease lives as long
 * as the node's heartbeat runs, and a node whose event loop stalls past the TTL loses it
 * like a dead one. The TTL is `cluster.nodeTtlMs` rounded up to whole seconds (etcd's
 * unit), at least 1 s, or more where etcd's own minimum is higher (it answers the TTL it
 * granted, which is what counts here).
 *
 * `validUntil()` is the `performance.now()` time until which the lease is certainly alive
 * as far as this process knows: the time it *sent* the last keep-alive etcd confirmed,
 * plus the TTL, less a safety margin (etcd counts the TTL from when it received that
 * keep-alive, later still). Past it, ownership is no longer confirmed: the lease may have
 * expired and another node may hold the rooms. The lease is then counted lost, as it is
 * when etcd answers that it no longer knows it; the next heartbeat or claim that reaches
 * etcd grants a fresh one. Keys still on the old lease (it may have survived after all)
 * are moved onto the new one by the directory's reassert(), or vanish when it expires.
 *
 * Once the node has a registry entry (EtcdNodeRegistry puts it with every heartbeat),
 * its ownership also rests on that entry: `validUntil()` is the earlier of the lease's
 * confirmation and the entry's, the time the last put of the entry that etcd confirmed
 * was sent plus the TTL, less the margin. Peers take a node whose entry has not changed
 * for the TTL as dead (EtcdNodeRegistry's silence rule) without waiting for its lease,
 * which etcd lets outlive its keep-alives across a change of leader.
 */
import { performance } from "node:perf_hooks";
import { EtcdLeaseInvalidError, type LeaseClient } from "etcd3";
import type { KeepAlives } from "./KeepAlives.ts";

/** Per-call options of one etcd operation: its absolute deadline, epoch ms. */
export interface CallBound { deadline: number }

/** What a lease needs of its session. */
export interface LeaseHost {
  readonly leaseClient: LeaseClient;
  readonly keepAlives: KeepAlives;
  callOptions(): CallBound;
  /** The lease stopped being confirmed or etcd dropped it. */
  leaseLost(nodeId: string, reason: string): void;
  /** A lease was granted; `afterLoss` when it replaces one that was lost. */
  leaseGranted(nodeId: string, afterLoss: boolean): void;
}

/** How much earlier than its TTL says a lease is taken as possibly expired, ms. */
export function safetyMarginMs(ttlMs: number): number {
  return Math.min(1000, Math.max(50, Math.round(ttlMs / 10)));
}

/** etcd's TTL for a wish in ms: whole seconds, rounded up, at least one. */
export function leaseTtlSeconds(ttlMs: number): number {
  return Math.max(1, Math.ceil(ttlMs / 1000));
}

export class NodeLease {
  /** The lease keys are attached to now (decimal id), if any. */
  private id?: string;
  /** The TTL etcd granted, ms. */
  private grantedTtlMs = 0;
  /** performance.now() until which the lease is confirmed alive. */
  private confirmedUntil = 0;
  /** Fires at confirmedUntil: the lease is lost unless a keep-alive confirmed it meanwhile. */
  private expiry?: NodeJS.Timeout;
  /** The grant under way, shared by concurrent callers. */
  private granting?: Promise<string>;
  /** performance.now() until which the node's registry entry is confirmed; undefined while it never had one. */
  private entryConfirmedUntil?: number;
  /** A lease was lost since the last grant: the next grant replaces it. */
  private lostSinceGrant = false;
  private stopped = false;
  /**
   * Runs after each grant, before the lease is handed to anyone: the registry puts the
   * node's entry with it, so a node's claims never stand on a lease without its entry.
   */
  onGrant?: (leaseId: string, options: CallBound) => Promise<void>;

  constructor(readonly nodeId: string, private ttlMs: number, private readonly host: LeaseHost) {}

  /** The TTL asked for from the next grant on. */
  setTtl(ttlMs: number) { this.ttlMs = ttlMs; }

  /** The lease id, if one is held. */
  current(): string | undefined { return this.id; }

  /** performance.now() until which the lease is certainly alive; in the past once it is not confirmed (0 before the first grant). */
  validUntil(): number {
    return this.entryConfirmedUntil === undefined ? this.confirmedUntil : Math.min(this.confirmedUntil, this.entryConfirmedUntil);
  }

  /** A put of the node's registry entry on lease `id`, sent at `sentAt` (performance.now()), went through: ownership confirmed for another `ttlMs` from then. */
  confirmEntry(id: string, sentAt: number, ttlMs: number) {
    if (this.id !== id) return;
    const until = sentAt + ttlMs - safetyMarginMs(ttlMs);
    if (this.entryConfirmedUntil === undefined || until > this.entryConfirmedUntil) this.entryConfirmedUntil = until;
  }

  /** The TTL etcd granted, ms (0 before the first grant). */
  ttl(): number { return this.grantedTtlMs; }

  /** The lease to attach keys to: the current one, or a fresh grant. */
  ensure(options: CallBound = this.host.callOptions()): Promise<string> {
    if (this.stopped) return Promise.reject(new Error(`the etcd lease of node ${this.nodeId} is closed`));
    if (this.id) return Promise.resolve(this.id);
    this.granting ??= this.grant(options).finally(() => { this.granting = undefined; });
    return this.granting;
  }

  /**
   * One keep-alive (a heartbeat): confirms the lease for another TTL from now, or finds
   * it gone and grants a fresh one. Resolves with the lease id keys go on; rejects when
   * etcd does not answer by the deadline (the lease then stays confirmed only until
   * validUntil()).
   */
  async keepAlive(options: CallBound = this.host.callOptions()): Promise<string> {
    const id = this.id;
    if (!id) return this.ensure(options);
    const sentAt = performance.now();
    const ttlSeconds = await this.host.keepAlives.send(id, options.deadline);
    if (this.id !== id) return this.ensure(options); // lost or replaced while the keep-alive was out
    if (ttlSeconds <= 0) {
      this.lose(id, "etcd answered that the lease is gone (expired or revoked)");
      return this.ensure(options);
    }
    this.confirm(id, sentAt, ttlSeconds * 1000);
    return id;
  }

  /** A write with lease `id` was refused because etcd no longer knows it. */
  invalid(id: string) {
    this.lose(id, "etcd refused a write: the lease is gone");
  }

  /** The node's registry entry was removed by a peer that heard nothing from it for the TTL: its claims may be taken over; counted lost like the lease. */
  declaredDead(id: string) {
    this.lose(id, "its registry entry was removed: a peer saw it silent for the TTL, so its rooms and devices may have been taken over");
  }

  /** Revokes the lease (its keys vanish at once); no loss is reported. */
  async revoke(options: CallBound = this.host.callOptions()) {
    const id = this.id;
    this.id = undefined;
    this.confirmedUntil = 0;
    clearTimeout(this.expiry);
    if (!id) return;
    try {
      await this.host.leaseClient.leaseRevoke({ ID: id }, options);
    } catch (error) {
      if (!(error instanceof EtcdLeaseInvalidError)) throw error;
    }
  }

  /** Stops the expiry timer; no further grants. */
  stop() {
    this.stopped = true;
    clearTimeout(this.expiry);
  }

  private async grant(options: CallBound): Promise<string> {
    const sentAt = performance.now();
    const granted = await this.host.leaseClient.leaseGrant({ TTL: leaseTtlSeconds(this.ttlMs) }, options);
    if (granted.error) throw new Error(`etcd refused a lease for node ${this.nodeId}: ${granted.error}`);
    const id = granted.ID;
    if (this.stopped) {
      await this.host.leaseClient.leaseRevoke({ ID: id }, options).catch(() => { /* expires by itself */ });
      throw new Error(`the etcd lease of node ${this.nodeId} is closed`);
    }
    this.id = id;
    this.confirm(id, sentAt, Number(granted.TTL) * 1000);
    try {
      await this.onGrant?.(id, options);
    } finally {
      // Told even when the entry's put failed: the lease stands, and the heartbeat puts the entry again.
      const afterLoss = this.lostSinceGrant;
      this.lostSinceGrant = false;
      this.host.leaseGranted(this.nodeId, afterLoss);
    }
    return id;
  }

  private confirm(id: string, sentAt: number, ttlMs: number) {
    this.grantedTtlMs = ttlMs;
    const until = sentAt + ttlMs - safetyMarginMs(ttlMs);
    if (until <= this.confirmedUntil) return;
    this.confirmedUntil = until;
    this.watchExpiry(id);
  }

  /** Counts the lease lost once confirmedUntil passes without a newer confirmation. */
  private watchExpiry(id: string) {
    clearTimeout(this.expiry);
    // A timer may fire a fraction of a millisecond before performance.now() reaches its time: it then waits the rest.
    this.expiry = setTimeout(() => {
      if (this.id !== id) return;
      if (performance.now() >= this.confirmedUntil) this.lose(id, "no keep-alive confirmed the lease within its TTL");
      else this.watchExpiry(id);
    }, Math.max(1, Math.ceil(this.confirmedUntil - performance.now())));
    this.expiry.unref();
  }

  private lose(id: string, reason: string) {
    if (this.id !== id) return;
    this.id = undefined;
    this.lostSinceGrant = true;
    this.confirmedUntil = Math.min(this.confirmedUntil, performance.now());
    if (this.entryConfirmedUntil !== undefined) this.entryConfirmedUntil = Math.min(this.entryConfirmedUntil, performance.now());
    clearTimeout(this.expiry);
    this.host.leaseLost(this.nodeId, reason);
  }
}
