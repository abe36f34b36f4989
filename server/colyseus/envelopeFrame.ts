/**
 * An Envelope as a whole Colyseus frame, ready for `client.enqueueRaw()`: the
 * ROOM_DATA_BYTES "pb" header (what `client.sendBytes("pb", bytes)` writes before the
 * bytes) and the envelope, encoded in one buffer. Framed once, it goes to any number of
 * clients; framed here, a send skips the SDK path's second buffer, header encoding and
 * debug hook.
 *
 * @example
 *   client.enqueueRaw(envelopeFrame({ correlationId: 0, commandAck }, TRUSTED));
 */
import { getMessageBytes } from "@colyseus/core";
import { ENVELOPE_MESSAGE_TYPE, encodeEnvelope, type IEnvelope } from "../../proto/index.ts";
import { Protocol } from "./internals.ts";

/** The Colyseus frame header of a "pb" bytes message: protocol code and message type. */
export const ENVELOPE_FRAME_PREFIX: Uint8Array = Uint8Array.from(getMessageBytes.raw(Protocol.ROOM_DATA_BYTES, ENVELOPE_MESSAGE_TYPE));

/** The frame of one Envelope (encodeEnvelope's checks and options). */
export function envelopeFrame(envelope: IEnvelope, options?: { trusted?: boolean }): Uint8Array {
  return encodeEnvelope(envelope, { trusted: options?.trusted, prefix: ENVELOPE_FRAME_PREFIX });
}

/** Whether a client frame is a "pb" envelope frame: its bytes from ENVELOPE_FRAME_PREFIX.length on are the Envelope. */
export function isEnvelopeFrame(frame: Uint8Array): boolean {
  if (frame.length < ENVELOPE_FRAME_PREFIX.length) return false;
  for (let i = 0; i < ENVELOPE_FRAME_PREFIX.length; i++) if (frame[i] !== ENVELOPE_FRAME_PREFIX[i]) return false;
  return true;
}
