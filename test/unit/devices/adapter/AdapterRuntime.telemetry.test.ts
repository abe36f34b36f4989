/**
 * AdapterRuntime's telemetry against a scripted gateway: samples buffered while offline
 * are flushed oldest first after the reconnect, before live ones, and a full buffer drops
 * its oldest samples.
 */
import { afterEach, describe, it, expect } from "vitest";
import { nextEvent, online, runCleanups, setup, telemetry, waitUntil } from "./runtime-harness.ts";

afterEach(runCleanups);

describe("telemetry", () => {
  it("reconnects after the node restarts, flushing the telemetry buffered meanwhile, oldest first", { timeout: 20_000 }, async () => {
    const s = await setup({ runtime: { telemetryHz: 50 } });
    await online(s);
    await s.gateway.waitFor((e) => e.body === "telemetry");

    const offline = nextEvent(s.runtime, "offline");
    await s.gateway.stopWs();
    await offline;
    expect(s.runtime.state).toBe("backoff");
    await waitUntil(() => s.runtime.bufferedTelemetry >= 12, "a dozen buffered samples");
    const restartedAt = Date.now();
    const connectionsBefore = s.gateway.connections;

    const back = nextEvent(s.runtime, "online", 10_000);
    await s.gateway.startWs();
    await back;
    expect(s.runtime.counters.reconnects).toBe(1);
    await waitUntil(() => s.runtime.bufferedTelemetry <= 1, "the buffer to drain");
    // a live sample on the new connection: everything buffered arrived before it
    await s.gateway.waitFor((e, frame) => frame.connection > connectionsBefore && e.body === "telemetry" && Number(e.telemetry!.sampledAtMs) > restartedAt);

    const second = s.gateway.received.filter((f) => f.connection > connectionsBefore).map((f) => f.envelope);
    expect(second.slice(0, 3).map((e) => e.body)).toEqual(["deviceHello", "deviceProfile", "clockSyncPing"]);
    const samples = second.filter((e) => e.body === "telemetry").map((e) => Number(e.telemetry!.sampledAtMs));
    const buffered = samples.filter((at) => at < restartedAt);
    expect(buffered.length).toBeGreaterThanOrEqual(10);
    // oldest first, and all buffered samples before the live ones
    expect([...samples].sort((a, b) => a - b)).toEqual(samples);
    expect(s.runtime.counters.telemetryDropped).toBe(0);
  });


  it("drops the oldest telemetry beyond the buffer size", { timeout: 15_000 }, async () => {
    const s = await setup({ runtime: { telemetryHz: 100, telemetryBufferSize: 5 } });
    await online(s);
    await s.gateway.stopWs();
    await waitUntil(() => s.runtime.counters.telemetryDropped >= 5, "dropped samples");
    expect(s.runtime.bufferedTelemetry).toBe(5);
  });

});
