/**
 * The edge's rules against a scripted exchange (what a transport hands it): the order of
 * token, body and handler, the peer stamp, and the close after an unread body.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { ErrorCode } from "../../../../proto/index.ts";
import { TokenService } from "../../../../server/auth/tokens.ts";
import { CorsPolicy } from "../../../../server/http/cors.ts";
import { HttpEdge, type HttpExchange } from "../../../../server/http/HttpEdge.ts";
import { PEER_ADDRESS_HEADER } from "../../../../server/http/peer.ts";
import { RouteTable, type HttpRoute } from "../../../../server/http/RouteTable.ts";

interface Answer { status: number; headers: ReadonlyArray<[string, string]>; body: any; close: boolean }

/** A request as a transport would hand it over; its body flows from the event loop, only while not paused. */
class ScriptedExchange implements HttpExchange {
  readonly headers: Headers;
  readonly hasBody: boolean;
  readonly query = "";
  aborted = false;
  /** What the edge did to the exchange, in order. */
  readonly events: string[] = [];
  readonly answered: Promise<Answer>;
  private answer!: (answer: Answer) => void;
  private paused = false;
  private sink?: { onChunk(chunk: Uint8Array): void; onEnd(): void };
  private flowing = false;

  constructor(readonly method: string, readonly path: string, readonly peerAddress: string, headers: Record<string, string>, private readonly chunks?: Uint8Array[]) {
    this.headers = new Headers(headers);
    this.hasBody = chunks !== undefined;
    if (chunks && !headers["content-length"]) this.headers.set("transfer-encoding", "chunked");
    this.answered = new Promise((resolve) => { this.answer = resolve; });
  }

  onAborted() {}
  readBody(onChunk: (chunk: Uint8Array) => void, onEnd: () => void) {
    this.events.push("readBody");
    this.sink = { onChunk, onEnd };
    this.flowSoon();
  }
  pause() { this.events.push("pause"); this.paused = true; }
  resume() { this.events.push("resume"); this.paused = false; this.flowSoon(); }
  respond(status: number, headers: ReadonlyArray<[string, string]>, body: Uint8Array, close: boolean) {
    this.events.push(`respond ${status}`);
    const text = Buffer.from(body).toString();
    let parsed: any = text;
    try { parsed = JSON.parse(text); } catch { /* text */ }
    this.answer({ status, headers, body: parsed, close });
  }

  private flowSoon() {
    if (this.flowing) return;
    this.flowing = true;
    setImmediate(() => {
      this.flowing = false;
      while (!this.paused && this.sink && this.chunks!.length) {
        this.events.push("chunk");
        this.sink.onChunk(this.chunks!.shift()!);
      }
      if (!this.paused && this.sink && this.chunks!.length === 0) { this.sink.onEnd(); this.sink = undefined; }
    });
  }
}

const tokens = new TokenService({ key: Buffer.from("unit-test-key-for-the-http-edge-0123456789"), audience: "http-edge-test" });

function edgeWith(routes: HttpRoute[], metricsToken?: string, readTimeoutMs = 60_000) {
  return new HttpEdge({ routes: new RouteTable(routes), cors: new CorsPolicy(["https://app.example"], false), tokens, readTimeoutMs, metricsToken });
}

/** A row whose handler records what it was handed. */
function recordingRoute(rule: Omit<HttpRoute, "handle">) {
  const seen: Array<{ peer: string | null; body: string }> = [];
  const route: HttpRoute = { ...rule, handle: async (request) => {
    seen.push({ peer: request.headers.get(PEER_ADDRESS_HEADER), body: request.method === "GET" ? "" : await request.text() });
    return new Response("handled", { status: 200 });
  } };
  return { route, seen };
}

const piece = (text: string) => new TextEncoder().encode(text);

