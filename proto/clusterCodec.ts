/**
 * How node-to-node messages (cluster.proto) travel on a presence channel: their protobuf
 * encoding in base64, since Colyseus presence carries text. One codec for every cluster
 * message, so a channel never sees JSON from one sender and protobuf from another.
 *
 * @example
 *   presence.publish(channel, toPresence(tsunagi.v1.DeviceWanted, { deviceId, roomId, nodeId }));
 *   const wanted = fromPresence(tsunagi.v1.DeviceWanted, message); // throws ProtocolError
 */
import type { Writer } from "protobufjs/minimal.js";
import { ErrorCode, ProtocolError } from "./index.ts";

/** A generated message class, as far as the codec needs it. */
export interface ClusterMessageType<T, I> {
  encode(message: I): Writer;
  decode(bytes: Uint8Array): T;
  getTypeUrl(prefix?: string): string;
}

/** Largest cluster message accepted, in base64 characters (a hall's ghost batch stays far below). */
export const MAX_CLUSTER_MESSAGE_CHARS = 4 * 1024 * 1024;

/** `message` as presence text: protobuf, base64. */
export function toPresence<T, I>(type: ClusterMessageType<T, I>, message: I): string {
  return Buffer.from(type.encode(message).finish()).toString("base64");
}

/** The message a presence text carries; throws ProtocolError (WRONG_TYPE, FRAME_TOO_LARGE, MALFORMED_PROTOBUF) for anything else. */
export function fromPresence<T, I>(type: ClusterMessageType<T, I>, text: unknown): T {
  const name = type.getTypeUrl("").replace(/^\//, "");
  if (typeof text !== "string") throw new ProtocolError(ErrorCode.WRONG_TYPE, `a ${name} on a presence channel is base64 text, got ${typeof text}`);
  if (text.length > MAX_CLUSTER_MESSAGE_CHARS) throw new ProtocolError(ErrorCode.FRAME_TOO_LARGE, `a ${name} of ${text.length} characters exceeds ${MAX_CLUSTER_MESSAGE_CHARS}`);
  try {
    return type.decode(Buffer.from(text, "base64"));
  } catch (error) {
    throw new ProtocolError(ErrorCode.MALFORMED_PROTOBUF, `not a valid ${name}: ${(error as Error).message}`, { cause: error });
  }
}
