import { describe, it, expect } from "vitest";
import { writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { loadConfig, ConfigError } from "../../../server/config.ts";
import { NodeRpc, parsePeerRoutes } from "../../../server/cluster/NodeRpc.ts";

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

  it("refuses dev mode with Redis, naming the reason", () => {
    const issues = (options: Parameters<typeof loadConfig>[0]) => {
      try { loadConfig(options); } catch (e) { return (e as ConfigError).issues.join("\n"); }
      return "";
    };
    expect(issues({ env: { TSUNAGI_REDIS_URL: "redis://127.0.0.1:6379" }, argv: ["--dev-mode", "true"] })).toMatch(/devMode: refused with Redis/);
    expect(issues({ env: { TSUNAGI_CLUSTER_REDIS_URL: "redis://127.0.0.1:6379" }, argv: ["--dev-mode", "true"] })).toMatch(/devMode: refused with Redis/);
    // With a secret too: dev mode's routes would still mint tokens for anyone.
    expect(issues({ env: { TSUNAGI_REDIS_URL: "redis://127.0.0.1:6379", TSUNAGI_AUTH_SECRET: "x".repeat(32) }, argv: ["--dev-mode", "true"] })).toMatch(/devMode: refused with Redis/);
  });

  it("takes the region Redis through its sentinels: the flags, or the redis-sentinel:// form of the URL", () => {
    const secret = { TSUNAGI_AUTH_SECRET: "x".repeat(32) };
    const fromFlags = loadConfig({ env: secret, argv: ["--redis-sentinels", "10.0.0.5:26379,10.0.0.6", "--redis-master-name", "tsunagi"] });
    expect(fromFlags.redisUrl).toBe("redis-sentinel://10.0.0.5:26379,10.0.0.6:26379/tsunagi");
    // Redis mode, so no dev mode, and a secret is required: the sentinels count as a Redis.
    expect(fromFlags.devMode).toBe(false);
    expect(() => loadConfig({ env: { TSUNAGI_REDIS_SENTINELS: "10.0.0.5:26379", TSUNAGI_REDIS_MASTER_NAME: "tsunagi" } })).toThrow(/authSecret: required/);
    expect(loadConfig({ env: { ...secret, TSUNAGI_REDIS_URL: "redis-sentinel://:pw@10.0.0.5:26379/tsunagi" } }).redisUrl).toBe("redis-sentinel://:pw@10.0.0.5:26379/tsunagi");
    const issues = (options: Parameters<typeof loadConfig>[0]) => {
      try { loadConfig(options); } catch (e) { return (e as ConfigError).issues.join("\n"); }
      return "";
    };
    expect(issues({ env: secret, argv: ["--redis-sentinels", "10.0.0.5:26379"] })).toMatch(/redisMasterName: required with redisSentinels/);
    expect(issues({ env: secret, argv: ["--redis-master-name", "tsunagi"] })).toMatch(/redisSentinels: required with redisMasterName/);
    expect(issues({ env: { ...secret, TSUNAGI_REDIS_URL: "redis://127.0.0.1:6379" }, argv: ["--redis-sentinels", "a:1", "--redis-master-name", "m"] })).toMatch(/not both/);
    expect(issues({ env: secret, argv: ["--redis-sentinels", "a:port", "--redis-master-name", "m"] })).toMatch(/redisSentinels: sentinel "a:port"/);
    const bad = issues({ env: { ...secret, TSUNAGI_REDIS_URL: "redis-sentinel://:hunter2@10.0.0.5:26379" } });
    expect(bad).toMatch(/^redisUrl: redis-sentinel:\/\/\*\*\*@/);
    expect(bad).not.toContain("hunter2");
  });

  it("keeps dev mode to loopback hosts: off by default elsewhere (a secret is then required), refused when asked for", () => {
    expect(() => loadConfig({ env: {}, argv: ["--host", "0.0.0.0"] })).toThrow(/authSecret: required outside dev mode/);
    // Off, so a secret is required and (every hop TLS) a certificate: the file only has to be readable here.
    const readable = path.join(mkdtempSync(path.join(tmpdir(), "tsunagi-tls-")), "pem");
    writeFileSync(readable, "pem");
    const tls = ["--tls-cert-file", readable, "--tls-key-file", readable];
    expect(loadConfig({ env: { TSUNAGI_AUTH_SECRET: "x".repeat(32) }, argv: ["--host", "0.0.0.0", ...tls] }).devMode).toBe(false);
    expect(loadConfig({ env: { TSUNAGI_AUTH_SECRET: "x".repeat(32) }, argv: ["--host", "192.168.1.20", ...tls] }).devMode).toBe(false);
    expect(() => loadConfig({ env: {}, argv: ["--host", "0.0.0.0", "--dev-mode", "true"] })).toThrow(/devMode: refused on host 0.0.0.0/);
    for (const host of ["127.0.0.1", "127.0.0.2", "::1", "localhost"]) {
      expect(loadConfig({ env: {}, argv: ["--host", host] }).devMode, host).toBe(true);
    }
    expect(() => loadConfig({ env: {}, argv: ["--dev-mode", "false"] })).toThrow(/authSecret: required/);
  });

  it("reads the secret from a file, and warns when it is given as a flag", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "tsunagi-secret-"));
    const file = path.join(dir, "secret");
    writeFileSync(file, `${"s".repeat(40)}\n`);
    const redis = { TSUNAGI_REDIS_URL: "redis://127.0.0.1:6379" };
    const fromFile = loadConfig({ env: { ...redis, TSUNAGI_AUTH_SECRET_FILE: file } });
    expect(fromFile.authSecret).toBe("s".repeat(40));
    expect(fromFile.warnings).toEqual([]);
    expect(loadConfig({ env: { ...redis, TSUNAGI_AUTH_SECRET: "e".repeat(32) } }).warnings).toEqual([]);
    const fromFlag = loadConfig({ env: redis, argv: ["--auth-secret", "f".repeat(32)] });
    expect(fromFlag.authSecret).toBe("f".repeat(32));
    expect(fromFlag.warnings.join("\n")).toMatch(/--auth-secret puts a secret in the process list/);
    expect(() => loadConfig({ env: { ...redis, TSUNAGI_AUTH_SECRET: "e".repeat(32) }, argv: ["--auth-secret-file", file] })).toThrow(/not both/);
    expect(() => loadConfig({ env: redis, argv: ["--auth-secret-file", path.join(dir, "missing")] })).toThrow(/authSecretFile .*missing/);
    writeFileSync(file, "short\n");
    expect(() => loadConfig({ env: redis, argv: ["--auth-secret-file", file] })).toThrow(/at least 32 characters/);
  });

  it("takes the maximum token age from the settings", () => {
    expect(loadConfig({ env: {} }).tokenMaxAgeSeconds).toBe(86_400);
    expect(loadConfig({ env: { TSUNAGI_TOKEN_MAX_AGE_SECONDS: "600" } }).tokenMaxAgeSeconds).toBe(600);
  });

  it("reads http.corsOrigins as a comma-separated list and refuses what is not an origin", () => {
    const config = loadConfig({ env: { TSUNAGI_HTTP_CORS_ORIGINS: "https://app.example, http://localhost:5173" } });
    expect(config.http.corsOrigins).toEqual(["https://app.example", "http://localhost:5173"]);
    expect(loadConfig({ env: {} }).http).toMatchObject({ corsOrigins: [], readTimeoutMs: 8000 });
    expect(() => loadConfig({ env: {}, argv: ["--http-cors-origins", "https://app.example/path"] })).toThrow(/http\.corsOrigins/);
    expect(() => loadConfig({ env: {}, argv: ["--http-metrics-token", "short"] })).toThrow(/http\.metricsToken/);
  });
});

