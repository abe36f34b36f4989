/**
 * TsunagiClient without a server: region choice, token and RTT hints on the matchmake
 * call, falling back to the next region, and error mapping. The Colyseus clients are
 * fakes that record calls and return a real SDK Room.
 */
import { describe, it, expect } from "vitest";
import { Room, MatchMakeError, type Client } from "@colyseus/sdk";
import { TsunagiClient } from "../../../client-sdk/TsunagiClient.ts";
import { RegionProbe } from "../../../common/RegionProbe.ts";
import { RoomSession } from "../../../client-sdk/RoomSession.ts";
import { TsunagiError } from "../../../client-sdk/errors.ts";
import { ErrorCode } from "../../../proto/index.ts";

interface Call { url: string; method: string; target: string; options: Record<string, unknown>; token?: string }

/** Fake Colyseus clients by URL; `failures[url]` makes that URL's matchmaking throw. */
function fakeClients(failures: Record<string, unknown> = {}) {
  const calls: Call[] = [];
  const createClient = (url: string) => {
    const auth = { token: undefined as string | undefined };
    const matchmake = (method: string) => async (target: string, options: Record<string, unknown> = {}) => {
      calls.push({ url, method, target, options, token: auth.token });
      if (failures[url]) throw failures[url];
      const room = new Room(method === "joinById" ? "session" : target);
      room.roomId = method === "joinById" ? target : "room-1";
      room.sessionId = "session-1";
      return room;
    };
    return {
      auth,
      joinOrCreate: matchmake("joinOrCreate"), create: matchmake("create"), join: matchmake("join"),
      joinById: matchmake("joinById"), reconnect: (token: string) => matchmake("reconnect")(token, {}),
    } as unknown as Client;
  };
  return { calls, createClient };
}

const regions = [
  { id: "jp-tokyo", url: "http://tokyo.test" },
  { id: "jp-osaka", url: "http://osaka.test" },
  { id: "jp-sendai", url: "http://sendai.test" },
];
const rtt: Record<string, number> = { "jp-tokyo": 9, "jp-osaka": 3, "jp-sendai": 14 };
const probeOf = (table = rtt) => new RegionProbe({ regions, measure: async (region) => table[region.id], samples: 1 });

