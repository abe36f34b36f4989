/**
 * A teleop room's lease checks, every TICK_MS in one node-wide timer (SharedTick): each
 * device's lease expiry, and the adapter's watchdog mirrored (a holder silent longer than
 * the device's window loses the lease). A check that throws ends that device's lease and
 * tells its adapter there is none: when in doubt, stop. The other devices' checks go on;
 * the log says so at most once a second.
 *
 * @example
 *   const checks = new LeaseChecks({ slots, skip: (slot) => false, logger, roomId });
 *   checks.start();   // and stop() while the room moves or closes
 */
import { sharedTick } from "../shared/SharedTick.ts";
import type { Logger } from "../../server/observability/logging.ts";
import type { DeviceSlot } from "./DeviceSlot.ts";

/** How often the room checks lease expiry and the silent-holder watchdog, ms. */
const TICK_MS = 20;

export interface LeaseChecksHost {
  slots: ReadonlyMap<string, DeviceSlot>;
  /** A slot not to check now (a lease that moved with the room, waiting for its holder's client). */
  skip(slot: DeviceSlot): boolean;
  logger: Logger;
  roomId: string;
}

export class LeaseChecks {
  private stopTick?: () => void;
  /** When a failed check was last logged, ms: at most one line a second. */
  private failureLoggedAt = -Infinity;

  constructor(private readonly host: LeaseChecksHost) {}

  start() {
    this.stopTick ??= sharedTick(TICK_MS, () => this.tick(), (error) => this.host.logger.error({ err: error, roomId: this.host.roomId }, "lease check failed"));
  }

  stop() {
    this.stopTick?.();
    this.stopTick = undefined;
  }

  private tick() {
    const now = Date.now();
    for (const slot of this.host.slots.values()) {
      if (this.host.skip(slot)) continue;
      try {
        slot.lease.expire(now);
        if (slot.holderSilent(now, TICK_MS)) slot.revoke("watchdog");
      } catch (error) {
        this.failed(slot, error, now);
      }
    }
  }

  private failed(slot: DeviceSlot, error: unknown, now: number) {
    if (now - this.failureLoggedAt >= 1000) {
      this.failureLoggedAt = now;
      this.host.logger.error({ err: error, roomId: this.host.roomId, deviceId: slot.deviceId }, `lease check of ${slot.deviceId} failed: its lease ends and the device stops`);
    }
    try {
      slot.revoke("check-failed");
    } finally {
      slot.link?.sendLeaseState({ deviceId: slot.deviceId, leaseId: "", online: true, cause: "check-failed" });
    }
  }
}
