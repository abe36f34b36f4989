/**
 * Every HTTP request of the client port passes here, on either transport, before any
 * handler runs. In order, from the route's row (RouteTable.ts):
 *
 * 1. the sender is stamped from the TCP peer (`PEER_ADDRESS_HEADER`; a copy the client
 *    sent is dropped), so loopback checks and rate limits key on what it cannot choose;
 * 2. no row → 404; `loopback` rows refuse other peers (403); `/metrics` wants its token;
 * 3. a declared Content-Length above the row's body limit → 413 before a byte is read;
 * 4. a row wanting a token: the bearer token is verified (the body paused meanwhile), and
 *    a missing, invalid, expired or wrong-role token is refused (401/403) unread;
 * 5. the body is counted chunk by chunk (chunked or not) and refused 413 past the limit,
 *    or 408 when it has not arrived whole within `http.readTimeoutMs`;
 * 6. the handler answers; CORS headers are added for allowed origins on `cors` rows only.
 *
 * A refusal sent while a body is still in flight closes the connection, so the rest is
 * never read. Each refusal is coded (`{code, error}`), counted in `tsunagi_errors_total`
 * (source "http") and logged at most once a second per code.
 *
 * @example
 *   const edge = new HttpEdge({ routes: new RouteTable(rows), cors, tokens, readTimeoutMs: 8000 });
 *   transport.serveHttp(edge); // the transport hands each request over as an HttpExchange
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { ErrorCode, errorCodeName } from "../../proto/index.ts";
import type { TokenService } from "../auth/tokens.ts";
import type { Logger } from "../observability/logging.ts";
import type { NodeMetrics } from "../observability/metrics.ts";
import { BodyReader } from "./BodyReader.ts";
import type { CorsPolicy } from "./cors.ts";
import { isLoopbackAddress, PEER_ADDRESS_HEADER } from "./peer.ts";
import { bearerToken, codedErrorJson, httpStatusFor } from "./responses.ts";
import type { HttpRoute, RouteTable } from "./RouteTable.ts";

/** One request as a transport hands it over (uWS's HttpResponse or node's IncomingMessage behind it). */
export interface HttpExchange {
  /** Upper case. */
  readonly method: string;
  /** The path without the query. */
  readonly path: string;
  /** The query without "?", or "". */
  readonly query: string;
  /** The headers as the client sent them. */
  readonly headers: Headers;
  /** The TCP peer's address, from the socket. */
  readonly peerAddress: string;
  /** Whether a body follows the headers (a Content-Length above 0, or a Transfer-Encoding). */
  readonly hasBody: boolean;
  /** Set once the client went away: nothing is written then. */
  readonly aborted: boolean;
  /** Called once if the client goes away before the answer. */
  onAborted(listener: () => void): void;
  /** Delivers the body: each chunk (valid during the call only), then the end. At most once per request. */
  readBody(onChunk: (chunk: Uint8Array) => void, onEnd: () => void): void;
  /** Stops and resumes reading the body from the socket. */
  pause(): void;
  resume(): void;
  /** Writes the answer; `close` closes the connection after it (a body in flight is not read). */
  respond(status: number, headers: ReadonlyArray<[string, string]>, body: Uint8Array, close: boolean): void;
}

export interface HttpEdgeOptions {
  routes: RouteTable;
  cors: CorsPolicy;
  /** Verifies bearer tokens of the rows with `tokenRoles`. */
  tokens?: TokenService;
  /** A body must have arrived whole this long after the request began, ms. */
  readTimeoutMs: number;
  /** Bearer token of the `metrics` rows; unset: loopback peers only. */
  metricsToken?: string;
  /** Refusals are logged (at most once a second per code) and counted when set. */
  logger?: Logger;
  metrics?: NodeMetrics;
}

/** A refusal decided by the edge (or a handler's coded error): the code and the message. */
class Refusal extends Error {
  constructor(readonly code: number, message: string) { super(message); }
}

/** Refusals are logged at most this often per code, ms; the rest are counted in the next line. */
const LOG_INTERVAL_MS = 1000;

export class HttpEdge {
  /** SHA-256 of the metrics token, compared in constant time. */
  private readonly metricsTokenHash?: Buffer;
  /** When each code's refusal was last logged, and how many went unlogged since. */
  private readonly refusalLog = new Map<number, { loggedAt: number; suppressed: number }>();

  constructor(private readonly options: HttpEdgeOptions) {
    this.metricsTokenHash = options.metricsToken ? sha256(options.metricsToken) : undefined;
  }

