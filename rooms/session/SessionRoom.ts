/**
 * `session`: a general-purpose room of named participants who exchange messages. The
 * building block for small shared sessions (and voice rooms later), and the room the
 * SDK examples and cluster tests use.
 *
 * Messages: `chat` {text} is relayed to everyone as `chat` {from, text, at}, within the
 * room's chat budget (`session.chatPerSecond`, bursts of `session.chatBurst`, everyone's
 * messages together: each one is a broadcast to every participant); beyond it a chat is
 * refused RATE_LIMITED. Protobuf envelopes (`pb`) answer Ping with Pong (see ClusterRoom).
 */
import { Schema, MapSchema, type } from "@colyseus/schema";
import type { Client } from "@colyseus/core";
import { ClusterRoom, tokenAuth } from "../shared/ClusterRoom.ts";
import type { MigratableRoom } from "../shared/MigratableRoom.ts";
import { roles, type TokenClaims } from "../../server/auth/tokens.ts";
import type { RoomAccess } from "../../server/auth/roomAccess.ts";
import { ErrorCode } from "../../proto/index.ts";
import { TokenBucket } from "../../common/TokenBucket.ts";
import { nodeContext } from "../../server/context.ts";
import { everyoneRoomVoice, type RoomVoice } from "../shared/RoomVoice.ts";

export class Participant extends Schema {
  @type("string") name: string = "";
  @type("string") role: string = "";
  @type("boolean") connected: boolean = true;
}

export class SessionState extends Schema {
  @type({ map: Participant }) participants = new MapSchema<Participant>();
}

const maxChatLength = 2000;

/**
 * Anyone may open a session with a random id and share it. A named one (a `roomId`)
 * is a place others look for by name, so only staff name them, or a token whose scope
 * names that room: a visitor cannot squat a meeting's name.
 */
const access: RoomAccess = { join: roles, create: roles, name: ["host", "operator", "supervisor"] };

/** A session room as it moves: its participants (those connected; one mid-reconnection stays behind and leaves). */
interface SessionRoomState {
  participants: Array<{ sessionId: string; name: string; role: string }>;
}

export class SessionRoom extends ClusterRoom implements MigratableRoom {
  static access = access;
  static onAuth = tokenAuth(access);
  state = new SessionState();
  maxClients = 200;

  /** Chat the room relays, everyone's together (session.chatPerSecond, session.chatBurst). */
  private chatBudget!: TokenBucket;
  /** Voice: everyone but devices speaks, and hears every speaker. */
  private voice?: RoomVoice;

  override async onCreate(options: any) {
    await super.onCreate(options);
    const { chatPerSecond, chatBurst } = nodeContext().config.session;
    this.chatBudget = new TokenBucket(chatPerSecond, chatBurst);
    const context = nodeContext();
    this.voice = everyoneRoomVoice({
      roomId: this.roomId, backend: () => context.voice, present: (sessionId) => this.state.participants.has(sessionId), moving: () => this.mover.moving, logger: context.logger, metrics: context.metrics,
      rights: (role) => (role === "device" ? undefined : "speak"),
      send: (client, envelope) => this.sendEnvelope(client, envelope),
      reject: (client, code, message, correlationId) => this.reject(client, code, message, correlationId),
    });
    this.voice.register((kind, handler) => this.onEnvelope(kind, handler));
    this.onMessage("chat", (client, message: unknown) => {
      const text = (message as { text?: unknown })?.text;
      if (typeof text !== "string" || text.length === 0 || text.length > maxChatLength) {
        this.rejectRepeated(client, ErrorCode.WRONG_TYPE, `chat needs {text: string of 1..${maxChatLength} chars}`);
        return;
      }
      if (!this.chatBudget.take()) {
        this.rejectRepeated(client, ErrorCode.RATE_LIMITED, `this room relays ${chatPerSecond} chat messages/s (burst ${chatBurst}) from everyone together: retry in ${this.chatBudget.retryAfterMs()} ms`);
        return;
      }
      this.broadcast("chat", { from: client.sessionId, text, at: Date.now() });
    });
  }

  override onJoin(client: Client, options?: any, auth?: TokenClaims) {
    super.onJoin(client, options, auth);
    const participant = new Participant();
    participant.name = auth?.name ?? auth?.sub ?? client.sessionId;
    participant.role = auth?.role ?? "visitor";
    this.state.participants.set(client.sessionId, participant);
  }

  override onDrop(client: Client, code?: number) {
    const participant = this.state.participants.get(client.sessionId);
    if (participant) participant.connected = false;
    super.onDrop(client, code);
  }

  onReconnect(client: Client) {
    const participant = this.state.participants.get(client.sessionId);
    if (participant) participant.connected = true;
  }

  onLeave(client: Client) {
    this.state.participants.delete(client.sessionId);
    this.voice?.leave(client.sessionId);
  }

  onDispose() {
    this.voice?.release();
  }

  // --- MigratableRoom: a session room moves with its participants -------------------

  protected override migratableRoom(): MigratableRoom { return this; }

  snapshotState(): SessionRoomState {
    const participants: SessionRoomState["participants"] = [];
    for (const client of this.clients) {
      const participant = this.state.participants.get(client.sessionId);
      if (participant) participants.push({ sessionId: client.sessionId, name: participant.name, role: participant.role });
    }
    return { participants };
  }

  restoreState(state: unknown): void {
    this.state.participants.clear();
    for (const { sessionId, name, role } of (state as SessionRoomState).participants) {
      const participant = new Participant();
      participant.name = name;
      participant.role = role;
      this.state.participants.set(sessionId, participant);
    }
  }

  snapshotSession(): unknown { return null; }
  restoreSession(): void { /* its participant is in the state */ }
  resumeSession(client: Client): void {
    const participant = this.state.participants.get(client.sessionId);
    if (participant) participant.connected = true;
  }
  sessionLost(sessionId: string): void {
    this.state.participants.delete(sessionId);
    this.voice?.leave(sessionId);
  }
  freezeRoom(): void { /* no clock of its own */ }
  thawRoom(): void { /* likewise */ }
}
