/**
 * A small scripted stand-in for a region node, for the adapter's tests: a node:http
 * server answering `/ping` and `/gateway`, and a `ws` WebSocketServer speaking the
 * device channel (teleop.proto) on 127.0.0.1, both on ephemeral ports.
 *
 * It does what the real gateway does on the handshake (challenge, verified hello,
 * welcome or coded Error then close, then LeaseState with no lease) and answers
 * ClockSyncPings at once from Date.now(). Everything else the test scripts: it sends
 * frames with `send()` and waits for the adapter's with `waitFor()`. Every frame the
 * adapter sent is kept in `received`, tagged with the connection it came on.
 *
 * @example
 *   const gateway = await ScriptedGateway.start({ deviceId: "ex-1", secret });
 *   const adapter = new AdapterRuntime({ ..., nodes: [gateway.httpUrl] });
 *   adapter.start();
 *   await gateway.waitFor((e) => e.body === "deviceProfile");
 *   gateway.send({ correlationId: 0, leaseState: { deviceId: "ex-1", leaseId: "L1" } });
 *   await gateway.close();
 */
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";
import { ErrorCode, decodeEnvelope, encodeEnvelope, type Envelope, type IEnvelope } from "../../../../proto/index.ts";
import { proveChallenge } from "../../../../proto/deviceAuth.ts";

export interface ScriptedGatewayOptions {
  deviceId: string;
  /** The device secret hellos are verified against (signed-challenge mode). */
  secret?: string;
  /** The token accepted in token mode. */
  token?: string;
  regionId?: string;
  nodeId?: string;
  /** Delay before answering /ping, ms (a "far" node). Default 0. */
  pingDelayMs?: number;
}

/** A frame from the adapter, with the connection (1, 2, …) it came on. */
export interface ReceivedFrame {
  connection: number;
  envelope: Envelope;
}

export class ScriptedGateway {
  /** HTTP base URL (/ping, /gateway). */
  readonly httpUrl: string;
  /** Frames from the adapter, in arrival order, across connections. */
  readonly received: ReceivedFrame[] = [];
  /** The challenge issued on each connection, in order. */
  readonly challenges: { nonce: string; serverTimeMs: number }[] = [];
  /** Expected device secret; change it to "re-enrol" the device. */
  secret: string | undefined;
  token: string | undefined;
  /** Whether ClockSyncPings are answered; false plays a link that went silent without closing. */
  answerClockPings = true;
  /** When set, every hello is refused with this Error and the socket closed. */
  refuseWith: { code: number; message: string } | undefined;
  /** When set, /gateway answers this HTTP status (503: draining). */
  gatewayStatus: number | undefined;
  /** The adapter's socket, once welcomed (the current connection). */
  socket: WebSocket | undefined;
  /** Connections accepted so far. */
  connections = 0;

  private readonly options: ScriptedGatewayOptions;
  private readonly http: Server;
  private wss: WebSocketServer | undefined;
  private wsPort = 0;
  private readonly waiters = new Set<() => void>();
  /** Delayed /ping answers not yet sent, cleared on close. */
  private readonly pingTimers = new Set<NodeJS.Timeout>();

  private constructor(options: ScriptedGatewayOptions, http: Server, httpUrl: string) {
    this.options = options;
    this.secret = options.secret;
    this.token = options.token;
    this.http = http;
    this.httpUrl = httpUrl;
  }

  static async start(options: ScriptedGatewayOptions): Promise<ScriptedGateway> {
    let gateway: ScriptedGateway | undefined;
    const http = createServer((req, res) => gateway!.answerHttp(req.url ?? "", res));
    await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
    const port = (http.address() as AddressInfo).port;
    gateway = new ScriptedGateway(options, http, `http://127.0.0.1:${port}`);
    await gateway.startWs();
    return gateway;
  }

  /** The device endpoint /gateway names. */
  get wsUrl(): string {
    return `ws://127.0.0.1:${this.wsPort}/device`;
  }

  get regionId(): string {
    return this.options.regionId ?? "jp-test";
  }

  get nodeId(): string {
    return this.options.nodeId ?? "node-a";
  }

