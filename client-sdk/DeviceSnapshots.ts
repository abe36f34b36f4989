/**
 * The newest DeviceProfile and LeaseState a teleoperation room sent for each device,
 * kept from the moment of joining: a TeleopRoom sends them once, when a participant
 * joins, and again only when they change, so controls created later still know what
 * the room greeted the session with.
 *
 * @example
 *   snapshots.remember(envelope);              // every envelope the session receives
 *   snapshots.get("excavator-1").lease;        // the newest LeaseState, if any
 */
import type { Envelope, tsunagi } from "../proto/index.ts";

/** The newest DeviceProfile and LeaseState a teleoperation room sent for one device. */
export interface DeviceSnapshot {
  profile?: tsunagi.v1.DeviceProfile;
  lease?: tsunagi.v1.LeaseState;
}

/** Devices whose snapshot a session keeps; a TeleopRoom hosts at most 32. */
const MAX_DEVICE_SNAPSHOTS = 256;

export class DeviceSnapshots {
  private readonly devices = new Map<string, DeviceSnapshot>();

  /** Keeps the envelope's DeviceProfile or LeaseState, if it carries one. */
  remember(envelope: Envelope): void {
    let deviceId: string;
    let update: DeviceSnapshot;
    // decoded bodies are instances of the generated classes, every field present
    if (envelope.body === "deviceProfile") {
      const profile = envelope.deviceProfile as tsunagi.v1.DeviceProfile;
      deviceId = profile.deviceId;
      update = { profile };
    } else if (envelope.body === "leaseState") {
      const lease = envelope.leaseState as tsunagi.v1.LeaseState;
      deviceId = lease.deviceId;
      update = { lease };
    } else {
      return;
    }
    const known = this.devices.get(deviceId);
    if (!known && this.devices.size >= MAX_DEVICE_SNAPSHOTS) return;
    this.devices.set(deviceId, { ...known, ...update });
  }

  /** What the room sent of `deviceId`; empty for a device never heard of. */
  get(deviceId: string): Readonly<DeviceSnapshot> {
    return { ...this.devices.get(deviceId) };
  }
}
