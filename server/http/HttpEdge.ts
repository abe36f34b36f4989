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
import type { NodeAuth } from "../auth/nodeAuth.ts";
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
  /**
   * Writes the answer. `close`: the rest of the body is not read, and the connection
   * closes after a short linger (CLOSE_LINGER): the answer goes out and the client's bytes
   * still arriving are dropped, so the answer is not lost to the reset an immediate close
   * with unread bytes sends (nginx's lingering close).
   */
  respond(status: number, headers: ReadonlyArray<[string, string]>, body: Uint8Array, close: boolean): void;
}

/**
 * After an answer that closes the connection, the client's bytes are read and dropped
 * for at most this long and this many bytes, then the connection is closed whatever.
 */
export const CLOSE_LINGER = { ms: 1000, bytes: 64 * 1024 } as const;

export interface HttpEdgeOptions {
  routes: RouteTable;
  cors: CorsPolicy;
  /** Verifies bearer tokens of the rows with `tokenRoles`. */
  tokens?: TokenService;
  /** A body must have arrived whole this long after the request began, ms. */
  readTimeoutMs: number;
  /** Bearer token of the `metrics` rows; unset: loopback peers only. */
  metricsToken?: string;
  /** Verifies the node credentials of the `cluster` rows. */
  nodeAuth?: NodeAuth;
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
/**
 * A refused request whose declared body is at most this is answered once that body has
 * arrived (read and dropped), not at once with a close: closing a socket with unread
 * bytes resets it, and the client may lose the answer with it. Anything larger, or
 * chunked, is answered at once and closed.
 */
const DRAIN_MAX_BYTES = 64 * 1024;

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
    const route = exchange.method === "OPTIONS" ? undefined : this.options.routes.find(exchange.method, exchange.path);
    request.startDeadline(this.options.readTimeoutMs, () => {
      this.refuse(request, route, new Refusal(ErrorCode.REQUEST_TIMEOUT, `request body not complete within ${this.options.readTimeoutMs} ms`), "now");
    });

    if (exchange.method === "OPTIONS") { this.preflight(request); return; }
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
    const body = new Promise<Buffer | undefined>((resolve) => {
      // A refused or abandoned request never sees its body's end.
      request.onSettle(() => resolve(undefined));
      if (!exchange.hasBody) { resolve(undefined); return; }
      request.readBody({
        chunk: (chunk) => {
          if (!reader.push(chunk)) this.refuse(request, route, new Refusal(ErrorCode.FRAME_TOO_LARGE, `request body above ${route.bodyLimit} bytes`), "now");
        },
        end: () => resolve(reader.finish()),
      });
    });
    try {
      if (route.tokenRoles) {
        // Nothing of the body is read until the token is good.
        if (exchange.hasBody) exchange.pause();
        await this.checkToken(route, request.headers);
        if (request.settled) return;
        if (exchange.hasBody) exchange.resume();
      }
      const complete = await body;
      if (request.settled) return;
      const response = await route.handle(toRequest(request, complete));
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
    request.respond({ status: 204, headers: Object.entries(cors), body: new Uint8Array(0) }, "drain");
  }

