/**
 * A stand-in for MQTT.js' client, enough for BrokerConnection: the test says when the
 * broker accepts (up), drops (drop) or refuses (refuse) a connection, and delivers
 * messages; it records subscriptions, reconnects and ends.
 */
import { EventEmitter } from "node:events";
import type { IClientOptions, MqttClient } from "mqtt";

type SubackCallback = (error: Error | null, granted?: { topic: string; qos: number }[]) => void;

export class FakeMqttClient extends EventEmitter {
  connected = false;
  readonly subscriptions: Record<string, { qos: number }>[] = [];
  reconnects = 0;
  ends: boolean[] = [];
  /** When set, SUBACKs wait here until the test releases them. */
  holdSubacks = false;
  readonly heldSubacks: (() => void)[] = [];
  /** The QoS granted per filter; 0x80 refuses. */
  grant: (filter: string, qos: number) => number = (_filter, qos) => qos;

  subscribe(filters: Record<string, { qos: number }>, callback: SubackCallback): this {
    this.subscriptions.push(filters);
    const answer = () => callback(null, Object.entries(filters).map(([topic, { qos }]) => ({ topic, qos: this.grant(topic, qos) })));
    if (this.holdSubacks) this.heldSubacks.push(answer);
    else queueMicrotask(answer);
    return this;
  }

  reconnect(): this {
    this.reconnects++;
    return this;
  }

  end(force?: boolean, _options?: object, callback?: () => void): this {
    this.ends.push(force === true);
    if (this.connected) this.drop();
    callback?.();
    return this;
  }

  /** The broker accepted the connection (CONNACK). */
  up(): void {
    this.connected = true;
    this.emit("connect", {});
  }

  /** The connection closed. */
  drop(): void {
    this.connected = false;
    this.emit("close");
  }

  /** An attempt failed: error, then close. */
  refuse(): void {
    this.emit("error", Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1883"), { code: "ECONNREFUSED" }));
    this.emit("close");
  }

  deliver(topic: string, payload: string | Uint8Array, retain = false): void {
    this.emit("message", topic, Buffer.from(payload), { retain });
  }
}

/** A connect() that hands out one FakeMqttClient and remembers how it was called. */
export function fakeConnect(): { connect: (url: string, options: IClientOptions) => MqttClient; client: FakeMqttClient; calls: { url: string; options: IClientOptions }[] } {
  const client = new FakeMqttClient();
  const calls: { url: string; options: IClientOptions }[] = [];
  return {
    client, calls,
    connect: (url, options) => {
      calls.push({ url, options });
      return client as unknown as MqttClient;
    },
  };
}
