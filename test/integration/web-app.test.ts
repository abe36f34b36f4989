/**
 * The web apps as a node serves them (server/console/webApp.ts): every page route answers
 * the one index.html, its assets come from /app/ with their content hash and a year's
 * cache, the security headers are on every answer, and nothing outside the build can be
 * named: a path that climbs out, the index under /app/, a file that is not there.
 */
import "../../server/polyfills.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { startNode, type NodeProcess } from "../fixtures/processes.ts";
import { rawRequest } from "../fixtures/rawHttp.ts";

let node: NodeProcess;

beforeAll(async () => {
  node = await startNode({ clusterName: `web-${randomUUID().slice(0, 8)}` });
}, 60_000);

afterAll(async () => {
  await node?.stop();
});

describe("the web apps on a node", () => {
  it("answers every page with index.html, with its security headers", async () => {
    for (const page of ["/expo/expo-demo", "/teleop/teleop-demo", "/console", "/console/rooms", "/web"]) {
      const response = await fetch(`${node.httpUrl}${page}`);
      expect(response.status, page).toBe(200);
      expect(response.headers.get("content-type")).toBe("text/html; charset=utf-8");
      expect(response.headers.get("cache-control")).toBe("no-cache");
      const csp = response.headers.get("content-security-policy") ?? "";
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("frame-ancestors 'self'");
      expect(csp).toContain("object-src 'none'");
      expect(response.headers.get("x-content-type-options")).toBe("nosniff");
      expect(response.headers.get("referrer-policy")).toBe("no-referrer");
      expect(await response.text()).toMatch(/<div id="app"><\/div>/);
    }
  });

  it("serves the build's assets under /app/ with a year's cache, and nothing else", async () => {
    const html = await (await fetch(`${node.httpUrl}/console`)).text();
    const script = html.match(/src="(\/app\/assets\/[^"]+\.js)"/)?.[1];
    expect(script).toBeDefined();
    const asset = await fetch(`${node.httpUrl}${script}`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(asset.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    for (const path of ["/app/index.html", "/app/assets/nothing.js", "/app/../package.json", "/app/%2e%2e/package.json", "/app/assets/%2e%2e%2f%2e%2e%2fpackage.json"]) {
      // sent as written: fetch() would resolve the dots before they left
      const response = await rawRequest({ port: Number(new URL(node.httpUrl).port), method: "GET", path, headers: { connection: "close" }, bodyBytes: 0, chunked: false, timeoutMs: 5000 });
      expect(response.status, path).toBe(404);
      expect(JSON.stringify(response.body), path).not.toMatch(/tsunagi.*version/);
    }
  });

  it("answers no other method on the pages", async () => {
    const response = await fetch(`${node.httpUrl}/console`, { method: "POST", body: "x" });
    expect([404, 405]).toContain(response.status);
    expect(response.headers.get("content-type") ?? "").not.toMatch(/html/);
  });
});