  /** Answers one request. Synchronous up to the first await: uWS wants its handlers attached in the request callback. */
  serve(exchange: HttpExchange): void {
    const headers = new Headers(exchange.headers);
    // The sender is who the socket says, whatever the client wrote.
    headers.delete(PEER_ADDRESS_HEADER);
    headers.set(PEER_ADDRESS_HEADER, exchange.peerAddress);
    const request = new ExchangeState(exchange, headers);
    exchange.onAborted(() => request.settle());

    if (exchange.method === "OPTIONS") { this.preflight(request); return; }
    const route = this.options.routes.find(exchange.method, exchange.path);
    try {
      if (!route) throw new Refusal(ErrorCode.UNKNOWN_ROOM, `no ${exchange.method} ${exchange.path.slice(0, 100)} here`);
      this.checkAccess(route, request);
      this.checkDeclaredLength(route, request);
    } catch (error) {
      this.refuse(request, route, error as Refusal);
      return;
    }
    void this.admit(route, request);
  }

  /** The rest of a request the row admits so far: token, body, handler. */
  private async admit(route: HttpRoute, request: ExchangeState) {
    const { exchange } = request;
    const reader = new BodyReader(route.bodyLimit);
    let bodyDone: Promise<Buffer | undefined> = Promise.resolve(undefined);
    if (exchange.hasBody) {
      const deadline = setTimeout(() => this.refuse(request, route, new Refusal(ErrorCode.REQUEST_TIMEOUT, `request body not complete within ${this.options.readTimeoutMs} ms (${reader.bytes} bytes arrived)`)), this.options.readTimeoutMs);
      request.onSettle(() => clearTimeout(deadline));
      bodyDone = new Promise((resolve) => {
        // A refused or abandoned request never sees its body's end.
        request.onSettle(() => resolve(undefined));
        exchange.readBody((chunk) => {
          if (request.settled) return;
          if (!reader.push(chunk)) this.refuse(request, route, new Refusal(ErrorCode.FRAME_TOO_LARGE, `request body above ${route.bodyLimit} bytes`));
        }, () => {
          clearTimeout(deadline);
          request.bodyComplete();
          resolve(request.settled ? undefined : reader.finish());
        });
      });
    }
    try {
      if (route.tokenRoles) {
        // Nothing of the body is read until the token is good.
        if (exchange.hasBody) exchange.pause();
        await this.checkToken(route, request.headers);
        if (request.settled) return;
        if (exchange.hasBody) exchange.resume();
      }
      const body = await bodyDone;
      if (request.settled) return;
      const response = await route.handle(toRequest(request, body));
      if (request.settled) return;
      await this.send(request, route, response);
    } catch (error) {
      if (error instanceof Refusal) { this.refuse(request, route, error); return; }
      const code = typeof (error as { code?: unknown }).code === "number" ? (error as { code: number }).code : ErrorCode.INTERNAL;
      if (code !== ErrorCode.INTERNAL) { this.refuse(request, route, new Refusal(code, (error as Error).message)); return; }
      this.options.logger?.error({ err: error, route: route.path }, `HTTP ${exchange.method} ${route.path} failed`);
      this.refuse(request, route, new Refusal(ErrorCode.INTERNAL, "internal error (logged)"));
    }
  }

  /** OPTIONS: the CORS answer of the row the browser asks about; no CORS headers for rows without CORS. */
  private preflight(request: ExchangeState) {
    const { exchange } = request;
    const asked = exchange.headers.get("access-control-request-method") ?? "";
    const route = this.options.routes.find(asked.toUpperCase(), exchange.path);
    if (!route) { this.refuse(request, undefined, new Refusal(ErrorCode.UNKNOWN_ROOM, `no ${asked.slice(0, 10)} ${exchange.path.slice(0, 100)} here`)); return; }
    const cors = route.cors ? this.options.cors.headers(exchange.headers.get("origin"), route.methods, true) : {};
    request.respond(204, Object.entries(cors), new Uint8Array(0));
  }

  private checkAccess(route: HttpRoute, request: ExchangeState) {
    const loopback = isLoopbackAddress(request.exchange.peerAddress);
    if (route.access === "loopback" && !loopback) throw new Refusal(ErrorCode.FORBIDDEN, `${route.path} answers loopback peers only`);
    if (route.access !== "metrics") return;
    if (!this.metricsTokenHash) {
      if (!loopback) throw new Refusal(ErrorCode.FORBIDDEN, `${route.path} answers loopback peers only (set http.metricsToken to scrape from elsewhere)`);
      return;
    }
    const token = bearerToken(request.headers.get("authorization"));
    if (!token) throw new Refusal(ErrorCode.TOKEN_MISSING, `${route.path} needs the metrics token: Authorization: Bearer <http.metricsToken>`);
    if (!timingSafeEqual(sha256(token), this.metricsTokenHash)) throw new Refusal(ErrorCode.TOKEN_INVALID, `${route.path}: not the metrics token`);
  }

