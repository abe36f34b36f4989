/**
 * A teleop room's part of the MigratableRoom contract (rooms/shared/MigratableRoom.ts):
 * a site's room moving to another node or region with its machines.
 *
 * - Freeze: the room's lease checks and probes stop (the holder's heartbeats are queued,
 *   not missed), and every connected device is told there is no lease: its adapter
 *   zeroes motion at once, and a drone's failsafe holds it where it is.
 * - What moves: each device's lease holder (session and role) and latched e-stop, and
 *   each participant's role and subject.
 * - The new home claims the devices in the directory at the Switch, not before (a
 *   handoff that rolls back leaves them where they were). The old home then sends each
 *   adapter connected to it there (GatewayRedirect), and releases nothing.
 * - A planned move keeps the lease: its holder holds it in the new home, under a lease
 *   id the adapter has never seen (an adapter never takes back a lease that ended, and
 *   its link closed). A latched e-stop stays latched, and is sent to the adapter again
 *   when it attaches. A handoff that rolls back gives the holder a fresh lease id too
 *   (ControlLease.rekey), since the adapter saw the lease end at the freeze.
 * - A failover (a room restored from a snapshot with no Switch) never keeps a lease.
 */
import type { Client } from "@colyseus/core";
import type { Role } from "../../server/auth/tokens.ts";
import type { NodeRef } from "../../server/handoff/types.ts";
import type { MigratableRoom } from "../shared/MigratableRoom.ts";
import type { ParkedClient } from "../shared/ParkedClient.ts";
import type { DeviceSlot } from "./DeviceSlot.ts";
import type { Participants } from "./Participants.ts";
import type { EStopLatch } from "./ControlLease.ts";

export interface TeleopRoomState {
  devices: Array<{ deviceId: string; holder?: { sessionId: string; role: Role }; latch?: EStopLatch }>;
}

export interface TeleopSessionState {
  role: Role;
  subject: string;
}

/** The parts of the room the move reads and drives. */
export interface TeleopMigrationHost {
  slots: ReadonlyMap<string, DeviceSlot>;
  participants: Participants;
  /** Stops the lease checks, probes and device requests. */
  pause(): void;
  /** Starts them again. */
  resume(): void;
  /** Claims the room's devices for this node (the new home, at the Switch). */
  claimDevices(): Promise<void>;
  /** The devices' owner is elsewhere now: send their adapters there, and never release their claims from here. */
  sendDevicesAway(to: NodeRef): void;
  greet(client: Client): void;
  /** A session left: its leases end. */
  dropSession(sessionId: string): void;
  audit(type: string, data: Record<string, unknown>): void;
}

export class TeleopMigration implements MigratableRoom {
  /** Devices whose lease came with the room and has not met their adapter yet: attaching must not end it. */
  readonly broughtLeases = new Set<string>();
  /** Opened from a snapshot, before the Switch. */
  private restoring = false;

  constructor(private readonly host: TeleopMigrationHost) {}

  freezeRoom() {
    this.host.pause();
    for (const slot of this.host.slots.values()) {
      slot.link?.sendLeaseState({ deviceId: slot.deviceId, leaseId: "", online: true, cause: "moving" });
    }
    this.host.audit("room.freezing", {});
  }

  async thawRoom() {
    if (this.restoring) {
      this.restoring = false;
      await this.host.claimDevices();
      this.host.resume();
      return;
    }
    // Rolled back: the adapters saw the leases end at the freeze.
    this.host.resume();
    for (const slot of this.host.slots.values()) {
      if (slot.lease.holder) slot.lease.rekey();
    }
    this.host.audit("room.handoff-rolled-back", {});
  }

  snapshotState(): TeleopRoomState {
    return {
      devices: [...this.host.slots.values()].map((slot) => {
        const holder = slot.lease.holder;
        const latch = slot.lease.estopLatch;
        return { deviceId: slot.deviceId, ...(holder && { holder: { sessionId: holder.sessionId, role: holder.role } }), ...(latch && { latch: { ...latch } }) };
      }),
    };
  }

  restoreState(state: unknown) {
    this.restoring = true;
    for (const device of (state as TeleopRoomState).devices) {
      const slot = this.host.slots.get(device.deviceId);
      if (!slot) continue;
      if (device.latch) slot.lease.estop(device.latch.by, `${device.latch.reason} (latched before the room moved)`);
      else if (device.holder && slot.lease.acquire(device.holder.sessionId, device.holder.role).status === "granted") this.broughtLeases.add(device.deviceId);
    }
    this.host.audit("room.arrived", { leases: [...this.broughtLeases] });
  }

  snapshotSession(client: Client): TeleopSessionState | null {
    const participant = this.host.participants.get(client.sessionId);
    return participant ? { role: participant.role, subject: participant.subject } : null;
  }

  restoreSession(parked: ParkedClient, state: unknown) {
    const data = state as TeleopSessionState | null;
    if (data) this.host.participants.joined(parked as unknown as Client, data.role, data.subject);
  }

  resumeSession(client: Client) {
    this.host.participants.reconnected(client);
    this.host.greet(client);
  }

  sessionLost(sessionId: string) { this.host.dropSession(sessionId); }

  movedAway(to: NodeRef) {
    this.host.audit("room.moved", { to });
    this.host.sendDevicesAway(to);
  }
}
