import { describe, expect, it } from "vitest";
import { DeviceLink } from "../../../../server/gateway/DeviceLink.ts";
import { tsunagi } from "../../../../proto/index.ts";

const Status = tsunagi.v1.CommandAck.Status;

function backpressuredLink() {
  let t = 1_000;
  let buffered = 1 << 20; // far above the backpressure limit
  const sent: Uint8Array[] = [];
  const link = new DeviceLink({
    deviceId: "ex-1", adapterVersion: "1.0.0", driver: "sim",
    socket: { send: (bytes) => { sent.push(bytes); return true; }, bufferedAmount: () => buffered, close: () => {} },
    now: () => t,
  });
  return { link, sent, advance: (ms: number) => { t += ms; }, unblock: () => { buffered = 0; }, now: () => t };
}

describe("DeviceLink", () => {
  it("acks EXPIRED each queued command whose deadline passed, while the socket stays backpressured", () => {
    const { link, sent, advance, now } = backpressuredLink();
    const acks: tsunagi.v1.CommandAck[] = [];
    const command = (seq: number, lifeMs: number) => ({ deviceId: "ex-1", leaseId: "L", seq, issuedAtMs: now(), deadlineMs: now() + lifeMs });
    link.sendCommand(command(1, 40), (ack) => acks.push(ack));
    link.sendCommand(command(2, 500), (ack) => acks.push(ack));
    expect(sent).toHaveLength(0); // both queued behind the backpressure

    advance(50);
    link.sweep();
    expect(acks.map((ack) => [Number(ack.seq), ack.status])).toEqual([[1, Status.EXPIRED]]);
    expect(link.stats.expiredInQueue).toBe(1);
    expect(sent).toHaveLength(0); // still backpressured: the live one keeps waiting

    advance(500);
    link.sweep();
    expect(acks.map((ack) => [Number(ack.seq), ack.status])).toEqual([[1, Status.EXPIRED], [2, Status.EXPIRED]]);
    expect(sent).toHaveLength(0);
  });
});
