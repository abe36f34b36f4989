/** The presence codec of node-to-node messages: a round trip, and every bad input refused with its code. */
import { describe, expect, it } from "vitest";
import { ErrorCode, ProtocolError, tsunagi } from "../../../proto/index.ts";
import { MAX_CLUSTER_MESSAGE_CHARS, fromPresence, toPresence } from "../../../proto/clusterCodec.ts";

const codeOf = (run: () => unknown) => {
  try { run(); } catch (error) { return error instanceof ProtocolError ? error.code : `not a ProtocolError: ${String(error)}`; }
  return "no error";
};

describe("cluster messages on a presence channel", () => {
  it("round-trips a message as base64 protobuf text", () => {
    const text = toPresence(tsunagi.v1.DeviceWanted, { deviceId: "excavator-7", roomId: "site-7", nodeId: "tokyo-b" });
    expect(text).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect(fromPresence(tsunagi.v1.DeviceWanted, text)).toMatchObject({ deviceId: "excavator-7", roomId: "site-7", nodeId: "tokyo-b" });
  });

  it("refuses what is not base64 text of the message: a JSON object, a huge text, broken protobuf", () => {
    expect(codeOf(() => fromPresence(tsunagi.v1.DeviceWanted, { deviceId: "x" }))).toBe(ErrorCode.WRONG_TYPE);
    expect(codeOf(() => fromPresence(tsunagi.v1.DeviceWanted, "A".repeat(MAX_CLUSTER_MESSAGE_CHARS + 1)))).toBe(ErrorCode.FRAME_TOO_LARGE);
    // field 1 (length-delimited) announcing 100 bytes of which none follow
    expect(codeOf(() => fromPresence(tsunagi.v1.DeviceWanted, Buffer.from([0x0a, 100]).toString("base64")))).toBe(ErrorCode.MALFORMED_PROTOBUF);
  });
});
