/**
 * HallChannels over Colyseus' in-memory presence: hall events between zone rooms (a
 * room skips its own; an unzoned hall publishes none), ghost batches as protobuf, a
 * handler that throws reported and the channel still served, and the hall's keys.
 */
import { describe, expect, it } from "vitest";
import { LocalPresence } from "@colyseus/core";
import { tsunagi } from "../../../../proto/index.ts";
import { toPresence } from "../../../../proto/clusterCodec.ts";
import { RedisPresence } from "@colyseus/redis-presence";
import { Redis } from "ioredis";
import { randomUUID } from "node:crypto";
import { HALL_KEYS, HallChannels, hallKey, type HallEvent } from "../../../../rooms/expo/HallChannels.ts";
import { testRedisUrl } from "../../../fixtures/redis.ts";

function zoneRoom(presence: LocalPresence, roomId: string, zoneId: string) {
  const failures: string[] = [];
  const hall = new HallChannels(presence, {
    hallId: "h", roomId, zoneId, retentionMs: 3_600_000,
    background: (work, what) => { void Promise.resolve(work).catch(() => failures.push(what)); },
    onHandlerError: (error, channel) => failures.push(`${channel}: ${(error as Error).message}`),
  });
  return { hall, failures };
}

describe("HallChannels: channels", () => {
  it("delivers a zone's events to the other zones, not back to itself; an unzoned hall publishes none", async () => {
    const presence = new LocalPresence();
    const west = zoneRoom(presence, "h", "west");
    const east = zoneRoom(presence, "h--east", "east");
    const atWest: HallEvent[] = [];
    const atEast: HallEvent[] = [];
    await west.hall.onEvents((event) => atWest.push(event));
    await east.hall.onEvents((event) => atEast.push(event));
    west.hall.publishEvent({ type: "pin", pinned: { text: "hi" } });
    expect(atEast).toEqual([{ type: "pin", pinned: { text: "hi" }, from: "h" }]);
    expect(atWest).toEqual([]);
    const unzoned = zoneRoom(presence, "h", "");
    unzoned.hall.publishEvent({ type: "pin", pinned: { text: "nobody hears" } });
    expect(atEast).toHaveLength(1);
  });

  it("refuses what is not a cluster.proto HallEvent on the events channel (a JSON object, an event without a body), and serves the next", async () => {
    const presence = new LocalPresence();
    const west = zoneRoom(presence, "h", "west");
    const east = zoneRoom(presence, "h--east", "east");
    const atEast: HallEvent[] = [];
    await east.hall.onEvents((event) => atEast.push(event));
    await presence.publish("expo:h:events", { type: "pin", pinned: { text: "forged" }, from: "elsewhere" });
    await presence.publish("expo:h:events", toPresence(tsunagi.v1.HallEvent, { fromRoomId: "elsewhere" }));
    expect(east.failures).toEqual([
      expect.stringMatching(/^expo:h:events: a tsunagi.v1.HallEvent on a presence channel is base64 text/),
      "expo:h:events: a hall event without a body",
    ]);
    west.hall.publishEvent({ type: "pin", pinned: { text: "hi" } });
    expect(atEast).toEqual([{ type: "pin", pinned: { text: "hi" }, from: "h" }]);
  });

  it("carries ghost batches to the zone they are for, as protobuf", async () => {
    const presence = new LocalPresence();
    const west = zoneRoom(presence, "h", "west");
    const east = zoneRoom(presence, "h--east", "east");
    const batches: tsunagi.v1.GhostBatch[] = [];
    await east.hall.onGhosts((batch) => batches.push(batch));
    west.hall.publishGhosts("east", { zoneId: "west", tick: 3, visitors: [{ visitorId: 1, x: 99, y: 5, seq: 2 }] });
    west.hall.publishGhosts("north", { zoneId: "west", tick: 3, visitors: [] });
    expect(batches).toHaveLength(1);
    expect(batches[0]).toMatchObject({ zoneId: "west", tick: 3, visitors: [{ visitorId: 1, x: 99, seq: 2 }] });
  });

  it("reports a handler that throws, and goes on serving the channel; close unsubscribes", async () => {
    const presence = new LocalPresence();
    const west = zoneRoom(presence, "h", "west");
    const east = zoneRoom(presence, "h--east", "east");
    let calls = 0;
    await east.hall.onEvents(() => { calls++; throw new Error("boom"); });
    west.hall.publishEvent({ type: "kick", visitorId: 1, reason: "" });
    west.hall.publishEvent({ type: "kick", visitorId: 2, reason: "" });
    expect(calls).toBe(2);
    expect(east.failures).toEqual(["expo:h:events: boom", "expo:h:events: boom"]);
    east.hall.close();
    west.hall.publishEvent({ type: "kick", visitorId: 3, reason: "" });
    expect(calls).toBe(2);
  });
});

