import { describe, it, expect } from "vitest";
import { LatencyRegionSelector, parseRttHints } from "../../../../server/cluster/RegionSelector.ts";
import { RegionTopology } from "../../../../server/cluster/topology.ts";
import type { NodeInfo } from "../../../../server/cluster/types.ts";
import { repoRoot } from "../../../fixtures/processes.ts";
import path from "node:path";

function node(nodeId: string, regionId: string, load: Partial<NodeInfo["load"]> = {}, draining = false): NodeInfo {
  return {
    nodeId, regionId, publicAddress: `${nodeId}:1`, processId: `p-${nodeId}`, draining, startedAt: 0, heartbeatAt: 0,
    load: { ccu: 0, rooms: 0, eventLoopLagMs: 0, overloaded: false, ...load },
  };
}

const topology = RegionTopology.fromFile(path.join(repoRoot, "deploy/regions.json"));

describe("LatencyRegionSelector", () => {
  const selector = new LatencyRegionSelector(topology);
  const nodes = [node("t1", "jp-tokyo"), node("o1", "jp-osaka"), node("f1", "jp-fukuoka")];

  it("places a room in the region with the lowest client RTT", () => {
    const chosen = selector.selectNode({ roomName: "session", localRegionId: "jp-tokyo", rttHints: { "jp-tokyo": 20, "jp-osaka": 4, "jp-fukuoka": 11 } }, nodes);
    expect(chosen?.regionId).toBe("jp-osaka");
  });

  it("without hints stays in the local region", () => {
    expect(selector.selectNode({ roomName: "session", localRegionId: "jp-fukuoka", rttHints: {} }, nodes)?.nodeId).toBe("f1");
  });

  it("never picks an overloaded or draining node, falling back to the next nearest region", () => {
    const busy = [node("o1", "jp-osaka", { overloaded: true }), node("o2", "jp-osaka", {}, true), node("t1", "jp-tokyo"), node("f1", "jp-fukuoka")];
    // From Osaka: Tokyo is 3 + 8 ms away, Fukuoka 3 + 10 ms, both estimated through the topology.
    const chosen = selector.selectNode({ roomName: "session", localRegionId: "jp-osaka", rttHints: { "jp-osaka": 3 } }, busy);
    expect(chosen?.nodeId).toBe("t1");
    expect(chosen?.load.overloaded).toBe(false);
  });

  it("picks the least-loaded node of the chosen region", () => {
    const region = [node("t1", "jp-tokyo", { ccu: 50, rooms: 3 }), node("t2", "jp-tokyo", { ccu: 10, rooms: 1 })];
    expect(selector.selectNode({ roomName: "x", localRegionId: "jp-tokyo", rttHints: {} }, region)?.nodeId).toBe("t2");
  });

  it("returns undefined when no node has capacity", () => {
    expect(selector.selectNode({ roomName: "x", localRegionId: "jp-tokyo", rttHints: {} }, [node("t1", "jp-tokyo", { overloaded: true })])).toBeUndefined();
  });

  it("estimates unprobed regions through the topology", () => {
    const estimate = selector.estimateRtt({ roomName: "x", localRegionId: "jp-tokyo", rttHints: { "jp-tokyo": 3 } }, "jp-sapporo");
    expect(estimate).toBe(3 + 16);
  });
});

describe("parseRttHints", () => {
  it("keeps only finite, non-negative numbers", () => {
    expect(parseRttHints({ a: 3, b: "4", c: -1, d: Infinity, e: NaN })).toEqual({ a: 3 });
    expect(parseRttHints("junk")).toEqual({});
    expect(parseRttHints(null)).toEqual({});
  });
});
