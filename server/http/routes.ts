/**
 * The node's HTTP routes: health, RTT probes, metrics, the gateway address, the live
 * regions; `/matchmake/*` goes to the cluster matchmaker, and a room module's prefix
 * (`/expo/`) to that module. Dev routes join them in dev mode (devRoutes.ts).
 *
 * @example
 *   server.router = nodeRoutes(node, clusterMatchmaker, roomModules);
 */
import { createEndpoint, createRouter } from "@colyseus/core";
import type { ClusterMatchmaker } from "../cluster/ClusterMatchmaker.ts";
import type { NodeInfo } from "../cluster/types.ts";
import type { NodeContext } from "../context.ts";
import type { RoomModule } from "../RoomModule.ts";
import type { TokenService } from "../auth/tokens.ts";
import { devEndpoints } from "./devRoutes.ts";
import { jsonResponse, textResponse } from "./responses.ts";
import { httpScheme } from "../tls.ts";

/** What the routes read of the node. */
export interface RouteHost {
  readonly context: NodeContext;
  readonly tokens: TokenService;
  readonly isDraining: boolean;
  info(): NodeInfo;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Endpoint = any;

export function nodeRoutes(node: RouteHost, matchmaker: ClusterMatchmaker, modules: readonly RoomModule[]) {
  const { context } = node;
  const endpoints: Record<string, Endpoint> = {
    healthz: createEndpoint("/healthz", { method: "GET" }, async () => jsonResponse(node.isDraining ? 503 : 200, {
      status: node.isDraining ? "draining" : "ok", regionId: context.regionId, nodeId: context.nodeId,
      publicAddress: context.publicAddress, load: node.info().load,
    })),
    // Clients probe RTT with this; keep it trivial. CORS comes from the transport.
    ping: createEndpoint("/ping", { method: "GET" }, async () => textResponse(200, "pong", "text/plain", { "x-tsunagi-region": context.regionId })),
    metrics: createEndpoint("/metrics", { method: "GET" }, async () => {
      const { contentType, body } = await context.metrics.render();
      return textResponse(200, body, contentType);
    }),
    // Adapters ask where to connect after picking this region by RTT.
    gateway: createEndpoint("/gateway", { method: "GET" }, async () => jsonResponse(node.isDraining ? 503 : 200, {
      url: context.gatewayUrl, regionId: context.regionId, nodeId: context.nodeId,
    })),
    regions: createEndpoint("/regions", { method: "GET" }, async () => {
      // A cluster is all TLS or all plain (server/tls.ts): peers answer on our scheme.
      const scheme = httpScheme(context.config);
      const regions: Record<string, Array<{ nodeId: string; url: string; draining: boolean; overloaded: boolean }>> = {};
      for (const n of await context.registry.list()) {
        (regions[n.regionId] ??= []).push({ nodeId: n.nodeId, url: `${scheme}://${n.publicAddress}`, draining: n.draining, overloaded: n.load.overloaded });
      }
      return jsonResponse(200, { regions: Object.entries(regions).map(([id, list]) => ({ id, nodes: list })) });
    }),
    ...(context.config.devMode ? devEndpoints(context, node.tokens) : {}),
  };
  const moduleRoutes = modules.flatMap((module) => (module.http ? [module.http] : []));
  return createRouter(endpoints, {
    openapi: { disabled: true },
    onRequest: async (request: Request) => {
      const pathname = new URL(request.url).pathname;
      if (request.method === "POST" && pathname.startsWith("/matchmake/")) return matchmaker.handle(request);
      const route = moduleRoutes.find((candidate) => pathname.startsWith(candidate.prefix));
      return route ? route.handle(context, request) : undefined;
    },
  } as Endpoint);
}
