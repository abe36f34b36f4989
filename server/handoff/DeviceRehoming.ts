/**
 * A machine that moved takes its room with it. An adapter connects to the gateway of the
 * region nearest it; when that is not the region of the room its device answers to, the
 * gateway's node tells the room's node (`POST /cluster/handoff/device-moved`), and that
 * node hands the room to the node where the adapter is (RoomHandoff, reason "device").
 *
 * Hysteresis, so a machine on a region's border does not make its room flap:
 * - the room's node acts only while the device is not connected to it (an adapter that
 *   came back is where it belongs), and only after it has been away for `settleMs`;
 * - a room moves for its device at most once per `cooldownMs`;
 * - a gateway tells the room's node at most once per `cooldownMs` per device.
 *
 * Within a region, nothing moves: the room asks the region's nodes for its device
 * (DeviceRequests), and the adapter is sent over.
 *
 * @example
 *   const rehoming = new DeviceRehoming(context, handoffs, notify);
 *   rehoming.watch(gateway);                                     // the adapter's side
 *   await rehoming.deviceMoved({ deviceId, regionId, nodeId });  // the room's side
 */
import { ServerError } from "@colyseus/core";
import { ErrorCode } from "../../proto/index.ts";
import { isDeviceId } from "../../proto/ids.ts";
import type { NodeContext } from "../context.ts";
import type { DeviceGateway } from "../gateway/DeviceGateway.ts";
import type { NodeInfo } from "../cluster/types.ts";
import type { HandoffRecord } from "./types.ts";

export interface DeviceMoved {
  deviceId: string;
  /** Where its adapter is connected now. */
  regionId: string;
  nodeId: string;
}

export interface DeviceRehomingOptions {
  /** How long a device must have been away from its room's node before the room follows it, ms. */
  settleMs: number;
  /** Least time between two moves of a room for its device, and between two notices of one device, ms. */
  cooldownMs: number;
}

export class DeviceRehoming {
  /** When each device was last reported to its room's node, ms (the gateway's side). */
  private readonly noticed = new Map<string, number>();
  /** When each room last moved for its device, ms (the room's side). */
  private readonly moved = new Map<string, number>();
  /** Devices being followed now (a notice during the settle wait or the handoff is dropped). */
  private readonly following = new Set<string>();

  constructor(
    private readonly context: NodeContext,
    private readonly handOff: (roomId: string, regionId: string, nodeId: string) => Promise<HandoffRecord>,
    private readonly notify: (owner: NodeInfo, moved: DeviceMoved) => Promise<void>,
    private readonly options: DeviceRehomingOptions,
  ) {}

  /** The adapter's side: each adapter attaching here whose room is in another region is reported to that room's node. */
  watch(gateway: DeviceGateway): () => void {
    return gateway.onAttach((link) => void this.attached(link.deviceId).catch((error) => {
      this.context.logger.warn({ err: error, deviceId: link.deviceId }, `device ${link.deviceId}: could not tell its room's node where it is`);
    }));
  }

  private async attached(deviceId: string) {
    const { context } = this;
    const owner = await context.directory.deviceOwner(deviceId);
    if (!owner || owner.regionId === context.regionId) return;
    const now = performance.now();
    if (now - (this.noticed.get(deviceId) ?? -Infinity) < this.options.cooldownMs) return;
    this.noticed.set(deviceId, now);
    if (this.noticed.size > 10_000) this.noticed.delete(this.noticed.keys().next().value!);
    const node = await context.registry.get(owner.nodeId);
    if (!node) return; // its room's node is gone: failover's business, not a move
    context.logger.info({ deviceId, roomId: owner.roomId, owner: owner.nodeId }, `device ${deviceId} attached here, far from its room ${owner.roomId} in ${owner.regionId}: telling its node`);
    await this.notify(node, { deviceId, regionId: context.regionId, nodeId: context.nodeId });
  }

  /**
   * The room's side: `moved.deviceId`'s adapter is connected to `moved.nodeId`. Moves the
   * device's room there once it has stayed away for settleMs; resolves with the
   * handoff's record, or undefined when the room stays (and why is logged).
   */
  async deviceMoved(moved: DeviceMoved): Promise<HandoffRecord | undefined> {
    const { context } = this;
    if (!isDeviceId(moved.deviceId) || typeof moved.regionId !== "string" || typeof moved.nodeId !== "string") {
      throw new ServerError(ErrorCode.WRONG_TYPE, "device-moved needs {deviceId, regionId, nodeId}");
    }
    const owner = await context.directory.deviceOwner(moved.deviceId);
    if (!owner || owner.nodeId !== context.nodeId) return undefined; // its room is not here
    if (this.following.has(moved.deviceId)) return undefined;
    const since = this.moved.get(owner.roomId);
    if (since !== undefined && performance.now() - since < this.options.cooldownMs) {
      context.logger.info({ deviceId: moved.deviceId, roomId: owner.roomId }, `room ${owner.roomId} moved for its device ${Math.round(performance.now() - since)} ms ago: staying put for now`);
      return undefined;
    }
    this.following.add(moved.deviceId);
    try {
      await new Promise((resolve) => setTimeout(resolve, this.options.settleMs));
      if (context.gateway.link(moved.deviceId)) return undefined; // it came back here
      const record = await this.handOff(owner.roomId, moved.regionId, moved.nodeId);
      this.moved.set(owner.roomId, performance.now());
      return record;
    } finally {
      this.following.delete(moved.deviceId);
    }
  }
}
