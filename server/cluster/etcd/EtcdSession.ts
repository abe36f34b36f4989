/**
 * A node's session with etcd: the client (its endpoints, TLS and fault handling), the
 * bound on every operation, and the leases of the nodes this process speaks for (one in
 * a node; a test's registry may heartbeat several ids).
 *
 * Every operation has one deadline (`callTimeoutMs` from its start), shared by its
 * retries: an etcd without quorum makes calls fail within it, never hang. A call that
 * fails on a member that is down (refused, unavailable, timed out) is retried on another
 * member within that deadline; a member that fails twice in a row is skipped for two
 * seconds (a circuit breaker per endpoint).
 *
 * @example
 *   const session = new EtcdSession({ endpoints, callTimeoutMs: 2000, defaultTtlMs: 3000, prefix: "tsunagi/prod" });
 *   await session.assertReachable();
 *   session.events.on("lost", (nodeId, reason) => logger.error(reason));
 *   const leaseId = await session.lease("node-1").ensure();
 *   await session.close();   // revokes the leases: the nodes' keys vanish at once
 */
import { performance } from "node:perf_hooks";
import { Etcd3, isRecoverableError, type IOptions } from "etcd3";
import { ConsecutiveBreaker, ConstantBackoff, ExponentialBackoff, circuitBreaker, handleWhen, retry } from "cockatiel";
import { SafeEmitter } from "../../../common/SafeEmitter.ts";
import { KeepAlives } from "./KeepAlives.ts";
import { NodeLease, type CallBound, type LeaseHost } from "./NodeLease.ts";

export interface EtcdSessionOptions {
  /** Client URLs of etcd members, all http:// or all https://. */
  endpoints: string[];
  /** TLS material for https endpoints: the CA (default: the system's) and a client certificate. */
  credentials?: { rootCertificate?: Buffer; privateKey?: Buffer; certChain?: Buffer };
  /** Bound on each operation, its retries included, ms. */
  callTimeoutMs: number;
  /** TTL of a lease granted for a node before a heartbeat names one (a claim first), ms. */
  defaultTtlMs: number;
  /** The cluster's key prefix, `tsunagi/<clusterName>`, without a trailing slash. */
  prefix: string;
}

export interface SessionEvents {
  /** A node's lease is no longer confirmed, or etcd dropped it: its claims may be gone. */
  lost: (nodeId: string, reason: string) => void;
  /** A lease was granted; `afterLoss` when it replaces a lost one (claim again what was held). */
  granted: (nodeId: string, afterLoss: boolean) => void;
  /** This process removed `nodeId`'s registry entry: it had not changed for `silentMs` (EtcdNodeRegistry's silence rule). */
  silent: (nodeId: string, silentMs: number) => void;
}

/** The key prefix of a cluster. */
export function clusterPrefix(clusterName: string): string {
  return `tsunagi/${clusterName}`;
}

export class EtcdSession implements LeaseHost {
  readonly client: Etcd3;
  readonly prefix: string;
  readonly keepAlives: KeepAlives;
  readonly events: SafeEmitter<SessionEvents>;
  private readonly leases = new Map<string, NodeLease>();
  private readonly callTimeoutMs: number;
  private readonly defaultTtlMs: number;
  private closing?: Promise<void>;

  constructor(private readonly options: EtcdSessionOptions, onListenerError: (error: unknown, source: string) => void = () => {}) {
    this.callTimeoutMs = options.callTimeoutMs;
    this.defaultTtlMs = options.defaultTtlMs;
    this.prefix = options.prefix;
    this.events = new SafeEmitter<SessionEvents>(onListenerError);
    this.client = new Etcd3(clientOptions(options));
    this.keepAlives = new KeepAlives(this.client.leaseClient);
  }

  get leaseClient() { return this.client.leaseClient; }

  /** The bound of one operation starting now: pass it to every call the operation makes. */
  callOptions(): CallBound {
    return { deadline: Date.now() + this.callTimeoutMs };
  }

  /** The lease of `nodeId` (made on first use; granted by its first ensure() or keepAlive()). */
  lease(nodeId: string, ttlMs?: number): NodeLease {
    let lease = this.leases.get(nodeId);
    if (!lease) this.leases.set(nodeId, (lease = new NodeLease(nodeId, ttlMs ?? this.defaultTtlMs, this)));
    else if (ttlMs !== undefined) lease.setTtl(ttlMs);
    return lease;
  }

