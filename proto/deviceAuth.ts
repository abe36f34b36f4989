/**
 * The device channel's proof of a device secret (device.proto, DeviceHello): the one
 * formula the adapter signs with and the gateway checks, so both ends agree by
 * construction. The gateway sends a fresh random nonce per connection; the adapter
 * answers HMAC-SHA256(device secret, "tsunagi-device-v1" | deviceId | nonce |
 * serverTimeMs), so a replayed proof fails.
 *
 * @example
 *   const proof = proveChallenge(deviceSecret, "ex-1", { nonce, serverTimeMs });   // adapter
 */
import { createHmac } from "node:crypto";

/** A gateway's challenge to one connection. */
export interface DeviceChallenge {
  /** 32 random bytes, hex. */
  nonce: string;
  serverTimeMs: number;
}

/** Names the formula, so a proof can never be mistaken for another HMAC of the same secret. */
const PROOF_CONTEXT = "tsunagi-device-v1";

/** A proof is 32 bytes of HMAC-SHA256, in hex. */
export const PROOF_PATTERN = /^[0-9a-f]{64}$/;

/** The adapter's answer to a gateway challenge, with its secret (hex). */
export function proveChallenge(deviceSecret: string, deviceId: string, challenge: DeviceChallenge): string {
  return createHmac("sha256", Buffer.from(deviceSecret, "hex"))
    .update(`${PROOF_CONTEXT}|${deviceId}|${challenge.nonce}|${challenge.serverTimeMs}`)
    .digest("hex");
}
