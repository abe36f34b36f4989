/**
 * RegionProbe: choosing the nearest region from injected measurements, failures and
 * timeouts, re-probing, RTT hints; and the default HTTP measurement against a local
 * server whose paths answer /ping with different delays.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { RegionProbe, type Region } from "../../../common/RegionProbe.ts";
import { TsunagiError } from "../../../client-sdk/errors.ts";
import { ErrorCode } from "../../../proto/index.ts";

const regions: Region[] = [
  { id: "jp-tokyo", url: "http://tokyo.invalid" },
  { id: "jp-osaka", url: "http://osaka.invalid/" },
  { id: "jp-sapporo", url: "http://sapporo.invalid" },
];

/** A measure that answers from a table; a function value is called per sample. */
function tableMeasure(table: Record<string, number | (() => Promise<number>)>) {
  const calls: string[] = [];
  const measure = async (region: Region) => {
    calls.push(region.id);
    const entry = table[region.id];
    return typeof entry === "function" ? entry() : entry;
  };
  return { measure, calls };
}

describe("RegionProbe with an injected measure", () => {
  it("picks the lowest RTT and sorts results ascending", async () => {
    const { measure, calls } = tableMeasure({ "jp-tokyo": 18, "jp-osaka": 3, "jp-sapporo": 12 });
    const probe = new RegionProbe({ regions, measure });
    const results = await probe.probe();
    expect(results.map((r) => r.id)).toEqual(["jp-osaka", "jp-sapporo", "jp-tokyo"]);
    expect(results[0]).toEqual({ id: "jp-osaka", url: "http://osaka.invalid", rttMs: 3 });
    expect(calls.length).toBe(9); // three samples per region by default
    expect(await probe.best()).toEqual({ id: "jp-osaka", url: "http://osaka.invalid", rttMs: 3 });
  });

  it("takes the median of the samples, so one slow sample does not decide", async () => {
    const samples: Record<string, number[]> = { "jp-tokyo": [50, 4, 5], "jp-osaka": [6, 6, 7] };
    const probe = new RegionProbe({
      regions: regions.slice(0, 2), samples: 3,
      measure: async (region) => samples[region.id].shift()!,
    });
    expect(await probe.best()).toMatchObject({ id: "jp-tokyo", rttMs: 5 });
  });

  it("gives a failed region Infinity and an error, and skips it", async () => {
    const { measure } = tableMeasure({
      "jp-tokyo": 4,
      "jp-osaka": () => Promise.reject(new Error("connect ECONNREFUSED")),
      "jp-sapporo": 9,
    });
    const probe = new RegionProbe({ regions, measure });
    const results = await probe.probe();
    const osaka = results.find((r) => r.id === "jp-osaka")!;
    expect(osaka.rttMs).toBe(Infinity);
    expect(osaka.error).toBeInstanceOf(TsunagiError);
    expect(osaka.error?.code).toBe(ErrorCode.REGION_UNAVAILABLE);
    expect(osaka.error?.message).toMatch(/ECONNREFUSED/);
    expect(results.at(-1)?.id).toBe("jp-osaka");
    expect((await probe.best()).id).toBe("jp-tokyo");
  });

  it("times out a region that does not answer, even if measure ignores the signal", async () => {
    let aborted = false;
    const probe = new RegionProbe({
      regions: regions.slice(0, 2), timeoutMs: 50,
      measure: (region, signal) => {
        if (region.id === "jp-osaka") return Promise.resolve(20);
        signal.addEventListener("abort", () => { aborted = true; });
        return new Promise<number>(() => {}); // never settles
      },
    });
    const started = performance.now();
    const results = await probe.probe();
    expect(performance.now() - started).toBeLessThan(1000);
    expect(results[0]).toMatchObject({ id: "jp-osaka", rttMs: 20 });
    expect(results[1]).toMatchObject({ id: "jp-tokyo", rttMs: Infinity });
    expect(results[1].error?.message).toMatch(/within 50 ms/);
    expect(aborted).toBe(true);
  });

  it("treats a measure that returns a non-number as a failure", async () => {
    const probe = new RegionProbe({ regions: regions.slice(0, 2), measure: async (region) => (region.id === "jp-tokyo" ? (undefined as unknown as number) : 7) });
    const results = await probe.probe();
    expect(results.find((r) => r.id === "jp-tokyo")?.error).toBeDefined();
    expect((await probe.best()).id).toBe("jp-osaka");
  });

  it("rejects with REGION_UNAVAILABLE when every region fails, and probes again next time", async () => {
    let up = false;
    const probe = new RegionProbe({
      regions: regions.slice(0, 2),
      measure: async () => { if (!up) throw new Error("offline"); return 5; },
    });
    const error = await probe.best().catch((e) => e);
    expect(error).toBeInstanceOf(TsunagiError);
    expect(error).toMatchObject({ code: ErrorCode.REGION_UNAVAILABLE, retryable: true });
    expect(error.message).toMatch(/jp-tokyo: .*offline/);
    expect(probe.rttHints()).toEqual({});

    up = true;
    expect((await probe.best()).rttMs).toBe(5);
  });

  it("caches best() after the first probe; reprobe() updates the choice", async () => {
    const table: Record<string, number> = { "jp-tokyo": 18, "jp-osaka": 3, "jp-sapporo": 12 };
    const { measure, calls } = tableMeasure(table);
    const probe = new RegionProbe({ regions, measure, samples: 1 });
    expect((await probe.best()).id).toBe("jp-osaka");
    expect((await probe.best()).id).toBe("jp-osaka");
    expect(calls.length).toBe(3);

    table["jp-tokyo"] = 2;
    expect((await probe.best()).id).toBe("jp-osaka"); // still cached
    await probe.reprobe();
    expect(calls.length).toBe(6);
    expect((await probe.best()).id).toBe("jp-tokyo");
  });

  it("shares one probe among concurrent callers", async () => {
    const { measure, calls } = tableMeasure({ "jp-tokyo": 1, "jp-osaka": 2, "jp-sapporo": 3 });
    const probe = new RegionProbe({ regions, measure, samples: 1 });
    const [a, b, c] = await Promise.all([probe.best(), probe.best(), probe.probe()]);
    expect(a.id).toBe("jp-tokyo");
    expect(b.id).toBe("jp-tokyo");
    expect(c.length).toBe(3);
    expect(calls.length).toBe(3);
  });

  it("reports finite RTTs of the last probe as hints", async () => {
    const { measure } = tableMeasure({ "jp-tokyo": 18.04, "jp-osaka": 3.26, "jp-sapporo": () => Promise.reject(new Error("down")) });
    const probe = new RegionProbe({ regions, measure });
    expect(probe.rttHints()).toEqual({});
    await probe.probe();
    expect(probe.rttHints()).toEqual({ "jp-osaka": 3.3, "jp-tokyo": 18 });
    expect(probe.reachable().map((r) => r.id)).toEqual(["jp-osaka", "jp-tokyo"]);
  });

  it("refuses bad options with TypeError", () => {
    expect(() => new RegionProbe({ regions: [] })).toThrow(TypeError);
    expect(() => new RegionProbe({ regions: [regions[0], regions[0]] })).toThrow(/twice/);
    expect(() => new RegionProbe({ regions: [{ id: "", url: "http://x" }] })).toThrow(TypeError);
    expect(() => new RegionProbe({ regions, samples: 0 })).toThrow(TypeError);
    expect(() => new RegionProbe({ regions, timeoutMs: 0 })).toThrow(TypeError);
  });
});

