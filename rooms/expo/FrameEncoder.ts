/**
 * Builds the per-tick ExpoFrame of each visitor without encoding a neighbour once per
 * viewer. A protobuf repeated field is just its entries one after another, and a
 * message is its fields in any order, so:
 *
 * - each visitor's VisitorState is encoded once per tick, as a complete `moved` (or
 *   `appeared`) field: tag, length, body (`entry()`);
 * - a viewer's frame is the small ExpoFrame header (tick, ack, gone, booths, areas,
 *   encoded by protobufjs) followed by the bytes of the entries it needs, wrapped as
 *   Envelope field 42 and prefixed with the Colyseus ROOM_DATA_BYTES "pb" header
 *   (`assemble()`): one allocation and a few copies per viewer per tick.
 *
 * The result decodes as an ordinary Envelope{expoFrame} with any protobuf library.
 */
import protobuf from "protobufjs/minimal.js";
import { tsunagi } from "../../proto/index.ts";
import { ENVELOPE_FRAME_PREFIX, envelopeFrame } from "../../server/colyseus/envelopeFrame.ts";

/** Field numbers of ExpoFrame's repeated VisitorState fields, and Envelope's expo_frame. */
const APPEARED_FIELD = 4;
const MOVED_FIELD = 5;
const ENVELOPE_EXPO_FRAME_FIELD = 42;
const LENGTH_DELIMITED = 2;

const colyseusPrefix = ENVELOPE_FRAME_PREFIX;

/** A VisitorState encoded as a whole `appeared` or `moved` field of ExpoFrame. */
export function entry(kind: "appeared" | "moved", state: tsunagi.v1.IVisitorState): Uint8Array {
  const writer = protobuf.Writer.create();
  writer.uint32(((kind === "appeared" ? APPEARED_FIELD : MOVED_FIELD) << 3) | LENGTH_DELIMITED).fork();
  tsunagi.v1.VisitorState.encode(state, writer);
  return writer.ldelim().finish();
}

/**
 * One viewer's frame, ready for `client.enqueueRaw()`: `header` is ExpoFrame.encode() of
 * the non-entry fields; `entries[0..count)` are entry() results, `entryBytes` their total length.
 */
export function assemble(header: Uint8Array, entries: readonly Uint8Array[], count: number, entryBytes: number): Buffer {
  const bodyLength = header.length + entryBytes;
  const envelopeHead = protobuf.Writer.create().uint32((ENVELOPE_EXPO_FRAME_FIELD << 3) | LENGTH_DELIMITED).uint32(bodyLength).finish();
  const frame = Buffer.allocUnsafe(colyseusPrefix.length + envelopeHead.length + bodyLength);
  let offset = 0;
  frame.set(colyseusPrefix, offset); offset += colyseusPrefix.length;
  frame.set(envelopeHead, offset); offset += envelopeHead.length;
  frame.set(header, offset); offset += header.length;
  for (let i = 0; i < count; i++) { frame.set(entries[i], offset); offset += entries[i].length; }
  return frame;
}

/** An Envelope framed once for any number of recipients (chat, announcements). */
export function framedEnvelope(envelope: tsunagi.v1.IEnvelope): Uint8Array {
  return envelopeFrame(envelope);
}
