/**
 * Token scope, room-type namespaces and the matchmaking rate limit's key, on two real
 * nodes of one region sharing Redis (issue 11, "Token scope and room types" and
 * "Matchmaking rate limit"): each case as it was reported.
 */
import "../../server/polyfills.ts";
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { randomUUID } from "node:crypto";
import { startNode, flushRedisDb, waitFor, type NodeProcess } from "../fixtures/processes.ts";
import { testIssuer } from "../fixtures/tokens.ts";
import { liveNodes } from "../fixtures/cluster.ts";
import { openHall, smallHall } from "../fixtures/expo.ts";
import { testRedisUrl } from "../fixtures/redis.ts";
import type { Role } from "../../server/auth/tokens.ts";
import { ErrorCode } from "../../proto/index.ts";

// A database of its own on the shared Redis, so Colyseus' unprefixed keys stay apart from other test files.
const redisUrl = testRedisUrl(15);
const clusterName = `scope-${randomUUID().slice(0, 8)}`;
const issuer = testIssuer(clusterName);
let a: NodeProcess;
let b: NodeProcess;

/** A token as the identity service would issue it, scoped to `rooms` when given. */
function token(role: Role, rooms?: string[]) {
  return issuer.issue({ sub: `${role}-${randomUUID().slice(0, 6)}`, role, rooms });
}

/** POST /matchmake/…: the status and JSON body (a seat reservation, or `{code, error}`). */
async function matchmake(node: NodeProcess, method: string, target: string, options: object, authorization: string, headers: Record<string, string> = {}) {
  const response = await fetch(`${node.httpUrl}/matchmake/${method}/${target}`, {
    method: "POST", headers: { "content-type": "application/json", authorization, ...headers }, body: JSON.stringify(options),
  });
  return { status: response.status, body: await response.json() };
}
const bearer = async (role: Role, rooms?: string[]) => `Bearer ${await token(role, rooms)}`;

async function hallRequest(node: NodeProcess, method: string, path: string, jwt: string) {
  const response = await fetch(`${node.httpUrl}${path}`, { method, headers: { authorization: `Bearer ${jwt}` } });
  return { status: response.status, body: response.headers.get("content-type")?.includes("json") ? await response.json() : await response.text() };
}

beforeAll(async () => {
  await flushRedisDb(redisUrl);
  [a, b] = await Promise.all([
    startNode({ regionId: "jp-tokyo", nodeId: "scope-a", redisUrl, clusterName, extraArgs: ["--http-trusted-proxies", "127.0.0.1"] }),
    startNode({ regionId: "jp-tokyo", nodeId: "scope-b", redisUrl, clusterName }),
  ]);
  await waitFor(async () => (await liveNodes(a)).length === 2, 10_000, "both nodes registered");
}, 60_000);
afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
});

describe("token scope on create", () => {
  it("a supervisor scoped to one site cannot open a room with no id, nor bind another site's machine", async () => {
    const scoped = await bearer("supervisor", ["site-a", "device:ex-a"]);
    // As reported: no room id, another site's machine.
    const unnamed = await matchmake(a, "create", "teleop", { devices: ["ex-b"] }, scoped);
    expect(unnamed.status).toBe(403);
    expect(unnamed.body.code).toBe(ErrorCode.FORBIDDEN);
    // Its own site's room, another site's machine.
    const foreignDevice = await matchmake(a, "create", "teleop", { roomId: "site-a", devices: ["ex-a", "ex-b"] }, scoped);
    expect(foreignDevice.status).toBe(403);
    expect(foreignDevice.body.code).toBe(ErrorCode.FORBIDDEN);
    // Another site's room.
    const foreignRoom = await matchmake(b, "joinOrCreate", "teleop", { roomId: "site-b", devices: ["ex-a"] }, scoped);
    expect(foreignRoom.status).toBe(403);

    // Nothing was claimed: site b's supervisor opens its room over its machine, and the scoped one its own.
    const siteB = await matchmake(b, "create", "teleop", { roomId: "site-b", devices: ["ex-b"] }, await bearer("supervisor", ["site-b", "device:ex-b"]));
    expect(siteB.status, JSON.stringify(siteB.body)).toBe(200);
    const own = await matchmake(a, "create", "teleop", { roomId: "site-a", devices: ["ex-a"] }, scoped);
    expect(own.status, JSON.stringify(own.body)).toBe(200);
    expect(own.body.roomId).toBe("teleop__site-a");
  });

  it("only staff, or a token scoped to the name, name a session room; anyone opens an unnamed one", async () => {
    const refused = await matchmake(a, "joinOrCreate", "session", { roomId: "squat" }, await bearer("visitor"));
    expect(refused.status).toBe(403);
    expect(refused.body.code).toBe(ErrorCode.FORBIDDEN);
    const granted = await matchmake(a, "create", "session", { roomId: "squat" }, await bearer("visitor", ["squat"]));
    expect(granted.status, JSON.stringify(granted.body)).toBe(200);
    const unnamed = await matchmake(b, "create", "session", {}, await bearer("visitor"));
    expect(unnamed.status, JSON.stringify(unnamed.body)).toBe(200);
    expect(unnamed.body.roomId).toMatch(/^session__/);
  });
});

