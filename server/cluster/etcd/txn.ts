/**
 * The few etcd transactions the directory is made of: compares, operations, one-key
 * transactions that read the key back when their compare fails, and writes with a
 * node's lease that get a fresh lease once if etcd no longer knows the one they used.
 */
import { EtcdLeaseInvalidError, type ICompare, type IKeyValue, type IRequestOp } from "etcd3";
import type { EtcdSession } from "./EtcdSession.ts";
import type { CallBound } from "./NodeLease.ts";

/** The key does not exist. */
export function absent(key: Buffer): ICompare {
  return { key, target: "Create", result: "Equal", create_revision: 0 };
}

/** The key was last written at `revision` (and so exists). */
export function modIs(key: Buffer, revision: string): ICompare {
  return { key, target: "Mod", result: "Equal", mod_revision: revision };
}

export function put(key: Buffer, value: Buffer, lease: string): IRequestOp {
  return { request_put: { key, value, lease } };
}

/** A put that keeps whatever lease the key has (etcd's ignore_lease). */
export function putKeepingLease(key: Buffer, value: Buffer): IRequestOp {
  return { request_put: { key, value, ignore_lease: true } };
}

export function remove(key: Buffer): IRequestOp {
  return { request_delete_range: { key } };
}

export function read(key: Buffer): IRequestOp {
  return { request_range: { key } };
}

export interface TxnOutcome {
  succeeded: boolean;
  /** The store's revision after the transaction: a put's mod_revision when it succeeded. */
  revision: string;
  /** The key the branch that ran read, if it read one and it exists. */
  kv?: IKeyValue;
}

/** One transaction; `kv` is what a read in the branch that ran found. */
export async function txn(session: EtcdSession, compare: ICompare[], success: IRequestOp[], failure: IRequestOp[], options: CallBound): Promise<TxnOutcome> {
  const response = await session.client.kv.txn({ compare, success, failure }, options);
  const range = response.responses.find((r) => r.response_range)?.response_range;
  return { succeeded: response.succeeded, revision: String(response.header.revision), kv: range?.kvs[0] };
}

/** The key's current value and revisions, if it exists. */
export async function get(session: EtcdSession, key: Buffer, options: CallBound): Promise<IKeyValue | undefined> {
  const { kvs } = await session.client.kv.range({ key }, options);
  return kvs[0];
}

/** Whether `key` exists (a node's registry entry: the node is alive). */
export async function exists(session: EtcdSession, key: Buffer, options: CallBound): Promise<boolean> {
  const { count } = await session.client.kv.range({ key, count_only: true }, options);
  return Number(count) > 0;
}

/**
 * Runs `write` with `nodeId`'s lease (granted if it has none); when etcd answers that the
 * lease is gone, the lease is counted lost and `write` runs once more with a fresh one.
 */
export async function withLease<T>(session: EtcdSession, nodeId: string, options: CallBound, write: (leaseId: string) => Promise<T>): Promise<T> {
  const lease = session.lease(nodeId);
  const leaseId = await lease.ensure(options);
  try {
    return await write(leaseId);
  } catch (error) {
    if (!(error instanceof EtcdLeaseInvalidError)) throw error;
    lease.invalid(leaseId);
    return write(await lease.ensure(options));
  }
}

/** Bound on the compare-and-set rounds of one operation: each lost round means another writer won in between. */
export const MAX_ROUNDS = 64;

/** Thrown when an operation lost MAX_ROUNDS compare-and-set rounds in a row. */
export class ContentionError extends Error {
  constructor(what: string) {
    super(`${what}: the key kept changing under ${MAX_ROUNDS} compare-and-set rounds`);
    this.name = "ContentionError";
  }
}
