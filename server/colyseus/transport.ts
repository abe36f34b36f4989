/**
 * The two WebSocket transports, bound before Colyseus starts, and the HTTP they carry.
 *
 * A node must know its own address before Colyseus boots: the matchmaker stamps every
 * seat reservation with `publicAddress`, fixed at setup. With port 0 (tests) the port is
 * only known after binding, so the socket is bound first and Colyseus' later `listen()`
 * merely reports success. The uWS transport's own `listen()` also ignores the host.
 *
 * HTTP requests on either transport go to the node's HttpEdge (server/http/HttpEdge.ts),
 * not to the stock handlers: the stock uWS one joins the body on every chunk with no
 * bound and reflects any Origin with credentials. Each transport only turns its request
 * into an HttpExchange; every rule is the edge's.
 */
import http, { STATUS_CODES } from "node:http";
import https from "node:https";
import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import uWS from "uWebSockets.js";
import { uWebSocketsTransport } from "@colyseus/uwebsockets-transport";
import { WebSocketTransport } from "@colyseus/ws-transport";
import type { Transport } from "@colyseus/core";
import { CLOSE_LINGER, HttpEdge, type HttpExchange } from "../http/HttpEdge.ts";
import { RouteTable } from "../http/RouteTable.ts";
import { CorsPolicy } from "../http/cors.ts";
import { ErrorCode } from "../../proto/index.ts";
import { codedErrorJson, httpStatusFor } from "../http/responses.ts";
import { listenExclusive, listenPort } from "../listen.ts";
import type { TlsFiles } from "../tls.ts";

/** A bound transport that answers HTTP through an edge. */
export interface EdgeTransport extends Transport {
  /** From now on, HTTP requests go to `edge`. */
  serveHttp(edge: HttpEdge): void;
}

/** The router Colyseus hands a transport at listen(): only its handler is used, by servers without an edge (the bench's vanilla baseline). */
type ColyseusRouter = { handler(request: Request): Promise<Response> };

/** A server that set no edge (a bare Colyseus server, as the bench runs): matchmaking only, through Colyseus' own router. */
function matchmakingOnlyEdge(router: ColyseusRouter, maxBodyBytes: number): HttpEdge {
  return new HttpEdge({
    routes: new RouteTable([{ path: "/matchmake/", methods: ["POST"], bodyLimit: maxBodyBytes, access: "public", cors: false, handle: (request) => router.handler(request) }]),
    cors: new CorsPolicy([], false),
    readTimeoutMs: 10_000,
  });
}

/** Answers before the edge is set (between bind and listen): the node is starting. */
const STARTING = { status: httpStatusFor(ErrorCode.NODE_DRAINING), body: codedErrorJson(ErrorCode.NODE_DRAINING, "the node is starting: retry") };

class UwsExchange implements HttpExchange {
  readonly method: string;
  readonly path: string;
  readonly query: string;
  readonly headers = new Headers();
  readonly peerAddress: string;
  readonly hasBody: boolean;
  aborted = false;
  /** Told once when the client goes away. */
  private readonly abortListeners: Array<() => void> = [];
  /** Whether reading is paused (uWS keeps a socket paused past the answer). */
  private paused = false;

  constructor(private readonly res: uWS.HttpResponse, req: uWS.HttpRequest) {
    // Everything of `req` is read now: it is invalid once the request callback returns.
    this.method = req.getMethod().toUpperCase();
    this.path = req.getUrl();
    this.query = req.getQuery() ?? "";
    req.forEach((key, value) => this.headers.append(key, value));
    this.peerAddress = Buffer.from(res.getRemoteAddressAsText()).toString();
    this.hasBody = Number(this.headers.get("content-length") ?? 0) > 0 || this.headers.has("transfer-encoding");
    res.onAborted(() => {
      this.aborted = true;
      for (const listener of this.abortListeners) listener();
    });
  }

  onAborted(listener: () => void) { this.abortListeners.push(listener); }

  readBody(onChunk: (chunk: Uint8Array) => void, onEnd: () => void) {
    this.res.onData((chunk, isLast) => {
      onChunk(new Uint8Array(chunk));
      if (isLast) onEnd();
    });
  }

  pause() {
    if (this.aborted || this.paused) return;
    this.paused = true;
    this.res.pause();
  }

  resume() {
    if (this.aborted || !this.paused) return;
    this.paused = false;
    this.res.resume();
  }

