/**
 * The room directory in etcd, for a cluster whose quorum is spread over regions. Key
 * layout and the fencing token in keys.ts; device claims in EtcdDeviceClaims.ts; the
 * change stream in watchRooms.ts.
 *
 * - claim: put if absent, on the claimant's node lease; the token is the put's revision.
 *   A room held on the claimant's own node is put again (a new token). A room held on
 *   another node fails with its entry while that node's registry entry exists; one whose
 *   node is gone from the registry is taken over (a compare on that entry's absence).
 * - transfer (a handoff's Switch, run by the target): compare-and-set from `fromToken`,
 *   putting the entry with the *caller's* lease, so the room now lives and dies with it.
 * - update / release: compare-and-set on the current token; a stale owner's writes are
 *   refused. An update keeps the key's lease (etcd's ignore_lease) and writes the token
 *   into the value (keys.ts says why).
 * - A node's rooms vanish with its lease: expiry (a crash) or revocation (shutdown).
 *   sweep() deletes what names a node gone from the registry anyway (normally nothing).
 * - reassert(), after the node's lease was lost and a fresh one granted: each room held
 *   here is put back where it is absent, moved onto the fresh lease where it is still
 *   this node's, or reported lost where another live node holds it; each with a new
 *   token (etcd's revisions only grow), which the node hands to the room. From the loss
 *   until a reassert() has gone through, validUntil() is 0: a fresh lease alone does not
 *   make the node's rooms its own again (the old lease may have expired, and the quorum
 *   given a room to another node meanwhile), so they take no inputs until then.
 *
 * Each compare-and-set round that loses to another writer reads the key again and
 * decides again; every call of one operation shares its deadline (EtcdSession).
 */
import type { ClaimRequest, ClaimResult, DeviceClaimResult, ReassertReport, RoomDirectory } from "../RoomDirectory.ts";
import { TransferError } from "../RoomDirectory.ts";
import type { DeviceOwner, DirectoryChange, DirectoryEntry } from "../types.ts";
import type { EtcdSession } from "./EtcdSession.ts";
import type { CallBound } from "./NodeLease.ts";
import { EtcdDeviceClaims } from "./EtcdDeviceClaims.ts";
import { EtcdKeys, decodeEntry, encode, prefixEnd, tokenOf } from "./keys.ts";
import { ContentionError, MAX_ROUNDS, absent, exists, get, modIs, put, putKeepingLease, read, remove, txn, withLease, type TxnOutcome } from "./txn.ts";
import { watchRooms } from "./watchRooms.ts";

/** A room this directory claimed and holds: the entry as last written, and the key's last known mod_revision. */
interface HeldRoom {
  entry: DirectoryEntry;
  modRevision: string;
}

export class EtcdRoomDirectory implements RoomDirectory {
  private readonly keys: EtcdKeys;
  private readonly devices: EtcdDeviceClaims;
  /** The rooms this directory claimed and holds, by room id: what reassert() claims again. */
  private readonly held = new Map<string, HeldRoom>();
  /** Watches opened by watch(), ended by close(). */
  private readonly watches = new Set<() => Promise<void>>();
  /** Nodes whose lease was lost since reassert() last put their claims back, with the number of that loss. */
  private readonly unasserted = new Map<string, number>();
  /** Losses counted so far: a reassert() clears only the losses it started after. */
  private losses = 0;
  private readonly stopWatchingLosses: () => void;

  constructor(private readonly session: EtcdSession, private readonly callTimeoutMs: number) {
    this.keys = new EtcdKeys(session.prefix);
    this.devices = new EtcdDeviceClaims(session, this.keys);
    this.stopWatchingLosses = session.events.on("lost", (nodeId) => { this.unasserted.set(nodeId, ++this.losses); });
  }

  async claim(request: ClaimRequest): Promise<ClaimResult> {
    const options = this.session.callOptions();
    const key = this.keys.room(request.roomId);
    const value = encode(withoutToken(request), `room ${request.roomId}'s directory entry`);
    return withLease(this.session, request.nodeId, options, async (leaseId) => {
      let outcome = await txn(this.session, [absent(key)], [put(key, value, leaseId)], [read(key)], options);
      for (let round = 0; round < MAX_ROUNDS; round++) {
        if (outcome.succeeded) return { claimed: true, token: this.hold(request, outcome.revision) };
        const kv = outcome.kv;
        if (!kv) {
          outcome = await txn(this.session, [absent(key)], [put(key, value, leaseId)], [read(key)], options);
          continue;
        }
        const current = decodeEntry(kv);
        const compare = [modIs(key, kv.mod_revision)];
        if (current.nodeId !== request.nodeId) {
          const ownerKey = this.keys.node(current.nodeId);
          if (await exists(this.session, ownerKey, options)) return { claimed: false, owner: current };
          compare.push(absent(ownerKey)); // its node is gone: taken over, unless it came back meanwhile
        }
        outcome = await txn(this.session, compare, [put(key, value, leaseId)], [read(key)], options);
      }
      throw new ContentionError(`claim of room ${request.roomId}`);
    });
  }

