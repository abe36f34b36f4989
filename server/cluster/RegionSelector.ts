/**
 * Where a new room goes. An interface, so placement policy can change by config without
 * touching matchmaking (see LiveKit's routing/selector).
 */
import type { NodeInfo } from "./types.ts";
import type { RegionTopology } from "./topology.ts";

export interface PlacementRequest {
  roomName: string;
  /** The region of the node that received the request. */
  localRegionId: string;
  /** Client-measured RTT per region id, from RegionProbe; may be empty. */
  rttHints: Record<string, number>;
}

export interface RegionSelector {
  /** Picks the node for a new room among live nodes, or undefined when none has capacity. */
  selectNode(request: PlacementRequest, nodes: NodeInfo[]): NodeInfo | undefined;
}

/** A node can take a new room when it is neither draining nor overloaded. */
export function hasCapacity(node: NodeInfo): boolean {
  return !node.draining && !node.load.overloaded;
}

/**
 * Default policy: the nearest region that has capacity, then its least-loaded node.
 *
 * "Nearest" is the client's own RTT hint when it sent one. For regions it did not probe,
 * the estimate is its RTT to the local region plus the inter-region RTT from the topology,
 * so a client with no hints at all stays in the region it asked.
 */
export class LatencyRegionSelector implements RegionSelector {
  constructor(private readonly topology?: RegionTopology) {}

  selectNode(request: PlacementRequest, nodes: NodeInfo[]): NodeInfo | undefined {
    const candidates = nodes.filter(hasCapacity);
    if (candidates.length === 0) return undefined;

    const byRegion = new Map<string, NodeInfo[]>();
    for (const node of candidates) {
      const list = byRegion.get(node.regionId) ?? [];
      list.push(node);
      byRegion.set(node.regionId, list);
    }
    const regions = [...byRegion.keys()].sort((a, b) =>
      this.estimateRtt(request, a) - this.estimateRtt(request, b) || a.localeCompare(b));
    const nodesOfBest = byRegion.get(regions[0])!;
    return nodesOfBest.sort((a, b) => loadScore(a) - loadScore(b) || a.nodeId.localeCompare(b.nodeId))[0];
  }

  estimateRtt(request: PlacementRequest, regionId: string): number {
    const hint = request.rttHints[regionId];
    if (Number.isFinite(hint) && hint >= 0) return hint;
    const toLocal = Number.isFinite(request.rttHints[request.localRegionId]) ? request.rttHints[request.localRegionId] : 0;
    if (regionId === request.localRegionId) return toLocal;
    const between = this.topology?.rttBetween(request.localRegionId, regionId) ?? Number.POSITIVE_INFINITY;
    // Unknown distance still beats "no capacity anywhere": rank it last but keep it.
    return Number.isFinite(between) ? toLocal + between : Number.MAX_SAFE_INTEGER;
  }
}

/** Lower is less loaded: clients plus ten per room. */
export function loadScore(node: NodeInfo): number {
  return node.load.ccu + node.load.rooms * 10;
}

/** Parses client RTT hints from join options, ignoring anything that is not a finite number. */
export function parseRttHints(value: unknown): Record<string, number> {
  const hints: Record<string, number> = {};
  if (!value || typeof value !== "object") return hints;
  for (const [regionId, ms] of Object.entries(value as Record<string, unknown>)) {
    if (typeof ms === "number" && Number.isFinite(ms) && ms >= 0 && regionId.length <= 64) hints[regionId] = ms;
  }
  return hints;
}
