/**
 * Fuzz target on the device channel after the welcome: a device enrolled for the run
 * (dev mode's `/dev/device`) proves its secret, checks the gateway's proof, and then
 * sends what a broken or hostile adapter could: envelopes of any body, mangled or
 * garbage bytes, each sealed with the channel's MAC so it reaches the decoders behind
 * the seal, and now and then unsealed so the seal check itself is fuzzed. Then a sealed
 * Ping. The case passes when every refusal was coded and the Pong came back; a
 * connection the gateway closed with a coded close is opened again.
 */
import fc from "fast-check";
import { WebSocket } from "ws";
import { decodeEnvelope, encodeEnvelope } from "../../../proto/index.ts";
import { ChannelSeal, isGatewayProof, newNonce, proveChallenge, type ChannelNonces } from "../../../proto/deviceAuth.ts";
import { envelopeBytes } from "../arbitraries.ts";
import { ANSWER_TIMEOUT_MS, HangError, isCodedClose, isSpecificCode, verdictOf, within, type Verdict } from "../verdict.ts";
import type { FuzzNode, FuzzTarget, TargetLane } from "./types.ts";

interface ChannelInput { bytes: Uint8Array; sealed: boolean }

interface Channel { socket: WebSocket; seal: ChannelSeal }

let probeIds = 2 ** 41;

class DeviceChannelLane implements TargetLane<ChannelInput> {
  private channel?: Channel;
  private secret?: string;
  private problems: string[] = [];
  private readonly probes = new Map<number, () => void>();
  private closed?: (code: number) => void;

  constructor(private readonly node: FuzzNode, private readonly deviceId: string) {}

  async run(input: ChannelInput): Promise<Verdict> {
    const channel = await this.open();
    this.problems = [];
    const closed = new Promise<number>((resolve) => { this.closed = resolve; });
    channel.socket.send(input.sealed ? channel.seal.seal(input.bytes) : input.bytes);
    const probe = probeIds++;
    const pong = new Promise<void>((resolve) => this.probes.set(probe, resolve));
    channel.socket.send(channel.seal.seal(encodeEnvelope({ correlationId: probe, ping: { clientTimeMs: Date.now() } })));
    try {
      const outcome = await within(Promise.race([pong.then(() => "pong" as const), closed]), ANSWER_TIMEOUT_MS, `Pong on device ${this.deviceId}'s channel`);
      if (outcome !== "pong" && !isCodedClose(outcome)) this.problems.push(`gateway closed the channel with uncoded close ${outcome}`);
      return verdictOf(this.problems);
    } catch (error) {
      if (!(error instanceof HangError)) throw error;
      this.drop();
      return verdictOf([], error.message);
    } finally {
      this.probes.delete(probe);
    }
  }

  /** Enrols the lane's device once, then connects and completes the handshake (again after a close). */
  private async open(): Promise<Channel> {
    if (this.channel) return this.channel;
    if (!this.secret) {
      const response = await fetch(`${this.node.httpUrl}/dev/device?id=${this.deviceId}&class=excavator`);
      if (!response.ok) throw new Error(`enrolling ${this.deviceId}: ${response.status} ${await response.text()}`);
      this.secret = (await response.json()).deviceSecret as string;
    }
    const secret = this.secret;
    const socket = new WebSocket(this.node.gatewayUrl);
    const channel = await within(new Promise<Channel>((resolve, reject) => {
      const adapterNonce = newNonce();
      let nonces: ChannelNonces | undefined;
      socket.on("error", reject);
      socket.on("close", (code) => reject(new Error(`gateway closed the handshake (${code})`)));
      socket.once("message", (data: Buffer) => {
        const challenge = decodeEnvelope(new Uint8Array(data)).deviceChallenge;
        if (!challenge) { reject(new Error("no challenge from the gateway")); return; }
        const gatewayNonce = challenge.nonce ?? "";
        nonces = { gatewayNonce, adapterNonce };
        const signature = proveChallenge(secret, this.deviceId, { nonce: gatewayNonce, serverTimeMs: Number(challenge.serverTimeMs) });
        socket.send(encodeEnvelope({ correlationId: 1, deviceHello: { deviceId: this.deviceId, adapterVersion: "0.0.0-fuzz", driver: "fuzz", adapterNonce, signedChallenge: { nonce: gatewayNonce, signature } } }));
        socket.once("message", (welcomeFrame: Buffer) => {
          const seal = ChannelSeal.forAdapter(secret, this.deviceId, nonces!);
          const opened = seal.open(new Uint8Array(welcomeFrame));
          const welcome = opened.envelope && decodeEnvelope(opened.envelope).deviceWelcome;
          if (!welcome || !isGatewayProof(secret, this.deviceId, nonces!, welcome.gatewayProof ?? "")) { reject(new Error("no proven welcome from the gateway")); return; }
          socket.removeAllListeners();
          resolve({ socket, seal });
        });
      });
    }), ANSWER_TIMEOUT_MS * 2, `handshake of ${this.deviceId}`);
    socket.on("error", () => {});
    socket.on("message", (data: Buffer) => this.received(channel, new Uint8Array(data)));
    socket.on("close", (code) => { if (this.channel === channel) this.channel = undefined; this.closed?.(code); });
    this.channel = channel;
    return channel;
  }

  private received(channel: Channel, frame: Uint8Array) {
    const opened = channel.seal.open(frame);
    if (!opened.envelope) { this.problems.push(`gateway frame failed its seal (${opened.refused})`); return; }
    let envelope;
    try { envelope = decodeEnvelope(opened.envelope); } catch (error) { this.problems.push(`undecodable frame from the gateway: ${(error as Error).message}`); return; }
    if (envelope.body === "error" && !isSpecificCode(envelope.error!.code)) this.problems.push(`error envelope ${envelope.error!.code}: ${envelope.error!.message}`);
    if (envelope.body === "pong") this.probes.get(Number(envelope.correlationId))?.();
  }

  private drop() {
    const channel = this.channel;
    this.channel = undefined;
    channel?.socket.terminate();
  }

  async close() { this.drop(); }
}

export const deviceChannel: FuzzTarget<ChannelInput> = {
  name: "device-channel",
  arbitrary: fc.record({ bytes: envelopeBytes(), sealed: fc.integer({ min: 0, max: 9 }).map((n) => n > 0) }),
  describe: (c) => `${c.sealed ? "sealed" : "unsealed"} ${Buffer.from(c.bytes).toString("hex").slice(0, 300)}`,
  lanes: 2,
  async open(node, lane) { return new DeviceChannelLane(node, `fuzz-device-${process.pid}-${lane}`); },
};
