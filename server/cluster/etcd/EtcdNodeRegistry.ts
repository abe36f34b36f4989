/**
 * The node registry in etcd: `<prefix>/nodes/<nodeId>` holds a node's NodeInfo on the
 * node's lease (EtcdSession). A heartbeat is a lease keep-alive and a put of the info;
 * a node that stops heartbeating loses its lease within its TTL, and with it this entry
 * and every room and device claim it holds. remove() revokes the lease (a clean
 * shutdown): all of them vanish at once.
 *
 * A lease's TTL is fixed when etcd grants it: the first heartbeat's `ttlMs` (rounded up
 * to whole seconds), or a later one's from the next grant on.
 */
import { EtcdLeaseInvalidError } from "etcd3";
import type { NodeRegistry } from "../NodeRegistry.ts";
import type { NodeInfo } from "../types.ts";
import type { EtcdSession } from "./EtcdSession.ts";
import type { CallBound } from "./NodeLease.ts";
import { EtcdKeys, decodeNode, encode, prefixEnd } from "./keys.ts";

export class EtcdNodeRegistry implements NodeRegistry {
  private readonly keys: EtcdKeys;

  constructor(private readonly session: EtcdSession) {
    this.keys = new EtcdKeys(session.prefix);
  }

  async heartbeat(info: NodeInfo, ttlMs: number) {
    const options = this.session.callOptions();
    const lease = this.session.lease(info.nodeId, ttlMs);
    // A lease granted later (after a loss, or by a claim) carries this node's latest entry from the start.
    lease.onGrant = (leaseId, grantOptions) => this.put(info, leaseId, grantOptions);
    const leaseId = await lease.keepAlive(options);
    try {
      await this.put(info, leaseId, options);
    } catch (error) {
      if (!(error instanceof EtcdLeaseInvalidError)) throw error;
      // Gone between the keep-alive and the put: once more on a fresh lease.
      lease.invalid(leaseId);
      await this.put(info, await lease.ensure(options), options);
    }
  }

  async remove(nodeId: string) {
    const options = this.session.callOptions();
    // Our own node: revoking its lease removes its entry, rooms and device claims together.
    if (await this.session.revoke(nodeId, options)) return;
    await this.session.client.kv.deleteRange({ key: this.keys.node(nodeId) }, options);
  }

  async list(regionId?: string) {
    const { kvs } = await this.session.client.kv.range({ key: Buffer.from(this.keys.nodes), range_end: prefixEnd(this.keys.nodes) }, this.session.callOptions());
    const nodes = kvs.map(decodeNode);
    return regionId ? nodes.filter((n) => n.regionId === regionId) : nodes;
  }

  async get(nodeId: string) {
    const { kvs } = await this.session.client.kv.range({ key: this.keys.node(nodeId) }, this.session.callOptions());
    return kvs[0] ? decodeNode(kvs[0]) : undefined;
  }

  /** The session is closed by its owner (backends), which revokes what is left. */
  async close() {}

  private async put(info: NodeInfo, leaseId: string, options: CallBound) {
    await this.session.client.kv.put({ key: this.keys.node(info.nodeId), value: encode(info, `node ${info.nodeId}'s entry`), lease: leaseId }, options);
  }
}
