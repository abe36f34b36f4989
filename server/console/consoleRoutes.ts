/**
 * Read-only admin routes for the operations console (web/src/pages/console), for what
 * the node has but no other route tells:
 *
 *   GET /console/api/nodes            every live node with its load, and this node's round
 *                                     trip to each other node (a row of the RTT matrix;
 *                                     each node answers its own row)
 *   GET /console/api/audit/:roomId    a teleop room hosted here: its audit log's verify
 *                                     report and its newest entries (`?limit=`, ≤ 200)
 *
 * Admin token only, no CORS, no body, GET only. Nothing here changes anything: the
 * admin actions are the existing routes (POST /rooms/:roomId/handoff).
 *
 * @example
 *   routes.push(...consoleRoutes(context));
 *   // GET /console/api/nodes -> { regionId, nodeId, nodes: [{ nodeId, regionId, load, draining, rttMs }] }
 */
import { ServerError, matchMaker } from "@colyseus/core";
import { ErrorCode, errorCodeName } from "../../proto/index.ts";
import { FULL_ROOM_ID_PATTERN } from "../../proto/ids.ts";
import type { NodeContext } from "../context.ts";
import type { NodeInfo } from "../cluster/types.ts";
import type { AuditSink } from "../audit/AuditSink.ts";
import { NodeRpc, parsePeerRoutes } from "../cluster/NodeRpc.ts";
import { Cached } from "../http/Cached.ts";
import { answerJson } from "../http/responses.ts";
import type { HttpRoute } from "../http/RouteTable.ts";
import { httpScheme } from "../tls.ts";

/** What the routes read of the node (NodeContext, narrowed for tests). */
export interface ConsoleSource {
  regionId: string;
  nodeId: string;
  listNodes(): Promise<NodeInfo[]>;
  /** Milliseconds for a round trip to `node` (GET /healthz), or undefined when it did not answer in time. */
  rttTo(node: NodeInfo): Promise<number | undefined>;
  /** The type of room `roomId` when it is hosted on this node. */
  localRoomName(roomId: string): string | undefined;
  audit(roomId: string): AuditSink;
  refused?(code: number, error: unknown): void;
}

/** How long an answer of /console/api/nodes is reused (it probes every peer). */
const NODES_CACHE_MS = 2000;
/** Bound of one RTT probe, ms. */
const PROBE_TIMEOUT_MS = 1000;
const DEFAULT_AUDIT_ENTRIES = 50;
const MAX_AUDIT_ENTRIES = 200;
const AUDIT_PATH = /^\/console\/api\/audit\/([^/]+)$/;

export function consoleRoutes(context: NodeContext): HttpRoute[] {
  const { config } = context;
  const rpc = new NodeRpc(context.nodeId, PROBE_TIMEOUT_MS, { scheme: httpScheme(config), caFile: config.tls.caFile }, parsePeerRoutes(config.cluster.peerRoutes));
  return consoleRoutesFor({
    regionId: context.regionId,
    nodeId: context.nodeId,
    listNodes: () => context.registry.list(),
    rttTo: async (node) => {
      const started = performance.now();
      return (await rpc.answersAs(node, "/healthz", PROBE_TIMEOUT_MS)) ? Math.round((performance.now() - started) * 10) / 10 : undefined;
    },
    localRoomName: (roomId) => matchMaker.getLocalRoomById(roomId)?.roomName,
    audit: (roomId) => context.audit(roomId),
    refused: (code, error) => {
      if (code === ErrorCode.INTERNAL) context.logger.error({ err: error }, "console route failed");
      context.metrics.errors.inc({ code: errorCodeName(code), source: "console" });
    },
  });
}

export function consoleRoutesFor(source: ConsoleSource): HttpRoute[] {
  const nodes = new Cached(async () => {
    const list = await source.listNodes();
    const rows = await Promise.all(list.map(async (node) => ({
      nodeId: node.nodeId, regionId: node.regionId, publicAddress: node.publicAddress, load: node.load, draining: node.draining,
      startedAt: node.startedAt, heartbeatAt: node.heartbeatAt,
      rttMs: node.nodeId === source.nodeId ? 0 : (await source.rttTo(node).catch(() => undefined)) ?? null,
    })));
    return { regionId: source.regionId, nodeId: source.nodeId, measuredAt: Date.now(), nodes: rows };
  }, NODES_CACHE_MS);
  const refused = source.refused ?? (() => {});
  const rule = { methods: ["GET"], bodyLimit: 0, access: "public", tokenRoles: ["admin"], cors: false } as const;
  return [
    { ...rule, path: "/console/api/nodes", handle: () => answerJson(() => nodes.get(), refused) },
    { ...rule, path: "/console/api/audit/", handle: (request) => answerJson(() => auditOf(source, new URL(request.url)), refused) },
  ];
}

async function auditOf(source: ConsoleSource, url: URL) {
  const match = AUDIT_PATH.exec(url.pathname);
  const roomId = match ? decodeURIComponent(match[1]!) : "";
  if (!FULL_ROOM_ID_PATTERN.test(roomId)) throw new ServerError(ErrorCode.UNKNOWN_ROOM, "GET /console/api/audit/:roomId (a room id)");
  // Only a live teleop room of this node: a made-up id must not open an audit stream.
  const roomName = source.localRoomName(roomId);
  if (roomName !== "teleop") {
    throw new ServerError(ErrorCode.UNKNOWN_ROOM, roomName ? `room ${roomId} is a ${roomName} room: only teleop rooms keep an audit log` : `room ${roomId} is not hosted on node ${source.nodeId}: ask the node the lobby lists for it`);
  }
  const asked = Number(url.searchParams.get("limit") ?? DEFAULT_AUDIT_ENTRIES);
  const limit = Number.isInteger(asked) && asked > 0 ? Math.min(asked, MAX_AUDIT_ENTRIES) : DEFAULT_AUDIT_ENTRIES;
  const log = source.audit(roomId);
  const [verify, entries] = await Promise.all([log.verify(), log.export()]);
  return { roomId, regionId: source.regionId, nodeId: source.nodeId, verify, total: entries.length, entries: entries.slice(-limit).reverse() };
}
