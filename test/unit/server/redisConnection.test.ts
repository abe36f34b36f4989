/**
 * connectionLost() on a followed client, against a real redis-server behind a TCP proxy:
 * once the server is gone, each reconnect attempt reaches the proxy (ioredis "connect")
 * and is dropped. Those moments count as lost too, so a write to a dead replica fails at
 * once instead of waiting in the offline queue; the client counts as back at its next ready.
 */
import { afterAll, describe, expect, it } from "vitest";
import { once } from "node:events";
import { Redis } from "ioredis";
import { connectionLost, followConnection } from "../../../server/redisConnection.ts";
import { startRedis, waitFor } from "../../fixtures/processes.ts";
import { DelayProxy } from "../../fixtures/delay-proxy.ts";

const started: Array<{ close(): Promise<unknown> }> = [];
afterAll(async () => { await Promise.allSettled(started.map((s) => s.close())); });

describe("connectionLost", () => {
  it("counts a followed client as lost from its connection's close to its next ready, the reconnect attempts' connect moments included", { timeout: 30_000 }, async () => {
    const server = await startRedis();
    const proxy = await DelayProxy.start({ target: { host: "127.0.0.1", port: server.port } });
    started.push(proxy, { close: () => server.stop() });
    const followed = followConnection(new Redis({ host: "127.0.0.1", port: proxy.port, maxRetriesPerRequest: 1, retryStrategy: () => 20 }));
    const plain = new Redis({ host: "127.0.0.1", port: proxy.port, maxRetriesPerRequest: 1, retryStrategy: () => 20 });
    for (const client of [followed, plain]) client.on("error", () => {});
    started.push({ close: async () => { followed.disconnect(); plain.disconnect(); } });
    await Promise.all([once(followed, "ready"), once(plain, "ready")]);
    expect(connectionLost(followed)).toBe(false);

    // The server dies; each attempt reaches the proxy, which cannot reach it and drops the attempt.
    const seen = { followed: [] as boolean[], plain: [] as boolean[] };
    await server.restart({
      signal: "SIGKILL",
      whileDown: async () => {
        followed.on("connect", () => seen.followed.push(connectionLost(followed)));
        plain.on("connect", () => seen.plain.push(connectionLost(plain)));
        await waitFor(() => seen.followed.length >= 3 && seen.plain.length >= 3, 10_000, "three reconnect attempts each");
      },
    });
    expect(seen.followed.every(Boolean), JSON.stringify(seen)).toBe(true);
    // Its status alone says "fine" at those moments: what following the connection is for.
    expect(seen.plain.some((lost) => !lost), JSON.stringify(seen)).toBe(true);

    // Back on the same port: ready again, and no longer lost.
    await waitFor(() => followed.status === "ready", 10_000, "the followed client ready again");
    expect(connectionLost(followed)).toBe(false);
  });
});
