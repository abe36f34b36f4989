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
 *     http: { prefix: "/expo/", handle: handleExpoRequest, bodyLimits: { "/expo/halls": HALL_LAYOUT_MAX_BYTES } },
 *     started: async (context) => { if (context.config.expo.hallFile) await openHall(context, …); },
 *   };
 */
import type { Room } from "@colyseus/core";
import type { NodeContext } from "./context.ts";

export interface RoomModule {
  /** For logs: "expo", "teleop". */
  name: string;
  /** Room types by matchmaking name. */
  rooms: Record<string, new () => Room>;
  /**
   * HTTP requests whose path starts with `prefix` go to `handle`. `bodyLimits` raises the
   * request-body bound (the frame limit) for some exact paths: a document, not a message.
   */
  http?: { prefix: string; handle(context: NodeContext, request: Request): Promise<Response>; bodyLimits?: Readonly<Record<string, number>> };
  /** Runs once the node listens; a rejection stops the node and fails its start. */
  started?(context: NodeContext): Promise<void>;
}
