/**
 * Opening halls and reading their analytics, for hosts and operators.
 *
 * - `openHall(layout)`: validates the layout, stores it in the region's presence and
 *   creates one ExpoRoom per zone (or one for an unzoned hall), spreading the zones over
 *   the region's nodes, least loaded first. Each creation is signed (ExpoRoom accepts no
 *   other).
 * - HTTP, answered by every node (`handleExpoRequest`), with a host or admin bearer token
 *   whose scope, if it has one, names the hall (the expo room type's access rule):
 *     POST /expo/halls                         body: the layout JSON -> 201 {hallId, zones}
 *     DELETE /expo/halls/{hallId}              closes every zone (visitors get HALL_CLOSED) -> 200 {hallId, closed, visitors}
 *     GET  /expo/halls/{hallId}/analytics      ?format=json (default) | csv, &table=booths (default) | heatmap (read here, from the presence)
 *   Errors are `{code, error}` JSON with the HTTP status matchmaking uses (400 for
 *   LAYOUT_INVALID with an `issues` list, 401/403 for tokens, 404 unknown hall, 409 open already).
 */
import { matchMaker, ServerError } from "@colyseus/core";
import { ErrorCode, errorCodeName } from "../../proto/index.ts";
import { HALL_ID_PATTERN } from "../../proto/ids.ts";
import { authority, type Role, type TokenClaims } from "../../server/auth/tokens.ts";
import { authorizeRole, authorizeScope } from "../../server/auth/roomAccess.ts";
import type { NodeContext } from "../../server/context.ts";
import { hasCapacity, loadScore } from "../../server/cluster/RegionSelector.ts";
import { placeOnProcess } from "../../server/cluster/ClusterMatchmaker.ts";
import { bearerToken, codedErrorResponse, jsonResponse } from "../../server/http/responses.ts";
import type { RouteRule } from "../../server/http/RouteTable.ts";
import { LayoutError, parseHallLayout, type HallLayout } from "./HallLayout.ts";
import { zoneRoomId } from "./ZoneGeometry.ts";
import { analyticsCsv, heatmapProblem, type AnalyticsReport } from "./Analytics.ts";
import { AnalyticsStore, analyticsZones } from "./AnalyticsStore.ts";
import { sign } from "./signing.ts";
import { OPENING, expoAccess, type ExpoRoom, type ExpoRoomOptions } from "./ExpoRoom.ts";
import { hallKey } from "./HallChannels.ts";

/** Largest hall layout POST /expo/halls accepts: a layout is a document, not a message. */
export const HALL_LAYOUT_MAX_BYTES = 4 * 1024 * 1024;

/** Who may open and close halls and read their analytics. */
const HALL_ADMIN_ROLES: readonly Role[] = ["admin", ...(expoAccess.admin ?? [])]; // admin may do anything (roomAccess.authorizeRole)

/**
 * The node's route-table rows of hall administration: a host token checked before any
 * body is read, the layout's own body limit, and no CORS (admin routes).
 */
export const HALL_ADMIN_ROUTES: readonly RouteRule[] = [
  { path: "/expo/halls", methods: ["POST"], bodyLimit: HALL_LAYOUT_MAX_BYTES, access: "public", tokenRoles: HALL_ADMIN_ROLES, cors: false },
  { path: "/expo/halls/", methods: ["GET", "DELETE"], bodyLimit: 0, access: "public", tokenRoles: HALL_ADMIN_ROLES, cors: false },
];

export interface OpenedHall {
  hallId: string;
  zones: Array<{ zoneId: string; roomId: string; nodeId: string }>;
}

/**
 * Opens a hall in this node's region. ROOM_CONFLICT when a room of it is open already.
 * `authorize` sees the hall id before anything opens (a host's scope), and may throw.
 */
