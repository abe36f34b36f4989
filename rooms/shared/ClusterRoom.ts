/**
 * The base of every Tsunagi room, and tokenAuth(), the onAuth its subclasses use.
 */
import { Room, ServerError, type Client, type AuthContext, type MessageContext } from "@colyseus/core";
import { ErrorCode, errorCodeName } from "../../proto/index.ts";
import { ROOM_ID_PATTERN, bareIdProblem, roomIdOf } from "../../proto/ids.ts";
import { authority, type TokenClaims } from "../../server/auth/tokens.ts";
import { authorizeRole, authorizeScope, type RoomAccess } from "../../server/auth/roomAccess.ts";
import { nodeContext } from "../../server/context.ts";
import type { ClaimRequest } from "../../server/cluster/RoomDirectory.ts";
import { roomEvents } from "../../server/colyseus/internals.ts";
import { trySend } from "../../common/trySend.ts";
import { envelopeFrame } from "../../server/colyseus/envelopeFrame.ts";
import { rejectInput } from "../../server/colyseus/rejectInput.ts";
import { handleEnvelopeFrames } from "../../server/colyseus/InputGuard.ts";
import { RefusalThrottle } from "./RefusalThrottle.ts";
import { regionRttsProblem } from "../../proto/regionRtts.ts";
import { RoomSnapshots } from "./RoomSnapshots.ts";
import { RoomMover } from "./RoomMover.ts";
import type { MigratableRoom } from "./MigratableRoom.ts";
import { originalOptions, restoreOf } from "../../server/handoff/restore.ts";
import { decodeEnvelope, errorEnvelope, ProtocolError, ENVELOPE_MESSAGE_TYPE, type EnvelopeBody, type tsunagi } from "../../proto/index.ts";

export type EnvelopeHandler = (client: Client, envelope: tsunagi.v1.Envelope) => void;

/** WebSocket close code for a frame above the transport's payload limit. */
const CLOSE_MESSAGE_TOO_BIG = 1009;

/**
 * Builds a static onAuth admitting valid tokens of the rule's `join` roles (admin always)
 * whose scope names the room, when the request names it; onJoin checks the scope again
 * against the room itself. Creation is checked by the matchmaker (authorizeCreate), which
 * knows a create from a join.
 */
export function tokenAuth(access: RoomAccess) {
  return async function onAuth(token: string, options: any, _context: AuthContext): Promise<TokenClaims> {
    const context = nodeContext();
    try {
      const claims = await authority().verify(token);
      authorizeRole(claims, access.join, "join this room");
      if (typeof options?.roomId === "string") authorizeScope(claims, [options.roomId], `room "${options.roomId}"`);
      return claims;
    } catch (error) {
      const code = (error as ServerError).code ?? ErrorCode.TOKEN_INVALID;
      context.metrics.errors.inc({ code: errorCodeName(code), source: "auth" });
      context.logger.warn({ code: errorCodeName(code) }, `join refused: ${(error as Error).message}`);
      throw error;
    }
  };
}

/**
 * Base of every Tsunagi room: authenticated, listed in the cluster's RoomDirectory, and
 * hosted at most once in the whole cluster.
 *
 * Subclasses call `super.onCreate(options)` first in their own `onCreate`, and
 * `super.onJoin(...)` first in `onJoin`, and declare who may do what: `static access`
 * (server/auth/roomAccess.ts) and `static onAuth = tokenAuth(access)`.
 *
 * A room's id is its type and its name (`roomIdOf`): the `roomId` option names it, or it
 * gets a random name; `name` is that name, what a token's scope lists.
 *
 * @example
 *   const access: RoomAccess = { join: ["visitor", "host"], create: [], name: [], admin: ["host"] };
 *   class ExpoRoom extends ClusterRoom {
 *     static access = access;
 *     static onAuth = tokenAuth(access);
 *     async onCreate(options: any) { await super.onCreate(options); ... }
 *   }
 */
