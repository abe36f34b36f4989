/**
 * Node 20 has no global `WebSocket` (it arrived unflagged in Node 22). @colyseus/sdk
 * 0.18.4's WebSocketTransport falls back to `ws` on its own, but @colyseus/core (used
 * by embedded nodes in tests), other Colyseus releases and application code read the
 * global, so give Node the same global a browser has. The SDK entry (index.ts) imports
 * this module only when the global is missing, so browser bundles never evaluate it.
 */
import { WebSocket as NodeWebSocket } from "ws";

if (typeof (globalThis as { WebSocket?: unknown }).WebSocket === "undefined") {
  (globalThis as { WebSocket?: unknown }).WebSocket = NodeWebSocket;
}
