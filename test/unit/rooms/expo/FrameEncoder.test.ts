import { describe, expect, it } from "vitest";
import { Protocol } from "@colyseus/core";
import { decodeEnvelope, tsunagi } from "../../../../proto/index.ts";
import { assemble, entry, framedEnvelope } from "../../../../rooms/expo/FrameEncoder.ts";

/** The Envelope bytes inside a Colyseus ROOM_DATA_BYTES "pb" frame: code byte, msgpack "pb" (0xa2 'p' 'b'), payload. */
function payloadOf(frame: Uint8Array): Uint8Array {
  expect(frame[0]).toBe(Protocol.ROOM_DATA_BYTES);
  expect([...frame.subarray(1, 4)]).toEqual([0xa2, 0x70, 0x62]);
  return frame.subarray(4);
}

const a = { visitorId: 7, x: 1.5, y: 2.25, heading: 0.5, seq: 3, sentAtMs: 1_796_000_000_123.5, avatar: "fox", name: "Aiko", role: "visitor" };
const b = { visitorId: 9, x: 10, y: 20, heading: -1, seq: 41, sentAtMs: 12 };

describe("FrameEncoder", () => {
  it("a frame assembled from per-visitor entries decodes as the ExpoFrame protobufjs would encode", () => {
    const header = { tick: 12, serverTimeMs: 5, ackSeq: 4, gone: [3, 5], boothsNear: ["acme"], areasLeft: ["stage"] };
    const entries = [entry("appeared", a), entry("moved", b), entry("moved", { ...b, visitorId: 10, avatar: "owl" })];
    const frame = assemble(header, entries, 3, entries.reduce((n, e) => n + e.length, 0));
    const envelope = decodeEnvelope(payloadOf(frame));
    expect(envelope.body).toBe("expoFrame");
    const reference = tsunagi.v1.ExpoFrame.decode(tsunagi.v1.ExpoFrame.encode({
      tick: 12, serverTimeMs: 5, ackSeq: 4, gone: [3, 5], boothsNear: ["acme"], areasLeft: ["stage"],
      appeared: [a], moved: [b, { ...b, visitorId: 10, avatar: "owl" }],
    }).finish());
    expect(tsunagi.v1.ExpoFrame.toObject(envelope.expoFrame as tsunagi.v1.ExpoFrame)).toEqual(tsunagi.v1.ExpoFrame.toObject(reference));
    expect(envelope.expoFrame!.appeared![0]).toMatchObject({ visitorId: 7, name: "Aiko", avatar: "fox", seq: 3 });
    expect(envelope.expoFrame!.moved!.map((m) => m.visitorId)).toEqual([9, 10]);
  });

  it("uses only the first `count` entries, so a reused scratch array may hold stale ones", () => {
    const header = { tick: 1 };
    const entries = [entry("moved", b), entry("moved", a)];
    const frame = assemble(header, entries, 1, entries[0].length);
    const decoded = decodeEnvelope(payloadOf(frame)).expoFrame!;
    expect(decoded.moved!.map((m) => m.visitorId)).toEqual([9]);
  });

  it("an empty frame and a large one both decode", () => {
    const header = { tick: 2, ackSeq: 1 };
    expect(decodeEnvelope(payloadOf(assemble(header, [], 0, 0))).expoFrame).toMatchObject({ tick: 2, ackSeq: 1 });
    // 500 entries: the frame's length needs a multi-byte varint
    const many = Array.from({ length: 500 }, (_, i) => entry("moved", { ...b, visitorId: i + 1 }));
    const big = assemble(header, many, many.length, many.reduce((n, e) => n + e.length, 0));
    expect(decodeEnvelope(payloadOf(big), 1 << 20).expoFrame!.moved).toHaveLength(500);
  });

  it("frames any envelope once for many recipients", () => {
    const frame = framedEnvelope({ announcement: { text: "hello", areaId: "stage" } });
    expect(decodeEnvelope(payloadOf(frame)).announcement).toMatchObject({ text: "hello", areaId: "stage" });
  });
});
