/**
 * Who is in a teleop room: each session's client, role and identity (the token's
 * subject, which a demotion sticks to across sessions), and delivery to them: a send to
 * a participant whose socket is closing is traced, not thrown, and the newest telemetry
 * of each device goes to everyone not sent it yet, encoded once, skipping a participant
 * whose socket is backed up (the oldest unsent sample is what drops: device.proto,
 * Telemetry).
 *
 * @example
 *   const participants = new Participants({ send, sendFailed, telemetryDropped });
 *   participants.joined(client, "operator", claims.sub);
 *   participants.send(client, { correlationId: 0, commandAck: ack });
 *   participants.fanOutTelemetry(slots.values(), encodeFrame);   // from a timer
 */
import type { Client } from "@colyseus/core";
import type { tsunagi } from "../../proto/index.ts";
import type { Role } from "../../server/auth/tokens.ts";
import { clientBufferedAmount } from "../../server/colyseus/internals.ts";
import { trySend } from "../../common/trySend.ts";
import type { DeviceSlot } from "./DeviceSlot.ts";

/** A participant whose socket holds more than this unsent gets no telemetry this round. */
export const TELEMETRY_BACKPRESSURE_BYTES = 128 * 1024;

/** One session in the room. */
export interface Participant {
  client: Client;
  role: Role;
  /** The token's subject: who the person is, across sessions. */
  subject: string;
}

/** What the participants need from their room. */
export interface ParticipantsHost {
  /** Sends an envelope to a client (the room's encoder and framing). */
  send(client: Client, envelope: tsunagi.v1.IEnvelope, options?: { trusted?: boolean }): void;
  /** A send failed because the client's socket was closing. */
  sendFailed(error: unknown, sessionId: string): void;
  /** A telemetry frame was skipped for a backed-up participant. */
  telemetryDropped(): void;
}

export class Participants {
  /** How to reach a client, and where failures are counted. */
  private readonly host: ParticipantsHost;
  /** Everyone in the room, by session id. */
  private readonly bySession = new Map<string, Participant>();

  constructor(host: ParticipantsHost) {
    this.host = host;
  }

  get(sessionId: string): Participant | undefined {
    return this.bySession.get(sessionId);
  }

  has(sessionId: string): boolean {
    return this.bySession.has(sessionId);
  }

  joined(client: Client, role: Role, subject: string): void {
    this.bySession.set(client.sessionId, { client, role, subject });
  }

  /** The session came back on a new socket. */
  reconnected(client: Client): void {
    const participant = this.bySession.get(client.sessionId);
    if (participant) participant.client = client;
  }

  left(sessionId: string): void {
    this.bySession.delete(sessionId);
  }

  /**
   * Sends to a client that may be leaving. The send throws only when its socket is
   * already closing (it left or dropped since it was looked up); its onDrop or onLeave
   * ends its leases, so the lost message needs nothing but a trace.
   */
  send(client: Client, envelope: tsunagi.v1.IEnvelope, options?: { trusted?: boolean }): void {
    this.deliver(client, () => this.host.send(client, envelope, options));
  }

  /** Each device's newest telemetry, encoded at most once per sample, to every participant not sent it yet. */
  fanOutTelemetry(slots: Iterable<DeviceSlot>, encode: (telemetry: tsunagi.v1.Telemetry) => Uint8Array): void {
    for (const slot of slots) {
      const frame = slot.telemetryFrameOnce(encode);
      if (!frame) continue;
      for (const { client } of this.bySession.values()) {
        if (!slot.telemetryDue(client.sessionId)) continue;
        // A slow participant skips this frame and gets the newest one later: the oldest is what drops.
        if (clientBufferedAmount(client) > TELEMETRY_BACKPRESSURE_BYTES) { this.host.telemetryDropped(); continue; }
        slot.telemetrySent(client.sessionId);
        this.deliver(client, () => client.enqueueRaw(frame));
      }
    }
  }

  /** A send to a participant, whose failure the host hears of (see trySend). */
  private deliver(client: Client, send: () => void): void {
    trySend(send, (error) => this.host.sendFailed(error, client.sessionId));
  }
}