  respond(status: number, headers: ReadonlyArray<[string, string]>, body: Uint8Array, close: boolean) {
    if (this.aborted) return;
    // A body that was already in the socket's buffer can end while paused; a socket left
    // paused after the answer never reads its next request.
    this.resume();
    if (!close) {
      this.res.cork(() => {
        this.writeHead(status, headers);
        this.res.end(body);
      });
      return;
    }
    // uWS's end(…, true) closes at once, and a socket closed with unread bytes is reset:
    // the client could lose the answer. So the answer is written (chunked, keeping the
    // response open), the rest is read and dropped, and the connection closes when the
    // body ends or the linger runs out.
    let drained = 0;
    let open = true;
    const closeNow = () => {
      if (!open || this.aborted) return;
      open = false;
      clearTimeout(linger);
      this.res.close();
    };
    const linger = setTimeout(closeNow, CLOSE_LINGER.ms);
    this.onAborted(() => { open = false; clearTimeout(linger); });
    this.res.onData((chunk, isLast) => {
      drained += chunk.byteLength;
      if (!open) return;
      if (isLast) {
        open = false;
        clearTimeout(linger);
        this.res.cork(() => this.res.end());
      } else if (drained > CLOSE_LINGER.bytes) {
        closeNow();
      }
    });
    this.res.cork(() => {
      this.writeHead(status, [...headers, ["connection", "close"]]);
      if (body.byteLength > 0) this.res.write(body);
    });
  }

  private writeHead(status: number, headers: ReadonlyArray<[string, string]>) {
    this.res.writeStatus(`${status} ${STATUS_CODES[status] ?? ""}`);
    for (const [key, value] of headers) this.res.writeHeader(key, value);
  }
}

class PreboundUwsTransport extends uWebSocketsTransport implements EdgeTransport {
  /** The listen socket opened by bind(), closed by shutdown(). */
  private listenSocket: uWS.us_listen_socket | false = false;
  /** Where HTTP requests go. */
  private edge?: HttpEdge;

  constructor(options: ConstructorParameters<typeof uWebSocketsTransport>[0], appOptions: uWS.AppOptions, private readonly maxBodyBytes: number) {
    super(options, appOptions);
    this.app.any("/*", (res, req) => {
      if (this.edge) { this.edge.serve(new UwsExchange(res, req)); return; }
      res.cork(() => res.writeStatus(`${STARTING.status} ${STATUS_CODES[STARTING.status]}`).writeHeader("content-type", "application/json").end(STARTING.body, true));
    });
  }

  /**
   * Once the join is through, the upgrade request's context (every header, the token, the
   * query) is dead weight on a socket that may stay open for hours: about a kilobyte per
   * idle client. Colyseus reads it only while it connects the client to its room.
   */
  override async onConnection(rawClient: Parameters<uWebSocketsTransport["onConnection"]>[0]) {
    try {
      await super.onConnection(rawClient);
    } finally {
      const userData = rawClient as unknown as { context?: unknown; searchParams?: unknown; url?: unknown };
      userData.context = undefined;
      userData.searchParams = undefined;
      userData.url = undefined;
    }
  }

  async bind(host: string, port: number): Promise<number> {
    this.listenSocket = await listenExclusive(this.app, host, port, "the node");
    return listenPort(this.listenSocket);
  }

  serveHttp(edge: HttpEdge) { this.edge = edge; }

  override listen(_port: number, _hostname?: string, _backlog?: number, listeningListener?: () => void) {
    listeningListener?.();
    return this;
  }