export async function openHall(context: NodeContext, layoutInput: unknown, source = "hall layout", authorize?: (hallId: string) => void): Promise<OpenedHall> {
  const layout = parseHallLayout(layoutInput, source);
  authorize?.(layout.hallId);
  // The node's analytics would refuse the hall when it opens, as an internal error: say so here.
  const heatmap = heatmapProblem(layout.width, layout.height, context.config.expo.heatmapCellSize);
  if (heatmap) throw new LayoutError(source, [`width × height (${layout.width} × ${layout.height} m): ${heatmap}`]);
  const zones = layout.zones.length ? layout.zones.map((z) => z.id) : [""];
  const roomIds = zones.map((zoneId) => zoneId ? zoneRoomId(layout.hallId, layout, zoneId) : layout.hallId);
  for (const roomId of roomIds) {
    const entry = await context.directory.get(roomId);
    if (entry && (await context.registry.get(entry.nodeId))) {
      throw new ServerError(ErrorCode.ROOM_CONFLICT, `hall "${layout.hallId}" is open already (room ${roomId} on node ${entry.nodeId})`);
    }
  }
  const nodes = (await context.registry.list(context.regionId)).filter(hasCapacity).sort((a, b) => loadScore(a) - loadScore(b) || a.nodeId.localeCompare(b.nodeId));
  if (nodes.length === 0) throw new ServerError(ErrorCode.OVERLOADED, `no node in region ${context.regionId} has capacity for hall "${layout.hallId}"`);
  await matchMaker.presence.set(hallKey(layout.hallId, "layout"), JSON.stringify(layout));

  const opened: OpenedHall = { hallId: layout.hallId, zones: [] };
  for (let i = 0; i < zones.length; i++) {
    const node = nodes[i % nodes.length];
    const options: ExpoRoomOptions = {
      roomId: roomIds[i], hall: layout, zone: zones[i] || undefined,
      opening: sign(OPENING, { hallId: layout.hallId, zoneId: zones[i], roomId: roomIds[i] }, 60_000),
    };
    placeOnProcess(options, node.processId);
    try {
      await matchMaker.createRoom("expo", options);
    } catch (error) {
      // All or nothing: close the zones already open, so opening again does not meet them.
      if (opened.zones.length > 0) {
        await closeHall(context, layout.hallId, "a failed opening").catch((closing) => {
          context.logger.error({ err: closing, hallId: layout.hallId }, `hall "${layout.hallId}": closing the zones of a failed opening failed`);
        });
      }
      throw error;
    }
    opened.zones.push({ zoneId: zones[i], roomId: roomIds[i], nodeId: node.nodeId });
  }
  context.logger.info({ hallId: layout.hallId, zones: opened.zones }, `opened hall "${layout.hallId}" (${layout.booths.length} booths${layout.zones.length ? `, ${layout.zones.length} zones` : ""})`);
  return opened;
}

/** The hall's stored layout, or undefined when it was never opened in this region. */
export async function hallLayout(hallId: string): Promise<HallLayout | undefined> {
  const raw = await matchMaker.presence.get(hallKey(hallId, "layout"));
  return raw ? (JSON.parse(raw) as HallLayout) : undefined;
}

/**
 * The hall's analytics, read on this node from the region's presence: while the hall is
 * open its entrance room first stores its latest figures (the other zones' are at most a
 * second old); once it is closed, the figures its zones left.
 */
export async function hallAnalytics(context: NodeContext, hallId: string): Promise<AnalyticsReport> {
  const layout = await hallLayout(hallId);
  if (!layout) throw new ServerError(ErrorCode.UNKNOWN_ROOM, `no hall "${hallId}" in this region`);
  if (await matchMaker.driver.findOne({ roomId: hallId })) {
    try {
      await matchMaker.remoteRoomCall<ExpoRoom>(hallId, "flushAnalytics", [], 5000);
    } catch (error) {
      throw new ServerError(ErrorCode.REGION_UNAVAILABLE, `hall "${hallId}" did not answer: ${(error as Error).message}`);
    }
  }
  const options = { hallId, booths: layout.booths.map((b) => b.id), width: layout.width, height: layout.height, cellSize: context.config.expo.heatmapCellSize };
  return new AnalyticsStore(matchMaker.presence, options).report(analyticsZones(layout), Date.now());
}