  /** The lease of `nodeId`, if this session has one. */
  existingLease(nodeId: string): NodeLease | undefined {
    return this.leases.get(nodeId);
  }

  /** performance.now() until which `nodeId`'s lease is certainly alive (0 when it has none). */
  validUntil(nodeId: string): number {
    return this.leases.get(nodeId)?.validUntil() ?? 0;
  }

  /** ms for which `nodeId`'s ownership is still confirmed (0: not confirmed now). */
  validForMs(nodeId: string): number {
    return Math.max(0, this.validUntil(nodeId) - performance.now());
  }

  /** Revokes `nodeId`'s lease and forgets it; false when this session holds none. */
  async revoke(nodeId: string, options: CallBound = this.callOptions()): Promise<boolean> {
    const lease = this.leases.get(nodeId);
    if (!lease) return false;
    this.leases.delete(nodeId);
    lease.stop();
    await lease.revoke(options);
    return true;
  }

  /** Fails with a clear message unless the cluster answers a linearizable read (it has a quorum) within the call bound. */
  async assertReachable(setting = "etcd.endpoints") {
    try {
      await this.client.kv.range({ key: Buffer.from(`${this.prefix}/`), limit: 1, keys_only: true }, this.callOptions());
    } catch (error) {
      throw new Error(`${setting} ${this.options.endpoints.join(",")}: etcd not reachable, or without quorum, within ${this.callTimeoutMs} ms (${(error as Error).message})`);
    }
  }

  /** Revokes every lease (bounded by one call timeout) and closes the client; safe to call twice. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const options = this.callOptions();
      const leases = [...this.leases.values()];
      this.leases.clear();
      for (const lease of leases) lease.stop();
      await Promise.all(leases.map((lease) => lease.revoke(options).catch(() => { /* expires by itself */ })));
      this.keepAlives.close();
      this.client.close();
    })();
    return this.closing;
  }

  leaseLost(nodeId: string, reason: string) {
    this.events.emit("lost", nodeId, reason);
  }

  leaseGranted(nodeId: string, afterLoss: boolean) {
    this.events.emit("granted", nodeId, afterLoss);
  }
}

type WatchBackoff = NonNullable<NonNullable<IOptions["faultHandling"]>["watchBackoff"]>;

function clientOptions(options: EtcdSessionOptions): IOptions {
  const timeout = options.callTimeoutMs;
  const client: IOptions = {
    hosts: options.endpoints,
    dialTimeout: timeout,
    // A call's own deadline, when an operation did not give one.
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + timeout }),
    faultHandling: {
      // Retried on another member while the operation's deadline allows (a retry past it fails at once).
      global: retry(handleWhen(isRecoverableError), { maxAttempts: Math.max(1, options.endpoints.length), backoff: new ConstantBackoff(50) }),
      host: () => circuitBreaker(handleWhen(isRecoverableError), { halfOpenAfter: 2000, breaker: new ConsecutiveBreaker(2) }),
      // The client calls next() on it as on its own default, a factory like this one (its type says otherwise).
      watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 2000 }) as unknown as WatchBackoff,
    },
    grpcOptions: {
      // Reconnect within a second of a member coming back, not gRPC's two minutes.
      "grpc.initial_reconnect_backoff_ms": 100,
      "grpc.max_reconnect_backoff_ms": 1000,
      // Find a connection that died silently (a partition) while a watch or keep-alive stream is open;
      // etcd refuses pings more often than every 5 s (--grpc-keepalive-min-time).
      "grpc.keepalive_time_ms": 10_000,
      "grpc.keepalive_timeout_ms": Math.max(1000, timeout),
    },
  };
  if (options.credentials) {
    // rootCertificate undefined: gRPC trusts the system's CAs.
    client.credentials = options.credentials as NonNullable<IOptions["credentials"]>;
  }
  return client;
}

/**
 * Whether `error` says etcd is out of reach for now: no member answered (a recoverable
 * etcd error), or the client stopped trying a member for a while (cockatiel's
 * BrokenCircuitError, its circuit breaker open). A caller answers it as retryable.
 */
export function etcdUnreachable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  return (error as { isBrokenCircuitError?: unknown }).isBrokenCircuitError === true || isRecoverableError(error);
}