  /** (Re)starts the device endpoint on a fresh ephemeral port. */
  async startWs(): Promise<void> {
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, path: "/device" });
    await new Promise<void>((resolve, reject) => { wss.once("listening", resolve); wss.once("error", reject); });
    this.wsPort = (wss.address() as AddressInfo).port;
    wss.on("connection", (ws) => this.accept(ws));
    this.wss = wss;
  }

  /** Stops the device endpoint: every device socket is cut, and new connections are refused. */
  async stopWs(): Promise<void> {
    const wss = this.wss;
    if (!wss) return;
    this.wss = undefined;
    for (const client of wss.clients) client.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
    this.socket = undefined;
  }

  /** Cuts the current device socket (no close handshake), as a crashed node would. */
  dropConnection(): void {
    this.socket?.terminate();
    this.socket = undefined;
  }

  /** Sends an envelope to the current (welcomed) device socket. */
  send(envelope: IEnvelope): void {
    if (!this.socket) throw new Error("no device is connected to the scripted gateway");
    this.socket.send(encodeEnvelope(envelope));
  }

  /** Sends raw bytes (or text) to the current device socket. */
  sendRaw(data: Uint8Array | string): void {
    if (!this.socket) throw new Error("no device is connected to the scripted gateway");
    this.socket.send(data);
  }

  /** Frames received so far: a cursor for waitFor(…, since). */
  mark(): number {
    return this.received.length;
  }

  /** The first frame at or after index `since` that matches, waiting up to `timeoutMs`. */
  waitFor(match: (envelope: Envelope, frame: ReceivedFrame) => boolean, since = 0, timeoutMs = 5000): Promise<Envelope> {
    return new Promise<Envelope>((resolve, reject) => {
      let scanned = since;
      const check = (): boolean => {
        for (; scanned < this.received.length; scanned++) {
          const frame = this.received[scanned];
          if (match(frame.envelope, frame)) {
            resolve(frame.envelope);
            return true;
          }
        }
        return false;
      };
      if (check()) return;
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`scripted gateway: no matching frame within ${timeoutMs} ms; got ${this.received.slice(since).map((f) => f.envelope.body).join(", ") || "nothing"}`));
      }, timeoutMs);
      const waiter = () => {
        if (!check()) return;
        clearTimeout(timer);
        this.waiters.delete(waiter);
      };
      this.waiters.add(waiter);
    });
  }

  async close(): Promise<void> {
    await this.stopWs();
    for (const timer of this.pingTimers) clearTimeout(timer);
    this.pingTimers.clear();
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }

  // --- internals ---------------------------------------------------------------------

  private answerHttp(url: string, res: import("node:http").ServerResponse): void {
    if (url.startsWith("/ping")) {
      const timer = setTimeout(() => { this.pingTimers.delete(timer); res.end("pong"); }, this.options.pingDelayMs ?? 0);
      this.pingTimers.add(timer);
      return;
    }
    if (url.startsWith("/gateway")) {
      if (this.gatewayStatus) { res.writeHead(this.gatewayStatus).end("draining"); return; }
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ url: this.wsUrl, regionId: this.regionId, nodeId: this.nodeId }));
      return;
    }
    res.writeHead(404).end();
  }

  private accept(ws: WebSocket): void {
    const connection = ++this.connections;
    const challenge = { nonce: randomBytes(32).toString("hex"), serverTimeMs: Date.now() };
    this.challenges.push(challenge);
    let welcomed = false;
    ws.send(encodeEnvelope({ correlationId: 0, deviceChallenge: challenge }));
    ws.on("message", (data: Buffer) => {
      let envelope: Envelope;
      try {
        envelope = decodeEnvelope(data);
      } catch {
        return;
      }
      this.received.push({ connection, envelope });
      for (const waiter of [...this.waiters]) waiter();
      const correlationId = Number(envelope.correlationId);
      if (!welcomed) {
        if (envelope.body !== "deviceHello") return;
        const refusal = this.refuseWith ?? this.verify(envelope, challenge);
        if (refusal) {
          ws.send(encodeEnvelope({ correlationId, error: { code: refusal.code, message: refusal.message } }));
          ws.close(1008, "refused");
        } else {
          welcomed = true;
          this.socket = ws;
          ws.send(encodeEnvelope({ correlationId, deviceWelcome: { deviceId: this.options.deviceId, regionId: this.regionId, nodeId: this.nodeId, serverTimeMs: Date.now() } }));
          ws.send(encodeEnvelope({ correlationId: 0, leaseState: { deviceId: this.options.deviceId, leaseId: "", online: true, cause: "connected" } }));
        }
      } else if (envelope.body === "clockSyncPing" && this.answerClockPings) {
        const t1 = Date.now();
        ws.send(encodeEnvelope({ correlationId, clockSyncPong: { t0Ms: envelope.clockSyncPing!.t0Ms, t1Ms: t1, t2Ms: Date.now() } }));
      }
    });
    ws.on("close", () => { if (this.socket === ws) this.socket = undefined; });
  }

  /** Why a hello is refused, as the real gateway would code it; undefined when it is good. */
  private verify(envelope: Envelope, challenge: { nonce: string; serverTimeMs: number }): { code: number; message: string } | undefined {
    const hello = envelope.deviceHello!;
    if (hello.deviceId !== this.options.deviceId) return { code: ErrorCode.DEVICE_UNKNOWN, message: `no device "${hello.deviceId}"` };
    if (hello.credential === "signedChallenge") {
      const signed = hello.signedChallenge!;
      if (signed.nonce !== challenge.nonce) return { code: ErrorCode.AUTH_FAILED, message: "the signed nonce is not this connection's challenge" };
      if (!this.secret || signed.signature !== proveChallenge(this.secret, hello.deviceId, challenge)) return { code: ErrorCode.AUTH_FAILED, message: "bad proof" };
      return undefined;
    }
    if (hello.credential === "token") return hello.token === this.token ? undefined : { code: ErrorCode.TOKEN_INVALID, message: "bad token" };
    return { code: ErrorCode.WRONG_TYPE, message: "no credential" };
  }
}
