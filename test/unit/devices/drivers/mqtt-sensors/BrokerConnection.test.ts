/**
 * BrokerConnection on a stand-in client: clean session with MQTT.js' own retries off;
 * subscribed on every connection, "connected" once subscribed; reconnects after 0.5 s
 * doubling to 10 s, from the start again after a connection; a refused subscription
 * retries; a stale SUBACK is ignored; stop() ends it for good.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { BrokerConnection, type BrokerListener } from "../../../../../devices/drivers/mqtt-sensors/BrokerConnection.ts";
import { MAX_PACKET_BYTES } from "../../../../../devices/drivers/mqtt-sensors/limits.ts";
import { ReconnectBackoff } from "../../../../../devices/drivers/mqtt-sensors/ReconnectBackoff.ts";
import { subscriptions } from "../../../../../devices/drivers/mqtt-sensors/topics.ts";
import { fakeConnect } from "./fakeMqtt.ts";

function setup() {
  const fake = fakeConnect();
  const heard: string[] = [];
  const listener: BrokerListener = {
    onConnected: () => heard.push("connected"),
    onDisconnected: (reason) => heard.push(`disconnected: ${reason}`),
    onMessage: (topic, payload, retained) => heard.push(`message ${topic} ${payload.toString()}${retained ? " (retained)" : ""}`),
    onError: (key) => heard.push(`error ${key}`),
  };
  const connection = new BrokerConnection({
    url: "mqtt://127.0.0.1:1883", clientId: "tsunagi-sensors-test", subscriptions: subscriptions("tsunagi/site-7"),
    backoff: new ReconnectBackoff({ random: () => 0 }), connect: fake.connect,
  }, listener);
  return { ...fake, heard, connection };
}

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe("BrokerConnection", () => {
  it("connects with a clean session and its own backoff instead of MQTT.js' retries", () => {
    const { connection, calls } = setup();
    connection.start();
    connection.start();
    expect(calls).toHaveLength(1);
    expect(calls[0]!.url).toBe("mqtt://127.0.0.1:1883");
    expect(calls[0]!.options).toMatchObject({
      clientId: "tsunagi-sensors-test", clean: true, reconnectPeriod: 0, resubscribe: false, protocolVersion: 5,
      properties: { maximumPacketSize: MAX_PACKET_BYTES },
    });
  });

  it("is connected once subscribed, and passes messages on with their retain flag", async () => {
    const { connection, client, heard } = setup();
    connection.start();
    client.up();
    expect(connection.connected).toBe(false);
    expect(client.subscriptions).toEqual([{
      "tsunagi/site-7/sensors/+/reading": { qos: 1 }, "tsunagi/site-7/sensors/+/status": { qos: 1 }, "tsunagi/site-7/beacons/+": { qos: 0 },
    }]);
    await vi.advanceTimersByTimeAsync(0);
    expect(connection.connected).toBe(true);
    client.deliver("t/a", "1");
    client.deliver("t/b", "2", true);
    expect(heard).toEqual(["connected", "message t/a 1", "message t/b 2 (retained)"]);
  });

  it("reconnects after 0.5 s, doubling to 10 s, and resubscribes on every connection", async () => {
    const { connection, client, heard } = setup();
    connection.start();
    client.up();
    await vi.advanceTimersByTimeAsync(0);
    client.drop();
    expect(heard).toEqual(["connected", "disconnected: connection to the broker closed"]);
    expect(connection.connected).toBe(false);
    const waits: number[] = [];
    for (let attempt = 0; attempt < 7; attempt++) {
      const before = client.reconnects;
      let waited = 0;
      while (client.reconnects === before) { await vi.advanceTimersByTimeAsync(100); waited += 100; }
      waits.push(waited);
      client.refuse(); // the attempt fails: no "disconnected" for it
    }
    expect(waits).toEqual([500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
    expect(heard.filter((h) => h.startsWith("disconnected"))).toHaveLength(1);
    expect(heard.filter((h) => h === "error broker:ECONNREFUSED")).toHaveLength(7);
    await vi.advanceTimersByTimeAsync(10_000);
    client.up();
    await vi.advanceTimersByTimeAsync(0);
    expect(connection.connected).toBe(true);
    expect(client.subscriptions).toHaveLength(2);
    expect(connection.connects).toBe(2);
    // the backoff starts again
    client.drop();
    const before = client.reconnects;
    await vi.advanceTimersByTimeAsync(499);
    expect(client.reconnects).toBe(before);
    await vi.advanceTimersByTimeAsync(1);
    expect(client.reconnects).toBe(before + 1);
  });

  it("drops a connection whose subscriptions the broker refuses, and tries again", async () => {
    const { connection, client, heard } = setup();
    client.grant = (filter, qos) => (filter.endsWith("/status") ? 0x80 : qos);
    connection.start();
    client.up();
    await vi.advanceTimersByTimeAsync(0);
    expect(connection.connected).toBe(false);
    expect(heard).toEqual(["error subscribe"]);
    expect(client.ends).toEqual([true]);
    await vi.advanceTimersByTimeAsync(500);
    expect(client.reconnects).toBe(1);
  });

  it("ignores a SUBACK that arrives after its connection dropped", async () => {
    const { connection, client, heard } = setup();
    client.holdSubacks = true;
    connection.start();
    client.up();
    client.drop();
    client.heldSubacks.shift()!();
    expect(connection.connected).toBe(false);
    expect(heard).toEqual([]);
  });

  it("stops for good: no reconnect after stop(), a pending one cancelled", async () => {
    const { connection, client, heard } = setup();
    connection.start();
    client.up();
    await vi.advanceTimersByTimeAsync(0);
    client.drop();
    await connection.stop();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(client.reconnects).toBe(0);
    expect(client.ends).toEqual([true]);
    expect(heard).toEqual(["connected", "disconnected: connection to the broker closed"]);
    expect(() => connection.start()).toThrow(/stopped/);
  });

  it("a clean DISCONNECT when up, and a listener that throws does not escape into MQTT.js", async () => {
    const { client, connection } = setup();
    connection.start();
    client.up();
    await vi.advanceTimersByTimeAsync(0);
    await connection.stop();
    expect(client.ends).toEqual([false]);
    expect(connection.connected).toBe(false);

    const fake = fakeConnect();
    const errors: string[] = [];
    const throwing = new BrokerConnection({ url: "mqtt://127.0.0.1:1883", clientId: "c", subscriptions: [], connect: fake.connect }, {
      onConnected: () => {}, onDisconnected: () => {}, onMessage: () => { throw new Error("bug"); }, onError: (key, error) => errors.push(`${key}: ${error.message}`),
    });
    throwing.start();
    expect(() => fake.client.deliver("t", "x")).not.toThrow();
    expect(errors).toEqual(["listener: bug"]);
  });
});
