/**
 * TelemetryBuffer against a fake link: bounded, dropping (and counting) the oldest; sent
 * oldest first while the link can send and its socket keeps up; held while it cannot.
 */
import { describe, expect, it } from "vitest";
import { TELEMETRY_BACKPRESSURE_BYTES, TelemetryBuffer } from "../../../../devices/adapter/TelemetryBuffer.ts";
import { FakeTelemetryLink } from "../../../fixtures/fakes/FakeTelemetryLink.ts";

const sample = (n: number) => ({ deviceId: "ex-1", sampledAtMs: n });
const times = (link: FakeTelemetryLink) => link.sentSamples().map((t) => t.sampledAtMs);

describe("TelemetryBuffer", () => {
  it("keeps at most its capacity, dropping the oldest and counting them", () => {
    const buffer = new TelemetryBuffer(3);
    for (let n = 1; n <= 5; n++) buffer.push(sample(n));
    expect(buffer.size).toBe(3);
    expect(buffer.dropped).toBe(2);
    const link = new FakeTelemetryLink();
    buffer.flush(link);
    expect(times(link)).toEqual([3, 4, 5]);
  });

  it("holds everything while the link cannot send, then sends it oldest first", () => {
    const buffer = new TelemetryBuffer(10);
    const link = new FakeTelemetryLink();
    link.canSend = false;
    buffer.push(sample(1));
    buffer.push(sample(2));
    buffer.flush(link);
    expect(link.sent).toEqual([]);
    expect(buffer.size).toBe(2);
    link.canSend = true;
    buffer.push(sample(3));
    buffer.flush(link);
    expect(times(link)).toEqual([1, 2, 3]);
    expect(link.sent.every((envelope) => envelope.correlationId === 0)).toBe(true);
    expect(buffer.size).toBe(0);
    expect(buffer.sent).toBe(3);
  });

  it("stops sending while the socket holds more than the backpressure threshold, and goes on once it drains", () => {
    const buffer = new TelemetryBuffer(10);
    const link = new FakeTelemetryLink();
    link.bytesPerSend = TELEMETRY_BACKPRESSURE_BYTES / 2;
    for (let n = 1; n <= 5; n++) buffer.push(sample(n));
    buffer.flush(link);
    expect(times(link)).toEqual([1, 2, 3]); // 0, half, full: each at or below the threshold when sent
    expect(buffer.size).toBe(2);
    link.bufferedBytes = 0;
    buffer.flush(link);
    expect(times(link)).toEqual([1, 2, 3, 4, 5]);
  });

  it("does not retry a sample the link failed to send, nor count it sent", () => {
    const buffer = new TelemetryBuffer(10);
    const link = new FakeTelemetryLink();
    link.failing = true;
    buffer.push(sample(1));
    buffer.flush(link);
    expect(buffer.size).toBe(0);
    expect(buffer.sent).toBe(0);
  });

  it("refuses a capacity that is not a positive integer", () => {
    expect(() => new TelemetryBuffer(0)).toThrow(/positive integer/);
    expect(() => new TelemetryBuffer(1.5)).toThrow(/positive integer/);
  });
});
