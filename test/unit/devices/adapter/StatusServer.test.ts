/**
 * The adapter's local endpoint answers only its own host: a request naming another Host
 * (a web page on a rebound DNS name) and a POST without X-Tsunagi-Adapter (a web page's
 * cross-origin form or fetch) are refused 403 and act on nothing. /local-reset is the
 * technician's half of clearing an e-stop raised at the machine.
 */
import { request } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { StatusServer } from "../../../../devices/adapter/StatusServer.ts";

const servers: StatusServer[] = [];
afterEach(async () => { for (const server of servers.splice(0)) await server.close(); });

/** A runtime that records what the endpoint asked of it. */
function fakeRuntime() {
  const calls: string[] = [];
  return {
    calls,
    status: () => ({ state: "online", safety: { estopped: calls.includes("estop") } }) as never,
    raiseEStop: (reason: string) => { calls.push("estop"); void reason; },
    localReset: () => { calls.push("local-reset"); return { released: true, detail: "released locally" }; },
  };
}

/** One request with exactly these headers (fetch would not let a test set Host). */
function send(port: number, method: string, path: string, headers: Record<string, string>): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, method, path, headers, timeout: 10_000 }, (response) => {
      let text = "";
      response.on("data", (chunk) => { text += chunk; });
      response.on("end", () => resolve({ status: response.statusCode!, body: JSON.parse(text) as Record<string, unknown> }));
    });
    req.on("error", reject);
    req.end();
  });
}

async function start() {
  const runtime = fakeRuntime();
  const refused: string[] = [];
  const server = await StatusServer.start(runtime, { host: "127.0.0.1", port: 0, onRefused: (reason) => refused.push(reason) });
  servers.push(server);
  return { runtime, server, refused, own: `127.0.0.1:${server.port}` };
}

describe("StatusServer", () => {
  it("refuses a POST /estop without X-Tsunagi-Adapter: 1, and raises nothing", async () => {
    const { runtime, server, refused, own } = await start();
    const bare = await send(server.port, "POST", "/estop", { host: own });
    expect(bare.status).toBe(403);
    expect(bare.body.error).toMatch(/X-Tsunagi-Adapter: 1/);
    expect((await send(server.port, "POST", "/estop", { host: own, "x-tsunagi-adapter": "yes" })).status).toBe(403);
    expect(runtime.calls).toEqual([]);
    expect(refused).toHaveLength(2);

    const local = await send(server.port, "POST", "/estop", { host: own, "x-tsunagi-adapter": "1" });
    expect(local.status).toBe(200);
    expect(runtime.calls).toEqual(["estop"]);
  });

  it("refuses any request naming another Host, even with the header; localhost and the bound address pass", async () => {
    const { runtime, server } = await start();
    const rebound = await send(server.port, "POST", "/estop", { host: `attacker.example:${server.port}`, "x-tsunagi-adapter": "1" });
    expect(rebound.status).toBe(403);
    expect(rebound.body.error).toMatch(/not this endpoint/);
    expect((await send(server.port, "GET", "/status", { host: `attacker.example:${server.port}` })).status).toBe(403);
    expect((await send(server.port, "GET", "/status", { host: "127.0.0.1:1" })).status).toBe(403); // another port
    expect(runtime.calls).toEqual([]);
    expect((await send(server.port, "GET", "/status", { host: `localhost:${server.port}` })).status).toBe(200);
    expect((await send(server.port, "GET", "/status", { host: `127.0.0.1:${server.port}` })).status).toBe(200);
  });

  it("POST /local-reset asks the runtime for the local reset, with the same rules", async () => {
    const { runtime, server, own } = await start();
    expect((await send(server.port, "POST", "/local-reset", { host: own })).status).toBe(403);
    expect((await send(server.port, "GET", "/local-reset", { host: own })).status).toBe(405);
    const released = await send(server.port, "POST", "/local-reset", { host: own, "x-tsunagi-adapter": "1" });
    expect(released).toMatchObject({ status: 200, body: { released: true } });
    expect(runtime.calls).toEqual(["local-reset"]);
  });
});