export abstract class ClusterRoom<Options = any> extends Room {
  /** Seconds a dropped client may take to reconnect to its session. */
  protected reconnectSeconds = 20;
  /** False for rooms that are not sessions (the lobby): they are not put in the directory. */
  protected listed = true;
  /** Client count last written to the directory, to skip writes when nothing changed. */
  private publishedCcu = -1;
  /** The fencing token of this room's directory claim, once it holds one: dispose releases only what it owns. */
  protected claimToken?: string;
  /** Envelope handlers by body kind. */
  private readonly envelopeHandlers = new Map<EnvelopeBody, EnvelopeHandler>();
  /** Clients this room sent away (removeClient): no reconnection seat for them. */
  private readonly removedClients = new WeakSet<Client>();
  /** When the room opened (in its first home), for its directory entry. */
  private openedAt = Date.now();
  /** The options this room was created with: a move creates it with them in its new home. */
  private createOptions: Record<string, unknown> = {};
  /** Colyseus message handlers by type, for inputs carried over by a move. */
  private readonly messageCallbacks = new Map<string, (client: Client, message: unknown) => void>();
  /** This room's side of moves between nodes (RoomMover.ts). */
  readonly mover: RoomMover = new RoomMover({
    room: this,
    type: () => this.migratableRoom(),
    name: () => this.name,
    createOptions: () => this.createOptions,
    createdAt: () => this.openedAt,
    setCreatedAt: (ms) => { this.openedAt = ms; },
    claimToken: () => this.claimToken,
    listed: () => this.listed,
    holdClaim: (token) => this.holdClaim(token),
    renewClaim: (token) => { this.claimToken = token; },
    directoryEntry: () => this.directoryEntry(),
    deliverEnvelope: (client, bytes, options) => this.deliverEnvelope(client, bytes, options),
    deliverMessage: (client, type, message) => this.messageCallbacks.get(type)?.(client, message),
    sendEnvelope: (client, envelope) => this.sendEnvelope(client, envelope),
    removeClient: (client, code, message) => this.removeClient(client, code, message),
    refuse: (client, code, message, correlationId) => correlationId ? this.reject(client, code, message, correlationId) : this.rejectRepeated(client, code, message),
  });
  /** Its snapshots for failover (RoomSnapshots.ts). */
  readonly snapshots = new RoomSnapshots(this.mover, { room: this, type: () => this.migratableRoom(), listed: () => this.listed, claimToken: () => this.claimToken });
  /** The room's name within its type: the `roomId` option, or the random id Colyseus gave it. */
  protected name = "";
  /** Which repeated refusals were told lately (rejectRepeated). */
  private readonly repeatedRefusals = new RefusalThrottle();

  async onCreate(options: Options & { roomId?: unknown }) {
    const restore = restoreOf(options);
    this.createOptions = originalOptions(options);
    const requestedId = (options as any)?.roomId;
    if (requestedId !== undefined && (typeof requestedId !== "string" || !ROOM_ID_PATTERN.test(requestedId))) {
      throw new ServerError(ErrorCode.WRONG_TYPE, `roomId must match ${ROOM_ID_PATTERN} (got ${JSON.stringify(requestedId)?.slice(0, 80)})`);
    }
    this.name = restore?.snapshot.name ?? requestedId ?? this.roomId;
    const problem = bareIdProblem(this.roomName, this.name);
    if (problem) throw new ServerError(ErrorCode.WRONG_TYPE, problem);
    this.roomId = roomIdOf(this.roomName, this.name);
    this.onMessageBytes(ENVELOPE_MESSAGE_TYPE, (client, bytes: Uint8Array) => this.receiveEnvelope(client, bytes));
    // The same handler, reached without Colyseus' dispatch once the input guard screened the frame.
    handleEnvelopeFrames(this, (client, bytes) => this.receiveEnvelope(client, bytes));
    this.onMessage("*", (client, type) => {
      this.reject(client, ErrorCode.UNKNOWN_MESSAGE, `room "${this.roomName}" has no message "${String(type).slice(0, 64)}"`);
    });
    this.onEnvelope("ping", (client, envelope) => {
      this.sendEnvelope(client, {
        correlationId: envelope.correlationId,
        pong: { clientTimeMs: envelope.ping!.clientTimeMs, serverTimeMs: Date.now() },
      });
    });
    this.onEnvelope("regionRtts", (client, envelope) => {
      const problem = regionRttsProblem(envelope.regionRtts?.rttMs);
      if (problem) { this.rejectRepeated(client, ErrorCode.WRONG_TYPE, problem); return; }
      this.mover.migration.rtts.set(client.sessionId, { ...envelope.regionRtts!.rttMs });
    });
    this.mover.attach(restore);
    roomEvents(this).once("dispose", () => this.mover.dispose());
    if (restore) return; // opened from a snapshot: the handoff's Switch claims it (RoomMover.takeOver)
    if (!this.listed) return;

    const context = nodeContext();
    const claim = await context.directory.claim(this.directoryEntry());
    if (!claim.claimed) {
      throw new ServerError(ErrorCode.ROOM_CONFLICT, `room "${this.roomId}" is already hosted in ${claim.owner.regionId} (node ${claim.owner.nodeId})`);
    }
    this.holdClaim(claim.token);
  }