describe("RegionProbe default measure (HTTP /ping)", () => {
  /** Delay before answering /ping, per path prefix: two fake regions on one server. */
  const delays: Record<string, number> = { "/near": 5, "/far": 40 };
  const requests: string[] = [];
  let server: http.Server;
  let base: string;

  beforeAll(async () => {
    server = http.createServer((request, response) => {
      const url = request.url ?? "";
      requests.push(url);
      const prefix = Object.keys(delays).find((p) => url === `${p}/ping`);
      if (url === "/hang/ping") return; // never answers
      if (url === "/broken/ping") { response.writeHead(500).end("no"); return; }
      if (!prefix) { response.writeHead(404).end(); return; }
      setTimeout(() => {
        response.writeHead(200, { "content-type": "text/plain", "access-control-allow-origin": "*" }).end("pong");
      }, delays[prefix]);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it("measures each region's /ping and picks the faster one", async () => {
    const probe = new RegionProbe({
      regions: [{ id: "far", url: `${base}/far` }, { id: "near", url: `${base}/near` }],
      samples: 3, timeoutMs: 2000,
    });
    const results = await probe.probe();
    expect(results.map((r) => r.id)).toEqual(["near", "far"]);
    expect(results[0].rttMs).toBeGreaterThanOrEqual(4);
    expect(results[1].rttMs).toBeGreaterThanOrEqual(39);
    expect(results[1].rttMs).toBeGreaterThan(results[0].rttMs);
    expect((await probe.best()).id).toBe("near");
    expect(requests.filter((r) => r === "/near/ping").length).toBe(3);
    expect(Object.keys(probe.rttHints()).sort()).toEqual(["far", "near"]);
  });

  it("fails regions that time out, answer an error status or refuse connections", async () => {
    // a port that was just free: nothing listens there
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const closedUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise<void>((resolve) => closed.close(() => resolve()));

    const probe = new RegionProbe({
      regions: [
        { id: "hang", url: `${base}/hang` },
        { id: "broken", url: `${base}/broken` },
        { id: "refused", url: closedUrl },
        { id: "near", url: `${base}/near` },
      ],
      samples: 2, timeoutMs: 300,
    });
    const started = performance.now();
    const results = await probe.probe();
    expect(performance.now() - started).toBeLessThan(2000);
    expect(results[0]).toMatchObject({ id: "near" });
    const byId = Object.fromEntries(results.map((r) => [r.id, r]));
    for (const id of ["hang", "broken", "refused"]) {
      expect(byId[id].rttMs, id).toBe(Infinity);
      expect(byId[id].error?.code, id).toBe(ErrorCode.REGION_UNAVAILABLE);
    }
    expect(byId.hang.error?.message).toMatch(/within 300 ms/);
    expect(byId.broken.error?.message).toMatch(/HTTP 500/);
    expect(probe.rttHints()).toEqual({ near: expect.any(Number) });
  });
});
