import { describe, it, expect } from "vitest";
import { writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { loadConfig, ConfigError } from "../../../server/config.ts";

describe("loadConfig", () => {
  it("gives the embedded default: 127.0.0.1:2567, uws, dev mode, no Redis", () => {
    const config = loadConfig({ env: {} });
    expect(config).toMatchObject({ host: "127.0.0.1", port: 2567, transport: "uws", devMode: true, regionId: "local" });
    expect(config.redisUrl).toBeUndefined();
    expect(config.nodeId).toMatch(/^local-/);
  });

  it("applies file < env < flags", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "tsunagi-config-"));
    const file = path.join(dir, "node.json");
    writeFileSync(file, JSON.stringify({ regionId: "jp-osaka", port: 3000, limits: { maxCcu: 5 } }));
    const config = loadConfig({
      env: { TSUNAGI_CONFIG: file, TSUNAGI_PORT: "4000", TSUNAGI_LIMITS_MAX_ROOMS: "7" },
      argv: ["--port", "5000"],
    });
    expect(config.regionId).toBe("jp-osaka");
    expect(config.port).toBe(5000);
    expect(config.limits.maxCcu).toBe(5);
    expect(config.limits.maxRooms).toBe(7);
    expect(config.limits.maxFrameBytes).toBe(64 * 1024);
  });

  it("names every bad field", () => {
    let error: ConfigError | undefined;
    try {
      loadConfig({ env: { TSUNAGI_PORT: "eighty" }, argv: ["--transport", "tcp", "--region-id", "Tokyo!"] });
    } catch (e) { error = e as ConfigError; }
    expect(error).toBeInstanceOf(ConfigError);
    expect(error!.issues.join("\n")).toContain("TSUNAGI_PORT: expected an integer");
  });

  it("reports schema violations by path", () => {
    let error: ConfigError | undefined;
    try {
      loadConfig({ env: {}, argv: ["--transport", "tcp", "--region-id", "Tokyo!", "--cluster-heartbeat-ms", "1000", "--cluster-node-ttl-ms", "1500"] });
    } catch (e) { error = e as ConfigError; }
    const text = error!.issues.join("\n");
    expect(text).toContain("transport");
    expect(text).toContain("regionId");
    expect(text).toContain("cluster.nodeTtlMs: nodeTtlMs must be at least 2 × heartbeatMs");
  });

  it("rejects unknown flags", () => {
    expect(() => loadConfig({ env: {}, argv: ["--no-such-flag", "1"] })).toThrow(ConfigError);
  });

  it("requires a secret outside dev mode", () => {
    expect(() => loadConfig({ env: { TSUNAGI_REDIS_URL: "redis://127.0.0.1:6379" } })).toThrow(/authSecret: required/);
    const config = loadConfig({ env: { TSUNAGI_REDIS_URL: "redis://127.0.0.1:6379", TSUNAGI_AUTH_SECRET: "x".repeat(32) } });
    expect(config.devMode).toBe(false);
  });

  it("reads http.corsOrigins as a comma-separated list and refuses what is not an origin", () => {
    const config = loadConfig({ env: { TSUNAGI_HTTP_CORS_ORIGINS: "https://app.example, http://localhost:5173" } });
    expect(config.http.corsOrigins).toEqual(["https://app.example", "http://localhost:5173"]);
    expect(loadConfig({ env: {} }).http).toMatchObject({ corsOrigins: [], readTimeoutMs: 8000 });
    expect(() => loadConfig({ env: {}, argv: ["--http-cors-origins", "https://app.example/path"] })).toThrow(/http\.corsOrigins/);
    expect(() => loadConfig({ env: {}, argv: ["--http-metrics-token", "short"] })).toThrow(/http\.metricsToken/);
  });
});