  private checkDeclaredLength(route: HttpRoute, request: ExchangeState) {
    const { exchange } = request;
    const declared = Number(exchange.headers.get("content-length") ?? 0);
    if (declared > route.bodyLimit || (exchange.hasBody && route.bodyLimit === 0)) {
      throw new Refusal(ErrorCode.FRAME_TOO_LARGE, route.bodyLimit === 0 ? `${exchange.method} ${route.path} takes no body` : `request body of ${declared} bytes above ${route.bodyLimit}`);
    }
  }

  private async checkToken(route: HttpRoute, headers: Headers) {
    const token = bearerToken(headers.get("authorization"));
    if (!token) throw new Refusal(ErrorCode.TOKEN_MISSING, `${route.path} needs a token (${route.tokenRoles!.join(" or ")}): Authorization: Bearer <token>`);
    if (!this.options.tokens) throw new Error(`route ${route.path} wants a token, and the edge has no TokenService`);
    const claims = await this.options.tokens.verify(token).catch((error: { code?: number; message: string }) => {
      throw new Refusal(error.code ?? ErrorCode.TOKEN_INVALID, error.message);
    });
    if (!route.tokenRoles!.includes(claims.role)) {
      throw new Refusal(ErrorCode.FORBIDDEN, `${route.path} needs the ${route.tokenRoles!.join(" or ")} role (you are ${claims.role})`);
    }
  }

  private async send(request: ExchangeState, route: HttpRoute, response: Response) {
    const body = new Uint8Array(await response.arrayBuffer());
    const headers: Array<[string, string]> = [];
    response.headers.forEach((value, key) => { if (key !== "content-length" && !key.startsWith("access-control-")) headers.push([key, value]); });
    if (route.cors) headers.push(...Object.entries(this.options.cors.headers(request.exchange.headers.get("origin"), route.methods)));
    request.respond(response.status, headers, body);
  }

  /** A coded answer, a metric and a (rate-limited) log line; closes the connection if the body was not read to its end. */
  private refuse(request: ExchangeState, route: HttpRoute | undefined, refusal: Refusal) {
    if (request.settled) return;
    const name = errorCodeName(refusal.code);
    this.options.metrics?.errors.inc({ code: name, source: "http" });
    this.logRefusal(request, route, refusal, name);
    request.respond(httpStatusFor(refusal.code), [["content-type", "application/json"], ["cache-control", "no-store"]], Buffer.from(codedErrorJson(refusal.code, refusal.message)));
  }

  private logRefusal(request: ExchangeState, route: HttpRoute | undefined, refusal: Refusal, name: string) {
    const logger = this.options.logger;
    if (!logger) return;
    const now = Date.now();
    const entry = this.refusalLog.get(refusal.code);
    if (entry && now - entry.loggedAt < LOG_INTERVAL_MS) { entry.suppressed++; return; }
    this.refusalLog.set(refusal.code, { loggedAt: now, suppressed: 0 });
    const { exchange } = request;
    logger[refusal.code === ErrorCode.INTERNAL ? "error" : "warn"]({
      code: name, status: httpStatusFor(refusal.code), method: exchange.method, route: route?.path, peer: exchange.peerAddress,
      suppressedSinceLast: entry?.suppressed ?? 0,
    }, `HTTP request refused: ${refusal.message}`);
  }
}

/** One request's progress: whether it is answered (or its client gone), and whether its body was read to the end. */
class ExchangeState {
  /** Answered, refused or aborted: nothing more is written. */
  settled = false;
  /** Whether the body (if any) has been read to its end, so the connection may stay open. */
  private bodyRead: boolean;
  /** Called once when the request settles. */
  private readonly settleListeners: Array<() => void> = [];

  constructor(readonly exchange: HttpExchange, readonly headers: Headers) {
    this.bodyRead = !exchange.hasBody;
  }

  onSettle(listener: () => void) { this.settleListeners.push(listener); }

  bodyComplete() { this.bodyRead = true; }

  settle() {
    if (this.settled) return;
    this.settled = true;
    for (const listener of this.settleListeners) listener();
  }

  respond(status: number, headers: ReadonlyArray<[string, string]>, body: Uint8Array) {
    if (this.settled || this.exchange.aborted) { this.settle(); return; }
    this.settle();
    this.exchange.respond(status, headers, body, !this.bodyRead);
  }
}

function toRequest(state: ExchangeState, body: Buffer | undefined): Request {
  const { exchange, headers } = state;
  headers.delete("transfer-encoding");
  if (body) headers.set("content-length", String(body.byteLength));
  const host = headers.get("host") ?? "";
  const base = /^[A-Za-z0-9.\-:[\]]{1,300}$/.test(host) ? `http://${host}` : "http://localhost";
  const hasBody = body !== undefined && exchange.method !== "GET";
  return new Request(`${base}${exchange.path}${exchange.query ? `?${exchange.query}` : ""}`, {
    method: exchange.method, headers, body: hasBody ? (body as unknown as BodyInit) : undefined,
  });
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}
