/**
 * Teleop rooms asking for their devices across the nodes of a region.
 *
 * A room drives its devices through its own node's gateway only. An adapter picks a node
 * by round trip, not by room, so in a region of several nodes it may be connected to the
 * wrong one. The room then publishes a DeviceWanted on the region's presence channel, and
 * the node that holds the device sends its adapter over (GatewayRedirect). That node
 * first checks the directory: the room asking must be the one the device answers to, and
 * the address comes from the directory's record, not the message. So two rooms can never
 * pull one machine back and forth, and nothing but a room's claim moves an adapter.
 *
 * A redirect is a disconnect like any other for the adapter: it stops the machine first.
 * The device holds no lease at that moment: its room is on the other node.
 *
 * @example
 *   // the node holding adapters
 *   const stop = await serveDeviceRequests({ presence, gateway, directory, nodeId, clusterName, logger });
 *   // a room missing a device
 *   requestDevice(presence, clusterName, { deviceId: "excavator-1", roomId: "site-7", nodeId: "tokyo-b" });
 */
import type { Presence } from "@colyseus/core";
import { tsunagi } from "../../proto/index.ts";
import { fromPresence, toPresence } from "../../proto/clusterCodec.ts";
import type { RoomDirectory } from "../cluster/RoomDirectory.ts";
import type { Logger } from "../observability/logging.ts";
import type { DeviceGateway } from "./DeviceGateway.ts";

/** Presence channel of a cluster's DeviceWanted messages (the region's Redis, or memory when embedded). */
export const deviceWantedChannel = (clusterName: string) => `${clusterName}:teleop:device-wanted`;

/** A room's request for a device its node's gateway does not have (cluster.proto DeviceWanted). */
export interface DeviceWanted {
  deviceId: string;
  /** The room asking, and its node. */
  roomId: string;
  nodeId: string;
}

/** Publishes a room's request for one of its devices. */
export function requestDevice(presence: Presence, clusterName: string, wanted: DeviceWanted): void {
  void Promise.resolve(presence.publish(deviceWantedChannel(clusterName), toPresence(tsunagi.v1.DeviceWanted, wanted)))
    .catch(() => { /* the next request retries */ });
}

export interface DeviceRequestsOptions {
  presence: Presence;
  gateway: DeviceGateway;
  directory: RoomDirectory;
  /** This node: requests from its own rooms are not for it to answer. */
  nodeId: string;
  clusterName: string;
  logger: Logger;
}

/** Answers other nodes' rooms' requests for devices connected here; resolves to an unsubscribe. */
export async function serveDeviceRequests(options: DeviceRequestsOptions): Promise<() => void> {
  const { presence, gateway, directory, nodeId, logger } = options;
  const channel = deviceWantedChannel(options.clusterName);
  const onWanted = (message: unknown) => {
    let wanted: tsunagi.v1.DeviceWanted;
    try {
      wanted = fromPresence(tsunagi.v1.DeviceWanted, message);
      if (!wanted.deviceId || !wanted.roomId || !wanted.nodeId) throw new Error("device_id, room_id and node_id are required");
    } catch (error) {
      logger.warn({ err: error }, "ignored a malformed device request");
      return;
    }
    if (wanted.nodeId === nodeId || !gateway.link(wanted.deviceId)) return;
    void (async () => {
      const owner = await directory.deviceOwner(wanted.deviceId);
      if (!owner || owner.roomId !== wanted.roomId || owner.nodeId !== wanted.nodeId) {
        logger.warn({ deviceId: wanted.deviceId, askedBy: wanted, owner }, `room ${wanted.roomId} asked for device ${wanted.deviceId}, which does not answer to it: not sent`);
        return;
      }
      const addresses = owner.certGatewayUrl === undefined ? [owner.gatewayUrl] : [owner.gatewayUrl, owner.certGatewayUrl];
      if (!addresses.every((url) => /^wss?:\/\//.test(url))) { logger.error({ owner }, `device ${wanted.deviceId}: its owner's gateway address is not ws:// or wss://`); return; }
      gateway.redirect(wanted.deviceId, { url: owner.gatewayUrl, certUrl: owner.certGatewayUrl, regionId: owner.regionId, nodeId: owner.nodeId },
        `room ${owner.roomId} on node ${owner.nodeId} owns this device`);
    })().catch((error) => logger.error({ err: error, deviceId: wanted.deviceId }, "device request failed; the room asks again"));
  };
  await presence.subscribe(channel, onWanted);
  return () => { try { void Promise.resolve(presence.unsubscribe(channel, onWanted)).catch(() => {}); } catch { /* presence already shut down */ } };
}
