/**
 * ReplicatedSnapshotStore against stores that answer when told to: the region's store is
 * waited for, a replica only for a bounded while, and a replica still busy with an
 * earlier snapshot skips the next (a replica region cut off never holds up the room's
 * snapshots in its own region).
 */
import { describe, expect, it } from "vitest";
import { ReplicatedSnapshotStore, type SnapshotOwner, type SnapshotStore, type WriteOutcome } from "../../../../server/handoff/SnapshotStore.ts";
import type { RoomSnapshot } from "../../../../server/handoff/types.ts";

/** A store whose writes wait until answered (answer()), or answer at once with `outcome`. */
class HeldStore implements SnapshotStore {
  writes = 0;
  private pending: Array<(outcome: WriteOutcome) => void> = [];
  constructor(private readonly outcome?: WriteOutcome) {}
  write(): Promise<WriteOutcome> {
    this.writes++;
    if (this.outcome) return Promise.resolve(this.outcome);
    return new Promise((resolve) => this.pending.push(resolve));
  }
  answer(outcome: WriteOutcome) { for (const resolve of this.pending.splice(0)) resolve(outcome); }
  async read() { return undefined; }
  async has() { return false; }
  async remove() {}
  async owners(): Promise<SnapshotOwner[]> { return []; }
}

const snapshot = { roomId: "session__r", token: "7", takenAt: 1 } as RoomSnapshot;
const owner = { regionId: "jp-tokyo", nodeId: "tokyo-1" };

describe("ReplicatedSnapshotStore", () => {
  it("does not wait for a replica that does not answer beyond its bound, and sends it no second snapshot while the first is out", async () => {
    const local = new HeldStore("written");
    const replica = new HeldStore();
    const store = new ReplicatedSnapshotStore([local, replica], 20);
    expect(await store.write(snapshot, owner)).toBe("written");
    expect(await store.write(snapshot, owner)).toBe("written");
    expect([local.writes, replica.writes]).toEqual([2, 1]);
    // Another room's snapshot is not held back by this one's.
    expect(await store.write({ ...snapshot, roomId: "session__other" }, owner)).toBe("written");
    expect(replica.writes).toBe(2);
    replica.answer("written");
    await new Promise((resolve) => setImmediate(resolve));
    expect(await store.write(snapshot, owner)).toBe("written");
    expect(replica.writes).toBe(3);
  });

  it("a durable write (a host action's) waits for the replica until it answers", async () => {
    const replica = new HeldStore();
    const store = new ReplicatedSnapshotStore([new HeldStore("written"), replica], 20);
    let done = false;
    const durable = store.write(snapshot, owner, undefined, true).then((outcome) => { done = true; return outcome; });
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(done).toBe(false);
    replica.answer("stale");
    expect(await durable).toBe("stale");
  });

  it("says stale when a replica that answers in time holds a newer snapshot, and written when only a replica took it", async () => {
    const stale = new ReplicatedSnapshotStore([new HeldStore("written"), new HeldStore("stale")], 1000);
    expect(await stale.write(snapshot, owner)).toBe("stale");
    const failing = new (class extends HeldStore { override write() { return Promise.reject(new Error("region Redis down")); } })();
    expect(await new ReplicatedSnapshotStore([failing, new HeldStore("written")], 1000).write(snapshot, owner)).toBe("written");
    await expect(new ReplicatedSnapshotStore([failing, new HeldStore()], 20).write(snapshot, owner)).rejects.toThrow(/region Redis down/);
  });
});