describe("TsunagiClient", () => {
  it("matchmakes through the nearest region with the token and the RTT hints", async () => {
    const { calls, createClient } = fakeClients();
    const client = new TsunagiClient({ probe: probeOf(), token: "jwt-1", createClient });
    const session = await client.joinOrCreate("session", { roomId: "hall-1" });
    expect(session).toBeInstanceOf(RoomSession);
    expect(session.region).toMatchObject({ id: "jp-osaka", url: "http://osaka.test", rttMs: 3 });
    expect(calls).toEqual([{
      url: "http://osaka.test", method: "joinOrCreate", target: "session", token: "jwt-1",
      options: { roomId: "hall-1", rttHints: { "jp-osaka": 3, "jp-tokyo": 9, "jp-sendai": 14 }, followsHandoff: true },
    }]);
  });

  it("supports create, join, joinById and reconnect, reusing one Colyseus client per region", async () => {
    const { calls, createClient } = fakeClients();
    let created = 0;
    const client = new TsunagiClient({ probe: probeOf(), createClient: (url) => { created++; return createClient(url); } });
    await client.create("session", { roomId: "a" });
    await client.join("session");
    const byId = await client.joinById("room-42");
    await client.reconnect("room-42:token");
    expect(calls.map((c) => `${c.method} ${c.target}`)).toEqual(["create session", "join session", "joinById room-42", "reconnect room-42:token"]);
    expect(byId.roomId).toBe("room-42");
    expect(created).toBe(1);
  });

  it("asks a token function before each join", async () => {
    const { calls, createClient } = fakeClients();
    let issued = 0;
    const client = new TsunagiClient({ probe: probeOf(), token: async () => `jwt-${++issued}`, createClient });
    await client.joinOrCreate("session");
    await client.joinOrCreate("session");
    expect(calls.map((c) => c.token)).toEqual(["jwt-1", "jwt-2"]);
  });

  it("fails with TOKEN_MISSING when the token function fails", async () => {
    const { createClient } = fakeClients();
    const client = new TsunagiClient({ probe: probeOf(), token: async () => { throw new Error("backend down"); }, createClient });
    await expect(client.joinOrCreate("session")).rejects.toMatchObject({ code: ErrorCode.TOKEN_MISSING, message: expect.stringMatching(/backend down/) });
  });

  it("keeps RTT hints the caller passed", async () => {
    const { calls, createClient } = fakeClients();
    const client = new TsunagiClient({ probe: probeOf(), createClient });
    await client.joinOrCreate("session", { rttHints: { "jp-sendai": 1 } });
    expect(calls[0].options.rttHints).toEqual({ "jp-sendai": 1 });
  });

  it("with a single url: no probe, no hints", async () => {
    const { calls, createClient } = fakeClients();
    const client = new TsunagiClient({ url: "http://one.test/", createClient });
    const session = await client.joinOrCreate("session", { a: 1 });
    expect(calls).toMatchObject([{ url: "http://one.test", options: { a: 1 } }]);
    expect(calls[0].options).not.toHaveProperty("rttHints");
    expect(session.region).toEqual({ url: "http://one.test" });
  });

  it("falls back to the next nearest region when the nearest is down, draining or full", async () => {
    const { calls, createClient } = fakeClients({
      "http://osaka.test": new MatchMakeError("fetch failed", "ECONNREFUSED" as unknown as number),
      "http://tokyo.test": new MatchMakeError("[4504 OVERLOADED] no node in region jp-tokyo has capacity", 503),
    });
    const client = new TsunagiClient({ probe: probeOf(), createClient });
    const session = await client.joinOrCreate("session");
    expect(calls.map((c) => c.url)).toEqual(["http://osaka.test", "http://tokyo.test", "http://sendai.test"]);
    expect(session.region?.id).toBe("jp-sendai");
  });

  it("does not try other regions for errors that would repeat there", async () => {
    const { calls, createClient } = fakeClients({
      "http://osaka.test": new MatchMakeError("[4413 FORBIDDEN] token is scoped to other rooms", 403),
    });
    const client = new TsunagiClient({ probe: probeOf(), createClient });
    const error = await client.joinById("secret").catch((e) => e);
    expect(error).toBeInstanceOf(TsunagiError);
    expect(error).toMatchObject({ code: ErrorCode.FORBIDDEN, retryable: false });
    expect(calls.length).toBe(1);
  });

  it("throws the last region's error when every region refuses", async () => {
    const down = new MatchMakeError("fetch failed", "ECONNREFUSED" as unknown as number);
    const { createClient } = fakeClients({ "http://osaka.test": down, "http://tokyo.test": down, "http://sendai.test": down });
    const client = new TsunagiClient({ probe: probeOf(), createClient });
    await expect(client.joinOrCreate("session")).rejects.toMatchObject({ code: ErrorCode.REGION_UNAVAILABLE, retryable: true });
  });

  it("fails with REGION_UNAVAILABLE when no region answers the probe", async () => {
    const { calls, createClient } = fakeClients();
    const probe = new RegionProbe({ regions, measure: async () => { throw new Error("offline"); } });
    const client = new TsunagiClient({ probe, createClient });
    await expect(client.joinOrCreate("session")).rejects.toMatchObject({ code: ErrorCode.REGION_UNAVAILABLE });
    expect(calls).toEqual([]);
  });

  it("builds its own probe from `regions`", () => {
    const client = new TsunagiClient({ regions });
    expect(client.probe).toBeInstanceOf(RegionProbe);
    expect(client.probe?.regions.map((r) => r.id)).toEqual(["jp-tokyo", "jp-osaka", "jp-sendai"]);
  });

  it("refuses missing endpoints and empty room names with TypeError", async () => {
    expect(() => new TsunagiClient({})).toThrow(TypeError);
    const client = new TsunagiClient({ url: "http://one.test", createClient: fakeClients().createClient });
    await expect(client.joinOrCreate("")).rejects.toThrow(TypeError);
  });
});

describe("client-sdk entry", () => {
  it("provides a global WebSocket on Node before the first join", async () => {
    const sdk = await import("../../../client-sdk/index.ts");
    expect(sdk.TsunagiClient).toBe(TsunagiClient);
    expect(sdk.ErrorCode.REGION_UNAVAILABLE).toBe(4505);
    const client = new sdk.TsunagiClient({ url: "http://one.test", createClient: fakeClients().createClient });
    await client.joinOrCreate("session");
    expect(typeof (globalThis as { WebSocket?: unknown }).WebSocket).toBe("function");
  });
});
