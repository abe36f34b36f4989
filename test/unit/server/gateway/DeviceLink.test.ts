import { describe, expect, it } from "vitest";
import { DeviceLink } from "../../../../server/gateway/DeviceLink.ts";
import { tsunagi } from "../../../../proto/index.ts";
import { FakeLinkSocket } from "../../../fixtures/fakes/FakeLinkSocket.ts";

const Status = tsunagi.v1.CommandAck.Status;
const Origin = tsunagi.v1.CommandAck.Origin;

function fakeLink(options: { ackGraceMs?: number; maxPendingAcks?: number } = {}) {
  let t = 1_000;
  const socket = new FakeLinkSocket();
  const link = new DeviceLink({ deviceId: "ex-1", adapterVersion: "1.0.0", driver: "sim", socket, now: () => t, ...options });
  const acks: tsunagi.v1.CommandAck[] = [];
  const command = (seq: number, lifeMs = 50) => ({ deviceId: "ex-1", leaseId: "L", seq, issuedAtMs: t, deadlineMs: t + lifeMs });
  const send = (seq: number, lifeMs?: number) => link.sendCommand(command(seq, lifeMs), (ack) => acks.push(ack));
  const fates = () => acks.map((ack) => [Number(ack.seq), Status[ack.status], Origin[ack.origin]]);
  return { link, socket, acks, send, fates, advance: (ms: number) => { t += ms; } };
}

/** The adapter's ack of the `index`-th command written to the socket. */
function adapterAck(socket: FakeLinkSocket, index: number): [number, tsunagi.v1.CommandAck] {
  const frame = socket.sent("controlCommand")[index];
  const command = frame.controlCommand!;
  return [Number(frame.correlationId), tsunagi.v1.CommandAck.create({ deviceId: command.deviceId, leaseId: command.leaseId, seq: command.seq, status: Status.APPLIED })];
}

describe("DeviceLink", () => {
  it("measures the room-adapter-room round trip to the sub-millisecond, on a monotonic clock, whatever the server clock's resolution", () => {
    const { link, socket, send, acks } = fakeLink(); // its server clock stands still, in whole ms
    for (let seq = 1; seq <= 5; seq++) {
      send(seq);
      const sentAt = performance.now();
      while (performance.now() - sentAt < 0.05) { /* let the monotonic clock move */ }
      link.receiveAck(...adapterAck(socket, seq - 1));
    }
    expect(acks.map((ack) => ack.deviceRoundTripMs).every((ms) => ms > 0)).toBe(true);
    expect(acks.some((ack) => !Number.isInteger(ack.deviceRoundTripMs))).toBe(true);
  });

  it("a refused profile leaves the link with none, and its room is told", () => {
    const { link } = fakeLink();
    const told: string[] = [];
    link.bind({ onProfileRefused: (problem) => told.push(problem) });
    link.receiveProfile(tsunagi.v1.DeviceProfile.create({ deviceId: "ex-1", deviceClass: tsunagi.v1.DeviceClass.DEVICE_CLASS_EXCAVATOR }));
    expect(link.profile).toBeDefined();
    link.refuseProfile("device_class drone is not the class the device was enrolled as (excavator)");
    expect(link.profile).toBeUndefined();
    expect(told).toEqual(["device_class drone is not the class the device was enrolled as (excavator)"]);
  });

  it("acks EXPIRED each queued command whose deadline passed, while the socket stays backpressured", () => {
    const { socket, send, fates, advance, link } = fakeLink();
    socket.buffered = 1 << 20; // far above the backpressure limit
    send(1, 40);
    send(2, 500);
    expect(socket.frames).toHaveLength(0); // both queued behind the backpressure

    advance(50);
    link.sweep();
    expect(fates()).toEqual([[1, "EXPIRED", "ROOM"]]);
    expect(link.stats.expiredInQueue).toBe(1);
    expect(socket.frames).toHaveLength(0); // still backpressured: the live one keeps waiting

    advance(500);
    link.sweep();
    expect(fates()).toEqual([[1, "EXPIRED", "ROOM"], [2, "EXPIRED", "ROOM"]]);
    expect(socket.frames).toHaveLength(0);
  });

  it("settles every sent command UNKNOWN (origin ROOM: it may have been applied) when the link closes, before its handler hears of the close", () => {
    const { link, socket, send, fates } = fakeLink();
    const order: string[] = [];
    link.bind({ onClosed: () => order.push(`closed after ${fates().length} acks`) });
    send(1);
    send(2);
    send(3);
    link.receiveAck(...adapterAck(socket, 1)); // the adapter answered seq 2 only
    expect(fates()).toEqual([[2, "APPLIED", "ADAPTER"]]);

    link.closed("connection closed (code 1006)");
    expect(fates()).toEqual([[2, "APPLIED", "ADAPTER"], [1, "UNKNOWN", "ROOM"], [3, "UNKNOWN", "ROOM"]]);
    expect(order).toEqual(["closed after 3 acks"]);
    expect(link.stats.pendingAcks).toBe(0);
    // An ack arriving after the close is nobody's: each command keeps its one answer.
    expect(link.receiveAck(...adapterAck(socket, 0))).toBe(false);
    expect(fates()).toHaveLength(3);
  });

  it("settles a queued command (never sent: DEVICE_OFFLINE) and a sent one (UNKNOWN) when the link closes", () => {
    const { link, socket, send, fates } = fakeLink();
    send(1);
    socket.buffered = 1 << 20;
    send(2); // waits behind the backpressure
    link.disconnect(4000, "replaced");
    expect(fates().sort()).toEqual([[1, "UNKNOWN", "ROOM"], [2, "DEVICE_OFFLINE", "ROOM"]]);
  });

  it("acks UNKNOWN (origin ROOM) a sent command whose ack did not come within its deadline and the grace; the late ack is dropped", () => {
    const { link, socket, acks, send, fates, advance } = fakeLink({ ackGraceMs: 100 });
    send(1, 50);
    send(2, 500);
    advance(149);
    link.sweep();
    expect(fates()).toEqual([]); // not yet: deadline 50 + grace 100
    advance(2);
    link.sweep();
    expect(fates()).toEqual([[1, "UNKNOWN", "ROOM"]]);
    expect(acks[0].detail).toMatch(/no ack from the device/);
    expect(link.stats).toMatchObject({ ackTimeouts: 1, pendingAcks: 1 });
    expect(link.receiveAck(...adapterAck(socket, 0))).toBe(false);
    expect(link.receiveAck(...adapterAck(socket, 1))).toBe(true);
    expect(fates()).toEqual([[1, "UNKNOWN", "ROOM"], [2, "APPLIED", "ADAPTER"]]);
  });

  it("acks UNKNOWN the oldest sent command when more acks are awaited than it keeps", () => {
    const { link, send, fates } = fakeLink({ maxPendingAcks: 2 });
    send(1);
    send(2);
    expect(fates()).toEqual([]);
    send(3);
    expect(fates()).toEqual([[1, "UNKNOWN", "ROOM"]]);
    expect(link.stats).toMatchObject({ ackTimeouts: 1, pendingAcks: 2 });
  });
});
