/**
 * Failover's choice of who restores a lost node's room: one node of the room's own region
 * while that region has a node left; a region holding the room's replica steps in at once
 * only when none is left, and otherwise only after failover.fallbackMs (as any node that
 * was not chosen). The restore itself is stubbed: the integration tests cover it.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { Failover } from "../../../../server/handoff/Failover.ts";
import type { SnapshotOwner, SnapshotStore } from "../../../../server/handoff/SnapshotStore.ts";
import type { NodeContext } from "../../../../server/context.ts";
import type { NodeInfo } from "../../../../server/cluster/types.ts";
import { RECONNECT_MAX_DELAY_MS } from "../../../../server/redisAddress.ts";

const fallbackMs = 1000;
const nodeTtlMs = 900;
const orphan: SnapshotOwner = { roomId: "expo__hall", roomName: "expo", regionId: "jp-tokyo", nodeId: "tokyo-1", token: "7", takenAt: 0 };

function node(nodeId: string, regionId: string): NodeInfo {
  return {
    nodeId, regionId, publicAddress: "127.0.0.1:1", processId: nodeId, draining: false, startedAt: 0, heartbeatAt: 0,
    load: { ccu: 0, rooms: 0, eventLoopLagMs: 0, overloaded: false },
  };
}

/** Node `self` of `regionId`, with `live` in the registry and the orphan in its region's snapshot index; its restores, recorded. */
function failoverOn(self: string, regionId: string, live: NodeInfo[]) {
  const context = {
    regionId, nodeId: self, isDraining: () => false,
    config: { failover: { checkMs: 100, fallbackMs }, cluster: { nodeTtlMs } },
    registry: { list: async () => live },
  } as unknown as NodeContext;
  const store = { owners: async () => [orphan] } as unknown as SnapshotStore;
  const failover = new Failover(context, undefined as never, undefined as never, store);
  const restored: string[] = [];
  (failover as unknown as { restore: (o: SnapshotOwner) => Promise<void> }).restore = async (o) => { restored.push(o.roomId); };
  return { failover, restored };
}

afterEach(() => { vi.useRealTimers(); });

describe("who restores a lost node's room", () => {
  it("the node left in the room's own region, at once", async () => {
    const { failover, restored } = failoverOn("tokyo-2", "jp-tokyo", [node("tokyo-2", "jp-tokyo"), node("osaka-1", "jp-osaka")]);
    await failover.check();
    expect(restored).toEqual(["expo__hall"]);
  });

  it("not the replica's region while the room's own region has a node left: only after fallbackMs", async () => {
    vi.useFakeTimers({ now: 10_000 });
    const { failover, restored } = failoverOn("osaka-1", "jp-osaka", [node("tokyo-2", "jp-tokyo"), node("osaka-1", "jp-osaka")]);
    await failover.check();
    vi.setSystemTime(10_000 + fallbackMs - 1);
    await failover.check();
    expect(restored).toEqual([]);
    vi.setSystemTime(10_000 + fallbackMs);
    await failover.check();
    expect(restored).toEqual(["expo__hall"]);
  });

  it("the replica's region at once when the room's own region has no node left", async () => {
    const { failover, restored } = failoverOn("osaka-1", "jp-osaka", [node("osaka-1", "jp-osaka")]);
    await failover.check();
    expect(restored).toEqual(["expo__hall"]);
  });

  it("a draining node of the room's own region does not count as left", async () => {
    const { failover, restored } = failoverOn("osaka-1", "jp-osaka", [{ ...node("tokyo-2", "jp-tokyo"), draining: true }, node("osaka-1", "jp-osaka")]);
    await failover.check();
    expect(restored).toEqual(["expo__hall"]);
  });

  it("nobody until every node could have reconnected and heartbeated after a Redis connection came back: the registry lost every entry meanwhile, and its nodes come back one by one", async () => {
    vi.useFakeTimers({ now: 10_000 });
    // tokyo-1 is alive, only not heartbeating again yet: the Redis failed over, or restarted, and its entry expired.
    const { failover, restored } = failoverOn("tokyo-2", "jp-tokyo", [node("tokyo-2", "jp-tokyo")]);
    failover.redisBack();
    await failover.check();
    const quietMs = RECONNECT_MAX_DELAY_MS + 2 * nodeTtlMs;
    vi.setSystemTime(10_000 + quietMs - 1);
    await failover.check();
    // Old code: restored at the first check, a second copy of a room that was live on tokyo-1.
    expect(restored).toEqual([]);
    vi.setSystemTime(10_000 + quietMs);
    await failover.check();
    expect(restored).toEqual(["expo__hall"]);
  });

  it("nobody from a look whose reads were answered across a reconnect (queued while Redis was away)", async () => {
    const { failover, restored } = failoverOn("tokyo-2", "jp-tokyo", [node("tokyo-2", "jp-tokyo")]);
    // The registry's answer comes from the Redis that just came back: the reconnect is told before it arrives.
    const context = (failover as unknown as { context: { registry: { list: () => Promise<NodeInfo[]> } } }).context;
    const list = context.registry.list;
    context.registry.list = async () => { failover.redisBack(); return list(); };
    await failover.check();
    expect(restored).toEqual([]);
  });
});