describe("HttpEdge", () => {
  it("stamps the socket's peer over a copy the client sent, and refuses loopback rows to others by it", async () => {
    const dev = recordingRoute({ path: "/dev/token", methods: ["GET"], bodyLimit: 0, access: "loopback", cors: false });
    const open = recordingRoute({ path: "/ping", methods: ["GET"], bodyLimit: 0, access: "public", cors: true });
    const edge = edgeWith([dev.route, open.route]);

    const forged = new ScriptedExchange("GET", "/dev/token", "203.0.113.9", { [PEER_ADDRESS_HEADER]: "127.0.0.1" });
    edge.serve(forged);
    const refused = await forged.answered;
    expect(refused.status).toBe(403);
    expect(refused.body.code).toBe(ErrorCode.FORBIDDEN);
    expect(dev.seen).toHaveLength(0);

    const ping = new ScriptedExchange("GET", "/ping", "203.0.113.9", { [PEER_ADDRESS_HEADER]: "127.0.0.1" });
    edge.serve(ping);
    expect((await ping.answered).status).toBe(200);
    expect(open.seen[0]!.peer).toBe("203.0.113.9");

    const local = new ScriptedExchange("GET", "/dev/token", "::ffff:127.0.0.1", {});
    edge.serve(local);
    expect((await local.answered).status).toBe(200);
  });

  it("refuses a body-carrying request without a token 401 before reading a byte, and closes", async () => {
    const halls = recordingRoute({ path: "/expo/halls", methods: ["POST"], bodyLimit: 1 << 20, access: "public", tokenRoles: ["host", "admin"], cors: false });
    const exchange = new ScriptedExchange("POST", "/expo/halls", "127.0.0.1", {}, [piece("{"), piece("}")]);
    edgeWith([halls.route]).serve(exchange);
    const answer = await exchange.answered;
    expect(answer.status).toBe(401);
    expect(answer.body.code).toBe(ErrorCode.TOKEN_MISSING);
    expect(answer.close).toBe(true);
    expect(exchange.events).not.toContain("chunk");
    expect(halls.seen).toHaveLength(0);
  });

  it("answers a refused small declared body once it has arrived (dropped), keeping the connection: closing on unread bytes resets it", async () => {
    const halls = recordingRoute({ path: "/expo/halls", methods: ["POST"], bodyLimit: 1 << 20, access: "public", tokenRoles: ["host", "admin"], cors: false });
    const exchange = new ScriptedExchange("POST", "/expo/halls", "127.0.0.1", { "content-length": "2" }, [piece("{"), piece("}")]);
    edgeWith([halls.route]).serve(exchange);
    const answer = await exchange.answered;
    expect(answer.status).toBe(401);
    expect(answer.close).toBe(false);
    expect(exchange.events.filter((event) => event === "chunk")).toHaveLength(2);
    expect(exchange.events.at(-1)).toBe("respond 401");
    expect(halls.seen).toHaveLength(0);
  });

  describe("read deadline", () => {
    afterEach(() => { vi.useRealTimers(); });

    it("answers 408 and closes when the body stalls, and never cuts a handler that runs longer once the body is in", async () => {
      vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
      let release!: () => void;
      const slow: HttpRoute = { path: "/slow", methods: ["POST"], bodyLimit: 100, access: "public", cors: false, handle: async () => {
        await new Promise<void>((resolve) => { release = resolve; });
        return new Response("done");
      } };
      const stalled = recordingRoute({ path: "/stalled", methods: ["POST"], bodyLimit: 100, access: "public", cors: false });
      const edge = edgeWith([slow, stalled.route], undefined, 1000);

      const whole = new ScriptedExchange("POST", "/slow", "127.0.0.1", { "content-length": "2" }, [piece("ok")]);
      edge.serve(whole);
      await vi.waitFor(() => expect(release).toBeDefined());
      vi.advanceTimersByTime(5000);
      release();
      expect((await whole.answered).status).toBe(200);

      // Declares 10 bytes, sends none: the deadline answers, and closes.
      const stuck = new ScriptedExchange("POST", "/stalled", "127.0.0.1", { "content-length": "10" }, []);
      (stuck as unknown as { flowSoon(): void }).flowSoon = () => {};
      edge.serve(stuck);
      vi.advanceTimersByTime(1000);
      const answer = await stuck.answered;
      expect(answer.status).toBe(408);
      expect(answer.body.code).toBe(ErrorCode.REQUEST_TIMEOUT);
      expect(answer.close).toBe(true);
    });
  });

  it("refuses a token of another role 403 before the body, and reads it after a good one", async () => {
    const halls = recordingRoute({ path: "/expo/halls", methods: ["POST"], bodyLimit: 1 << 20, access: "public", tokenRoles: ["host", "admin"], cors: false });
    const edge = edgeWith([halls.route]);
    const visitor = new ScriptedExchange("POST", "/expo/halls", "127.0.0.1", { authorization: `Bearer ${await tokens.issue({ sub: "v", role: "visitor" })}` }, [piece("{}")]);
    edge.serve(visitor);
    const refused = await visitor.answered;
    expect(refused.status).toBe(403);
    expect(refused.close).toBe(true);
    expect(visitor.events).not.toContain("chunk");

    const host = new ScriptedExchange("POST", "/expo/halls", "127.0.0.1", { authorization: `Bearer ${await tokens.issue({ sub: "h", role: "host" })}` }, [piece('{"a"'), piece(":1}")]);
    edge.serve(host);
    const answer = await host.answered;
    expect(answer.status).toBe(200);
    expect(answer.close).toBe(false);
    expect(halls.seen[0]!.body).toBe('{"a":1}');
    // Paused for the token check, resumed after it, and only then read.
    expect(host.events.indexOf("pause")).toBeLessThan(host.events.indexOf("resume"));
    expect(host.events.indexOf("resume")).toBeLessThan(host.events.indexOf("chunk"));
  });

  it("refuses 413 at the chunk that passes the limit, and closes, without the handler", async () => {
    const matchmake = recordingRoute({ path: "/matchmake/", methods: ["POST"], bodyLimit: 8, access: "public", cors: true });
    const exchange = new ScriptedExchange("POST", "/matchmake/joinOrCreate/lobby", "127.0.0.1", {}, [piece("12345"), piece("67890"), piece("never read")]);
    edgeWith([matchmake.route]).serve(exchange);
    const answer = await exchange.answered;
    expect(answer.status).toBe(413);
    expect(answer.body.code).toBe(ErrorCode.FRAME_TOO_LARGE);
    expect(answer.close).toBe(true);
    expect(matchmake.seen).toHaveLength(0);
  });

  it("refuses a declared Content-Length past the limit without reading, and a body on a route that takes none", async () => {
    const matchmake = recordingRoute({ path: "/matchmake/", methods: ["POST"], bodyLimit: 8, access: "public", cors: true });
    const ping = recordingRoute({ path: "/ping", methods: ["GET"], bodyLimit: 0, access: "public", cors: true });
    const edge = edgeWith([matchmake.route, ping.route]);
    const declared = new ScriptedExchange("POST", "/matchmake/create/lobby", "127.0.0.1", { "content-length": "9" }, [piece("123456789")]);
    edge.serve(declared);
    expect((await declared.answered).status).toBe(413);
    expect(declared.events).not.toContain("readBody");
    const getWithBody = new ScriptedExchange("GET", "/ping", "127.0.0.1", {}, [piece("x")]);
    edge.serve(getWithBody);
    expect((await getWithBody.answered).status).toBe(413);
  });

  it("answers /metrics to its token when one is set, and to loopback peers only when none is", async () => {
    const metricsRow = (): HttpRoute => recordingRoute({ path: "/metrics", methods: ["GET"], bodyLimit: 0, access: "metrics", cors: false }).route;
    const ask = async (edge: HttpEdge, peer: string, headers: Record<string, string> = {}) => {
      const exchange = new ScriptedExchange("GET", "/metrics", peer, headers);
      edge.serve(exchange);
      return (await exchange.answered).status;
    };
    const open = edgeWith([metricsRow()]);
    expect(await ask(open, "127.0.0.1")).toBe(200);
    expect(await ask(open, "10.0.0.5")).toBe(403);
    const guarded = edgeWith([metricsRow()], "m".repeat(32));
    expect(await ask(guarded, "127.0.0.1")).toBe(401);
    expect(await ask(guarded, "10.0.0.5", { authorization: `Bearer ${"m".repeat(32)}` })).toBe(200);
    expect(await ask(guarded, "10.0.0.5", { authorization: `Bearer ${"n".repeat(32)}` })).toBe(401);
  });

  it("adds CORS headers for allowed origins on CORS rows only, and answers preflights from the table", async () => {
    const ping = recordingRoute({ path: "/ping", methods: ["GET"], bodyLimit: 0, access: "public", cors: true });
    const dev = recordingRoute({ path: "/dev/token", methods: ["GET"], bodyLimit: 0, access: "loopback", cors: false });
    const edge = edgeWith([ping.route, dev.route]);
    const origin = (answer: Answer) => answer.headers.find(([key]) => key === "access-control-allow-origin")?.[1];
    const ask = async (method: string, path: string, headers: Record<string, string>) => {
      const exchange = new ScriptedExchange(method, path, "127.0.0.1", headers);
      edge.serve(exchange);
      return exchange.answered;
    };
    expect(origin(await ask("GET", "/ping", { origin: "https://app.example" }))).toBe("https://app.example");
    expect(origin(await ask("GET", "/ping", { origin: "https://evil.example" }))).toBeUndefined();
    expect(origin(await ask("GET", "/dev/token", { origin: "https://app.example" }))).toBeUndefined();
    const preflight = await ask("OPTIONS", "/ping", { origin: "https://app.example", "access-control-request-method": "GET" });
    expect(preflight.status).toBe(204);
    expect(origin(preflight)).toBe("https://app.example");
    expect(origin(await ask("OPTIONS", "/dev/token", { origin: "https://app.example", "access-control-request-method": "GET" }))).toBeUndefined();
  });
});
