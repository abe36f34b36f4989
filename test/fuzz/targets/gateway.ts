/**
 * Fuzz target on the device gateway's handshake: a fresh connection takes the gateway's
 * challenge and answers with what a stranger could send instead of a proof (any
 * envelope, a DeviceHello with made-up fields around the real nonce, mangled bytes,
 * garbage). The case passes when the gateway refused it with a specific code (an Error
 * envelope, or a coded close) within the bound, and never welcomed it.
 */
import fc from "fast-check";
import { WebSocket } from "ws";
import { decodeEnvelope } from "../../../proto/index.ts";
import { EnvelopeType, envelopeBytes, mangled, messageObject } from "../arbitraries.ts";
import { ANSWER_TIMEOUT_MS, isCodedClose, isSpecificCode, OK, type Verdict } from "../verdict.ts";
import type { FuzzNode, FuzzTarget, TargetLane } from "./types.ts";

const HelloType = EnvelopeType.lookupType("tsunagi.v1.DeviceHello");

/** What the stranger answers the challenge with; `hello` fields are filled around the real nonce. */
type HandshakeInput = { kind: "bytes"; bytes: Uint8Array } | { kind: "hello"; hello: Record<string, unknown>; realNonce: boolean; damage?: Uint8Array };

const input: fc.Arbitrary<HandshakeInput> = fc.oneof(
  envelopeBytes().map((bytes) => ({ kind: "bytes" as const, bytes })),
  fc.tuple(messageObject(HelloType), fc.boolean(), fc.option(fc.uint8Array({ minLength: 1, maxLength: 4 }), { nil: undefined }))
    .map(([hello, realNonce, damage]) => ({ kind: "hello" as const, hello, realNonce, damage })),
);

/** The made-up hello, with the challenge's real nonce in its signed challenge if asked, so the proof check is reached. */
function encodeHello(c: Extract<HandshakeInput, { kind: "hello" }>, challenge: { nonce?: string | null }): Uint8Array {
  const { hello, realNonce, damage } = c;
  const signed = realNonce ? { ...(hello.signedChallenge as object ?? {}), nonce: challenge.nonce } : hello.signedChallenge;
  const object = { correlationId: 1, deviceHello: { ...hello, ...(signed ? { signedChallenge: signed } : {}) } };
  let bytes: Uint8Array;
  try { bytes = EnvelopeType.encode(EnvelopeType.fromObject(object)).finish(); } catch { bytes = new Uint8Array([0x0a]); }
  if (!damage) return bytes;
  const [out] = fc.sample(mangled(fc.constant(bytes)), { numRuns: 1, seed: damage.reduce((a, b) => a * 31 + b, 7) });
  return out;
}

class HandshakeLane implements TargetLane<HandshakeInput> {
  constructor(private readonly node: FuzzNode) {}

  run(c: HandshakeInput): Promise<Verdict> {
    return new Promise<Verdict>((resolve) => {
      const problems: string[] = [];
      let coded = false;
      let sent = false;
      const socket = new WebSocket(this.node.gatewayUrl);
      const finish = (verdict: Verdict) => { clearTimeout(timer); socket.removeAllListeners(); socket.on("error", () => {}); socket.terminate(); resolve(verdict); };
      const timer = setTimeout(() => finish({ kind: "hang", detail: `gateway neither refused nor closed within ${ANSWER_TIMEOUT_MS * 2} ms` }), ANSWER_TIMEOUT_MS * 2);
      socket.on("error", (error) => finish({ kind: "uncoded", detail: `socket error: ${error.message}` }));
      socket.on("message", (data: Buffer) => {
        let envelope;
        try { envelope = decodeEnvelope(new Uint8Array(data)); } catch (error) { problems.push(`undecodable frame from the gateway: ${(error as Error).message}`); return; }
        if (envelope.body === "deviceChallenge" && !sent) {
          sent = true;
          socket.send(c.kind === "bytes" ? c.bytes : encodeHello(c, envelope.deviceChallenge!));
        } else if (envelope.body === "deviceWelcome") {
          problems.push("welcomed a stranger");
        } else if (envelope.body === "error") {
          if (isSpecificCode(envelope.error!.code)) coded = true;
          else problems.push(`error envelope ${envelope.error!.code}: ${envelope.error!.message}`);
        }
      });
      socket.on("close", (code) => {
        if (!coded && !isCodedClose(code)) problems.push(`closed with ${code} and no coded error`);
        finish(problems.length ? { kind: "uncoded", detail: problems[0] } : OK);
      });
    });
  }

  async close() {}
}

export const deviceHandshake: FuzzTarget<HandshakeInput> = {
  name: "device-handshake",
  arbitrary: input,
  describe: (c) => c.kind === "bytes" ? Buffer.from(c.bytes).toString("hex").slice(0, 300) : JSON.stringify(c.hello).slice(0, 300),
  lanes: 2,
  async open(node) { return new HandshakeLane(node); },
};
