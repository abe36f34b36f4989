/**
 * Bench child: a Colyseus server with one vanilla broadcast room (benchRoomName) on
 * 127.0.0.1, an ephemeral port, and the transport named by its argument ("uws" | "ws").
 * Ready data: ServerReady. No calls: the parent reads its CPU time from /proc.
 */
import "../../server/polyfills.ts";
import { Room, Server, type Client } from "@colyseus/core";
import { bindTransport } from "../../server/colyseus/transport.ts";
import { benchRoomName, stampMessage, type ServerReady, type TransportKind } from "./broadcast-protocol.ts";
import { serveParent } from "./parent-channel.ts";

/** Every message a client sends is broadcast, unchanged, to every client (the sender too). */
class BenchRoom extends Room {
  override messages = {
    [stampMessage](this: BenchRoom, _client: Client, sentAtMs: number) {
      this.broadcast(stampMessage, sentAtMs);
    },
  };
}

/** Binds through the node's own transport setup, so the bench measures what a region node runs. */
async function listen(kind: TransportKind): Promise<number> {
  const { transport, port } = await bindTransport(kind, "127.0.0.1", 0, 64 * 1024);
  const server = new Server({ transport, greet: false, gracefullyShutdown: false });
  server.define(benchRoomName, BenchRoom);
  await server.listen(port, "127.0.0.1");
  return port;
}

const kind = JSON.parse(process.argv[2] ?? "null") as TransportKind;
if (kind !== "uws" && kind !== "ws") throw new Error(`expected "uws" or "ws" as argument, got ${process.argv[2]}`);

const ready: ServerReady = { port: await listen(kind) };
serveParent({}, ready);
