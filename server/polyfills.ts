/**
 * Colyseus 0.18 declares Node 22 and uses the global `WebSocket` (for its ready-state
 * constants on reconnect). Node 20 has none: provide it from `ws` before Colyseus runs.
 * Import this module first in every entry point.
 */
import { WebSocket as WsWebSocket } from "ws";

if (typeof (globalThis as any).WebSocket === "undefined") {
  (globalThis as any).WebSocket = WsWebSocket;
}