  /** Colyseus hands its router here at listen(); the node's edge answers instead (a bare server gets matchmaking only). */
  override bindRouter(router: Parameters<uWebSocketsTransport["bindRouter"]>[0]) {
    this.edge ??= matchmakingOnlyEdge(router as unknown as ColyseusRouter, this.maxBodyBytes);
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

class NodeExchange implements HttpExchange {
  readonly method: string;
  readonly path: string;
  readonly query: string;
  readonly headers = new Headers();
  readonly peerAddress: string;
  readonly hasBody: boolean;
  aborted = false;

  constructor(private readonly req: http.IncomingMessage, private readonly res: http.ServerResponse) {
    this.method = (req.method ?? "GET").toUpperCase();
    const url = req.url ?? "/";
    const mark = url.indexOf("?");
    this.path = mark < 0 ? url : url.slice(0, mark);
    this.query = mark < 0 ? "" : url.slice(mark + 1);
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) this.headers.append(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
    this.peerAddress = req.socket.remoteAddress ?? "";
    this.hasBody = Number(req.headers["content-length"] ?? 0) > 0 || req.headers["transfer-encoding"] !== undefined;
    res.once("close", () => { if (!res.writableFinished) this.aborted = true; });
  }

  onAborted(listener: () => void) {
    this.res.once("close", () => { if (!this.res.writableFinished) listener(); });
  }

  readBody(onChunk: (chunk: Uint8Array) => void, onEnd: () => void) {
    this.req.on("data", onChunk);
    this.req.once("end", onEnd);
  }

  pause() { this.req.pause(); }
  resume() { this.req.resume(); }

  respond(status: number, headers: ReadonlyArray<[string, string]>, body: Uint8Array, close: boolean) {
    if (this.aborted || this.res.headersSent) return;
    this.req.resume();
    const flat: string[] = [];
    for (const [key, value] of headers) flat.push(key, value);
    flat.push("content-length", String(body.byteLength));
    if (close) {
      flat.push("connection", "close");
      this.linger();
    }
    this.res.writeHead(status, flat);
    this.res.end(body);
  }

  /**
   * With Connection: close node ends the socket once the answer is out and destroys it,
   * and a socket destroyed with unread bytes is reset under the answer. Instead it is
   * half-closed, and what the client still sends is dropped for the linger.
   */
  private linger() {
    const socket = this.req.socket;
    let drained = 0;
    const timer = setTimeout(() => socket.destroy(), CLOSE_LINGER.ms);
    socket.once("close", () => clearTimeout(timer));
    socket.on("data", (chunk: Buffer) => {
      drained += chunk.byteLength;
      if (drained > CLOSE_LINGER.bytes) socket.destroy();
    });
    // Half-close once the answer is out (node calls destroySoon then); the body's end or the linger closes it.
    socket.destroySoon = () => { socket.end(); };
    this.req.once("end", () => socket.end());
  }
}

class PreboundWsTransport extends WebSocketTransport implements EdgeTransport {
  /** The HTTP server; hidden from Colyseus, which would otherwise add its own request handler to it. */
  private readonly httpServer: http.Server;
  /** Where HTTP requests go. */
  private edge?: HttpEdge;

  constructor(options: ConstructorParameters<typeof WebSocketTransport>[0] & { server: http.Server }, private readonly maxBodyBytes: number) {
    super(options);
    this.httpServer = options.server;
    // Without `server`, Colyseus hands its router to bindRouter() instead of answering requests itself.
    this.server = undefined;
    this.httpServer.on("request", (req, res) => {
      if (this.edge) { this.edge.serve(new NodeExchange(req, res)); return; }
      res.writeHead(STARTING.status, { "content-type": "application/json", connection: "close" }).end(STARTING.body);
    });
  }

  bind(host: string, port: number): Promise<number> {
    const server = this.httpServer;
    return new Promise((resolve, reject) => {
      const failed = (error: Error) => reject(new Error(`the node cannot listen on ${host}:${port} (${(error as NodeJS.ErrnoException).code === "EADDRINUSE" ? "address in use" : error.message})`));
      server.once("error", failed);
      server.listen({ port, host, exclusive: true }, () => {
        server.off("error", failed);
        resolve((server.address() as AddressInfo).port);
      });
    });
  }

  serveHttp(edge: HttpEdge) { this.edge = edge; }

  bindRouter(router: unknown) {
    this.edge ??= matchmakingOnlyEdge(router as ColyseusRouter, this.maxBodyBytes);
  }

  override listen(_port: number, _hostname?: string, _backlog?: number, listeningListener?: () => void) {
    listeningListener?.();
    return this;
  }

  override shutdown() {
    super.shutdown();
    this.httpServer.close();
    this.httpServer.closeAllConnections();
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
 * Creates the configured transport and binds it to host:port, exclusively; with `tls`, it
 * serves https and wss (uWS's SSLApp, or an https server under `ws`).
 */
export async function bindTransport(kind: "uws" | "ws", host: string, port: number, maxFrameBytes: number, tls?: TlsFiles): Promise<{ transport: EdgeTransport; port: number }> {
  const ceiling = transportCeilingBytes(maxFrameBytes);
  if (kind === "uws") {
    const appOptions = tls ? { cert_file_name: tls.certFile, key_file_name: tls.keyFile } : {};
    const transport = new PreboundUwsTransport({ maxPayloadLength: ceiling, idleTimeout: 32 }, appOptions, maxFrameBytes);
    return { transport, port: await transport.bind(host, port) };
  }
  const server = tls ? https.createServer({ cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) }) : http.createServer();
  const transport = new PreboundWsTransport({ server, maxPayload: ceiling }, maxFrameBytes);
  return { transport, port: await transport.bind(host, port) };
}
