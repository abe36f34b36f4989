/**
 * Bench child: a Colyseus server with the vanilla room (`vanillaRoomName`: no state, no
 * auth, 200 seats like the `session` room) and the same plain room holding the `session`
 * room's participant list (`vanillaStateRoomName`: its state class, filled the same way
 * on join), on uWS, 127.0.0.1 and an ephemeral port, bound through the node's own
 * transport setup. The baselines of the connections bench. Ready data: { port }.
 * Calls: memory → MemoryFigures.
 */
import "../../server/polyfills.ts";
import { Room, Server, type Client } from "@colyseus/core";
import { bindTransport } from "../../server/colyseus/transport.ts";
import { vanillaRoomName, vanillaStateRoomName } from "./connections-protocol.ts";
import { Participant, SessionState } from "../../rooms/session/SessionRoom.ts";
import { memoryMethods } from "./measure.ts";
import { serveParent } from "./parent-channel.ts";

class VanillaRoom extends Room {
  override maxClients = 200;
}

/** The vanilla room with the `session` room's state: what its clients decode, without Tsunagi's auth, directory and guards. */
class VanillaStateRoom extends Room {
  override maxClients = 200;
  override state = new SessionState();

  override onJoin(client: Client) {
    const participant = new Participant();
    participant.name = client.sessionId;
    participant.role = "visitor";
    this.state.participants.set(client.sessionId, participant);
  }

  override onLeave(client: Client) {
    this.state.participants.delete(client.sessionId);
  }
}

const { transport, port } = await bindTransport("uws", "127.0.0.1", 0, 64 * 1024);
const server = new Server({ transport, greet: false, gracefullyShutdown: false });
server.define(vanillaRoomName, VanillaRoom);
server.define(vanillaStateRoomName, VanillaStateRoom);
await server.listen(port, "127.0.0.1");
serveParent(memoryMethods(), { port });