/** Closes every zone room of a hall; its layout, bans, mutes and analytics stay (for export, and a reopening). */
export async function closeHall(context: NodeContext, hallId: string, by: string): Promise<{ hallId: string; closed: string[]; visitors: number }> {
  const layout = await hallLayout(hallId);
  if (!layout) throw new ServerError(ErrorCode.UNKNOWN_ROOM, `no hall "${hallId}" in this region`);
  const roomIds = layout.zones.length ? layout.zones.map((z) => zoneRoomId(hallId, layout, z.id)) : [hallId];
  const closed: string[] = [];
  let visitors = 0;
  for (const roomId of roomIds) {
    if (!(await matchMaker.driver.findOne({ roomId }))) continue;
    visitors += await matchMaker.remoteRoomCall<ExpoRoom>(roomId, "closeHall", [by], 10_000) as number;
    closed.push(roomId);
  }
  if (closed.length === 0) throw new ServerError(ErrorCode.UNKNOWN_ROOM, `hall "${hallId}" is not open`);
  await matchMaker.presence.del(hallKey(hallId, "visitors"));
  context.logger.info({ hallId, closed, visitors, by }, `closed hall "${hallId}" (${visitors} visitors were in it)`);
  return { hallId, closed, visitors };
}

/** Answers /expo/... requests. */
export async function handleExpoRequest(context: NodeContext, request: Request): Promise<Response> {
  const url = new URL(request.url);
  try {
    const host = await requireHost(request);
    const authorizeHall = (hallId: string) => authorizeScope(host, [hallId], `hall "${hallId}"`);
    if (request.method === "POST" && url.pathname === "/expo/halls") {
      // The edge has read the body within HALL_LAYOUT_MAX_BYTES (its row above).
      const text = await request.text();
      let body: unknown;
      try { body = JSON.parse(text); } catch (error) {
        throw new LayoutError("request body", [`not JSON: ${(error as Error).message}`]);
      }
      return jsonResponse(201, await openHall(context, body, "request body", authorizeHall));
    }
    const path = url.pathname.match(/^\/expo\/halls\/([^/]+)(\/analytics)?$/);
    const hallId = path && HALL_ID_PATTERN.test(path[1]!) ? path[1]! : undefined;
    if (hallId) authorizeHall(hallId);
    if (request.method === "DELETE" && hallId && !path![2]) return jsonResponse(200, await closeHall(context, hallId, host.sub));
    if (request.method === "GET" && hallId && path![2]) {
      const report = await hallAnalytics(context, hallId);
      const format = url.searchParams.get("format") ?? "json";
      const table = url.searchParams.get("table") ?? "booths";
      if (format === "json") return jsonResponse(200, report);
      if (format === "csv" && (table === "booths" || table === "heatmap")) {
        return new Response(analyticsCsv(report, table), { status: 200, headers: {
          "content-type": "text/csv; charset=utf-8", "cache-control": "no-store",
          "content-disposition": `attachment; filename="${report.hallId}-${table}.csv"`,
        } });
      }
      throw new ServerError(ErrorCode.WRONG_TYPE, `format must be json or csv, and table booths or heatmap (got format=${format.slice(0, 20)}, table=${table.slice(0, 20)})`);
    }
    throw new ServerError(ErrorCode.UNKNOWN_ROOM, `no ${request.method} ${url.pathname.slice(0, 100)} here (POST /expo/halls, DELETE /expo/halls/{hallId}, GET /expo/halls/{hallId}/analytics)`);
  } catch (error) {
    const code = typeof (error as { code?: unknown }).code === "number" ? (error as { code: number }).code : ErrorCode.INTERNAL;
    const message = (error as Error).message;
    context.metrics.errors.inc({ code: errorCodeName(code), source: "expo-http" });
    context.logger[code === ErrorCode.INTERNAL ? "error" : "warn"]({ path: url.pathname, code: errorCodeName(code), err: code === ErrorCode.INTERNAL ? error : undefined }, `expo request refused: ${message}`);
    return codedErrorResponse(code, message, error instanceof LayoutError ? { issues: error.issues } : {});
  }
}

/** The claims of a bearer token whose role may administer halls (expoAccess.admin); each route then checks its scope. */
async function requireHost(request: Request): Promise<TokenClaims> {
  const token = bearerToken(request.headers.get("authorization"));
  if (!token) throw new ServerError(ErrorCode.TOKEN_MISSING, "send a host token: Authorization: Bearer <token>");
  const claims = await authority().verify(token);
  authorizeRole(claims, expoAccess.admin ?? [], "open or close halls or read their analytics");
  return claims;
}