describe("HallChannels: keys", () => {
  it("bans, mutes, the pin and presentations, shared by every zone", async () => {
    const presence = new LocalPresence();
    const west = zoneRoom(presence, "h", "west").hall;
    const east = zoneRoom(presence, "h--east", "east").hall;
    await west.ban("sub-1");
    expect([await east.isBanned("sub-1"), await east.isBanned("sub-2")]).toEqual([true, false]);
    await east.unban("sub-1");
    expect(await west.isBanned("sub-1")).toBe(false);
    await west.mute("sub-2", 1);
    expect(await east.mutedUntil("sub-2")).toBe(1);
    await west.mute("sub-2", 0);
    expect(await east.mutedUntil("sub-2")).toBe(0);
    expect(await presence.hget("expo:h:mutes", "sub-2")).toBeNull(); // unmuting leaves no key behind
    expect(await east.pinned()).toBeUndefined();
    await west.pin({ text: "Welcome", by: "Host", atMs: 5 });
    expect(await east.pinned()).toEqual({ text: "Welcome", by: "Host", atMs: 5 });
    await west.present({ boothId: "acme", live: true, title: "Robots" });
    expect(await east.presentations()).toMatchObject([{ boothId: "acme", title: "Robots" }]);
    await east.present({ boothId: "acme", live: false });
    expect(await west.presentations()).toEqual([]);
  });

  it("numbers visitors hall-wide, and keeps the register of who is in which zone", async () => {
    const presence = new LocalPresence();
    const west = zoneRoom(presence, "h", "west").hall;
    const east = zoneRoom(presence, "h--east", "east").hall;
    expect([await west.nextVisitorId(), await east.nextVisitorId()]).toEqual([1, 2]);
    west.register(1, "sub-1", "Aiko");
    await Promise.resolve();
    expect(await east.visitor(1)).toEqual({ subject: "sub-1", name: "Aiko", zoneId: "west" });
    expect(await east.visitor("1")).toEqual({ subject: "sub-1", name: "Aiko", zoneId: "west" });
    east.forgetIfStillHere(1); // the west zone has it: kept
    await new Promise((resolve) => setImmediate(resolve));
    expect(await east.visitor(1)).toBeDefined();
    west.forgetIfStillHere(1);
    await new Promise((resolve) => setImmediate(resolve));
    expect(await east.visitor(1)).toBeUndefined();
    east.register(2, "sub-2", "Ben");
    east.unregister(2);
    await new Promise((resolve) => setImmediate(resolve));
    expect(await west.visitor(2)).toBeUndefined();
  });
});

describe("HallChannels: the hall's keys expire", () => {
  it("keep() sets every key a zone writes to expire after the retention, so a closed or abandoned hall's keys go", async () => {
    const redis = new Redis(testRedisUrl(), { maxRetriesPerRequest: 1 });
    const presence = new RedisPresence(redis);
    const hallId = `ttl-${randomUUID().slice(0, 8)}`;
    const work: Array<Promise<unknown>> = [];
    const retentionMs = 600_000;
    const hall = new HallChannels(presence, {
      hallId, roomId: hallId, zoneId: "west", retentionMs,
      background: (promise) => { work.push(promise); },
      onHandlerError: (error) => { throw error; },
    });
    try {
      // Everything a hall writes: the layout (HallAdmin), then each of the zone's keys.
      await presence.set(hallKey(hallId, "layout"), "{}");
      await hall.nextVisitorId();
      hall.register(1, "sub-1", "Ann");
      await hall.ban("sub-2");
      await hall.mute("sub-3", 1);
      await hall.pin({ text: "hi" });
      await hall.present({ boothId: "b1", live: true });
      await Promise.all(work.splice(0));
      hall.keep();
      await Promise.all(work.splice(0));
      const keys = await redis.keys(`expo:${hallId}:*`);
      // Every key written is one HALL_KEYS names (a new key must join the list to expire).
      expect(keys.map((key) => key.slice(`expo:${hallId}:`.length)).sort()).toEqual([...HALL_KEYS].sort());
      for (const key of keys) {
        // Old code: -1, no expiry; the keys of every hall ever opened stayed in Redis.
        const ttl = await redis.pttl(key);
        expect(ttl, key).toBeGreaterThan(0);
        expect(ttl, key).toBeLessThanOrEqual(retentionMs);
      }
    } finally {
      hall.close();
      const keys = await redis.keys(`expo:${hallId}:*`);
      if (keys.length) await redis.del(...keys);
      await presence.shutdown();
    }
  });
});

describe("HallChannels: visitor ids", () => {
  it("a visitor counter that went back (Redis restarted empty) does not hand out an id this zone already gave", async () => {
    const presence = new LocalPresence();
    const { hall } = zoneRoom(presence, "h", "");
    expect([await hall.nextVisitorId(), await hall.nextVisitorId(), await hall.nextVisitorId()]).toEqual([1, 2, 3]);
    await presence.del(hallKey("h", "visitor-seq"));
    // Old code: 1 again, the id of a visitor still in the hall.
    expect(await hall.nextVisitorId()).toBe(4);
    expect(await hall.nextVisitorId()).toBe(5);
  });
});
