/**
 * Bench child: an HTTP server on 127.0.0.1, an ephemeral port, answering `POST /upload`
 * (body up to 4 MiB) with 200 once it has the body. Its argument picks the body handling:
 * "stock" is @colyseus/uwebsockets-transport's own request handler (the body joined on
 * every chunk), "edge" the node's (server/http/HttpEdge.ts: counted per chunk, joined once).
 * Ready data: `{ port }`.
 */
import "../../server/polyfills.ts";
import uWS from "uWebSockets.js";
import { createEndpoint, createRouter } from "@colyseus/core";
import { uWebSocketsTransport } from "@colyseus/uwebsockets-transport";
import { bindTransport } from "../../server/colyseus/transport.ts";
import { HttpEdge } from "../../server/http/HttpEdge.ts";
import { RouteTable } from "../../server/http/RouteTable.ts";
import { CorsPolicy } from "../../server/http/cors.ts";
import { serveParent } from "./parent-channel.ts";

export type BodyHandling = "stock" | "edge";
export const UPLOAD_PATH = "/upload";
const MAX_BODY_BYTES = 4 * 1024 * 1024;

async function listen(handling: BodyHandling): Promise<number> {
  const received = async (request: Request) => new Response(String((await request.arrayBuffer()).byteLength));
  if (handling === "edge") {
    const { transport, port } = await bindTransport("uws", "127.0.0.1", 0, 64 * 1024);
    transport.serveHttp(new HttpEdge({
      routes: new RouteTable([{ path: UPLOAD_PATH, methods: ["POST"], bodyLimit: MAX_BODY_BYTES, access: "public", cors: false, handle: received }]),
      cors: new CorsPolicy([], false),
      readTimeoutMs: 60_000,
    }));
    return port;
  }
  const transport = new uWebSocketsTransport();
  transport.bindRouter(createRouter({ upload: createEndpoint(UPLOAD_PATH, { method: "POST" }, async (ctx: { request?: Request }) => received(ctx.request!)) }) as never);
  return new Promise((resolve, reject) => {
    transport.app.listen("127.0.0.1", 0, (socket) => socket ? resolve(uWS.us_socket_local_port(socket as unknown as uWS.us_socket)) : reject(new Error("cannot listen")));
  });
}

const handling = JSON.parse(process.argv[2] ?? "null") as BodyHandling;
if (handling !== "stock" && handling !== "edge") throw new Error(`expected "stock" or "edge" as argument, got ${process.argv[2]}`);
serveParent({}, { port: await listen(handling) });
