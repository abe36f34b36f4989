/**
 * Fuzz targets over HTTP: any method, path, headers and body against the node's routes,
 * and matchmaking calls whose options have the names rooms read and values of any type.
 * A case passes when the answer came in time, was not a 5xx, and a 4xx carried a
 * specific `code` in its JSON body.
 *
 * The demo's own hall and devices are left out of the destructive paths (closing the
 * hall, re-enrolling a device), so the room targets keep something to fuzz.
 */
import fc from "fast-check";
import { jsonPayload, mangled } from "../arbitraries.ts";
import { ANSWER_TIMEOUT_MS, isSpecificCode, OK, type Verdict } from "../verdict.ts";
import type { FuzzNode, FuzzTarget, TargetLane } from "./types.ts";

interface HttpCase { method: string; path: string; auth: string; contentType: string; body?: Uint8Array }

const ROLES = ["visitor", "host", "operator", "supervisor", "admin"] as const;
const id = fc.oneof(fc.constantFrom("fuzz-hall", "teleop-demo", "nope", "..", "%2e%2e", "a".repeat(200)), fc.string({ maxLength: 20 }).map(encodeURIComponent));
const matchmakeMethod = fc.constantFrom("create", "joinOrCreate", "join", "joinById", "reconnect", "nope", "");
const roomName = fc.oneof(fc.constantFrom("session", "teleop", "expo", "lobby", "nope", "__proto__"), fc.string({ maxLength: 12 }).map(encodeURIComponent));

const path = fc.oneof(
  fc.tuple(matchmakeMethod, roomName).map(([method, room]) => `/matchmake/${method}/${room}`),
  fc.constantFrom("/expo/halls", "/expo/halls/", "/healthz", "/ping", "/regions", "/gateway", "/metrics", "/dev/token", "/", "/expo/", "/expo/halls//analytics"),
  id.map((hall) => `/expo/halls/${hall}`),
  id.map((hall) => `/expo/halls/${hall}/analytics`),
  fc.tuple(fc.constantFrom("role", "sub", "room", "ttl", "x"), fc.string({ maxLength: 12 })).map(([key, value]) => `/dev/token?${key}=${encodeURIComponent(value)}`),
  fc.string({ maxLength: 40 }).map((p) => `/${encodeURIComponent(p)}`),
);

const layoutOf = (hallId: string) => ({ hallId, name: "Fuzz hall", width: 100, height: 60, spawn: { x: 50, y: 2 },
  booths: [{ id: "b1", name: "B", exhibitor: "E", area: { x: 10, y: 40, w: 10, h: 10 } }], areas: [] });
const text = (value: unknown) => new TextEncoder().encode(JSON.stringify(value) ?? "null");
const body = fc.oneof(
  jsonPayload(["roomId", "hallId", "devices", "name", "avatar", "filter", "width", "height", "booths", "areas", "zones", "spawn"]).map(text),
  mangled(fc.constant(text(layoutOf("fuzz-hall")))),
  fc.uint8Array({ maxLength: 2048 }),
);

const httpCase: fc.Arbitrary<HttpCase> = fc.record({
  method: fc.constantFrom("GET", "POST", "DELETE", "PUT", "PATCH", "OPTIONS", "HEAD"),
  path,
  auth: fc.oneof(fc.constantFrom(...ROLES), fc.constantFrom("", "Bearer ", "Bearer x.y.z", "Basic Zm9vOmJhcg==", "bearer   \t"), fc.string({ maxLength: 40 })),
  contentType: fc.constantFrom("application/json", "text/plain", "", "application/octet-stream", "application/json; charset=utf-16"),
  body: fc.option(body, { nil: undefined }),
});

/** DELETE of the demo hall, and enrolment of the demo's devices, would only stop the other targets. */
function harmless(c: HttpCase): boolean {
  return !(c.path.includes("expo-demo") || c.path.startsWith("/dev/device"));
}

class HttpLane implements TargetLane<HttpCase> {
  constructor(private readonly node: FuzzNode) {}

  async run(c: HttpCase): Promise<Verdict> {
    const headers: Record<string, string> = {};
    if (c.contentType) headers["content-type"] = c.contentType;
    const role = (ROLES as readonly string[]).includes(c.auth) ? c.auth : undefined;
    const authorization = role ? `Bearer ${await this.node.token(role)}` : c.auth;
    if (authorization) headers.authorization = authorization;
    const withBody = c.body !== undefined && c.method !== "GET" && c.method !== "HEAD";
    let response: Response;
    try {
      response = await fetch(this.node.httpUrl + c.path, { method: c.method, headers, body: withBody ? Buffer.from(c.body!) : undefined, signal: AbortSignal.timeout(ANSWER_TIMEOUT_MS) });
    } catch (error) {
      const cause = (error as Error).name === "TimeoutError" ? undefined : (error as Error).message;
      return cause ? { kind: "uncoded", detail: `request failed: ${cause}` } : { kind: "hang", detail: `no answer within ${ANSWER_TIMEOUT_MS} ms to ${c.method} ${c.path.slice(0, 80)}` };
    }
    const text = await response.text();
    if (response.status >= 500 && response.status !== 503) return { kind: "uncoded", detail: `${response.status} for ${c.method} ${c.path.slice(0, 80)}: ${text.slice(0, 160)}` };
    if (response.status < 400 || c.method === "HEAD") return OK;
    let code: unknown;
    try { code = JSON.parse(text).code; } catch { /* not JSON */ }
    return isSpecificCode(code) ? OK : { kind: "uncoded", detail: `${response.status} without a specific code for ${c.method} ${c.path.slice(0, 80)}: ${text.slice(0, 160)}` };
  }

  async close() {}
}

export const httpRequest: FuzzTarget<HttpCase> = {
  name: "http-request",
  arbitrary: httpCase.filter(harmless),
  describe: (c) => JSON.stringify({ ...c, body: c.body && Buffer.from(c.body).toString("hex").slice(0, 300) }),
  lanes: 2,
  async open(node) { return new HttpLane(node); },
};

const optionNames: readonly string[] = ["roomId", "hallId", "devices", "name", "avatar", "filter", "zone", "maxClients", "private", "region", "__proto__", "constructor"];
const matchmakeCase = fc.record({
  method: fc.constantFrom("create", "joinOrCreate", "join", "joinById"),
  room: fc.constantFrom("session", "teleop", "expo", "lobby"),
  role: fc.constantFrom(...ROLES),
  options: jsonPayload(optionNames).filter((o) => !JSON.stringify(o ?? null).includes("expo-demo")),
}).map((c): HttpCase => ({ method: "POST", path: `/matchmake/${c.method}/${c.room}`, auth: c.role, contentType: "application/json", body: text(c.options) }));

export const matchmakeOptions: FuzzTarget<HttpCase> = {
  name: "matchmake-options",
  arbitrary: matchmakeCase,
  describe: (c) => `${c.path} as ${c.auth}: ${new TextDecoder().decode(c.body).slice(0, 300)}`,
  lanes: 2,
  async open(node) { return new HttpLane(node); },
};

