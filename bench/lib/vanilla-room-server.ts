/**
 * Bench child: a Colyseus server with the vanilla room (`vanillaRoomName`: no state, no
 * auth, 200 seats like the `session` room) on uWS, 127.0.0.1 and an ephemeral port,
 * bound through the node's own transport setup. The baseline of the connections bench.
 * Ready data: { port }. Calls: memory → MemoryFigures.
 */
import "../../server/polyfills.ts";
import { Room, Server } from "@colyseus/core";
import { bindTransport } from "../../server/colyseus/transport.ts";
import { vanillaRoomName } from "./connections-protocol.ts";
import { memoryMethods } from "./measure.ts";
import { serveParent } from "./parent-channel.ts";

class VanillaRoom extends Room {
  override maxClients = 200;
}

const { transport, port } = await bindTransport("uws", "127.0.0.1", 0, 64 * 1024);
const server = new Server({ transport, greet: false, gracefullyShutdown: false });
server.define(vanillaRoomName, VanillaRoom);
await server.listen(port, "127.0.0.1");
serveParent(memoryMethods(), { port });
