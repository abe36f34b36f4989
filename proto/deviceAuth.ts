/**
 * The device channel's proofs and seal (device.proto, DeviceHello, DeviceWelcome and
 * "Channel proof and MAC"): the one copy of each formula the adapter and the gateway use,
 * so both ends agree by construction.
 *
 * - The adapter proves it holds the device secret: HMAC over the gateway's fresh nonce
 *   (proveChallenge), so a replayed hello fails.
 * - The gateway proves it holds the secret too: HMAC over the adapter's fresh nonce
 *   (proveGateway), so an adapter obeys nobody who merely sits on its path.
 * - Both derive one MAC key per direction from the secret and the two nonces
 *   (channelKeys), and seal every frame after the welcome with a sequence number and a MAC
 *   (ChannelSeal): a frame injected, altered, replayed or reordered on the path is refused.
 *
 * @example
 *   const proof = proveChallenge(deviceSecret, "ex-1", { nonce, serverTimeMs });   // adapter
 *   const nonces = { gatewayNonce: nonce, adapterNonce };
 *   const seal = ChannelSeal.forAdapter(deviceSecret, "ex-1", nonces);               // adapter
 *   socket.send(seal.seal(encodeEnvelope(envelope)));
 *   const opened = seal.open(frame);                 // { envelope: bytes } or { refused: "mac" }
 */
import { createHmac, createSecretKey, hkdfSync, randomBytes, timingSafeEqual, type KeyObject } from "node:crypto";

/** A gateway's challenge to one connection. */
export interface DeviceChallenge {
  /** 32 random bytes, hex. */
  nonce: string;
  serverTimeMs: number;
}

/** The two nonces of one connection, each 32 random bytes as 64 lowercase hex characters. */
export interface ChannelNonces {
  /** DeviceChallenge.nonce. */
  gatewayNonce: string;
  /** DeviceHello.adapter_nonce. */
  adapterNonce: string;
}

/** Names the adapter's formula, so its proof can never be mistaken for another HMAC of the same secret. */
const PROOF_CONTEXT = "tsunagi-device-v1";
/** Names the gateway's formula: an adapter's proof can never pass as the gateway's (no reflection). */
const GATEWAY_PROOF_CONTEXT = "tsunagi-gateway-v1";
/** Names the session keys' derivation. */
const CHANNEL_CONTEXT = "tsunagi-channel-v1";

/** A proof is 32 bytes of HMAC-SHA256, in hex. */
export const PROOF_PATTERN = /^[0-9a-f]{64}$/;
/** A nonce is 32 random bytes, in lowercase hex. */
export const NONCE_PATTERN = /^[0-9a-f]{64}$/;

/** A fresh nonce: 32 random bytes, hex. */
export function newNonce(): string {
  return randomBytes(32).toString("hex");
}

/** The adapter's answer to a gateway challenge, with its secret (hex). */
export function proveChallenge(deviceSecret: string, deviceId: string, challenge: DeviceChallenge): string {
  return createHmac("sha256", Buffer.from(deviceSecret, "hex"))
    .update(`${PROOF_CONTEXT}|${deviceId}|${challenge.nonce}|${challenge.serverTimeMs}`)
    .digest("hex");
}

/** The gateway's proof that it knows the device secret too (DeviceWelcome.gateway_proof). */
export function proveGateway(deviceSecret: string, deviceId: string, nonces: ChannelNonces): string {
  return createHmac("sha256", Buffer.from(deviceSecret, "hex"))
    .update(`${GATEWAY_PROOF_CONTEXT}|${deviceId}|${nonces.adapterNonce}|${nonces.gatewayNonce}`)
    .digest("hex");
}

/** Whether `proof` is the gateway's proof for these nonces (constant time). */
export function isGatewayProof(deviceSecret: string, deviceId: string, nonces: ChannelNonces, proof: string): boolean {
  if (typeof proof !== "string" || !PROOF_PATTERN.test(proof)) return false;
  return timingSafeEqual(Buffer.from(proveGateway(deviceSecret, deviceId, nonces), "hex"), Buffer.from(proof, "hex"));
}

/** The two MAC keys of one connection: one per direction, so a frame cannot be reflected back to its sender. */
export interface ChannelKeys {
  gatewayToAdapter: KeyObject;
  adapterToGateway: KeyObject;
}

/** HKDF-SHA256 of the device secret, salted with both nonces (device.proto, "Channel proof and MAC"). */
export function channelKeys(deviceSecret: string, deviceId: string, nonces: ChannelNonces): ChannelKeys {
  const secret = Buffer.from(deviceSecret, "hex");
  const salt = Buffer.concat([Buffer.from(nonces.gatewayNonce, "hex"), Buffer.from(nonces.adapterNonce, "hex")]);
  const derive = (direction: string) => createSecretKey(Buffer.from(hkdfSync("sha256", secret, salt, `${CHANNEL_CONTEXT}|${deviceId}|${direction}`, 32)));
  return { gatewayToAdapter: derive("gateway-to-adapter"), adapterToGateway: derive("adapter-to-gateway") };
}

