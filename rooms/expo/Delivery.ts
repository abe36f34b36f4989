/**
 * Sending to the expo room's clients: bytes framed once, to one visitor or fanned out to
 * many (chat, announcements, host notices), each send through trySend.
 *
 * @example
 *   const frame = framedEnvelope({ announcement });
 *   const delivered = deliverEach(visitors, frame, (visitor) => visitor.areas.has("stage"));
 */
import type { Client } from "@colyseus/core";
import type { Visitor } from "./model.ts";
import { trySend } from "../../common/trySend.ts";

export { trySend };


/** Sends bytes already framed for Colyseus (FrameEncoder) to one client; false when its socket refused them. */
export function sendRaw(client: Client, frame: Uint8Array): boolean {
  return trySend(() => client.enqueueRaw(frame));
}

/** Sends one framed message to every visitor `accept` takes (everyone by default); how many it reached. */
export function deliverEach(visitors: Iterable<Visitor>, frame: Uint8Array, accept?: (visitor: Visitor) => boolean): number {
  let delivered = 0;
  for (const visitor of visitors) {
    if (accept && !accept(visitor)) continue;
    if (sendRaw(visitor.client, frame)) delivered++;
  }
  return delivered;
}
