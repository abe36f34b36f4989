/**
 * The driver's MQTT connection (MQTT.js): connects, subscribes on every connection, and
 * reconnects with exponential backoff after any loss, until stop().
 *
 * MQTT.js retries on a fixed `reconnectPeriod` only (an interval set once per outage), so
 * the backoff is done here: `reconnectPeriod: 0` turns its own retries off, and each
 * "close" schedules `client.reconnect()` after the next ReconnectBackoff wait (0.5 s
 * doubling to 10 s), reset by a successful connection.
 *
 * Clean session (MQTT 5 clean start, no session expiry): after a loss the driver marks
 * everything offline and rebuilds its picture from fresh messages within one sensor
 * period, so a session kept by the broker would only queue stale readings while we are
 * away and replay them as a burst on return (old CO2 values raising alerts now), and a
 * broker restarted without persistence forgets sessions anyway. Subscriptions are
 * therefore made again on every connection (MQTT.js' own resubscribe is off: it would
 * subscribe twice).
 *
 * "connected" means connected and subscribed: messages flow. The client id is
 * `tsunagi-<deviceId>-<random>`: the random part keeps two processes run as one device
 * (a restart overlapping the old one) from taking each other's connection over in turn.
 *
 * @example
 *   const broker = new BrokerConnection({ url, clientId, subscriptions: subscriptions(prefix) }, {
 *     onConnected: () => ..., onDisconnected: (why) => ..., onMessage: (topic, payload, retained) => ..., onError: (key, error) => log.warn(...),
 *   });
 *   broker.start();
 *   await broker.stop();
 */
import { connect, type IClientOptions, type MqttClient } from "mqtt";
import { CONNECT_TIMEOUT_MS, KEEPALIVE_S, MAX_PACKET_BYTES, STOP_TIMEOUT_MS } from "./limits.ts";
import { ReconnectBackoff } from "./ReconnectBackoff.ts";
import type { Subscription } from "./topics.ts";

export interface BrokerConnectionOptions {
  url: string;
  clientId: string;
  username?: string;
  password?: string;
  subscriptions: readonly Subscription[];
  backoff?: ReconnectBackoff;
  /** MQTT.js' connect, injectable for tests. */
  connect?: (url: string, options: IClientOptions) => MqttClient;
}

export interface BrokerListener {
  /** Connected and subscribed. */
  onConnected(): void;
  /** A connection that was up is gone (not called for attempts that never got up). */
  onDisconnected(reason: string): void;
  onMessage(topic: string, payload: Buffer, retained: boolean): void;
  /** Something went wrong; `key` groups like errors for a rate-limited log. */
  onError(key: string, error: Error): void;
}

export class BrokerConnection {
  private readonly options: BrokerConnectionOptions;
  private readonly listener: BrokerListener;
  private readonly backoff: ReconnectBackoff;
  private client: MqttClient | undefined;
  /** Connected and subscribed. */
  private up = false;
  private stopped = false;
  /** The pending reconnect, between attempts. */
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  /** Counts CONNACKs, so a SUBACK from an older connection is recognised as stale. */
  private generation = 0;
  /** Connections that got as far as subscribed. */
  private connectCount = 0;

  constructor(options: BrokerConnectionOptions, listener: BrokerListener) {
    this.options = options;
    this.listener = listener;
    this.backoff = options.backoff ?? new ReconnectBackoff();
  }

  get connected(): boolean {
    return this.up;
  }

  /** Connections that got as far as subscribed. */
  get connects(): number {
    return this.connectCount;
  }

  /** Starts connecting; returns at once. A second call does nothing; after stop() it throws. */
  start(): void {
    if (this.stopped) throw new Error("this BrokerConnection was stopped; create a new one");
    if (this.client) return;
    const { url, clientId, username, password } = this.options;
    const clientOptions: IClientOptions = {
      clientId, username, password,
      protocolVersion: 5,
      clean: true,
      reconnectPeriod: 0,
      resubscribe: false,
      connectTimeout: CONNECT_TIMEOUT_MS,
      keepalive: KEEPALIVE_S,
      properties: { maximumPacketSize: MAX_PACKET_BYTES },
    };
    const client = (this.options.connect ?? connect)(url, clientOptions);
    this.client = client;
    client.on("connect", () => this.subscribe(client));
    client.on("message", (topic, payload, packet) => this.tell(() => this.listener.onMessage(topic, payload, packet.retain === true)));
    client.on("error", (error) => this.tell(() => this.listener.onError(errorKey(error), error)));
    client.on("close", () => this.closed());
  }

  /** Ends the connection (a clean DISCONNECT when up) and stops reconnecting. Resolves within STOP_TIMEOUT_MS. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const client = this.client;
    if (!client) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => { client.end(true); resolve(); }, STOP_TIMEOUT_MS);
      client.end(!client.connected, {}, () => { clearTimeout(timer); resolve(); });
    });
    if (this.up) this.lost("stopped");
  }

  private subscribe(client: MqttClient): void {
    const generation = ++this.generation;
    this.backoff.reset();
    const filters = Object.fromEntries(this.options.subscriptions.map(({ filter, qos }) => [filter, { qos }]));
    client.subscribe(filters, (error, granted) => {
      if (generation !== this.generation || this.stopped || !client.connected) return;
      const refused = (granted ?? []).filter((grant) => grant.qos >= 0x80).map((grant) => grant.topic);
      if (error || refused.length > 0) {
        this.tell(() => this.listener.onError("subscribe", error ?? new Error(`the broker refused the subscriptions ${refused.join(", ")} (its ACL?)`)));
        client.end(true); // "close" follows, and a retry after backoff
        return;
      }
      this.connectCount++;
      this.up = true;
      this.tell(() => this.listener.onConnected());
    });
  }

  private closed(): void {
    this.generation++;
    if (this.up) this.lost("connection to the broker closed");
    if (this.stopped || this.reconnectTimer) return;
    const delayMs = this.backoff.next();
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.stopped || !this.client) return;
      this.client.reconnect();
    }, delayMs);
    // the adapter's gateway link keeps the process alive; a broker retry alone should not
    this.reconnectTimer.unref?.();
  }

  private lost(reason: string): void {
    this.up = false;
    this.tell(() => this.listener.onDisconnected(reason));
  }

  /** Runs a listener call; one that throws is reported, never thrown into MQTT.js' packet handling. */
  private tell(call: () => void): void {
    try {
      call();
    } catch (error) {
      try {
        this.listener.onError("listener", error instanceof Error ? error : new Error(String(error)));
      } catch {
        // nothing safe is left to do
      }
    }
  }
}

/** Groups errors for the log: "ECONNREFUSED", "connack timeout", … */
function errorKey(error: Error): string {
  const code = (error as { code?: unknown }).code;
  return `broker:${typeof code === "string" || typeof code === "number" ? code : error.message.slice(0, 40)}`;
}