  async transfer(request: ClaimRequest, fromToken: string): Promise<ClaimResult> {
    const options = this.session.callOptions();
    const key = this.keys.room(request.roomId);
    const value = encode(withoutToken(request), `room ${request.roomId}'s directory entry`);
    return withLease(this.session, request.nodeId, options, async (leaseId) => {
      // While the claim has not been updated, its mod_revision is the token itself: one round trip.
      let expected = fromToken;
      for (let round = 0; round < MAX_ROUNDS; round++) {
        const outcome = await txn(this.session, [modIs(key, expected)], [put(key, value, leaseId)], [read(key)], options);
        if (outcome.succeeded) return { claimed: true, token: this.hold(request, outcome.revision) };
        const kv = outcome.kv;
        if (!kv) throw new TransferError(request.roomId);
        const current = decodeEntry(kv);
        if (current.token !== fromToken) {
          // This very transfer, written by an attempt whose answer was lost and then retried.
          if (current.nodeId === request.nodeId && kv.value.equals(value)) return { claimed: true, token: this.hold(request, current.token) };
          return { claimed: false, owner: current };
        }
        expected = String(kv.mod_revision);
      }
      throw new ContentionError(`transfer of room ${request.roomId}`);
    });
  }

  async update(entry: DirectoryEntry) {
    const held = this.held.get(entry.roomId);
    const ours = held?.entry.token === entry.token;
    if (ours) held!.entry = structuredClone(entry);
    const key = this.keys.room(entry.roomId);
    const value = encode(entry, `room ${entry.roomId}'s directory entry`);
    const revision = await this.compareToken(key, entry.token, ours ? held!.modRevision : entry.token, putKeepingLease(key, value), `update of room ${entry.roomId}`);
    if (revision && ours && this.held.get(entry.roomId) === held) held!.modRevision = revision;
  }

  async release(roomId: string, token: string) {
    const held = this.held.get(roomId);
    if (held?.entry.token === token) this.held.delete(roomId);
    const key = this.keys.room(roomId);
    await this.compareToken(key, token, held?.entry.token === token ? held.modRevision : token, remove(key), `release of room ${roomId}`);
  }

