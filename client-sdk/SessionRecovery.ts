/**
 * A session finding its room again after the room's node was lost (failover): RoomSession's
 * part of it, apart so the session stays readable.
 *
 * When the socket drops, the Colyseus SDK reconnects to the same node; that works when
 * the node is alive. When it is not, the cluster restores the room on another node from
 * its newest snapshot, with this session parked and a seat reserved for it. Recovery asks
 * any region (`POST /sessions/resume`, TsunagiClient's `resume`) where the session's seat
 * is, every `everyMs`, for at most `windowMs`:
 * - a seat: the session takes it as it would a handoff's (RoomFollower), and sends again
 *   every numbered envelope the restored room has not applied (the input log is held,
 *   not expired, while the session recovers);
 * - "reconnect": the room still lives on its node, the SDK's own reconnection will do;
 * - a room being restored, a region out of reach: asked again;
 * - no such session or room, a refused token: the session ends with that error.
 *
 * @example
 *   const recovery = new SessionRecovery(host, { windowMs: 15_000 });
 *   recovery.start();          // the socket dropped, or the room's node lost the room
 *   recovery.stop();           // the SDK reconnected by itself
 */
import { ErrorCode, type tsunagi } from "../proto/index.ts";
import { TsunagiError, fromServerError } from "./errors.ts";

/** What `POST /sessions/resume` answers. */
export type ResumeAnswer =
  | { reservation: string; regionId: string; nodeId: string; reconnect?: undefined }
  | { reconnect: true; regionId: string; nodeId: string; reservation?: undefined };

/** Codes after which asking again cannot help: the session is over. */
const FINAL = new Set<number>([ErrorCode.ROOM_MOVED, ErrorCode.UNKNOWN_ROOM, ErrorCode.TOKEN_INVALID, ErrorCode.TOKEN_EXPIRED, ErrorCode.TOKEN_MISSING, ErrorCode.FORBIDDEN, ErrorCode.WRONG_TYPE]);

export interface RecoveryHost {
  roomId(): string;
  sessionId(): string;
  closed(): boolean;
  /** Whether the session's socket is open again (the SDK reconnected). */
  connected(): boolean;
  resume(roomId: string, sessionId: string): Promise<ResumeAnswer>;
  /** Takes the seat a RoomHandoff names, as a move would; resolves whether the session is there now. */
  follow(handoff: tsunagi.v1.IRoomHandoff): Promise<boolean>;
  /** Holds the input log's expiry while recovering (nothing the lost node applied after its snapshot may expire). */
  holdInputs(held: boolean): void;
  /** Recovery gave up: the session ends with `error`, unless the SDK is still reconnecting to its node (that decides). */
  failed(error: TsunagiError): void;
}

export interface RecoveryOptions {
  /** How long the session looks for its room before it ends, ms. Default 15 000. */
  windowMs?: number;
  /** Between two asks, ms, on average (each wait is jittered ±50 %). Default 250. */
  everyMs?: number;
}

export class SessionRecovery {
  private running = false;
  private stopped = false;
  private readonly windowMs: number;
  private readonly everyMs: number;

  constructor(private readonly host: RecoveryHost, options: RecoveryOptions = {}) {
    this.windowMs = options.windowMs ?? 15_000;
    this.everyMs = options.everyMs ?? 250;
  }

  /** Whether the session is looking for its room. */
  get active(): boolean { return this.running; }

  /** Starts looking (once at a time); `lost`: the old home said the room is not its own any more, so no reconnection there will do. */
  start(): void {
    if (this.running || this.host.closed()) return;
    this.running = true;
    this.stopped = false;
    this.host.holdInputs(true);
    void this.run().finally(() => {
      this.running = false;
      this.host.holdInputs(false);
    });
  }

  /** The SDK reconnected to the same node: nothing to recover. */
  stop(): void { this.stopped = true; }

  private async run(): Promise<void> {
    const { host } = this;
    const deadline = performance.now() + this.windowMs;
    let last: TsunagiError = new TsunagiError(ErrorCode.REGION_UNAVAILABLE, "the room's node was lost and no region answered where it went");
    while (!this.stopped && !host.closed() && performance.now() < deadline) {
      if (host.connected()) return;
      try {
        const answer = await host.resume(host.roomId(), host.sessionId());
        if (this.stopped || host.closed()) return;
        if (answer.reservation !== undefined) {
          const handoff: tsunagi.v1.IRoomHandoff = { regionId: answer.regionId, nodeId: answer.nodeId, reservationJson: answer.reservation, reason: "failover", seatSeconds: 10 };
          if (await host.follow(handoff)) return;
        }
        // "reconnect": the node is alive and the SDK is reconnecting to it.
      } catch (error) {
        last = fromServerError(error);
        if (FINAL.has(last.code)) break;
      }
      // Jittered (±50 %): a room's clients all lost it at once, and need not ask in step.
      await new Promise((resolve) => setTimeout(resolve, this.everyMs * (0.5 + Math.random())));
    }
    if (!this.stopped && !host.closed() && !host.connected()) host.failed(last);
  }
}
