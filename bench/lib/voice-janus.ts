/**
 * A minimal client of the Janus WebSocket API (subprotocol `janus-protocol`), as the
 * voice bench's load clients speak it: one socket per load process, carrying many Janus
 * sessions (one per participant), each with its VideoRoom handles. Every request
 * carries the participant's grant token (the core checks it on each request; VideoRoom
 * checks it against the room's allowed list at a publisher's join).
 *
 * - `request()` sends a `create`/`attach`/`keepalive` and resolves with Janus' `success`;
 * - `message()` sends a plugin message and resolves with its asynchronous `event` (Janus
 *   acks first, then answers with the same transaction), plugin data and jsep;
 * - events Janus pushes without a transaction (webrtcup, hangup, a subscriber's postponed
 *   offer) go to the handle's `onEvent`.
 * Sessions are kept alive every 20 s (Janus' session_timeout is 60 s).
 */
import WebSocket from "ws";

export const VIDEOROOM = "janus.plugin.videoroom";
const KEEPALIVE_MS = 20_000;
const REQUEST_TIMEOUT_MS = 30_000;

export interface JanusReply {
  janus: string;
  transaction?: string;
  session_id?: number;
  sender?: number;
  data?: { id: number };
  plugindata?: { plugin: string; data: Record<string, any> };
  jsep?: { type: "offer" | "answer"; sdp: string };
  error?: { code: number; reason: string };
  [key: string]: unknown;
}

/** What a plugin message resolves with: the plugin's data and Janus' jsep, if any. */
export interface PluginEvent {
  data: Record<string, any>;
  jsep?: { type: "offer" | "answer"; sdp: string };
}

interface Pending {
  resolve(reply: JanusReply): void;
  reject(error: Error): void;
  /** Plugin messages: resolve on the event, not on the ack. */
  async: boolean;
  timer: NodeJS.Timeout;
}

export class JanusSocket {
  private readonly pending = new Map<string, Pending>();
  private readonly handlers = new Map<number, (reply: JanusReply) => void>();
  private readonly sessions = new Map<number, string>();
  private nextTransaction = 1;
  private readonly keepalive: NodeJS.Timeout;
  private closed = false;

  private constructor(private readonly socket: WebSocket) {
    socket.on("message", (data) => this.receive(JSON.parse(String(data)) as JanusReply));
    socket.on("close", () => this.fail(new Error("the Janus socket closed")));
    socket.on("error", (error) => this.fail(error));
    this.keepalive = setInterval(() => {
      for (const [sessionId, token] of this.sessions) void this.request({ janus: "keepalive", session_id: sessionId }, token).catch(() => {});
    }, KEEPALIVE_MS);
  }

  static connect(url: string): Promise<JanusSocket> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, "janus-protocol", { perMessageDeflate: false });
      socket.once("open", () => { socket.removeListener("error", reject); resolve(new JanusSocket(socket)); });
      socket.once("error", reject);
    });
  }

  /** A new Janus session for `token`'s holder. */
  async createSession(token: string): Promise<JanusSession> {
    const reply = await this.request({ janus: "create" }, token);
    const sessionId = reply.data!.id;
    this.sessions.set(sessionId, token);
    return new JanusSession(this, sessionId, token);
  }

  /** Sends `body` (a transaction and the token added); resolves with the `success` (or, `async`, the plugin `event`). */
  request(body: Record<string, unknown>, token: string, async = false): Promise<JanusReply> {
    if (this.closed) return Promise.reject(new Error("the Janus socket is closed"));
    const transaction = `t${this.nextTransaction++}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(transaction);
        reject(new Error(`Janus did not answer ${JSON.stringify(body).slice(0, 120)} within ${REQUEST_TIMEOUT_MS} ms`));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(transaction, { resolve, reject, async, timer });
      this.socket.send(JSON.stringify({ ...body, transaction, token }));
    });
  }

  /** Where events of handle `handleId` without a pending transaction go. */
  onHandleEvent(handleId: number, handler: (reply: JanusReply) => void): void {
    this.handlers.set(handleId, handler);
  }

  forgetSession(sessionId: number): void {
    this.sessions.delete(sessionId);
  }

  close(): void {
    this.closed = true;
    clearInterval(this.keepalive);
    this.socket.terminate();
  }

  private receive(reply: JanusReply): void {
    const pending = reply.transaction === undefined ? undefined : this.pending.get(reply.transaction);
    if (pending) {
      if (reply.janus === "ack" && pending.async) return;
      this.pending.delete(reply.transaction!);
      clearTimeout(pending.timer);
      if (reply.janus === "error") pending.reject(new Error(`Janus: ${reply.error?.code} ${reply.error?.reason}`));
      else pending.resolve(reply);
      return;
    }
    if (reply.sender !== undefined) this.handlers.get(reply.sender)?.(reply);
  }

  private fail(error: Error): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.keepalive);
    for (const pending of this.pending.values()) { clearTimeout(pending.timer); pending.reject(error); }
    this.pending.clear();
  }
}

export class JanusSession {
  constructor(readonly socket: JanusSocket, readonly id: number, readonly token: string) {}

  async attach(): Promise<JanusHandle> {
    const reply = await this.socket.request({ janus: "attach", session_id: this.id, plugin: VIDEOROOM }, this.token);
    return new JanusHandle(this, reply.data!.id);
  }

  async destroy(): Promise<void> {
    this.socket.forgetSession(this.id);
    await this.socket.request({ janus: "destroy", session_id: this.id }, this.token).catch(() => {});
  }
}

export class JanusHandle {
  constructor(readonly session: JanusSession, readonly id: number) {}

  /** Sends a VideoRoom request (with `jsep`, if given); resolves with its event, or rejects with VideoRoom's error. */
  async message(body: Record<string, unknown>, jsep?: { type: string; sdp: string }): Promise<PluginEvent> {
    const reply = await this.session.socket.request(
      { janus: "message", session_id: this.session.id, handle_id: this.id, body, ...(jsep ? { jsep } : {}) }, this.session.token, true);
    const data = reply.plugindata?.data ?? {};
    if (data.error_code) throw new Error(`VideoRoom refused ${String(body.request)}: ${data.error} (${data.error_code})`);
    return { data, jsep: reply.jsep };
  }

  /** Events for this handle that answer no request of ours (webrtcup, hangup, a postponed offer). */
  onEvent(handler: (reply: JanusReply) => void): void {
    this.session.socket.onHandleEvent(this.id, handler);
  }
}