  /** Starts holding the directory claim under `token`: listing refreshed, released at dispose. */
  protected holdClaim(token: string) {
    this.claimToken = token;
    this.snapshots.start();
    // Listing data is refreshed on a timer, not per join, so a join storm costs one write a second.
    this.clock.setInterval(() => void this.publishListing(), 1000);
    roomEvents(this).once("dispose", () => void this.releaseClaim());
  }

  /** The room type's MigratableRoom implementation (rooms/shared/MigratableRoom.ts); undefined: rooms of this type do not move. */
  protected migratableRoom(): MigratableRoom | undefined {
    return undefined;
  }

  /**
   * Registers a Colyseus message handler, as Room.onMessage does; while the room moves,
   * its messages are queued and carried to the new home instead (RoomMover).
   */
  override onMessage<T = any>(messageType: "*", callback: (client: Client, type: string | number, message: T) => void): any;
  override onMessage<T = any>(messageType: string | number, callback: (client: Client, message: T, ctx: MessageContext) => unknown): any;
  override onMessage<T = any>(messageType: string | number, validationSchema: any, callback: (client: Client, message: T, ctx: MessageContext) => unknown): any;
  override onMessage(type: any, ...rest: any[]): any {
    const index = rest.findIndex((value) => typeof value === "function");
    if (type === "*" || index < 0) return (super.onMessage as any)(type, ...rest);
    const callback = rest[index] as (client: Client, message: unknown) => void;
    this.messageCallbacks.set(String(type), callback);
    rest[index] = (client: Client, message: unknown) => {
      if (this.mover.interceptMessage(client, String(type), message)) return;
      callback(client, message);
    };
    return (super.onMessage as any)(type, ...rest);
  }

  onJoin(client: Client, _options?: any, auth?: TokenClaims) {
    const names = this.scopeIds();
    if (auth) authorizeScope(auth, names, `room "${names[0]}"`);
  }

  /** Names a token's `rooms` scope may list to admit a client here: this room's (an expo zone adds its hall's). */
  protected scopeIds(): string[] {
    return [this.name];
  }

  /**
   * Ends a client's session for good (a kick, a ban): the coded error, then the socket
   * closes with `closeCode`. Colyseus counts any close but 4000 as a drop; this one gets
   * no reconnection seat, so the session ends at once (onLeave) and cannot be resumed.
   */
  protected removeClient(client: Client, code: number, message: string, closeCode = code) {
    this.removedClients.add(client);
    trySend(() => {
      client.error(code, message);
      client.leave(closeCode, message);
    });
  }

  onDrop(client: Client, code?: number) {
    if (this.removedClients.has(client)) return; // sent away: Colyseus goes on to onLeave
    if (code === CLOSE_MESSAGE_TOO_BIG) {
      // The ws transport closed the socket for a frame above its ceiling (see
      // transportCeilingBytes); the sender sees close code 1009. Count it.
      const context = nodeContext();
      context.metrics.errors.inc({ code: errorCodeName(ErrorCode.FRAME_TOO_LARGE), source: "transport" });
      context.logger.warn({ sessionId: client.sessionId, roomId: this.roomId }, "socket closed: frame above the transport ceiling");
    }
    // Rejects when the seat times out, and at once while the room disposes (a draining
    // node closing its clients); Colyseus then ends the session itself (onLeave).
    this.allowReconnection(client, this.reconnectSeconds).catch(() => {});
  }

  /** Draining node: tell each client why before the socket closes, so it rejoins elsewhere. */
  override onBeforeShutdown() {
    for (const client of this.clients) {
      client.error(ErrorCode.NODE_DRAINING, "this node is shutting down: join again through matchmaking");
    }
    super.onBeforeShutdown();
  }

