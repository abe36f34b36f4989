/**
 * The two WebSocket transports, bound before Colyseus starts.
 *
 * A node must know its own address before Colyseus boots: the matchmaker stamps every
 * seat reservation with `publicAddress`, fixed at setup. With port 0 (tests) the port is
 * only known after binding, so the socket is bound first and Colyseus' later `listen()`
 * merely reports success. The uWS transport's own `listen()` also ignores the host.
 */
import http from "node:http";
import https from "node:https";
import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import uWS from "uWebSockets.js";
import { uWebSocketsTransport } from "@colyseus/uwebsockets-transport";
import { WebSocketTransport } from "@colyseus/ws-transport";
import type { Transport } from "@colyseus/core";
import type { TlsFiles } from "../tls.ts";

/** Request-body bounds of the routes allowed more than the frame limit, by exact path (RoomModule.http.bodyLimits). */
export type BodyLimits = Readonly<Record<string, number>>;

class PreboundUwsTransport extends uWebSocketsTransport {
  /** The listen socket opened by bind(), closed by shutdown(). */
  private listenSocket: uWS.us_listen_socket | false = false;
  /** Largest HTTP request body accepted (by Content-Length). */
  maxBodyBytes = 64 * 1024;
  /** Larger bounds of some routes, by exact path. */
  bodyLimits: BodyLimits = {};

  bind(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.app.listen(host, port, (socket) => {
        if (!socket) { reject(new Error(`cannot listen on ${host}:${port} (address in use or not available)`)); return; }
        this.listenSocket = socket;
        resolve(uWS.us_socket_local_port(socket as unknown as uWS.us_socket));
      });
    });
  }

  override listen(_port: number, _hostname?: string, _backlog?: number, listeningListener?: () => void) {
    listeningListener?.();
    return this;
  }

  /**
   * The stock uWS transport hands a request to the router only when a route matches and
   * otherwise leaves it unanswered (waiting for an express app we do not use), so an
   * unknown path would hang. Every request goes to the router, which answers 404.
   */
  override bindRouter(router: Parameters<uWebSocketsTransport["bindRouter"]>[0]) {
    const findRoute = router.findRoute.bind(router);
    // The stock handler buffers a request body without bound; refuse large ones up front.
    const any = this.app.any.bind(this.app);
    const { maxBodyBytes, bodyLimits } = this;
    this.app.any = ((pattern: string, handler: (res: uWS.HttpResponse, req: uWS.HttpRequest) => void) => any(pattern, (res, req) => {
      // Some bodies are documents, not messages (a hall layout): they get their own, larger bound.
      const limit = bodyLimits[req.getUrl()] ?? maxBodyBytes;
      if (Number(req.getHeader("content-length") || 0) > limit) {
        res.cork(() => res.writeStatus("413 Payload Too Large").writeHeader("content-type", "application/json")
          .end(JSON.stringify({ code: 4403, error: `[4403 FRAME_TOO_LARGE] request body above ${limit} bytes` })));
        return;
      }
      handler(res, req);
    })) as typeof this.app.any;
    try {
      super.bindRouter({ ...router, findRoute: (method: string, path: string) => findRoute(method, path) ?? { data: undefined } } as typeof router);
    } finally {
      this.app.any = any;
    }
  }

  override shutdown() {
    if (this.listenSocket) {
      uWS.us_listen_socket_close(this.listenSocket);
      this.listenSocket = false;
    }
    // Open sockets keep the uWS loop alive; close them so the process can exit.
    for (const client of [...(this as any).clients]) {
      try { client.close(); } catch { /* already closed */ }
    }
  }
}

class PreboundWsTransport extends WebSocketTransport {
  bind(host: string, port: number): Promise<number> {
    const server = this.server as http.Server;
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
  }

  override listen(_port: number, _hostname?: string, _backlog?: number, listeningListener?: () => void) {
    listeningListener?.();
    return this;
  }

  override shutdown() {
    super.shutdown();
    const server = this.server as http.Server;
    server.close();
    server.closeAllConnections();
  }
}

/**
 * The transport's own payload ceiling. Frames above the configured limit but under this
 * reach the input guard, which answers FRAME_TOO_LARGE and keeps the session; only frames
 * above the ceiling make the transport drop the socket (uWS closes without a close
 * frame, so the sender would learn nothing).
 */
export function transportCeilingBytes(maxFrameBytes: number): number {
  return Math.max(maxFrameBytes * 4, 256 * 1024);
}

/**
 * Creates the configured transport and binds it to host:port; with `tls`, it serves https
 * and wss (uWS's SSLApp, or an https server under `ws`).
 */
export async function bindTransport(kind: "uws" | "ws", host: string, port: number, maxFrameBytes: number, bodyLimits: BodyLimits = {}, tls?: TlsFiles) {
  const ceiling = transportCeilingBytes(maxFrameBytes);
  if (kind === "uws") {
    const appOptions = tls ? { cert_file_name: tls.certFile, key_file_name: tls.keyFile } : {};
    const transport = new PreboundUwsTransport({ maxPayloadLength: ceiling, idleTimeout: 32 }, appOptions);
    transport.maxBodyBytes = maxFrameBytes;
    transport.bodyLimits = bodyLimits;
    return { transport: transport as Transport, port: await transport.bind(host, port) };
  }
  const server = tls ? https.createServer({ cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) }) : http.createServer();
  const transport = new PreboundWsTransport({ server, maxPayload: ceiling });
  return { transport: transport as Transport, port: await transport.bind(host, port) };
}
