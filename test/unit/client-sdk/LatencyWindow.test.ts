/**
 * LatencyWindow: round trips matched by lease and seq, the two bounds (acks in the
 * window, send times waiting for acks), nearest-rank percentiles, and which acks carry
 * device figures.
 */
import { describe, it, expect } from "vitest";
import { LatencyWindow } from "../../../client-sdk/LatencyWindow.ts";
import { tsunagi } from "../../../proto/index.ts";

const Status = tsunagi.v1.CommandAck.Status;
const Origin = tsunagi.v1.CommandAck.Origin;

/** An adapter's ack of `seq` under lease-1. */
const applied = (seq: number, figures: Partial<tsunagi.v1.ICommandAck> = {}) =>
  tsunagi.v1.CommandAck.create({ deviceId: "ex-1", leaseId: "lease-1", seq, status: Status.APPLIED, origin: Origin.ADAPTER, ...figures });

describe("LatencyWindow", () => {
  it("measures each ack's round trip from its command's send time, matched by lease and seq", () => {
    const window = new LatencyWindow({ size: 10 });
    window.commandSent("lease-1", 1, 1000);
    window.commandSent("lease-1", 2, 1010);
    window.commandSent("lease-2", 1, 1020);
    expect(window.ackReceived(applied(2), 1015)).toEqual({ rttMs: 5 });
    expect(window.ackReceived(applied(1), 1030)).toEqual({ rttMs: 30 });
    expect(window.ackReceived(applied(1), 1040)).toEqual({ rttMs: undefined }); // its send time was used
    expect(window.ackReceived(applied(7), 1040)).toEqual({ rttMs: undefined }); // never sent by us
    expect(window.stats()).toMatchObject({ samples: 4, ackRttP50Ms: 5, ackRttP99Ms: 30 });
  });

  it("keeps only the last `size` acks", () => {
    const window = new LatencyWindow({ size: 3 });
    window.ackReceived(applied(1, { status: Status.EXPIRED, origin: Origin.ROOM }), 0);
    for (let seq = 2; seq <= 4; seq++) window.ackReceived(applied(seq), 0);
    expect(window.stats()).toMatchObject({ samples: 3, lastAckStatus: "APPLIED", acksByStatus: { APPLIED: 3 } });
  });

  it("forgets the oldest send time past maxUnacked: acks that never come cannot grow it", () => {
    const window = new LatencyWindow({ size: 10, maxUnacked: 2 });
    window.commandSent("lease-1", 1, 100);
    window.commandSent("lease-1", 2, 200);
    window.commandSent("lease-1", 3, 300);
    expect(window.ackReceived(applied(1), 400).rttMs).toBeUndefined();
    expect(window.ackReceived(applied(2), 400).rttMs).toBe(200);
    expect(window.ackReceived(applied(3), 400).rttMs).toBe(100);
  });

  it("answers nearest-rank percentiles, undefined without samples", () => {
    const window = new LatencyWindow({ size: 500 });
    expect(window.stats()).toEqual({
      samples: 0, ackRttP50Ms: undefined, ackRttP99Ms: undefined, deviceRoundTripP50Ms: undefined,
      oneWayP50Ms: undefined, oneWayP99Ms: undefined, lastAckStatus: undefined, acksByStatus: {},
    });
    // sent in reverse, so the round trips arrive unsorted: 100, 99, ..., 1 ms
    for (let seq = 1; seq <= 100; seq++) window.commandSent("lease-1", seq, 1000 - seq);
    for (let seq = 1; seq <= 100; seq++) window.ackReceived(applied(seq, { deviceRoundTripMs: seq, oneWayLatencyMs: 2 * seq }), 1101 - 2 * seq);
    const stats = window.stats();
    expect(stats).toMatchObject({ samples: 100, ackRttP50Ms: 50, ackRttP99Ms: 99, deviceRoundTripP50Ms: 50, oneWayP50Ms: 100, oneWayP99Ms: 198 });
  });

  it("counts device figures only where they were measured: the room's refusals carry none", () => {
    const window = new LatencyWindow({ size: 10 });
    window.ackReceived(applied(1, { status: Status.EXPIRED, origin: Origin.ROOM }), 0);
    expect(window.stats()).toMatchObject({ deviceRoundTripP50Ms: undefined, oneWayP50Ms: undefined, lastAckStatus: "EXPIRED" });
    window.ackReceived(applied(2, { oneWayLatencyMs: 0, deviceRoundTripMs: 3 }), 0); // an adapter may measure 0 ms one way
    expect(window.stats()).toMatchObject({ deviceRoundTripP50Ms: 3, oneWayP50Ms: 0, acksByStatus: { EXPIRED: 1, APPLIED: 1 } });
  });
});