/** Why a frame was refused: no seal at all, a MAC that does not match, or a sequence number not above the last taken. */
export type SealRefusal = "missing" | "mac" | "replay";

/** Each refusal in words, for logs and coded errors: "dropped a frame " + this. */
export const SEAL_REFUSAL_TEXT: Readonly<Record<SealRefusal, string>> = {
  missing: "without the channel's seal",
  mac: "whose MAC does not match (forged or altered on the path)",
  replay: "with a sequence number already used (replayed or reordered)",
};

/** Bytes of the MAC kept (HMAC-SHA256 cut to 128 bits, as TLS and IPsec do). */
const MAC_BYTES = 16;
/** Envelope.channel_seq's tag: field 2, wire type 1 (fixed64). */
const SEQ_TAG = (2 << 3) | 1;
/** Envelope.channel_mac's tag: field 3, wire type 2 (length-delimited). */
const MAC_TAG = (3 << 3) | 2;
/** The seal after the envelope: seq tag and 8 bytes, MAC tag, length and MAC. */
export const SEAL_BYTES = 1 + 8 + 2 + MAC_BYTES;
/** Where the MAC field starts, counted back from the frame's end. */
const MAC_FIELD_BYTES = 2 + MAC_BYTES;

/**
 * One connection's seal, on one side: seals what this side sends and opens what it
 * receives, each direction with its own key and sequence. Cheap: one HMAC and one copy of
 * the frame per call.
 */
export class ChannelSeal {
  /** Key of the frames this side sends. */
  private readonly sendKey: KeyObject;
  /** Key of the frames this side receives. */
  private readonly receiveKey: KeyObject;
  /** Sequence number of the last frame sealed (the first is 1). */
  private sentSeq = 0;
  /** Sequence number of the last frame opened; a frame must carry a higher one. */
  private receivedSeq = 0;

  private constructor(sendKey: KeyObject, receiveKey: KeyObject) {
    this.sendKey = sendKey;
    this.receiveKey = receiveKey;
  }

  /** The adapter's side of a connection. */
  static forAdapter(deviceSecret: string, deviceId: string, nonces: ChannelNonces): ChannelSeal {
    const keys = channelKeys(deviceSecret, deviceId, nonces);
    return new ChannelSeal(keys.adapterToGateway, keys.gatewayToAdapter);
  }

  /** The gateway's side of a connection. */
  static forGateway(deviceSecret: string, deviceId: string, nonces: ChannelNonces): ChannelSeal {
    const keys = channelKeys(deviceSecret, deviceId, nonces);
    return new ChannelSeal(keys.gatewayToAdapter, keys.adapterToGateway);
  }

  /** The encoded envelope with the next sequence number and its MAC appended. */
  seal(envelope: Uint8Array): Uint8Array {
    const seq = ++this.sentSeq;
    const frame = Buffer.allocUnsafe(envelope.length + SEAL_BYTES);
    frame.set(envelope, 0);
    let at = envelope.length;
    frame[at++] = SEQ_TAG;
    frame.writeUInt32LE(seq % 0x1_0000_0000, at);
    frame.writeUInt32LE(Math.floor(seq / 0x1_0000_0000), at + 4);
    at += 8;
    frame[at++] = MAC_TAG;
    frame[at++] = MAC_BYTES;
    createHmac("sha256", this.sendKey).update(frame.subarray(0, at - 2)).digest().copy(frame, at, 0, MAC_BYTES);
    return frame;
  }

  /**
   * The envelope's bytes of a sealed frame (a view into `frame`), once its MAC matches and
   * its sequence number is above the last taken; or why it is refused. A refused frame
   * leaves the sequence where it was, so a forgery cannot block the real frames after it.
   */
  open(frame: Uint8Array): { envelope: Uint8Array; refused?: undefined } | { refused: SealRefusal; envelope?: undefined } {
    const length = frame.length;
    if (length < SEAL_BYTES || frame[length - SEAL_BYTES] !== SEQ_TAG || frame[length - MAC_FIELD_BYTES] !== MAC_TAG || frame[length - MAC_FIELD_BYTES + 1] !== MAC_BYTES) {
      return { refused: "missing" };
    }
    const signed = frame.subarray(0, length - MAC_FIELD_BYTES);
    const expected = createHmac("sha256", this.receiveKey).update(signed).digest().subarray(0, MAC_BYTES);
    if (!timingSafeEqual(expected, frame.subarray(length - MAC_BYTES))) return { refused: "mac" };
    const seqAt = length - SEAL_BYTES + 1;
    const view = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
    const seq = view.readUInt32LE(seqAt) + view.readUInt32LE(seqAt + 4) * 0x1_0000_0000;
    if (seq <= this.receivedSeq) return { refused: "replay" };
    this.receivedSeq = seq;
    return { envelope: frame.subarray(0, length - SEAL_BYTES) };
  }
}
