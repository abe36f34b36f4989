/**
 * The node's route table (RouteTable.ts): health, RTT probes, metrics, the gateway
 * address, the live regions; `/matchmake/*` goes to the cluster matchmaker, and a room
 * module's rows (`/expo/…`) to that module. Dev routes join them in dev mode
 * (devRoutes.ts). Each row says its methods, body limit, who may ask and CORS; HttpEdge
 * enforces them before a handler runs.
 *
 * @example
 *   const table = new RouteTable(nodeRoutes(node, clusterMatchmaker, roomModules));
 */
import type { ClusterMatchmaker } from "../cluster/ClusterMatchmaker.ts";
import type { NodeInfo } from "../cluster/types.ts";
import type { NodeContext } from "../context.ts";
import type { RoomModule } from "../RoomModule.ts";
import type { TokenService } from "../auth/tokens.ts";
import { devRoutes } from "./devRoutes.ts";
import { webAppRoutes } from "../console/webApp.ts";
import { consoleRoutes } from "../console/consoleRoutes.ts";
import { Cached } from "./Cached.ts";
import { jsonResponse, textResponse } from "./responses.ts";
import { httpScheme } from "../tls.ts";
import type { HttpRoute } from "./RouteTable.ts";

/** What the routes read of the node. */
export interface RouteHost {
  readonly context: NodeContext;
  readonly tokens: TokenService;
  readonly isDraining: boolean;
  info(): NodeInfo;
}

/** How long an answer of `/regions` is reused: clients may poll it, the registry is read once a second at most. */
const REGIONS_CACHE_MS = 1000;

export function nodeRoutes(node: RouteHost, matchmaker: ClusterMatchmaker, modules: readonly RoomModule[]): HttpRoute[] {
  const { context } = node;
  // A cluster is all TLS or all plain (server/tls.ts): peers answer on our scheme.
  const scheme = httpScheme(context.config);
  const regions = new Cached(async () => {
    const byRegion: Record<string, Array<{ nodeId: string; url: string; draining: boolean; overloaded: boolean }>> = {};
    for (const n of await context.registry.list()) {
      (byRegion[n.regionId] ??= []).push({ nodeId: n.nodeId, url: `${scheme}://${n.publicAddress}`, draining: n.draining, overloaded: n.load.overloaded });
    }
    return { regions: Object.entries(byRegion).map(([id, list]) => ({ id, nodes: list })) };
  }, REGIONS_CACHE_MS);

  return [
    { path: "/healthz", methods: ["GET"], bodyLimit: 0, access: "public", cors: true, handle: async () => jsonResponse(node.isDraining ? 503 : 200, {
      status: node.isDraining ? "draining" : "ok", regionId: context.regionId, nodeId: context.nodeId,
      publicAddress: context.publicAddress, load: node.info().load, voice: context.voice?.health() ?? "off",
    }) },
    // Clients probe RTT with this, from the page of any allowed origin; keep it trivial.
    { path: "/ping", methods: ["GET"], bodyLimit: 0, access: "public", cors: true, handle: async () => textResponse(200, "pong", "text/plain", { "x-tsunagi-region": context.regionId }) },
    { path: "/metrics", methods: ["GET"], bodyLimit: 0, access: "metrics", cors: false, handle: async () => {
      const { contentType, body } = await context.metrics.render();
      return textResponse(200, body, contentType);
    } },
    // Adapters ask where to connect after picking this region by RTT.
    { path: "/gateway", methods: ["GET"], bodyLimit: 0, access: "public", cors: false, handle: async () => jsonResponse(node.isDraining ? 503 : 200, {
      url: context.gatewayUrl, regionId: context.regionId, nodeId: context.nodeId,
      ...(context.certGatewayUrl ? { certUrl: context.certGatewayUrl } : {}),
    }) },
    { path: "/regions", methods: ["GET"], bodyLimit: 0, access: "public", cors: true, handle: async () => jsonResponse(200, await regions.get()) },
    // Join options are a message: the frame limit bounds them.
    { path: "/matchmake/", methods: ["POST"], bodyLimit: context.config.limits.maxFrameBytes, access: "public", cors: true, handle: (request) => matchmaker.handle(request) },
    ...(context.config.devMode ? devRoutes(context, node.tokens) : []),
    // the visitor's expo, the operator's cockpit and the console (web/)
    ...webAppRoutes({ corsOrigins: context.config.http.corsOrigins }),
    ...consoleRoutes(context),
    ...modules.flatMap((module) => {
      const http = module.http;
      return http ? http.routes.map((rule): HttpRoute => ({ ...rule, handle: (request) => http.handle(context, request) })) : [];
    }),
  ];
}
