/**
 * The HTTP edge of a real node, on both transports, driven by hand-written HTTP so the
 * test controls how a body arrives: bytes counted per chunk with or without a
 * Content-Length, the token checked before the body, the read deadline, the peer stamp,
 * CORS from the allow-list only, /metrics behind its token.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import http from "node:http";
import net from "node:net";
import { ErrorCode } from "../../proto/index.ts";
import { PEER_ADDRESS_HEADER } from "../../server/http/peer.ts";
import { startNode, type NodeProcess } from "../fixtures/processes.ts";
import { rawRequest } from "../fixtures/rawHttp.ts";

const ALLOWED_ORIGIN = "https://app.example";
const METRICS_TOKEN = "metrics-token-for-the-http-edge-test-0123";
/** Short, so the deadline test waits little; far above what a whole small body takes. */
const READ_TIMEOUT_MS = 1500;
const MIB = 1024 * 1024;

describe.each(["uws", "ws"] as const)("HTTP edge (%s transport)", (transport) => {
  let node: NodeProcess;
  let port: number;
  beforeAll(async () => {
    node = await startNode({
      transport, regionId: "jp-tokyo",
      extraArgs: ["--http-cors-origins", ALLOWED_ORIGIN, "--http-metrics-token", METRICS_TOKEN, "--http-read-timeout-ms", String(READ_TIMEOUT_MS)],
    });
    port = node.port;
  }, 60_000);
  afterAll(async () => { await node?.stop(); });

  it("answers a chunked 6 MiB POST /expo/halls without a token 401 before the upload ends, and closes", async () => {
    const answer = await rawRequest({ port, method: "POST", path: "/expo/halls", headers: { "content-type": "application/json" }, bodyBytes: 6 * MIB, timeoutMs: 60_000 });
    expect(answer.status).toBe(401);
    expect(answer.body.code).toBe(ErrorCode.TOKEN_MISSING);
    expect(answer.sentWhenAnswered).toBeLessThan(6 * MIB);
    expect(answer.closed).toBe(true);
  }, 90_000);

  it("answers a POST /expo/halls with a forged token 401 before its body, and closes", async () => {
    const answer = await rawRequest({ port, method: "POST", path: "/expo/halls", headers: { authorization: "Bearer not.a.token" }, bodyBytes: 6 * MIB, timeoutMs: 60_000 });
    expect(answer.status).toBe(401);
    expect(answer.body.code).toBe(ErrorCode.TOKEN_INVALID);
    expect(answer.sentWhenAnswered).toBeLessThan(6 * MIB);
    expect(answer.closed).toBe(true);
  }, 90_000);

  it("answers a small body refused by its token's role once it has arrived, and serves the next request on the same connection", async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const send = (method: string, path: string, headers: Record<string, string>, body?: string) => new Promise<{ status: number; code?: number; reused: boolean }>((resolve, reject) => {
      const request = http.request({ host: "127.0.0.1", port, method, path, headers, agent }, (response) => {
        let text = "";
        response.on("data", (d) => { text += d; });
        response.on("end", () => resolve({ status: response.statusCode!, code: text.startsWith("{") ? JSON.parse(text).code : undefined, reused: request.reusedSocket }));
      });
      request.on("error", reject);
      request.end(body);
    });
    try {
      const visitor = await (await fetch(`${node.httpUrl}/dev/token?role=visitor`)).text();
      const refused = await send("POST", "/expo/halls", { authorization: `Bearer ${visitor}`, "content-type": "application/json" }, JSON.stringify({ hallId: "h" }));
      expect(refused).toMatchObject({ status: 403, code: ErrorCode.FORBIDDEN });
      const missing = await send("POST", "/expo/halls", { "content-type": "application/json" }, "{}");
      expect(missing).toMatchObject({ status: 401, code: ErrorCode.TOKEN_MISSING, reused: true });
      expect(await send("GET", "/ping", {})).toMatchObject({ status: 200, reused: true });
    } finally {
      agent.destroy();
    }
  });

  it("refuses a chunked body past the route's limit 413 while it is still arriving, and closes", async () => {
    // /matchmake/ takes a message: limits.maxFrameBytes (64 KiB by default).
    const answer = await rawRequest({ port, method: "POST", path: "/matchmake/joinOrCreate/lobby", headers: { "content-type": "application/json" }, bodyBytes: 6 * MIB, timeoutMs: 60_000 });
    expect(answer.status).toBe(413);
    expect(answer.body.code).toBe(ErrorCode.FRAME_TOO_LARGE);
    expect(answer.sentWhenAnswered).toBeLessThan(6 * MIB);
    expect(answer.closed).toBe(true);
  }, 90_000);

  it("refuses a declared Content-Length past the limit 413 before reading it, and closes", async () => {
    const answer = await rawRequest({ port, method: "POST", path: "/matchmake/joinOrCreate/lobby", chunked: false, bodyBytes: 6 * MIB, timeoutMs: 60_000 });
    expect(answer.status).toBe(413);
    expect(answer.body.code).toBe(ErrorCode.FRAME_TOO_LARGE);
    expect(answer.sentWhenAnswered).toBeLessThan(6 * MIB);
    expect(answer.closed).toBe(true);
  }, 90_000);

  it("answers 408 and closes when a body stalls past http.readTimeoutMs", async () => {
    const answer = await rawRequest({ port, method: "POST", path: "/matchmake/joinOrCreate/lobby", chunked: false, bodyBytes: 100, pieceBytes: 10, stallAfterBytes: 10, timeoutMs: 20_000 });
    expect(answer.timedOut).toBe(false);
    expect(answer.status).toBe(408);
    expect(answer.body.code).toBe(ErrorCode.REQUEST_TIMEOUT);
    expect(answer.closed).toBe(true);
  }, 30_000);

  it("lets clients walk away mid-body, mid-token-check and mid-answer without harm to anyone else", async () => {
    const walkAway = (head: string, bytes: number) => new Promise<void>((resolve) => {
      const socket = net.connect(port, "127.0.0.1", () => {
        socket.write(head);
        socket.write(Buffer.alloc(bytes, 0x61), () => { socket.destroy(); resolve(); });
      });
      socket.on("error", () => resolve());
    });
    await Promise.all([
      walkAway("POST /matchmake/joinOrCreate/lobby HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n", 10),
      walkAway("POST /expo/halls HTTP/1.1\r\nhost: x\r\nauthorization: Bearer not.a.token\r\ncontent-length: 100000\r\n\r\n", 100),
      walkAway("POST /matchmake/joinOrCreate/lobby HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n", 0),
    ]);
    const health = await fetch(`${node.httpUrl}/healthz`);
    expect(health.status).toBe(200);
    expect(node.child.exitCode).toBeNull();
  });

  it("still serves a whole small body, and other clients, after those refusals", async () => {
    const token = await (await fetch(`${node.httpUrl}/dev/token?role=visitor`)).text();
    const response = await fetch(`${node.httpUrl}/matchmake/joinOrCreate/no_such_type`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${token}` }, body: "{}" });
    // Read whole and handed to the matchmaker, which knows no such room type.
    expect(response.status).toBe(404);
    expect((await response.json()).code).toBe(ErrorCode.UNKNOWN_ROOM);
    expect(await (await fetch(`${node.httpUrl}/ping`)).text()).toBe("pong");
  });

  it("decides loopback by the socket: a peer address the client forges is dropped", async () => {
    const response = await fetch(`${node.httpUrl}/dev/token?role=visitor`, { headers: { [PEER_ADDRESS_HEADER]: "203.0.113.9" } });
    expect(response.status).toBe(200);
  });

  it("sends CORS headers to allowed origins only, and never on /dev, /metrics or admin routes", async () => {
    const ping = (origin: string) => fetch(`${node.httpUrl}/ping`, { headers: { origin } });
    const allowed = await ping(ALLOWED_ORIGIN);
    expect(allowed.headers.get("access-control-allow-origin")).toBe(ALLOWED_ORIGIN);
    expect(allowed.headers.get("access-control-allow-credentials")).toBe("true");
    const stranger = await ping("https://evil.example");
    expect(stranger.headers.get("access-control-allow-origin")).toBeNull();
    expect(stranger.headers.get("access-control-allow-credentials")).toBeNull();

    const host = await (await fetch(`${node.httpUrl}/dev/token?role=host`)).text();
    const closed = [
      fetch(`${node.httpUrl}/dev/token?role=visitor`, { headers: { origin: ALLOWED_ORIGIN } }),
      fetch(`${node.httpUrl}/metrics`, { headers: { origin: ALLOWED_ORIGIN, authorization: `Bearer ${METRICS_TOKEN}` } }),
      fetch(`${node.httpUrl}/expo/halls/no-such-hall/analytics`, { headers: { origin: ALLOWED_ORIGIN, authorization: `Bearer ${host}` } }),
    ];
    for (const response of await Promise.all(closed)) {
      expect(response.headers.get("access-control-allow-origin"), response.url).toBeNull();
    }

    const preflight = (path: string, method: string) => fetch(`${node.httpUrl}${path}`, { method: "OPTIONS", headers: { origin: ALLOWED_ORIGIN, "access-control-request-method": method } });
    const matchmake = await preflight("/matchmake/joinOrCreate/lobby", "POST");
    expect(matchmake.status).toBe(204);
    expect(matchmake.headers.get("access-control-allow-origin")).toBe(ALLOWED_ORIGIN);
    expect(matchmake.headers.get("access-control-allow-methods")).toContain("POST");
    for (const [path, method] of [["/dev/token", "GET"], ["/metrics", "GET"], ["/expo/halls", "POST"]] as const) {
      expect((await preflight(path, method)).headers.get("access-control-allow-origin"), path).toBeNull();
    }
  });

  it("answers /metrics to its bearer token only", async () => {
    const without = await fetch(`${node.httpUrl}/metrics`);
    expect(without.status).toBe(401);
    expect((await without.json()).code).toBe(ErrorCode.TOKEN_MISSING);
    const wrong = await fetch(`${node.httpUrl}/metrics`, { headers: { authorization: "Bearer not-the-metrics-token" } });
    expect(wrong.status).toBe(401);
    expect((await wrong.json()).code).toBe(ErrorCode.TOKEN_INVALID);
    const scraped = await fetch(`${node.httpUrl}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(scraped.status).toBe(200);
    const text = await scraped.text();
    expect(text).toContain("tsunagi_connections");
    // The refusals above were counted.
    expect(text).toMatch(/tsunagi_errors_total\{code="FRAME_TOO_LARGE",source="http"\} [1-9]/);
  });
});
