/**
 * A session that moved with its room but whose client has not arrived yet: it stands in
 * for the client in the room's maps, so inputs carried over from the old home apply to
 * it as they would have there, and whatever the room sends it waits here until the
 * client takes its seat (ClusterRoom's resume), then goes out in order.
 *
 * It answers the parts of Colyseus' Client that rooms use: sessionId, auth, userData,
 * send, sendBytes, enqueueRaw, raw, error, leave. Everything parked goes out queued
 * behind the join (enqueueRaw), so nothing it holds can fail the client's join.
 *
 * @example
 *   const parked = new ParkedClient(sessionId, auth);
 *   handler(parked as unknown as Client, envelope);   // its reply is parked
 *   parked.flushTo(client);                           // the client arrived
 */
import type { Client } from "@colyseus/core";
import { isRetryable } from "../../proto/index.ts";
import { envelopeFrame } from "../../server/colyseus/envelopeFrame.ts";

/** What a parked session may hold for its client, at most: beyond it the oldest is dropped and counted. */
export const MAX_PARKED_SENDS = 1024;

type Send = (client: Client) => void;

export class ParkedClient {
  readonly id: string;
  userData: unknown;
  /** Colyseus' ClientState.JOINED: rooms that check it see a joined client. */
  readonly state = 1;
  /** What the room sent meanwhile, in order. */
  private readonly sends: Send[] = [];
  /** Set when the room ended the session meanwhile (a kick): the client is told, then closed. */
  left?: { code: number; reason?: string };

  /** `dropped`: a send past MAX_PARKED_SENDS went (counted by the caller). */
  constructor(readonly sessionId: string, public auth: unknown, private readonly dropped: () => void = () => {}) {
    this.id = sessionId;
  }

  send(type: string | number, message?: unknown): void { this.park((client) => client.send(type as never, message as never)); }
  sendBytes(type: string | number, bytes: Uint8Array): void {
    const copy = Uint8Array.from(bytes);
    this.park((client) => client.sendBytes(type as never, copy));
  }
  enqueueRaw(data: Uint8Array): void {
    const copy = Uint8Array.from(data);
    this.park((client) => client.enqueueRaw(copy));
  }
  raw(data: Uint8Array): void { this.enqueueRaw(data); }
  /**
   * A coded error, parked as an Error envelope (correlation id 0): a Colyseus ERROR
   * message sent while the client is still joining would fail its join, while envelopes
   * wait until the join is complete.
   */
  error(code: number, message?: string): void {
    const frame = envelopeFrame({ correlationId: 0, error: { code, message: message ?? "", retryable: isRetryable(code) } });
    this.park((client) => client.enqueueRaw(frame));
  }
  leave(code?: number, reason?: string): void { this.left ??= { code: code ?? 1000, reason }; }

  /** Sends everything parked to the client that arrived, in order; false when the room had ended the session meanwhile (the client is then closed). */
  flushTo(client: Client): boolean {
    for (const send of this.sends.splice(0)) send(client);
    if (!this.left) return true;
    client.leave(this.left.code, this.left.reason);
    return false;
  }

  private park(send: Send) {
    if (this.sends.length >= MAX_PARKED_SENDS) { this.sends.shift(); this.dropped(); }
    this.sends.push(send);
  }
}
