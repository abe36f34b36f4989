/**
 * Builds the per-tick ExpoFrame of each visitor without encoding a neighbour once per
 * viewer. A protobuf repeated field is just its entries one after another, and a
 * message is its fields in any order, so:
 *
 * - each visitor's VisitorState is encoded once per tick, as a complete `moved` (or
 *   `appeared`) field: tag, length, body (`entry()`);
 * - a viewer's frame is the small ExpoFrame header (tick, ack, gone, booths, areas,
 *   encoded by protobufjs into a reused writer) followed by the bytes of the entries it
 *   needs, wrapped as Envelope field 42 and prefixed with the Colyseus ROOM_DATA_BYTES
 *   "pb" header (`assemble()`): one allocation and a few copies per viewer per tick.
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
/** Envelope's expo_frame field tag, as its varint bytes. */
const expoFrameTag = protobuf.Writer.create().uint32((ENVELOPE_EXPO_FRAME_FIELD << 3) | LENGTH_DELIMITED).finish();

/** Bytes of `value` as a protobuf varint (a length: below 2^32). */
function varintLength(value: number): number {
  let length = 1;
  while (value >= 0x80) { value >>>= 7; length++; }
  return length;
}

/** Writes `value` as a varint at `offset`; returns the offset after it. */
function writeVarint(buffer: Uint8Array, offset: number, value: number): number {
  while (value >= 0x80) { buffer[offset++] = (value & 0x7f) | 0x80; value >>>= 7; }
  buffer[offset++] = value;
  return offset;
}

/** The writer every frame header and entry is encoded into (one at a time, each copied out before the next). */
const headerWriter = protobuf.Writer.create();

/** A VisitorState encoded as a whole `appeared` or `moved` field of ExpoFrame. */
export function entry(kind: "appeared" | "moved", state: tsunagi.v1.IVisitorState): Uint8Array {
  const writer = headerWriter;
  writer.reset();
  writer.uint32(((kind === "appeared" ? APPEARED_FIELD : MOVED_FIELD) << 3) | LENGTH_DELIMITED).fork();
  tsunagi.v1.VisitorState.encode(state, writer);
  return writer.ldelim().finish();
}

/**
 * One viewer's frame, ready for `client.enqueueRaw()`: `header` holds ExpoFrame's
 * non-entry fields (tick, ack, gone, areas, booths); `entries[0..count)` are entry()
 * results, `entryBytes` their total length. One allocation: the frame.
 */
export function assemble(header: tsunagi.v1.IExpoFrame, entries: readonly Uint8Array[], count: number, entryBytes: number): Uint8Array {
  const writer = headerWriter;
  writer.reset();
  tsunagi.v1.ExpoFrame.encode(header, writer);
  const headerLength = writer.pos;
  const bodyLength = headerLength + entryBytes;
  const prefix = colyseusPrefix.length;
  const frame = Buffer.allocUnsafe(prefix + expoFrameTag.length + varintLength(bodyLength) + bodyLength);
  frame.set(colyseusPrefix, 0);
  frame.set(expoFrameTag, prefix);
  let offset = writeVarint(frame, prefix + expoFrameTag.length, bodyLength);
  (writer as protobuf.Writer & { finishInto(buf: Uint8Array, offset: number): Uint8Array }).finishInto(frame, offset);
  offset += headerLength;
  for (let i = 0; i < count; i++) { frame.set(entries[i]!, offset); offset += entries[i]!.length; }
  return frame;
}

/** An Envelope framed once for any number of recipients (chat, announcements). */
export function framedEnvelope(envelope: tsunagi.v1.IEnvelope): Uint8Array {
  return envelopeFrame(envelope);
}
