/**
 * The cluster's etcd keys and values (prefix = `tsunagi/<clusterName>`):
 *
 *   <prefix>/nodes/<nodeId>      JSON NodeInfo, on the node's lease
 *   <prefix>/rooms/<roomId>      JSON DirectoryEntry, on the owning node's lease
 *   <prefix>/devices/<deviceId>  JSON DeviceOwner, on the owning room's node's lease
 *
 * A room's fencing token is the etcd revision of the put that claimed it (claim, transfer,
 * or a reassert that had to put it back): that put stores the entry *without* a token, so
 * its token is the key's mod_revision. A listing update rewrites the value, which moves
 * mod_revision on, so an update stores the token in the value: an entry's token is its
 * `token` field when it has one, else its mod_revision. A revision is one transaction's,
 * cluster-wide, so a key whose mod_revision equals a token handed out was last written by
 * that claim.
 */
import type { IKeyValue } from "etcd3";
import type { DeviceOwner, DirectoryEntry, NodeInfo } from "../types.ts";

/** The largest value written, bytes: a directory entry's metadata is meant to be small. */
export const MAX_VALUE_BYTES = 64 * 1024;
/** The longest id in a key, bytes. */
const MAX_ID_BYTES = 256;

export class EtcdKeys {
  readonly nodes: string;
  readonly rooms: string;
  readonly devices: string;

  constructor(readonly prefix: string) {
    this.nodes = `${prefix}/nodes/`;
    this.rooms = `${prefix}/rooms/`;
    this.devices = `${prefix}/devices/`;
  }

  node(nodeId: string) { return Buffer.from(this.nodes + keyPart(nodeId, "node id")); }
  room(roomId: string) { return Buffer.from(this.rooms + keyPart(roomId, "room id")); }
  device(deviceId: string) { return Buffer.from(this.devices + keyPart(deviceId, "device id")); }

  /** The id at the end of `key`, which starts with `scope` (one of the prefixes above). */
  idOf(key: Buffer | string, scope: string): string {
    return key.toString().slice(scope.length);
  }
}

/** The range end that makes a range request cover every key starting with `prefix`. */
export function prefixEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix);
  end[end.length - 1]++;
  return end;
}

/** `id` checked for use in a key: not empty, no `/` (the layout's separator), bounded. */
function keyPart(id: string, what: string): string {
  if (!id || id.includes("/") || Buffer.byteLength(id) > MAX_ID_BYTES) {
    throw new TypeError(`${what} "${id.slice(0, 64)}" cannot name an etcd key: 1 to ${MAX_ID_BYTES} bytes without "/"`);
  }
  return id;
}

/** JSON of `value`, refused when larger than MAX_VALUE_BYTES. */
export function encode(value: object, what: string): Buffer {
  const bytes = Buffer.from(JSON.stringify(value));
  if (bytes.length > MAX_VALUE_BYTES) throw new RangeError(`${what} is ${bytes.length} bytes in JSON; at most ${MAX_VALUE_BYTES}`);
  return bytes;
}

/** A stored directory entry, with its token (its own field, or the claim's revision). */
export function decodeEntry(kv: IKeyValue): DirectoryEntry {
  const entry = JSON.parse(kv.value.toString()) as DirectoryEntry;
  return { ...entry, token: tokenOf(kv, entry) };
}

/** The fencing token of a stored entry. */
export function tokenOf(kv: IKeyValue, parsed?: { token?: string }): string {
  const entry = parsed ?? (JSON.parse(kv.value.toString()) as { token?: string });
  return typeof entry.token === "string" ? entry.token : String(kv.mod_revision);
}

export function decodeOwner(kv: IKeyValue): DeviceOwner {
  return JSON.parse(kv.value.toString()) as DeviceOwner;
}

export function decodeNode(kv: IKeyValue): NodeInfo {
  return JSON.parse(kv.value.toString()) as NodeInfo;
}
