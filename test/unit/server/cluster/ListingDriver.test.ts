/**
 * The matchmaking driver on real Redis: a room's listing is written and removed only by
 * the process that hosts the room now, so the old copy of a room handed within its
 * region cannot overwrite or delete the new copy's listing.
 */
import { randomUUID } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import type { IRoomCache } from "@colyseus/core";
import { ListingDriver } from "../../../../server/cluster/ListingDriver.ts";
import { testRedisUrl } from "../../../fixtures/redis.ts";

const redis = new Redis(testRedisUrl());
const roomId = `listing-test-${randomUUID().slice(0, 8)}`;
afterAll(async () => {
  await redis.hdel("roomcaches", roomId);
  redis.disconnect();
});

const listing = (processId: string, clients = 0) => ({ roomId, name: "session", processId, clients, maxClients: 10, locked: false, private: false, publicAddress: "", unlisted: false, metadata: {} }) as unknown as IRoomCache;
const stored = async () => JSON.parse((await redis.hget("roomcaches", roomId)) ?? "null") as { processId: string; clients: number } | null;

describe("ListingDriver", () => {
  it("lets the room's new host take its listing over, and keeps the old copy from touching it", async () => {
    const old = new ListingDriver(redis, () => "proc-old");
    const next = new ListingDriver(redis, () => "proc-new");
    const oldListing = listing("proc-old", 3);
    expect(await old.persist(oldListing, true)).toBe(true);
    expect(await old.update(oldListing, { $inc: { clients: 1 } })).toBe(true);
    expect(await stored()).toMatchObject({ processId: "proc-old", clients: 4 });

    // the room opens on the new node: its listing is taken over
    const newListing = listing("proc-new", 4);
    expect(await next.persist(newListing, true)).toBe(true);
    // the old copy's last writes and its removal at dispose change nothing
    expect(await old.update(oldListing, { $inc: { clients: -4 } })).toBe(false);
    expect(await old.persist(oldListing)).toBe(false);
    expect(await old.remove(roomId)).toBe(false);
    expect(await stored()).toMatchObject({ processId: "proc-new", clients: 4 });
    // the new host goes on writing, and removes it when the room closes
    expect(await next.update(newListing, { $set: { locked: true } })).toBe(true);
    expect((await next.findOne({ roomId })).locked).toBe(true);
    expect(await next.remove(roomId)).toBe(true);
    expect(await stored()).toBeNull();
    expect(await next.remove(roomId)).toBe(false);
  });
});