  /** Handles envelopes whose body is `kind`; one handler per kind. */
  protected onEnvelope(kind: EnvelopeBody, handler: EnvelopeHandler) {
    this.envelopeHandlers.set(kind, handler);
  }

  protected sendEnvelope(client: Client, envelope: tsunagi.v1.IEnvelope, options?: { trusted?: boolean }) {
    client.enqueueRaw(envelopeFrame(envelope, options));
  }

  /** A coded error to one client, with a log line and a metric; the room goes on. */
  protected reject(client: Client, code: number, message: string, correlationId?: tsunagi.v1.IEnvelope["correlationId"]) {
    const context = nodeContext();
    rejectInput(context, client, code, message, { roomId: this.roomId, source: this.roomName });
    if (correlationId !== undefined) {
      trySend(() => client.sendBytes(ENVELOPE_MESSAGE_TYPE, errorEnvelope(code, message, correlationId)));
    }
  }

  /**
   * A refusal a client may repeat at a high rate (a flood of chats, of lobby filters):
   * told like reject(), but at most once a second per code to each client; the rest are
   * only counted in tsunagi_errors_total, so neither the client nor the log is flooded.
   */
  protected rejectRepeated(client: Client, code: number, message: string) {
    if (this.repeatedRefusals.tell(client.sessionId, code)) return this.reject(client, code, message);
    nodeContext().metrics.errors.inc({ code: errorCodeName(code), source: this.roomName });
  }

  private receiveEnvelope(client: Client, bytes: Uint8Array) {
    if (this.mover.intercept(client, bytes)) return;
    this.deliverEnvelope(client, bytes);
  }

  /** An envelope applied: decoded, a numbered one at most once per session, handed to its handler. */
  protected deliverEnvelope(client: Client, bytes: Uint8Array, options?: { outOfTurn?: boolean }) {
    let envelope: tsunagi.v1.Envelope;
    try {
      envelope = decodeEnvelope(bytes, nodeContext().config.limits.maxFrameBytes);
    } catch (error) {
      const code = error instanceof ProtocolError ? error.code : ErrorCode.MALFORMED_PROTOBUF;
      this.reject(client, code, (error as Error).message, 0);
      return;
    }
    if (envelope.inputSeq && !options?.outOfTurn) {
      const skipped = this.mover.migration.admitSeq(client.sessionId, envelope.inputSeq);
      if (skipped < 0) { nodeContext().metrics.rooms.duplicateInputs++; return; }
      if (skipped > 0) nodeContext().metrics.rooms.inputGaps += skipped;
    }
    const kind = envelope.body as EnvelopeBody;
    const handler = this.envelopeHandlers.get(kind);
    if (!handler) {
      this.reject(client, ErrorCode.UNKNOWN_MESSAGE, `room "${this.roomName}" does not handle "${kind}" envelopes`, envelope.correlationId);
      return;
    }
    handler(client, envelope);
  }

  /** Small JSON-safe listing data shown in the lobby. */
  protected listingMetadata(): Record<string, unknown> | undefined {
    return undefined;
  }

  /** This room's directory entry, as this node would claim it. */
  directoryEntry(): ClaimRequest {
    const context = nodeContext();
    return {
      roomId: this.roomId,
      roomName: this.roomName,
      regionId: context.regionId,
      nodeId: context.nodeId,
      publicAddress: context.publicAddress,
      ccu: this.clients.length,
      maxClients: Number.isFinite(this.maxClients) ? this.maxClients : null,
      metadata: this.listingMetadata(),
      createdAt: this.openedAt,
    };
  }

  private async publishListing() {
    const token = this.claimToken;
    if (token === undefined || this.clients.length === this.publishedCcu) return;
    this.publishedCcu = this.clients.length;
    try {
      await nodeContext().directory.update({ ...this.directoryEntry(), token });
    } catch (error) {
      nodeContext().logger.warn({ roomId: this.roomId, err: error }, "directory update failed; retrying next second");
      this.publishedCcu = -1;
    }
  }

  private async releaseClaim() {
    const token = this.claimToken;
    if (token === undefined) return;
    this.claimToken = undefined;
    try {
      // Closed, not lost: no failover brings it back.
      await Promise.all([nodeContext().directory.release(this.roomId, token), nodeContext().snapshots?.remove(this.roomId, token)]);
    } catch {
      // Node shutting down or Redis gone: the claim lapses with this node's registry entry.
    }
  }
}
