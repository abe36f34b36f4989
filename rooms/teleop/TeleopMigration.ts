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
import type { NodeContext } from "../../server/context.ts";

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
  /** Claims the room's devices for this node, and takes the links of those connected here (the new home, at the Switch). */
  claimDevices(): Promise<void>;
  /** Whether a session moved here and its client has not arrived yet. */
  parked(sessionId: string): boolean;
  /** The room's claims are another node's now: this copy lets go of them on this node only (DeviceClaims.forget). */
  forgetClaims(): void;
  /** The node's services (directory, gateway, logger). */
  context(): NodeContext;
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
  /** Opened by a failover (failedOver): no lease is restored. */
  private failover = false;

  constructor(private readonly host: TeleopMigrationHost) {}

  /** Opened from a snapshot, before its Switch: the devices are not this copy's yet. */
  get awaitingSwitch(): boolean { return this.restoring; }

  /** The room is being opened from a snapshot (its onCreate): nothing of its devices is taken before the Switch. */
  expectSwitch() { this.restoring = true; }

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

  /**
   * What a device attaching is told of its lease: "revoke" (it starts from no lease, as
   * always), or, for a lease that came with the room, "announce" it once its holder is
   * back, and until then "hold" (no lease yet: its watchdog would end a lease nobody
   * drives while the holder's client is still on its way).
   */
  attaching(slot: DeviceSlot): "revoke" | "announce" | "hold" {
    if (!this.broughtLeases.has(slot.deviceId)) return "revoke";
    const holder = slot.lease.holder;
    if (holder && this.host.parked(holder.sessionId)) return "hold";
    this.broughtLeases.delete(slot.deviceId);
    return "announce";
  }

  /** Whether the device's lease holder moved here with the room and its client has not arrived yet (its lease does not lapse meanwhile). */
  holderOnItsWay(slot: DeviceSlot): boolean {
    const holder = slot.lease.holder;
    return holder !== undefined && this.host.parked(holder.sessionId);
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

  /** Each device's latch and lease holder as the old home had them; again with a later snapshot (a handoff's Transfer), brought up to it. */
  restoreState(state: unknown) {
    this.restoring = true;
    const ended: string[] = [];
    for (const device of (state as TeleopRoomState).devices) {
      const slot = this.host.slots.get(device.deviceId);
      if (!slot) continue;
      if (device.latch) { slot.lease.estop(device.latch.by, `${device.latch.reason} (latched before the room moved)`); continue; }
      if (this.failover) { if (device.holder) ended.push(device.deviceId); continue; }
      const holder = slot.lease.holder;
      if (holder && holder.sessionId !== device.holder?.sessionId) { slot.revoke("moved"); this.broughtLeases.delete(device.deviceId); }
      if (device.holder && slot.lease.acquire(device.holder.sessionId, device.holder.role).status === "granted") this.broughtLeases.add(device.deviceId);
    }
    if (this.failover) this.host.audit("room.failed-over", { leasesEnded: ended });
    else this.host.audit("room.arrived", { leases: [...this.broughtLeases] });
  }

  /**
   * The restore that follows is a failover: the old home was lost with its adapters'
   * links, and their watchdogs stopped the machines. No lease survives it: restoreState
   * grants none (each holder asks for a fresh one, and the devices stay stopped until
   * then); a latched e-stop stays latched.
   */
  failedOver() {
    this.failover = true;
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
    // Its leases run from now (they waited for it), and go to their devices now that commands can follow.
    const now = Date.now();
    for (const slot of this.host.slots.values()) {
      const holder = slot.lease.holder;
      if (holder?.sessionId !== client.sessionId) continue;
      slot.lease.renew(client.sessionId, holder.leaseId, now);
      slot.leaseChanged(now);
      if (slot.link && this.broughtLeases.delete(slot.deviceId)) slot.link.sendLeaseState(slot.leaseState());
    }
    this.host.greet(client);
  }

  sessionLost(sessionId: string) { this.host.dropSession(sessionId); }

  /** The room lives on another node now: its adapters connected here go there (the directory names its gateway). */
  movedAway(to: NodeRef) {
    this.host.audit("room.moved", { to });
    this.host.forgetClaims();
    const { directory, gateway, logger } = this.host.context();
    for (const slot of this.host.slots.values()) {
      if (!slot.link) continue;
      void directory.deviceOwner(slot.deviceId).then((owner) => {
        if (owner?.nodeId === to.nodeId) {
          gateway.redirect(slot.deviceId, { url: owner.gatewayUrl, certUrl: owner.certGatewayUrl, regionId: owner.regionId, nodeId: owner.nodeId }, `room ${owner.roomId} moved to ${to.regionId}`);
        } else {
          logger.error({ deviceId: slot.deviceId, owner }, `device ${slot.deviceId}: the directory does not name the room's new home; its adapter stays here until it reconnects`);
        }
      }, (error) => logger.error({ err: error, deviceId: slot.deviceId }, `device ${slot.deviceId}: could not look up the room's new home`));
    }
  }
}
