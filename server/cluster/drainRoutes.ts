/**
 * Draining by an admin over HTTP (the console's admin page, or a script), beside SIGTERM on
 * the node's own host:
 *
 *   POST /nodes/:nodeId/drain        drain that node: asked of it, or forwarded to it
 *   POST /regions/:regionId/drain    drain every live node of the region, each asked in turn
 *
 * A drained node does what SIGTERM makes it do (RegionNode.stop): it takes no new seats,
 * hands each room that can move to the nearest other node with capacity, sessions intact,
 * tells the clients of the rest NODE_DRAINING, and its process exits. It answers first,
 * then drains.
 *
 * Admin token only, no body, no CORS. A forwarded request carries the admin's own token,
 * and a node that receives one forwarded drains itself only (it never forwards again).
 *
 * @example
 *   routes.push(...drainRoutes({ nodeId, regionId, listNodes, forward, drainSelf, refused }));
 *   // POST /regions/jp-osaka/drain -> { regionId: "jp-osaka", nodes: [{ nodeId: "osaka-1", draining: true }] }
 */
import { ServerError } from "@colyseus/core";
import { ErrorCode } from "../../proto/index.ts";
import { NODE_ID_PATTERN, REGION_ID_PATTERN } from "../../proto/ids.ts";
import { answerJson } from "../http/responses.ts";
import type { HttpRoute } from "../http/RouteTable.ts";
import { FORWARDED_HEADER } from "./NodeRpc.ts";
import type { NodeInfo } from "./types.ts";

/** What the routes need of the node (RegionNode, narrowed for tests). */
export interface DrainSource {
  nodeId: string;
  regionId: string;
  listNodes(): Promise<NodeInfo[]>;
  /** POSTs `path` with no body to `node` with `authorization`; resolves with its JSON answer, rejects with its coded error. */
  forward(node: NodeInfo, path: string, authorization: string): Promise<unknown>;
  /** Starts this node's drain (after the answer has gone): as SIGTERM does. */
  drainSelf(reason: string): void;
  refused?(code: number, error: unknown): void;
}

export interface DrainAnswer {
  nodeId: string;
  regionId: string;
  draining: true;
}

const NODE_PATH = /^\/nodes\/([^/]+)\/drain$/;
const REGION_PATH = /^\/regions\/([^/]+)\/drain$/;
/** How long after its answer a node starts its own drain: the answer goes out first. */
const ANSWER_FIRST_MS = 50;

export function drainRoutes(source: DrainSource): HttpRoute[] {
  const refused = source.refused ?? (() => {});
  const rule = { methods: ["POST"], bodyLimit: 0, access: "public", tokenRoles: ["admin"], cors: false } as const;

  const drainHere = (why: string): DrainAnswer => {
    const timer = setTimeout(() => source.drainSelf(why), ANSWER_FIRST_MS);
    timer.unref?.();
    return { nodeId: source.nodeId, regionId: source.regionId, draining: true };
  };

  const drainNode = async (request: Request) => {
    const nodeId = idFrom(NODE_PATH, request, NODE_ID_PATTERN, "POST /nodes/:nodeId/drain (a node id)");
    if (nodeId === source.nodeId) return drainHere("drain requested by an admin");
    if (request.headers.has(FORWARDED_HEADER)) throw new ServerError(ErrorCode.REGION_UNAVAILABLE, `this is node ${source.nodeId}, not ${nodeId}: the registry moved on; ask again`);
    const node = (await source.listNodes()).find((candidate) => candidate.nodeId === nodeId);
    if (!node) throw new ServerError(ErrorCode.REGION_UNAVAILABLE, `no live node ${nodeId} in the cluster (GET /regions lists them)`);
    return source.forward(node, `/nodes/${encodeURIComponent(nodeId)}/drain`, request.headers.get("authorization") ?? "");
  };

  const drainRegion = async (request: Request) => {
    const regionId = idFrom(REGION_PATH, request, REGION_ID_PATTERN, "POST /regions/:regionId/drain (a region id)");
    const nodes = (await source.listNodes()).filter((node) => node.regionId === regionId && !node.draining);
    if (!nodes.length) throw new ServerError(ErrorCode.REGION_UNAVAILABLE, `region ${regionId} has no live node that is not draining already (GET /regions lists them)`);
    const authorization = request.headers.get("authorization") ?? "";
    // Others first, this node last: its own drain must not cut the others' requests short.
    const ordered = [...nodes.filter((node) => node.nodeId !== source.nodeId), ...nodes.filter((node) => node.nodeId === source.nodeId)];
    const results: Array<{ nodeId: string; draining: boolean; error?: string }> = [];
    for (const node of ordered) {
      if (node.nodeId === source.nodeId) {
        drainHere(`drain of region ${regionId} requested by an admin`);
        results.push({ nodeId: node.nodeId, draining: true });
        continue;
      }
      await source.forward(node, `/nodes/${encodeURIComponent(node.nodeId)}/drain`, authorization).then(
        () => results.push({ nodeId: node.nodeId, draining: true }),
        (error: Error) => results.push({ nodeId: node.nodeId, draining: false, error: error.message }),
      );
    }
    return { regionId, nodes: results };
  };

  return [
    { ...rule, path: "/nodes/", handle: (request) => answerJson(() => drainNode(request), refused) },
    { ...rule, path: "/regions/", handle: (request) => answerJson(() => drainRegion(request), refused) },
  ];
}

function idFrom(path: RegExp, request: Request, pattern: RegExp, shape: string): string {
  const match = path.exec(new URL(request.url).pathname);
  let id = "";
  try { id = match ? decodeURIComponent(match[1]!) : ""; } catch { /* a malformed escape: not an id */ }
  if (!pattern.test(id)) throw new ServerError(ErrorCode.WRONG_TYPE, shape);
  return id;
}