describe("cluster.peerRoutes", () => {
  it("maps node ids to the address node-to-node calls use, and names a malformed entry", () => {
    const config = loadConfig({ env: {}, argv: ["--cluster-peer-routes", "osaka-1=127.0.0.1:4100,tokyo-2=10.0.0.7:2567"] });
    const routes = parsePeerRoutes(config.cluster.peerRoutes);
    expect(routes.get("osaka-1")).toBe("127.0.0.1:4100");
    const rpc = new NodeRpc("tokyo-1", 1000, { scheme: "http" }, routes);
    expect(rpc.addressOf({ nodeId: "tokyo-2", publicAddress: "tokyo-2.example:443" })).toBe("10.0.0.7:2567");
    expect(rpc.addressOf({ nodeId: "sendai-1", publicAddress: "sendai-1.example:443" })).toBe("sendai-1.example:443");
    expect(() => loadConfig({ env: {}, argv: ["--cluster-peer-routes", "osaka-1=http://127.0.0.1:4100"] })).toThrow(/cluster\.peerRoutes.*nodeId=host:port/s);
  });
});

describe("etcd", () => {
  const withRedis = { TSUNAGI_REDIS_URL: "redis://127.0.0.1:6379", TSUNAGI_AUTH_SECRET: "x".repeat(32) };
  const issues = (options: Parameters<typeof loadConfig>[0]) => {
    try { loadConfig(options); } catch (e) { return (e as ConfigError).issues.join("\n"); }
    return "";
  };

  it("reads the endpoints as a list from the env or a flag, with a per-call bound; none by default", () => {
    expect(loadConfig({ env: {} }).etcd).toEqual({ endpoints: [], callTimeoutMs: 2000 });
    const fromEnv = loadConfig({ env: { ...withRedis, TSUNAGI_ETCD_ENDPOINTS: "http://127.0.0.1:2379, http://127.0.0.1:22379" } });
    expect(fromEnv.etcd.endpoints).toEqual(["http://127.0.0.1:2379", "http://127.0.0.1:22379"]);
    const fromFlags = loadConfig({ env: withRedis, argv: ["--etcd-endpoints", "http://[::1]:2379", "--etcd-call-timeout-ms", "500"] });
    expect(fromFlags.etcd).toMatchObject({ endpoints: ["http://[::1]:2379"], callTimeoutMs: 500 });
  });

  it("keeps every hop TLS: plain http only to loopback, one scheme for all members, TLS files only with https", () => {
    expect(issues({ env: withRedis, argv: ["--etcd-endpoints", "http://etcd-1.example:2379"] })).toMatch(/etcd\.endpoints: http:\/\/etcd-1\.example:2379 is plain text to another host/);
    expect(issues({ env: withRedis, argv: ["--etcd-endpoints", "https://etcd-1.example:2379,http://127.0.0.1:2379"] })).toMatch(/all http:\/\/ or all https:\/\//);
    expect(issues({ env: withRedis, argv: ["--etcd-endpoints", "https://etcd-1.example:2379"] })).toBe("");
    const dir = mkdtempSync(path.join(tmpdir(), "tsunagi-config-"));
    const ca = path.join(dir, "ca.pem");
    writeFileSync(ca, "-----BEGIN CERTIFICATE-----\n");
    expect(issues({ env: withRedis, argv: ["--etcd-endpoints", "http://127.0.0.1:2379", "--etcd-ca-file", ca] })).toMatch(/only for https:\/\/ endpoints/);
    expect(issues({ env: withRedis, argv: ["--etcd-endpoints", "https://etcd-1.example:2379", "--etcd-cert-file", ca] })).toMatch(/etcd\.certFile and etcd\.keyFile: give both or neither/);
    expect(issues({ env: withRedis, argv: ["--etcd-endpoints", "https://etcd-1.example:2379", "--etcd-ca-file", path.join(dir, "missing.pem")] })).toMatch(/etcd\.caFile: cannot read/);
    expect(issues({ env: withRedis, argv: ["--etcd-endpoints", "etcd-1.example:2379"] })).toMatch(/etcd\.endpoints/);
  });

  it("needs a region Redis beside it, so it is never a dev-mode node", () => {
    expect(issues({ env: {}, argv: ["--etcd-endpoints", "http://127.0.0.1:2379"] })).toMatch(/etcd\.endpoints: needs redisUrl too/);
  });
});
