/**
 * A teleop room's hold on its machines: a device answers to one room in the whole
 * cluster (docs/safety.md, "One room per machine"), so two rooms can never both drive
 * it, nor pull its adapter back and forth between nodes. The room claims each device on
 * this node and in the cluster's directory when it opens, all or none (ROOM_CONFLICT
 * when another room has one), releases them when it is disposed, and asks the region's
 * other nodes for the devices whose adapters are connected elsewhere (DeviceRequests).
 *
 * @example
 *   const devices = parseDeviceList(options.devices);
 *   const claims = new DeviceClaims({ owner, directory, request: (wanted) => requestDevice(presence, clusterName, wanted),
 *     releaseFailed: (error, deviceId) => log(error, deviceId) });
 *   await claims.claim(devices);               // throws ServerError ROOM_CONFLICT
 *   claims.requestMissing(["drone-1"]);        // every few seconds, for the offline ones
 *   await claims.release();                    // on dispose
 */
import { ServerError } from "@colyseus/core";
import { ErrorCode } from "../../proto/index.ts";
import { DEVICE_ID_TEXT, isDeviceId } from "../../proto/ids.ts";
import type { RoomDirectory } from "../../server/cluster/RoomDirectory.ts";
import type { DeviceOwner } from "../../server/cluster/types.ts";
import type { DeviceWanted } from "../../server/gateway/DeviceRequests.ts";

/** Devices a room may name. */
export const MAX_DEVICES = 32;

/** Devices owned by a room of this process (this node), by device id: the owning room's id. */
const localOwners = new Map<string, string>();

/** What the claims need from their room and node. */
export interface DeviceClaimsHost {
  /** The room claiming, and where it runs (the directory's record of each device). */
  owner: DeviceOwner;
  directory: Pick<RoomDirectory, "claimDevice" | "releaseDevice">;
  /** Releasing a claim failed (the directory unreachable): log it; the claim lapses with the node's registry entry. */
  releaseFailed(error: unknown, deviceId: string): void;
  /** Publishes a request for a device to the region's other nodes (DeviceRequests.requestDevice). */
  request(wanted: DeviceWanted): void;
}

/** The room's `devices` option, checked: 1 to MAX_DEVICES distinct device ids. Throws ServerError WRONG_TYPE. */
export function parseDeviceList(devices: unknown): string[] {
  if (!Array.isArray(devices) || devices.length === 0 || devices.length > MAX_DEVICES) {
    throw new ServerError(ErrorCode.WRONG_TYPE, `devices must be a list of 1 to ${MAX_DEVICES} device ids`);
  }
  for (const id of devices) {
    if (!isDeviceId(id)) throw new ServerError(ErrorCode.WRONG_TYPE, `device id ${JSON.stringify(id)?.slice(0, 80)} must match ${DEVICE_ID_TEXT}`);
  }
  if (new Set(devices).size !== devices.length) throw new ServerError(ErrorCode.WRONG_TYPE, "a device is listed twice");
  return devices as string[];
}

export class DeviceClaims {
  /** The room, its node, the directory and the region's presence. */
  private readonly host: DeviceClaimsHost;
  /** The devices this room holds in the directory (and on this node); released by release(). */
  private claimed: string[] = [];

  constructor(host: DeviceClaimsHost) {
    this.host = host;
  }

  private get roomId(): string {
    return this.host.owner.roomId;
  }

  /**
   * Binds the devices to the room, on this node and in the directory (whichever node
   * its adapter is on); all or none. Throws ServerError ROOM_CONFLICT when another room
   * holds one, INTERNAL (with the directory's error as `cause`) when the directory fails.
   */
  async claim(devices: readonly string[]): Promise<void> {
    for (const deviceId of devices) {
      const owner = localOwners.get(deviceId);
      if (owner) throw new ServerError(ErrorCode.ROOM_CONFLICT, `device ${deviceId} already belongs to room "${owner}" on this node`);
    }
    for (const deviceId of devices) localOwners.set(deviceId, this.roomId);
    const claimed: string[] = [];
    try {
      for (const deviceId of devices) {
        const claim = await this.host.directory.claimDevice(deviceId, this.host.owner);
        if (!claim.claimed) {
          throw new ServerError(ErrorCode.ROOM_CONFLICT, `device ${deviceId} already belongs to room "${claim.owner.roomId}" on node ${claim.owner.nodeId} (region ${claim.owner.regionId})`);
        }
        claimed.push(deviceId);
      }
      this.claimed = claimed;
    } catch (error) {
      await this.releaseEach(claimed);
      for (const deviceId of devices) if (localOwners.get(deviceId) === this.roomId) localOwners.delete(deviceId);
      if (error instanceof ServerError) throw error;
      throw new ServerError(ErrorCode.INTERNAL, `could not claim the room's devices: ${(error as Error)?.message ?? String(error)}`, { cause: error });
    }
  }

  /** Lets go of every device claimed (the room is disposed); a failure is logged, not thrown. */
  async release(): Promise<void> {
    const claimed = this.claimed;
    this.claimed = [];
    await this.releaseEach(claimed);
  }

  /**
   * Lets go of the devices on this node only: the room moved to another node, which
   * claimed them in the directory under the same room id (releasing them there would
   * take them from the room's new home).
   */
  forget(): void {
    for (const deviceId of this.claimed) if (localOwners.get(deviceId) === this.roomId) localOwners.delete(deviceId);
    this.claimed = [];
  }

  /** Asks the region's other nodes for these devices, whose adapters are not connected here. */
  requestMissing(deviceIds: Iterable<string>): void {
    const { owner } = this.host;
    for (const deviceId of deviceIds) this.host.request({ deviceId, roomId: owner.roomId, nodeId: owner.nodeId });
  }

  private async releaseEach(devices: readonly string[]): Promise<void> {
    for (const deviceId of devices) {
      if (localOwners.get(deviceId) === this.roomId) localOwners.delete(deviceId);
      await this.host.directory.releaseDevice(deviceId, this.roomId).catch((error: unknown) => this.host.releaseFailed(error, deviceId));
    }
  }
}
