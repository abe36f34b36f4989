/**
 * The device channel's proofs and seal (proto/deviceAuth.ts): the adapter and the gateway
 * agree on both by construction, and nothing but the other end's sealed frames, each
 * once and in order, opens.
 */
import { describe, expect, it } from "vitest";
import { ChannelSeal, isGatewayProof, newNonce, proveChallenge, proveGateway, SEAL_BYTES } from "../../../proto/deviceAuth.ts";
import { decodeEnvelope, encodeEnvelope } from "../../../proto/index.ts";

const SECRET = "c3".repeat(32);
const DEVICE = "ex-1";

function pair(secret = SECRET) {
  const nonces = { gatewayNonce: newNonce(), adapterNonce: newNonce() };
  return { nonces, gateway: ChannelSeal.forGateway(secret, DEVICE, nonces), adapter: ChannelSeal.forAdapter(secret, DEVICE, nonces) };
}

const command = encodeEnvelope({ correlationId: 5, controlCommand: { deviceId: DEVICE, leaseId: "L1", seq: 9, axes: [{ name: "boom", value: 0.25 }] } });

describe("gateway proof", () => {
  it("holds for the device secret and these nonces only, and is not the adapter's proof", () => {
    const nonces = { gatewayNonce: newNonce(), adapterNonce: newNonce() };
    const proof = proveGateway(SECRET, DEVICE, nonces);
    expect(isGatewayProof(SECRET, DEVICE, nonces, proof)).toBe(true);
    expect(isGatewayProof("d4".repeat(32), DEVICE, nonces, proof)).toBe(false);
    expect(isGatewayProof(SECRET, "ex-2", nonces, proof)).toBe(false);
    expect(isGatewayProof(SECRET, DEVICE, { ...nonces, adapterNonce: newNonce() }, proof)).toBe(false);
    expect(isGatewayProof(SECRET, DEVICE, nonces, "")).toBe(false);
    expect(isGatewayProof(SECRET, DEVICE, nonces, proof.toUpperCase())).toBe(false);
    // An adapter's answer to a challenge with the same nonce text never passes as the gateway's proof.
    expect(isGatewayProof(SECRET, DEVICE, nonces, proveChallenge(SECRET, DEVICE, { nonce: nonces.gatewayNonce, serverTimeMs: 0 }))).toBe(false);
  });
});

describe("ChannelSeal", () => {
  it("opens what the other end sealed, as the same envelope, and a decoder of the whole frame still reads it", () => {
    const { gateway, adapter } = pair();
    const frame = gateway.seal(command);
    expect(frame.length).toBe(command.length + SEAL_BYTES);
    const opened = adapter.open(frame);
    expect(opened.refused).toBeUndefined();
    expect(Buffer.from(opened.envelope!)).toEqual(Buffer.from(command));
    const whole = decodeEnvelope(frame);
    expect(whole.body).toBe("controlCommand");
    expect(Number(whole.channelSeq)).toBe(1);
    expect(adapter.open(adapter.seal(command)).refused).toBe("mac"); // its own frame, reflected back
    expect(gateway.open(adapter.seal(command)).refused).toBeUndefined();
  });

  it("refuses a frame without the seal, with any byte changed, or under another connection's keys", () => {
    const { gateway, adapter } = pair();
    expect(adapter.open(command).refused).toBe("missing");
    expect(adapter.open(new Uint8Array(3)).refused).toBe("missing");
    const frame = gateway.seal(command);
    for (let at = 0; at < frame.length; at++) {
      const altered = Uint8Array.from(frame);
      altered[at] ^= 0x01;
      expect(adapter.open(altered).refused, `byte ${at} flipped`).toMatch(/^(mac|missing)$/);
    }
    expect(pair().adapter.open(frame).refused).toBe("mac");
    expect(adapter.open(frame).refused).toBeUndefined(); // the untouched one still opens: refusals moved nothing
  });

  it("refuses a replayed or reordered frame, and lets a gap pass", () => {
    const { gateway, adapter } = pair();
    const first = gateway.seal(command);
    const second = gateway.seal(command);
    const third = gateway.seal(command);
    const fourth = gateway.seal(command);
    expect(adapter.open(first).refused).toBeUndefined();
    expect(adapter.open(first).refused).toBe("replay");
    expect(adapter.open(third).refused).toBeUndefined(); // second lost: a gap is allowed
    expect(adapter.open(second).refused).toBe("replay"); // arriving late is a reorder
    expect(adapter.open(fourth).refused).toBeUndefined();
  });
});
