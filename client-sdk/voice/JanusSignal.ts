/**
 * The client's side of Janus' WebSockets API (subprotocol "janus-protocol"), as much as
 * voice needs: a session kept alive, plugin handles, requests answered by transaction
 * (a plugin message is acknowledged first, then answered by an event), and the events
 * Janus sends unasked (webrtcup, hangup, a plugin's notices).
 *
 * Every request carries the grant's token: Janus admits nothing else (token_auth).
 * Janus' refusals become JanusRefused, with its code and reason; a closed socket fails
 * every pending request and ends the session (`onClose`).
 *
 * @example
 *   const janus = await JanusSignal.connect(grant.url, grant.token);
 *   const handle = await janus.attach("janus.plugin.videoroom");
 *   const { data, jsep } = await janus.message(handle, { request: "join", ptype: "publisher", room, id: feedId, token });
 *   janus.close();
 */

/** Janus refused a request. */
export class JanusRefused extends Error {
  constructor(readonly code: number, reason: string) {
    super(`Janus refused: ${reason} (${code})`);
    this.name = "JanusRefused";
  }
}

/** A plugin's answer: its data, and the SDP that came with it, if any. */
export interface PluginAnswer {
  data: any;
  jsep?: RTCSessionDescriptionInit;
}

type WebSocketLike = Pick<WebSocket, "send" | "close" | "readyState"> & {
  onopen: ((event: any) => void) | null;
  onmessage: ((event: { data: any }) => void) | null;
  onclose: ((event: any) => void) | null;
  onerror: ((event: any) => void) | null;
};
export type WebSocketFactory = (url: string, protocol: string) => WebSocketLike;

/** How often the session is kept alive (Janus ends one silent for 60 s). */
const KEEPALIVE_MS = 25_000;
/** The longest a request waits for its answer. */
const REQUEST_TIMEOUT_MS = 10_000;

interface Pending {
  resolve(message: any): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout>;
  /** A plugin message: its "ack" is not the answer. */
  plugin: boolean;
}

export class JanusSignal {
  private sessionId?: number;
  private nextTransaction = 1;
  private readonly pending = new Map<string, Pending>();
  private keepalive?: ReturnType<typeof setInterval>;
  private closed = false;
  /** Events Janus sends unasked, per handle (plugin notices, webrtcup, hangup, media). */
  onEvent: (handleId: number, message: any) => void = () => {};
  /** The socket closed (or the session ended): every handle is gone. */
  onClose: (reason: string) => void = () => {};

  private constructor(private readonly socket: WebSocketLike, private readonly token: string) {
    socket.onmessage = (event) => this.receive(typeof event.data === "string" ? event.data : String(event.data));
    socket.onclose = () => this.end("the connection to the voice server closed");
  }

  /** Opens the socket and a session on it. */
  static async connect(url: string, token: string, factory?: WebSocketFactory): Promise<JanusSignal> {
    const open = factory ?? ((address: string, protocol: string) => new WebSocket(address, protocol) as unknown as WebSocketLike);
    const socket = open(url, "janus-protocol");
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the voice server at ${url} did not answer`)), REQUEST_TIMEOUT_MS);
      socket.onopen = () => { clearTimeout(timer); resolve(); };
      socket.onerror = () => { clearTimeout(timer); reject(new Error(`could not connect to the voice server at ${url}`)); };
    });
    const janus = new JanusSignal(socket, token);
    const created = await janus.request({ janus: "create" });
    janus.sessionId = created.data.id;
    janus.keepalive = setInterval(() => void janus.request({ janus: "keepalive" }).catch(() => {}), KEEPALIVE_MS);
    return janus;
  }

  /** A handle on `plugin`, its id. */
  async attach(plugin: string): Promise<number> {
    const answer = await this.request({ janus: "attach", plugin });
    return answer.data.id;
  }

  /** A plugin request on `handleId` (with an SDP when `jsep` is given); its answer. */
  async message(handleId: number, body: Record<string, unknown>, jsep?: RTCSessionDescriptionInit): Promise<PluginAnswer> {
    const answer = await this.request({ janus: "message", handle_id: handleId, body, ...(jsep ? { jsep } : {}) }, true);
    const data = answer.plugindata?.data ?? {};
    if (data.error_code) throw new JanusRefused(data.error_code, data.error ?? "plugin error");
    return { data, jsep: answer.jsep };
  }

  /** Ends the session: every handle, and the socket. */
  close(): void {
    if (this.closed) return;
    if (this.sessionId !== undefined && this.socket.readyState === 1) this.socket.send(JSON.stringify({ janus: "destroy", session_id: this.sessionId, transaction: "bye", token: this.token }));
    this.end("closed");
    this.socket.close();
  }

  private request(body: Record<string, unknown>, plugin = false): Promise<any> {
    if (this.closed) return Promise.reject(new Error("the voice connection is closed"));
    const transaction = String(this.nextTransaction++);
    const message = { ...body, transaction, token: this.token, ...(this.sessionId !== undefined ? { session_id: this.sessionId } : {}) };
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(transaction);
        reject(new Error(`the voice server did not answer ${String(body.janus)} within ${REQUEST_TIMEOUT_MS} ms`));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(transaction, { resolve, reject, timer, plugin });
      this.socket.send(JSON.stringify(message));
    });
  }

  private receive(text: string): void {
    let message: any;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    const waiting = message.transaction !== undefined ? this.pending.get(String(message.transaction)) : undefined;
    if (waiting) {
      if (message.janus === "ack" && waiting.plugin) return; // the answer follows as an event
      this.pending.delete(String(message.transaction));
      clearTimeout(waiting.timer);
      if (message.janus === "error") waiting.reject(new JanusRefused(message.error?.code ?? 0, message.error?.reason ?? "error"));
      else waiting.resolve(message);
      return;
    }
    if (message.janus === "timeout") return this.end("the voice session timed out");
    if (message.sender !== undefined) this.onEvent(message.sender, message);
  }

  private end(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.keepalive);
    for (const waiting of this.pending.values()) {
      clearTimeout(waiting.timer);
      waiting.reject(new Error(reason));
    }
    this.pending.clear();
    this.onClose(reason);
  }
}
