/**
 * Sending to the expo room's clients: one place that tries a send, and one that fans
 * bytes framed once out to many visitors (chat, announcements, host notices).
 *
 * @example
 *   const frame = framedEnvelope({ announcement });
 *   const delivered = deliverEach(visitors, frame, (visitor) => visitor.areas.has("stage"));
 */
import type { Client } from "@colyseus/core";
import type { Visitor } from "./model.ts";

/**
 * Runs one send to a client and says whether it went out. A send throws only when the
 * client's socket is going away under it (a transport refusing a write to a socket it
 * has closed, or ws to one not open); that client's leave is then on its way, so the room
 * goes on and the caller counts it as not reached.
 */
export function trySend(send: () => void): boolean {
  try {
    send();
    return true;
  } catch {
    return false;
  }
}

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
