/**
 * A live room's snapshots for failover (docs/regions.md "Failover"): written every
 * failover.snapshotMs while the room holds its directory claim, one write at a time, to
 * its region's Redis and the replica region's, under its fencing token. The first is
 * written as soon as the room holds its claim (a room just restored or switched here is
 * covered at once).
 *
 * A write refused as stale means a newer owner holds the room (the cluster restored it
 * elsewhere while this node was cut off): this copy closes, and its clients find the
 * room's live copy through the directory (NOT_ROOM_OWNER).
 *
 * `writeNow()` is for what must never be lost (a host's or moderator's action): the
 * action is acknowledged once the snapshot holding it is stored.
 *
 * @example
 *   const snapshots = new RoomSnapshots(mover, host);    // ClusterRoom
 *   snapshots.start();                                  // holdClaim
 *   await snapshots.writeNow();                          // before acknowledging a host action
 */
import { ErrorCode } from "../../proto/index.ts";
import { nodeContext } from "../../server/context.ts";
import type { MoverHost, RoomMover } from "./RoomMover.ts";

export class RoomSnapshots {
  /** The write under way, if any: the next waits for it. */
  private writing?: Promise<void>;
  /** Whether a writer is started. */
  private started = false;

  constructor(private readonly mover: RoomMover, private readonly host: Pick<MoverHost, "room" | "type" | "listed" | "claimToken">) {}

  /** Whether this room writes snapshots at all (a cluster with snapshots on, a type that moves, a listed room). */
  get enabled(): boolean {
    const context = nodeContext();
    return context.config.failover.snapshotMs > 0 && context.snapshots !== undefined && this.host.type() !== undefined && this.host.listed();
  }

  start() {
    if (this.started || !this.enabled) return;
    this.started = true;
    void this.write().catch(() => {});
    this.host.room.clock.setInterval(() => {
      if (this.writing) return;
      void this.write().catch(() => {});
    }, nodeContext().config.failover.snapshotMs);
  }

  /**
   * Writes a snapshot now (after the one under way) and resolves once a store holds it.
   * Rejects when no store took it, or when the room is not this copy's any more.
   */
  async writeNow(): Promise<void> {
    if (!this.enabled) return;
    while (this.writing) await this.writing.catch(() => {});
    await this.write(true);
  }

  /** `durable`: every reachable store is waited for (writeNow); else a slow replica is not (SnapshotStore). */
  private write(durable = false): Promise<void> {
    const run = this.writeOnce(durable).finally(() => { if (this.writing === run) this.writing = undefined; });
    this.writing = run;
    return run;
  }

  private async writeOnce(durable: boolean): Promise<void> {
    const context = nodeContext();
    const token = this.host.claimToken();
    if (this.mover.migration.phase !== "live" || token === undefined || this.host.type()!.unmovableReason?.()) return;
    let outcome;
    try {
      outcome = await context.snapshots!.write(await this.mover.snapshot(), { regionId: context.regionId, nodeId: context.nodeId }, undefined, durable);
    } catch (error) {
      context.metrics.rooms.snapshotsFailed++;
      throw error;
    }
    if (outcome === "written") { context.metrics.rooms.snapshotsWritten++; return; }
    context.metrics.rooms.snapshotsStale++;
    if (this.host.claimToken() === token) this.mover.fencedOff("a newer owner of the room wrote its snapshot");
    throw Object.assign(new Error(`room ${this.mover.roomId} is held under a newer claim elsewhere`), { code: ErrorCode.NOT_ROOM_OWNER });
  }
}
