/**
 * Which Redis the tools (audit, devices) work on: their flags, else the node's
 * environment (a URL, else its sentinels), else the local one; contradictions and bad
 * addresses are bad usage, never a quiet fall back to another Redis.
 */
import { describe, expect, it } from "vitest";
import { RedisFlagsError, cliEnv, clusterRedisAddress } from "../../../cli/env.ts";

describe("clusterRedisAddress", () => {
  const none = cliEnv({});
  it("takes the flags first, either form", () => {
    const env = cliEnv({ TSUNAGI_REDIS_URL: "redis://10.0.0.9:6379" });
    expect(clusterRedisAddress({ "redis-url": "redis://127.0.0.1:6380" }, env)).toBe("redis://127.0.0.1:6380");
    expect(clusterRedisAddress({ "redis-sentinels": "10.0.0.5:26379,10.0.0.6", "redis-master-name": "tsunagi" }, env))
      .toBe("redis-sentinel://10.0.0.5:26379,10.0.0.6:26379/tsunagi");
  });

  it("else the node's environment: the cluster URL, the region URL, then its sentinels; else the local Redis", () => {
    expect(clusterRedisAddress({}, cliEnv({ TSUNAGI_CLUSTER_REDIS_URL: "redis://c:1", TSUNAGI_REDIS_URL: "redis://r:1" }))).toBe("redis://c:1");
    expect(clusterRedisAddress({}, cliEnv({ TSUNAGI_REDIS_URL: "redis://r:1", TSUNAGI_REDIS_SENTINELS: "s:1", TSUNAGI_REDIS_MASTER_NAME: "m" }))).toBe("redis://r:1");
    expect(clusterRedisAddress({}, cliEnv({ TSUNAGI_REDIS_SENTINELS: "s:1,t:2", TSUNAGI_REDIS_MASTER_NAME: "m" }))).toBe("redis-sentinel://s:1,t:2/m");
    expect(clusterRedisAddress({}, none)).toBe("redis://127.0.0.1:6379");
  });

  it("refuses contradicting flags, half a Sentinel setting and a bad address, naming them", () => {
    expect(() => clusterRedisAddress({ "redis-url": "redis://a:1", "redis-sentinels": "s:1", "redis-master-name": "m" }, none)).toThrow(/--redis-url or --redis-sentinels with --redis-master-name, not both/);
    expect(() => clusterRedisAddress({ "redis-sentinels": "s:1" }, none)).toThrow(/--redis-master-name: required with --redis-sentinels/);
    expect(() => clusterRedisAddress({ "redis-url": "http://a:1" }, none)).toThrow(RedisFlagsError);
    // A bad Sentinel setting in the environment is said, not replaced by the local Redis.
    expect(() => clusterRedisAddress({}, cliEnv({ TSUNAGI_REDIS_SENTINELS: "s:port", TSUNAGI_REDIS_MASTER_NAME: "m" }))).toThrow(/TSUNAGI_REDIS_SENTINELS: sentinel "s:port"/);
    expect(() => clusterRedisAddress({}, cliEnv({ TSUNAGI_REDIS_SENTINELS: "s:1" }))).toThrow(/TSUNAGI_REDIS_MASTER_NAME: required/);
  });
});
