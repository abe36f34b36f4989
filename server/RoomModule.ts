/**
 * The seam between the node and the room types it serves. The node knows no room: its
 * entry (server/main.ts) hands it the modules that rooms/index.ts lists, and each module
 * brings its room classes, the HTTP routes it answers, and what it does once the node
 * listens.
 *
 * @example
 *   export const expoModule: RoomModule = {
 *     name: "expo",
 *     rooms: { expo: ExpoRoom },
 *     http: { routes: HALL_ADMIN_ROUTES, handle: handleExpoRequest },
 *     started: async (context) => { if (context.config.expo.hallFile) await openHall(context, …); },
 *   };
 */
import type { Room } from "@colyseus/core";
import type { NodeContext } from "./context.ts";
import type { RouteRule } from "./http/RouteTable.ts";

export interface RoomModule {
  /** For logs: "expo", "teleop". */
  name: string;
  /** Room types by matchmaking name. */
  rooms: Record<string, new () => Room>;
  /**
   * The module's rows of the node's route table (server/http/RouteTable.ts: path or
   * prefix, methods, body limit, token roles, CORS), all answered by `handle` once the
   * edge has admitted the request.
   */
  http?: { routes: readonly RouteRule[]; handle(context: NodeContext, request: Request): Promise<Response> };
  /** Runs once the node listens; a rejection stops the node and fails its start. */
  started?(context: NodeContext): Promise<void>;
}
