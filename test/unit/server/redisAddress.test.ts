/**
 * Redis addresses: plain URLs pass through; the redis-sentinel:// form names the
 * sentinels, the master, the password and the database; a bad one says what is wrong;
 * passwords never reach a log line.
 */
import { describe, expect, it } from "vitest";
import { RECONNECT_MAX_DELAY_MS, RedisAddressError, openRedis, parseRedisAddress, redactRedisAddress, sentinelAddress } from "../../../server/redisAddress.ts";

describe("parseRedisAddress", () => {
  it("takes a plain URL as it is", () => {
    expect(parseRedisAddress("redis://127.0.0.1:6379/2")).toEqual({ kind: "url", url: "redis://127.0.0.1:6379/2" });
    expect(parseRedisAddress("rediss://:pw@redis.example:6380")).toMatchObject({ kind: "url" });
  });

  it("reads the sentinels, the master name, the password and the database of the Sentinel form", () => {
    expect(parseRedisAddress("redis-sentinel://:s%40cret@10.0.0.5:26379,redis-1.redis-headless,[::1]:26380/tsunagi?db=3")).toEqual({
      kind: "sentinel",
      sentinels: [{ host: "10.0.0.5", port: 26379 }, { host: "redis-1.redis-headless", port: 26379 }, { host: "::1", port: 26380 }],
      masterName: "tsunagi", username: undefined, password: "s@cret", db: 3,
    });
    expect(parseRedisAddress("redis-sentinel://127.0.0.1:26379/m")).toMatchObject({ password: undefined, db: 0 });
  });

  it("says what is wrong with a bad address, without its password", () => {
    const bad = ["http://127.0.0.1:6379", "redis-sentinel://:pw@127.0.0.1:26379", "redis-sentinel://:pw@127.0.0.1:26379/", "redis-sentinel://:pw@127.0.0.1:99999/m", "redis-sentinel://:pw@/m", "redis-sentinel://:pw@h:1/bad name"];
    for (const address of bad) {
      let error: unknown;
      try { parseRedisAddress(address); } catch (caught) { error = caught; }
      expect(error, address).toBeInstanceOf(RedisAddressError);
      expect((error as Error).message, address).not.toContain("pw");
    }
  });
});

describe("sentinelAddress", () => {
  it("builds the Sentinel form from the flags, the port defaulting to 26379", () => {
    expect(sentinelAddress(["10.0.0.5:26379", " 10.0.0.6 ", "[::1]"], "tsunagi")).toBe("redis-sentinel://10.0.0.5:26379,10.0.0.6:26379,[::1]:26379/tsunagi");
    expect(sentinelAddress(["a:1"], "m", "p@ss")).toBe("redis-sentinel://:p%40ss@a:1/m");
    expect(parseRedisAddress(sentinelAddress(["a:1"], "m", "p@ss"))).toMatchObject({ password: "p@ss", masterName: "m" });
  });

  it("refuses no sentinel, a bad one and a bad master name", () => {
    expect(() => sentinelAddress([], "m")).toThrow(/no sentinel/);
    expect(() => sentinelAddress(["", " "], "m")).toThrow(/no sentinel/);
    expect(() => sentinelAddress(["host:port"], "m")).toThrow(/sentinel "host:port"/);
    expect(() => sentinelAddress(["a:1"], "my master")).toThrow(/master name/);
  });
});

describe("redactRedisAddress", () => {
  it("hides the password of either form", () => {
    expect(redactRedisAddress("redis://:hunter2@h:6379/0")).toBe("redis://***@h:6379/0");
    expect(redactRedisAddress("redis-sentinel://:hunter2@a:1,b:2/m")).toBe("redis-sentinel://***@a:1,b:2/m");
  });
});

describe("openRedis", () => {
  it("opens a Sentinel client that follows the master, and reconnects on a READONLY reply", () => {
    const redis = openRedis("redis-sentinel://:pw@127.0.0.1:26379,127.0.0.1:26380/tsunagi?db=2", { lazyConnect: true, retryStrategy: () => null });
    try {
      const options = redis.options;
      // No failoverDetector: a switch-master during a reconnect ends the client for good (ioredis).
      expect(options).toMatchObject({ name: "tsunagi", password: "pw", sentinelPassword: "pw", db: 2, failoverDetector: false });
      expect(options.sentinels).toEqual([{ host: "127.0.0.1", port: 26379 }, { host: "127.0.0.1", port: 26380 }]);
      // A tool that gives up at once gives up on the sentinels too.
      expect(options.sentinelRetryStrategy?.(1)).toBeNull();
      expect(options.reconnectOnError?.(new Error("READONLY You can't write against a read only replica."))).toBe(2);
      expect(options.reconnectOnError?.(new Error("WRONGTYPE"))).toBe(false);
    } finally {
      redis.disconnect();
    }
  });

  it("retries at most RECONNECT_MAX_DELAY_MS apart unless told otherwise", () => {
    for (const address of ["redis://127.0.0.1:6379", "redis-sentinel://127.0.0.1:26379/m"]) {
      const redis = openRedis(address, { lazyConnect: true });
      try {
        expect(redis.options.retryStrategy?.(1)).toBe(50);
        expect(redis.options.retryStrategy?.(1000)).toBe(RECONNECT_MAX_DELAY_MS);
      } finally {
        redis.disconnect();
      }
    }
  });
});
