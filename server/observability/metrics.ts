/**
 * Prometheus metrics of a region node. Hot-path counts (messages, bytes) are plain
 * numbers read at scrape time, so a send or receive costs an addition, not a label
 * lookup.
 */
import { Registry, Counter, Gauge, collectDefaultMetrics } from "prom-client";

export class NodeMetrics {
  /** One registry per node, so several nodes in one process never share series. */
  readonly registry = new Registry();
  /** Messages and bytes per direction, added to on every frame. */
  readonly traffic = { messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0 };
  /** Coded errors sent to clients, by code name and where they came from. */
  readonly errors: Counter<"code" | "source">;
  /** Matchmaking requests by method and outcome. */
  readonly matchmake: Counter<"method" | "outcome">;

  constructor(sources: { connections: () => number; roomsByType: () => Record<string, number> }) {
    collectDefaultMetrics({ register: this.registry, prefix: "tsunagi_", eventLoopMonitoringPrecision: 20 });
    const registers = [this.registry];
    const traffic = this.traffic;

    new Gauge({
      name: "tsunagi_connections", help: "Open client connections on this node.", registers,
      collect() { this.set(sources.connections()); },
    });
    new Gauge({
      name: "tsunagi_rooms", help: "Rooms hosted on this node, by room type.", labelNames: ["type"], registers,
      collect() {
        this.reset();
        for (const [type, count] of Object.entries(sources.roomsByType())) this.set({ type }, count);
      },
    });
    const counterOf = (name: string, help: string, read: () => number) => new Counter({
      name, help, registers,
      collect() { this.reset(); this.inc(read()); },
    });
    counterOf("tsunagi_messages_in_total", "Frames received from clients.", () => traffic.messagesIn);
    counterOf("tsunagi_messages_out_total", "Frames sent to clients.", () => traffic.messagesOut);
    counterOf("tsunagi_bytes_in_total", "Bytes received from clients.", () => traffic.bytesIn);
    counterOf("tsunagi_bytes_out_total", "Bytes sent to clients.", () => traffic.bytesOut);

    this.errors = new Counter({
      name: "tsunagi_errors_total", help: "Coded errors returned to senders, by code.",
      labelNames: ["code", "source"], registers,
    });
    this.matchmake = new Counter({
      name: "tsunagi_matchmake_total", help: "Matchmaking requests, by method and outcome.",
      labelNames: ["method", "outcome"], registers,
    });
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