describe("token scope on the hall admin routes", () => {
  it("a host scoped to another hall can neither read the hall's analytics nor close it", async () => {
    const hallId = `demo-${randomUUID().slice(0, 6)}`;
    const opened = await openHall(a, smallHall(hallId));
    expect(opened.status, JSON.stringify(opened.body)).toBe(201);
    const elsewhere = await token("host", ["other-hall"]);

    for (const query of ["", "?format=csv", "?format=csv&table=heatmap"]) {
      const read = await hallRequest(b, "GET", `/expo/halls/${hallId}/analytics${query}`, elsewhere);
      expect(read.status, `analytics${query}`).toBe(403);
      expect(read.body.code).toBe(ErrorCode.FORBIDDEN);
    }
    const closing = await hallRequest(a, "DELETE", `/expo/halls/${hallId}`, elsewhere);
    expect(closing.status).toBe(403);
    const reopening = await openHall(b, smallHall("not-mine"), elsewhere);
    expect(reopening.status).toBe(403);

    // The hall is still open, and the host it is scoped to reads and closes it.
    const own = await token("host", [hallId]);
    expect((await hallRequest(b, "GET", `/expo/halls/${hallId}/analytics`, own)).status).toBe(200);
    expect((await hallRequest(a, "DELETE", `/expo/halls/${hallId}`, own)).status).toBe(200);
  });
});

describe("each room type its own id namespace", () => {
  it("a session room named like a site neither blocks its teleop room nor takes in its operator", async () => {
    const session = await matchmake(a, "create", "session", { roomId: "site-sq" }, await bearer("host"));
    expect(session.status, JSON.stringify(session.body)).toBe(200);

    // Not blocked.
    const teleop = await matchmake(b, "create", "teleop", { roomId: "site-sq", devices: ["ex-sq"] }, await bearer("supervisor"));
    expect(teleop.status, JSON.stringify(teleop.body)).toBe(200);
    expect(teleop.body).toMatchObject({ name: "teleop", roomId: "teleop__site-sq" });

    // The operator asking for teleop site-sq lands in the teleop room, from either node, by name or by id.
    for (const node of [a, b]) {
      const joined = await matchmake(node, "join", "teleop", { roomId: "site-sq" }, await bearer("operator"));
      expect(joined.status, JSON.stringify(joined.body)).toBe(200);
      expect(joined.body).toMatchObject({ name: "teleop", roomId: "teleop__site-sq" });
    }
    const byId = await matchmake(a, "joinById", "teleop__site-sq", {}, await bearer("operator"));
    expect(byId.body).toMatchObject({ name: "teleop", roomId: "teleop__site-sq" });
    // And the session's visitors still land in the session.
    const visitor = await matchmake(b, "joinOrCreate", "session", { roomId: "site-sq" }, await bearer("visitor"));
    expect(visitor.body).toMatchObject({ name: "session", roomId: "session__site-sq" });
  });

  it("a teleop room does not take in a session of its name, and a join of a type with no such room is UNKNOWN_ROOM", async () => {
    const teleop = await matchmake(a, "create", "teleop", { roomId: "site-rev", devices: ["ex-rev"] }, await bearer("supervisor"));
    expect(teleop.status, JSON.stringify(teleop.body)).toBe(200);

    const session = await matchmake(b, "joinOrCreate", "session", { roomId: "site-rev" }, await bearer("host"));
    expect(session.status, JSON.stringify(session.body)).toBe(200);
    expect(session.body).toMatchObject({ name: "session", roomId: "session__site-rev" });

    const missing = await matchmake(a, "join", "session", { roomId: "site-only-teleop" }, await bearer("host"));
    expect(missing.body.code).toBe(ErrorCode.UNKNOWN_ROOM);
    const teleopOnly = await matchmake(b, "create", "teleop", { roomId: "site-only-teleop", devices: ["ex-only"] }, await bearer("supervisor"));
    expect(teleopOnly.status).toBe(200);
    const wrongType = await matchmake(a, "join", "session", { roomId: "site-only-teleop" }, await bearer("host"));
    expect(wrongType.status).toBe(404);
    expect(wrongType.body.code).toBe(ErrorCode.UNKNOWN_ROOM);
  });
});

describe("matchmaking rate limit", () => {
  it("refuses a flood from one client whatever Authorization headers it sends", async () => {
    const responses = await Promise.all(Array.from({ length: 150 }, (_, i) =>
      matchmake(b, "joinOrCreate", "session", {}, `Bearer not-a-token-${i}`)));
    const limited = responses.filter((r) => r.status === 429);
    expect(limited.length).toBeGreaterThan(0);
    for (const r of limited) expect(r.body.code).toBe(ErrorCode.RATE_LIMITED);
    // The rest were refused for their token, not admitted.
    for (const r of responses.filter((r) => r.status !== 429)) expect(r.body.code).toBe(ErrorCode.TOKEN_INVALID);
  });

  it("refuses a flood by one subject whatever addresses a trusted proxy names for it", async () => {
    const jwt = await token("visitor");
    const responses = await Promise.all(Array.from({ length: 150 }, (_, i) =>
      matchmake(a, "join", "session", { roomId: "nowhere" }, `Bearer ${jwt}`, { "x-forwarded-for": `10.0.${i >> 8}.${i & 255}` })));
    const limited = responses.filter((r) => r.status === 429);
    expect(limited.length).toBeGreaterThan(0);
    for (const r of limited) expect(r.body.code).toBe(ErrorCode.RATE_LIMITED);
  });
});