  /**
   * Runs `op` if the room's current token is `token`: first on the guess that its
   * mod_revision is `expected`, then on what a read finds. Resolves with the revision
   * written, or undefined when the token is not the current one (or the room is gone).
   */
  private async compareToken(key: Buffer, token: string, expected: string, op: ReturnType<typeof remove>, what: string): Promise<string | undefined> {
    const options = this.session.callOptions();
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const outcome: TxnOutcome = await txn(this.session, [modIs(key, expected)], [op], [read(key)], options);
      if (outcome.succeeded) return outcome.revision;
      if (!outcome.kv || tokenOf(outcome.kv) !== token) return undefined;
      expected = String(outcome.kv.mod_revision);
    }
    throw new ContentionError(what);
  }

  async get(roomId: string) {
    const kv = await get(this.session, this.keys.room(roomId), this.session.callOptions());
    return kv && decodeEntry(kv);
  }

  async list() {
    const { kvs } = await this.session.client.kv.range({ key: Buffer.from(this.keys.rooms), range_end: prefixEnd(this.keys.rooms) }, this.session.callOptions());
    return kvs.map(decodeEntry);
  }

  async watch(listener: (change: DirectoryChange) => void) {
    const stop = await watchRooms(this.session, this.keys, listener, this.callTimeoutMs);
    this.watches.add(stop);
    return async () => {
      this.watches.delete(stop);
      await stop();
    };
  }

  claimDevice(deviceId: string, owner: DeviceOwner): Promise<DeviceClaimResult> {
    return this.devices.claim(deviceId, owner);
  }

  releaseDevice(deviceId: string, roomId: string) {
    return this.devices.release(deviceId, roomId);
  }

  deviceOwner(deviceId: string) {
    return this.devices.owner(deviceId);
  }

  async reassert(): Promise<ReassertReport> {
    const asOf = this.losses;
    const report: ReassertReport = { rooms: 0, reclaimed: [], devices: 0, lostRooms: [], lostDevices: [] };
    for (const { entry } of [...this.held.values()]) {
      const options = this.session.callOptions();
      const owner = await this.reassertRoom(entry, options);
      if (owner) {
        this.held.delete(entry.roomId);
        report.lostRooms.push(owner);
        continue;
      }
      report.rooms++;
      report.reclaimed.push({ roomId: entry.roomId, token: this.held.get(entry.roomId)!.entry.token });
    }
    await this.devices.reassert(report);
    // Every claim held here stands on a current lease again (or is reported lost): ownership is confirmed from here on.
    for (const [nodeId, loss] of this.unasserted) if (loss <= asOf) this.unasserted.delete(nodeId);
    return report;
  }

  /** Puts a held room back on its node's current lease; resolves with the live owner that holds it instead, if any. */
  private async reassertRoom(entry: DirectoryEntry, options: CallBound): Promise<DirectoryEntry | undefined> {
    const key = this.keys.room(entry.roomId);
    const value = encode(withoutToken(entry), `room ${entry.roomId}'s directory entry`);
    return withLease(this.session, entry.nodeId, options, async (leaseId) => {
      let outcome = await txn(this.session, [absent(key)], [put(key, value, leaseId)], [read(key)], options);
      for (let round = 0; round < MAX_ROUNDS; round++) {
        if (outcome.succeeded) { this.hold(entry, outcome.revision); return undefined; }
        const kv = outcome.kv;
        if (!kv) {
          outcome = await txn(this.session, [absent(key)], [put(key, value, leaseId)], [read(key)], options);
          continue;
        }
        const current = decodeEntry(kv);
        const compare = [modIs(key, kv.mod_revision)];
        if (current.nodeId === entry.nodeId) {
          // Still this node's: on the current lease already, it stands as it is.
          if (String(kv.lease) === leaseId) { this.hold(current, current.token, String(kv.mod_revision)); return undefined; }
        } else {
          const ownerKey = this.keys.node(current.nodeId);
          if (await exists(this.session, ownerKey, options)) return current;
          compare.push(absent(ownerKey));
        }
        outcome = await txn(this.session, compare, [put(key, value, leaseId)], [read(key)], options);
      }
      throw new ContentionError(`reassert of room ${entry.roomId}`);
    });
  }

  async sweep() {
    const options = this.session.callOptions();
    const { kvs: nodes } = await this.session.client.kv.range({ key: Buffer.from(this.keys.nodes), range_end: prefixEnd(this.keys.nodes), keys_only: true }, options);
    const live = new Set(nodes.map((kv) => this.keys.idOf(kv.key, this.keys.nodes)));
    const { kvs } = await this.session.client.kv.range({ key: Buffer.from(this.keys.rooms), range_end: prefixEnd(this.keys.rooms) }, options);
    let rooms = 0;
    for (const kv of kvs) {
      const { nodeId } = decodeEntry(kv);
      if (live.has(nodeId)) continue;
      const outcome = await txn(this.session, [modIs(kv.key, String(kv.mod_revision)), absent(this.keys.node(nodeId))], [remove(kv.key)], [], options);
      if (outcome.succeeded) rooms++;
    }
    const devices = await this.devices.sweep(live, options);
    return { rooms, devices };
  }

  async close() {
    this.stopWatchingLosses();
    const watches = [...this.watches];
    this.watches.clear();
    await Promise.all(watches.map((stop) => stop()));
  }

  /**
   * The etcd time until which `nodeId`'s ownership is confirmed, as performance.now()
   * (0 when it has no lease, or lost one and its claims are not back on a fresh one yet):
   * a room past it must not act as the room's owner.
   */
  validUntil(nodeId: string): number {
    return this.unasserted.has(nodeId) ? 0 : this.session.validUntil(nodeId);
  }

  /** Remembers a claim held here under `token`, its key last written at `modRevision` (the token itself, for a claim's put); returns the token. */
  private hold(request: ClaimRequest | DirectoryEntry, token: string, modRevision = token): string {
    this.held.set(request.roomId, { entry: { ...withoutToken(request), token }, modRevision });
    return token;
  }
}

/** An entry without its token: what a claim stores (its token is then the put's revision). */
function withoutToken(entry: ClaimRequest | DirectoryEntry): Omit<DirectoryEntry, "token"> {
  const { token: _ignored, ...rest } = entry;
  return rest;
}