  private checkAccess(route: HttpRoute, request: ExchangeState) {
    const loopback = isLoopbackAddress(request.exchange.peerAddress);
    if (route.access === "loopback" && !loopback) throw new Refusal(ErrorCode.FORBIDDEN, `${route.path} answers loopback peers only`);
    if (route.access === "cluster") {
      if (!this.options.nodeAuth) throw new Refusal(ErrorCode.FORBIDDEN, `${route.path}: this node takes no node-to-node calls`);
      try {
        this.options.nodeAuth.verify(request.headers.get("authorization"));
      } catch (error) {
        throw new Refusal((error as { code: number }).code, (error as Error).message);
      }
      return;
    }
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
    const declared = request.declaredLength ?? 0;
    if (declared > route.bodyLimit || (exchange.hasBody && route.bodyLimit === 0)) {
      // Not drained: the body is what is refused.
      request.tooLarge = true;
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
    request.respond({ status: response.status, headers, body }, "now");
  }

  /**
   * A coded answer, a metric and a (rate-limited) log line. `drain`: a small body still
   * arriving is read (and dropped) first, so the answer is not lost to a reset; `now`:
   * answered at once, closing the connection if the body was not read to its end.
   */
  private refuse(request: ExchangeState, route: HttpRoute | undefined, refusal: Refusal, when: "drain" | "now" = "drain") {
    if (request.settled) return;
    const name = errorCodeName(refusal.code);
    this.options.metrics?.errors.inc({ code: name, source: "http" });
    this.logRefusal(request, route, refusal, name);
    request.respond({
      status: httpStatusFor(refusal.code),
      headers: [["content-type", "application/json"], ["cache-control", "no-store"]],
      body: Buffer.from(codedErrorJson(refusal.code, refusal.message)),
    }, when);
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

interface Answer { status: number; headers: ReadonlyArray<[string, string]>; body: Uint8Array }
interface BodySink { chunk(chunk: Uint8Array): void; end(): void }

/** One request's progress: its body's flow, whether it is answered (or its client gone), and an answer waiting for the body's end. */
class ExchangeState {
  /** Answered or aborted: nothing more is written. */
  settled = false;
  /** The Content-Length the client declared, if any. */
  readonly declaredLength?: number;
  /** Set when the declared body itself is refused: it is never drained. */
  tooLarge = false;
  /** Whether the body (if any) has been read to its end, so the connection may stay open. */
  private bodyRead: boolean;
  /** Whether the exchange's body flow is attached. */
  private flowing = false;
  /** Where chunks go while the request is admitted; none once refused. */
  private sink?: BodySink;
  /** A refusal waiting for a small body's end. */
  private deferred?: Answer;
  /** Called once when the request settles. */
  private readonly settleListeners: Array<() => void> = [];
  /** The read deadline's timer, cleared when the body has arrived or the request settled. */
  private deadline?: NodeJS.Timeout;

  constructor(readonly exchange: HttpExchange, readonly headers: Headers) {
    this.bodyRead = !exchange.hasBody;
    const declared = exchange.headers.get("content-length");
    if (declared !== null && /^\d{1,15}$/.test(declared.trim())) this.declaredLength = Number(declared);
  }

  /** Whether a refusal is on its way (deferred or sent). */
  get refused(): boolean { return this.deferred !== undefined || this.settled; }

  onSettle(listener: () => void) { this.settleListeners.push(listener); }

  /** Calls `expired` if the body has not arrived whole within `ms` (nothing for a request without one). */
  startDeadline(ms: number, expired: () => void) {
    if (this.bodyRead) return;
    this.deadline = setTimeout(expired, ms);
  }

  /** Starts the body's flow (once); chunks go to `sink` until the request is refused, then are dropped. */
  readBody(sink: BodySink | undefined) {
    this.sink = sink;
    if (this.flowing || this.bodyRead) return;
    this.flowing = true;
    this.exchange.readBody((chunk) => {
      if (!this.refused) this.sink?.chunk(chunk);
    }, () => {
      this.bodyRead = true;
      clearTimeout(this.deadline);
      if (this.deferred) { this.write(this.deferred); return; }
      if (!this.settled) this.sink?.end();
    });
  }

  /** Answers (see HttpEdge.refuse for `when`); the first answer wins, except that `now` overrides one waiting for the body. */
  respond(answer: Answer, when: "drain" | "now") {
    if (this.settled || (this.deferred && when === "drain")) return;
    const small = this.declaredLength !== undefined && this.declaredLength <= DRAIN_MAX_BYTES && !this.tooLarge;
    if (when === "drain" && !this.bodyRead && small) {
      this.deferred = answer;
      this.readBody(undefined);
      this.exchange.resume();
      return;
    }
    this.write(answer);
  }

  settle() {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.deadline);
    for (const listener of this.settleListeners) listener();
  }

  private write(answer: Answer) {
    if (this.settled) return;
    this.settle();
    if (this.exchange.aborted) return;
    this.exchange.respond(answer.status, answer.headers, answer.body, !this.bodyRead);
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
