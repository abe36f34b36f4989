/**
 * Device claims in etcd: `<prefix>/devices/<deviceId>` names the teleop room a machine
 * answers to, on the lease of that room's node. The rules are the Redis directory's: a
 * device is taken when it is free, held by the same room, held on the claimant's own
 * node (its rooms arbitrate among themselves), or held on a node gone from the registry;
 * otherwise the claim fails with the current owner. Each is one compare-and-set on the
 * key's mod_revision (and, for a dead owner, on its registry entry's absence), tried
 * again when another writer got in between.
 */
import type { DeviceClaimResult, ReassertReport } from "../RoomDirectory.ts";
import type { DeviceOwner } from "../types.ts";
import type { EtcdSession } from "./EtcdSession.ts";
import type { CallBound } from "./NodeLease.ts";
import { EtcdKeys, decodeOwner, encode, prefixEnd } from "./keys.ts";
import { ContentionError, MAX_ROUNDS, absent, exists, get, modIs, put, read, remove, txn, withLease } from "./txn.ts";

export class EtcdDeviceClaims {
  /** The devices claimed through this directory and still held, by device id: what reassert() claims again. */
  private readonly held = new Map<string, DeviceOwner>();

  constructor(private readonly session: EtcdSession, private readonly keys: EtcdKeys) {}

  async claim(deviceId: string, owner: DeviceOwner): Promise<DeviceClaimResult> {
    const options = this.session.callOptions();
    const key = this.keys.device(deviceId);
    const value = encode(owner, `device ${deviceId}'s owner`);
    return withLease(this.session, owner.nodeId, options, async (leaseId) => {
      let outcome = await txn(this.session, [absent(key)], [put(key, value, leaseId)], [read(key)], options);
      for (let round = 0; round < MAX_ROUNDS; round++) {
        if (outcome.succeeded) {
          this.held.set(deviceId, structuredClone(owner));
          return { claimed: true };
        }
        const kv = outcome.kv;
        if (!kv) {
          outcome = await txn(this.session, [absent(key)], [put(key, value, leaseId)], [read(key)], options);
          continue;
        }
        const current = decodeOwner(kv);
        const compare = [modIs(key, kv.mod_revision)];
        if (current.roomId !== owner.roomId && current.nodeId !== owner.nodeId) {
          const ownerKey = this.keys.node(current.nodeId);
          if (await exists(this.session, ownerKey, options)) return { claimed: false, owner: current };
          compare.push(absent(ownerKey)); // its node is gone: taken over, unless it came back meanwhile
        }
        outcome = await txn(this.session, compare, [put(key, value, leaseId)], [read(key)], options);
      }
      throw new ContentionError(`claim of device ${deviceId}`);
    });
  }

  async release(deviceId: string, roomId: string) {
    if (this.held.get(deviceId)?.roomId === roomId) this.held.delete(deviceId);
    const options = this.session.callOptions();
    const key = this.keys.device(deviceId);
    let kv = await get(this.session, key, options);
    for (let round = 0; round < MAX_ROUNDS; round++) {
      if (!kv || decodeOwner(kv).roomId !== roomId) return;
      const outcome = await txn(this.session, [modIs(key, kv.mod_revision)], [remove(key)], [read(key)], options);
      if (outcome.succeeded) return;
      kv = outcome.kv;
    }
    throw new ContentionError(`release of device ${deviceId}`);
  }

  async owner(deviceId: string): Promise<DeviceOwner | undefined> {
    const kv = await get(this.session, this.keys.device(deviceId), this.session.callOptions());
    return kv && decodeOwner(kv);
  }

  /** Claims again every device held here (onto the current lease); fills in the report's device counts. */
  async reassert(report: ReassertReport) {
    for (const [deviceId, owner] of [...this.held]) {
      const claim = await this.claim(deviceId, owner);
      if (claim.claimed) { report.devices++; continue; }
      this.held.delete(deviceId);
      report.lostDevices.push({ deviceId, owner: claim.owner });
    }
  }

  /** Deletes the claims of nodes not in `live` (normally none: their leases took them); resolves with how many. */
  async sweep(live: ReadonlySet<string>, options: CallBound): Promise<number> {
    const { kvs } = await this.session.client.kv.range({ key: Buffer.from(this.keys.devices), range_end: prefixEnd(this.keys.devices) }, options);
    let swept = 0;
    for (const kv of kvs) {
      const { nodeId } = decodeOwner(kv);
      if (live.has(nodeId)) continue;
      const outcome = await txn(this.session, [modIs(kv.key, kv.mod_revision), absent(this.keys.node(nodeId))], [remove(kv.key)], [], options);
      if (outcome.succeeded) swept++;
    }
    return swept;
  }
}
