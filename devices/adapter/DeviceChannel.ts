/**
 * One WebSocket connection to a gateway's device endpoint (device.proto), from open to
 * close: GatewayConnection opens one per attempt. Each binary frame is one Envelope.
 *
 * - Handshake: the gateway sends a DeviceChallenge (also a first, coarse clock sample);
 *   the channel answers a DeviceHello (proveChallenge of the challenge with the device
 *   secret and a fresh nonce of its own, or a device token). A DeviceWelcome for that
 *   hello makes it welcomed; an Error is a refusal, and the channel closes. No welcome
 *   within handshakeTimeoutMs cuts it.
 * - Signed-challenge mode: the welcome must carry the gateway's proof over our nonce
 *   (proveGateway) and arrive sealed; anything else is a gateway that does not know the
 *   device secret: counted (gatewayProofFailures), noted as the attempt's error
 *   (GATEWAY_PROOF_FAILED) and the socket cut, having obeyed nothing. From the welcome on,
 *   every frame both ways is sealed (ChannelSeal); a frame from the gateway that does not
 *   open (no seal, wrong MAC, old sequence number) is dropped unread and counted
 *   (refusedFrames), logged at most once a second. Token mode has no secret to check the
 *   gateway with and relies on TLS alone.
 * - Welcomed: the DeviceProfile, then ClockSyncPings one at a time (ClockPingSchedule):
 *   eight quick rounds, then one every clockSyncIntervalMs. A ping unanswered for a whole
 *   interval is given up; a link that answers none for three rounds in a row is cut,
 *   even if TCP has not noticed (a path that vanished without a close). The gateway's
 *   Pings are answered here.
 * - Everything else a welcomed channel receives goes to the host.
 *
 * Anything malformed or out of place is logged and counted; nothing the gateway sends
 * can throw out of it. Once stop() is called only an EStop still reaches the host.
 *
 * @example
 *   const channel = new DeviceChannel({ node, gateway, deviceId, ...options }, {
 *     counters, opened, welcomed, received, refused, failed, failSafe, closed,
 *   });
 *   channel.send({ correlationId: 0, telemetry });     // false until welcomed
 *   await channel.stop();
 */
import type { Logger } from "pino";
import { WebSocket, type RawData } from "ws";
import { ClockPingSchedule, type ClockSync } from "../../common/ClockSync.ts";
import { ChannelSeal, isGatewayProof, newNonce, proveChallenge, SEAL_REFUSAL_TEXT, type ChannelNonces, type SealRefusal } from "../../proto/deviceAuth.ts";
import { decodeEnvelope, encodeEnvelope, errorCodeName, type Envelope, type IEnvelope, type tsunagi } from "../../proto/index.ts";
import type { AdapterCredential } from "./types.ts";

/** Where a node's /gateway said its device endpoint is. */
export interface GatewayEndpoint {
  url: string;
  /** The node's certificate listener (certificate mode), when it runs one. */
  certUrl?: string;
  regionId: string;
  nodeId: string;
}

/** Who the device is, where to connect, and how long to wait. */
export interface DeviceChannelOptions {
  /** The node's HTTP base URL this attempt came from. */
  node: string;
  gateway: GatewayEndpoint;
  deviceId: string;
  adapterVersion: string;
  /** The driver's name, for the hello. */
  driverName: string;
  credential: AdapterCredential;
  /** PEM CA certificates a wss:// gateway's certificate must chain to; absent: the system's. */
  ca: string | Buffer | undefined;
  /** Sent first once welcomed. */
  profile: tsunagi.v1.IDeviceProfile;
  handshakeTimeoutMs: number;
  clockSyncIntervalMs: number;
  /** Synced from the challenge and the clock pings. */
  clock: ClockSync;
  logger: Logger;
  /** Correlation ids for hellos and pings, never 0. */
  nextCorrelationId(): number;
}

/** What the channel tells the connection that opened it. */
export interface DeviceChannelHost {
  /**
   * Counted here: frames that were not a decodable binary Envelope, well-formed ones out of
   * place, frames that did not open (no seal, wrong MAC, replayed), and welcomes without a
   * valid gateway proof.
   */
  readonly counters: { malformed: number; unexpected: number; refusedFrames: number; gatewayProofFailures: number };
  /** The socket opened: the handshake begins. */
  opened(): void;
  /** The gateway welcomed the device; the profile and first clock pings are out. */
  welcomed(welcome: tsunagi.v1.IDeviceWelcome): void;
  /** A message of the welcomed channel that is not the channel's own (a redirect, an Error, a lease, a command…). */
  received(envelope: Envelope): void;
  /** The gateway refused the hello with this Error; the channel closes. */
  refused(error: tsunagi.v1.IError): void;
  /** The attempt failed before the welcome (no connection, no welcome in time). */
  failed(phase: "connect" | "handshake", codeName: "CONNECTION_FAILED" | "HANDSHAKE_TIMEOUT" | "GATEWAY_PROOF_FAILED", message: string): void;
  /** Handling a frame threw (a bug): the machine must stop to be safe. */
  failSafe(reason: string): void;
  /** The socket closed; the channel is done. */
  closed(code: number, reason: string): void;
}

/** Clock-sync rounds in a row without any answer after which the link counts as dead. */
const DEAD_LINK_PING_ROUNDS = 3;
/** Largest frame accepted from the gateway. */
const MAX_FRAME_BYTES = 1024 * 1024;
/** How long stop() waits for the close handshake before cutting the socket. */
const CLOSE_GRACE_MS = 1000;
/** Refused frames are logged at most this often (all are counted). */
const REFUSAL_LOG_INTERVAL_MS = 1000;

export class DeviceChannel {
  /** The node's HTTP base URL this attempt came from. */
  readonly node: string;
  /** The endpoint connected to. */
  readonly gateway: GatewayEndpoint;

  /** Identity, credential and timings. */
  private readonly options: DeviceChannelOptions;
  /** The connection that opened this channel. */
  private readonly host: DeviceChannelHost;
  /** The socket. */
  private readonly ws: WebSocket;
  /** Client clock when the attempt began: t0 of the challenge's clock sample. */
  private readonly startedAt: number;
  /** The correlation id of the ClockSyncPing awaiting its pong; 0 when none (one at a time). */
  private pendingPing = 0;
  /** When the next ClockSyncPing goes out. */
  private readonly pingSchedule: ClockPingSchedule;
  /** The DeviceHello's correlation id; 0 until the challenge is answered. */
  private helloCorrelationId = 0;
  /** A DeviceWelcome arrived. */
  private isWelcomed = false;
  /** stop() was called: only an e-stop still reaches the host. */
  private stopping = false;
  /** Ends an attempt that is not welcomed in time. */
  private handshakeTimer: NodeJS.Timeout | undefined;
  /** Welcomed: the next clock-sync round. */
  private clockSyncTimer: NodeJS.Timeout | undefined;
  /** Clock-sync rounds in a row that began with the previous ping still unanswered. */
  private silentRounds = 0;
  /** Signed-challenge mode, once the hello is out: this connection's two nonces. */
  private nonces: ChannelNonces | undefined;
  /** Signed-challenge mode, once the hello is out: seals what we send, opens what arrives. */
  private seal: ChannelSeal | undefined;
  /** When a refused frame was last logged (client clock). */
  private refusalLoggedAt = -Infinity;

  /** Opens the socket; throws if `gateway.url` cannot even be tried. */
  constructor(options: DeviceChannelOptions, host: DeviceChannelHost) {
    this.options = options;
    this.host = host;
    this.node = options.node;
    this.gateway = options.gateway;
    this.pingSchedule = new ClockPingSchedule({ intervalMs: options.clockSyncIntervalMs });
    const { gateway, handshakeTimeoutMs } = options;
    this.startedAt = options.clock.clientNow();
    const ws = new WebSocket(gateway.url, { perMessageDeflate: false, handshakeTimeout: handshakeTimeoutMs, maxPayload: MAX_FRAME_BYTES, ...(options.ca ? { ca: options.ca } : {}),
      ...("certificate" in options.credential ? { cert: options.credential.certificate.cert, key: options.credential.certificate.key } : {}) });
    this.ws = ws;
    this.handshakeTimer = setTimeout(() => {
      if (this.isWelcomed) return;
      host.failed("handshake", "HANDSHAKE_TIMEOUT", `${gateway.url}: no DeviceWelcome within ${handshakeTimeoutMs} ms`);
      ws.terminate();
    }, handshakeTimeoutMs);
    ws.on("open", () => { if (!this.stopping) host.opened(); });
    ws.on("message", (data, isBinary) => this.onFrame(data, isBinary));
    ws.on("error", (error) => {
      // "close" follows; a failure before the welcome is the attempt's error
      if (!this.isWelcomed) host.failed("connect", "CONNECTION_FAILED", `${gateway.url}: ${error.message}`);
      else options.logger.warn({ err: error }, `device channel error: ${error.message}`);
    });
    ws.on("close", (code, reason) => {
      clearTimeout(this.handshakeTimer);
      clearTimeout(this.clockSyncTimer);
      this.pendingPing = 0;
      host.closed(code, reason.toString());
    });
  }

  /** Whether the gateway welcomed the device on this channel. */
  get welcomed(): boolean {
    return this.isWelcomed;
  }

  /** Whether send() can send: welcomed, socket open. */
  get canSend(): boolean {
    return this.isWelcomed && this.ws.readyState === WebSocket.OPEN;
  }

  /** Bytes written to the socket and not yet on the wire. */
  get bufferedBytes(): number {
    return this.ws.bufferedAmount;
  }

  /** Sends once welcomed; false before, or when the socket is not open. */
  send(envelope: IEnvelope): boolean {
    return this.isWelcomed ? this.write(envelope) : false;
  }

  /** Closes with `reason` (cutting the socket after CLOSE_GRACE_MS); resolves once it is closed. */
  async stop(reason = "adapter stopping"): Promise<void> {
    this.stopping = true;
    const ws = this.ws;
    const closed = new Promise<void>((resolve) => {
      if (ws.readyState === WebSocket.CLOSED) { resolve(); return; }
      ws.once("close", () => resolve());
    });
    try {
      if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
      else ws.close(1000, reason.slice(0, 120));
    } catch { /* already closing */ }
    const grace = setTimeout(() => ws.terminate(), CLOSE_GRACE_MS);
    await closed;
    clearTimeout(grace);
  }

  private onFrame(data: RawData, isBinary: boolean): void {
    let envelope: Envelope;
    try {
      if (!isBinary) throw new Error("a text frame; the device channel carries binary Envelopes");
      let bytes: Uint8Array = Array.isArray(data) ? Buffer.concat(data) : data instanceof ArrayBuffer ? new Uint8Array(data) : data;
      if (this.seal) {
        const opened = this.seal.open(bytes);
        if (opened.refused === undefined) {
          bytes = opened.envelope;
        } else if (this.isWelcomed) {
          this.refusedFrame(opened.refused);
          return;
        } else {
          // Before the welcome only a refusal may come unsealed (a gateway that does not
          // know the device has no key); an unsealed welcome is no proof at all.
          const plain = decodeEnvelope(bytes, MAX_FRAME_BYTES);
          if (plain.body === "deviceWelcome") { this.proofFailed("an unsealed DeviceWelcome"); return; }
          if (plain.body !== "error") { this.refusedFrame(opened.refused); return; }
        }
      }
      envelope = decodeEnvelope(bytes, MAX_FRAME_BYTES);
    } catch (error) {
      this.host.counters.malformed++;
      this.options.logger.warn({ code: errorCodeName((error as { code?: number }).code ?? 0) }, `ignored a malformed frame: ${(error as Error).message}`);
      return;
    }
    // Stopping: the machine is already stopped and nothing may move it again; only an e-stop still counts.
    if (this.stopping && envelope.body !== "estop") return;
    try {
      if (this.isWelcomed) this.dispatch(envelope);
      else this.handshake(envelope);
    } catch (error) {
      // a bug in handling one frame must not take the adapter down; stop to be safe
      this.host.failSafe("a frame handler failed");
      this.options.logger.error({ err: error, body: envelope.body }, `failed to handle a ${envelope.body} frame; motion zeroed`);
    }
  }

  private handshake(envelope: Envelope): void {
    switch (envelope.body) {
      case "deviceChallenge": {
        if (this.helloCorrelationId !== 0) { this.unexpected("a second DeviceChallenge on one connection"); return; }
        const { clock, deviceId, adapterVersion, driverName, credential } = this.options;
        const challenge = envelope.deviceChallenge!;
        const nonce = challenge.nonce ?? "";
        const serverTimeMs = Number(challenge.serverTimeMs ?? 0);
        // The challenge is a first, coarse clock sample: the server stamped it between
        // the start of this attempt and now.
        clock.reset();
        clock.addSample({ t0: this.startedAt, t1: serverTimeMs, t2: serverTimeMs, t3: clock.clientNow() });
        this.helloCorrelationId = this.options.nextCorrelationId();
        const hello: tsunagi.v1.IDeviceHello = { deviceId, adapterVersion, driver: driverName };
        if ("secret" in credential) {
          const nonces = { gatewayNonce: nonce, adapterNonce: newNonce() };
          hello.signedChallenge = { nonce, signature: proveChallenge(credential.secret, deviceId, { nonce, serverTimeMs }) };
          hello.adapterNonce = nonces.adapterNonce;
          this.nonces = nonces;
          this.seal = ChannelSeal.forAdapter(credential.secret, deviceId, nonces);
        } else if ("token" in credential) {
          hello.token = credential.token;
        } else {
          // Certificate mode: the client certificate of this TLS connection is the credential.
          hello.clientCertificate = {};
        }
        this.write({ correlationId: this.helloCorrelationId, deviceHello: hello });
        return;
      }
      case "deviceWelcome": {
        if (this.helloCorrelationId === 0 || Number(envelope.correlationId) !== this.helloCorrelationId) {
          this.unexpected(`a DeviceWelcome for correlation id ${envelope.correlationId}, not this connection's hello`);
          return;
        }
        const { credential, deviceId } = this.options;
        if ("secret" in credential && !isGatewayProof(credential.secret, deviceId, this.nonces!, envelope.deviceWelcome!.gatewayProof ?? "")) {
          this.proofFailed("a DeviceWelcome without a valid gateway_proof");
          return;
        }
        this.welcome(envelope.deviceWelcome!);
        return;
      }
      case "error": {
        this.host.refused(envelope.error!);
        // the gateway closes after a refusal; closing from this side too bounds the wait
        this.ws.close(1000, "refused");
        return;
      }
      default:
        this.unexpected(`${envelope.body} before the DeviceWelcome`);
    }
  }

  private welcome(welcome: tsunagi.v1.IDeviceWelcome): void {
    this.isWelcomed = true;
    clearTimeout(this.handshakeTimer);
    this.write({ correlationId: 0, deviceProfile: this.options.profile });
    this.clockRound();
    this.host.welcomed(welcome);
  }

  /**
   * One clock-sync round: a ClockSyncPing, and the next round due a whole interval later
   * unless its pong brings it forward (onClockPong). A round that finds the previous
   * ping unanswered gives it up; DEAD_LINK_PING_ROUNDS of those in a row mean the link
   * is gone, even if TCP has not noticed (a path that vanished without a close): cut it.
   */
  private clockRound(): void {
    this.silentRounds = this.pendingPing !== 0 ? this.silentRounds + 1 : 0;
    if (this.silentRounds >= DEAD_LINK_PING_ROUNDS) {
      this.options.logger.warn({ rounds: this.silentRounds, intervalMs: this.options.clockSyncIntervalMs }, `no answer to ${this.silentRounds} clock pings in a row: the link is dead; reconnecting`);
      this.ws.terminate();
      return;
    }
    this.pendingPing = this.options.nextCorrelationId();
    this.write({ correlationId: this.pendingPing, clockSyncPing: { t0Ms: this.options.clock.clientNow() } });
    this.scheduleClockRound(this.pingSchedule.intervalMs);
  }

  /** The pending ping's pong: a sample, and the next round brought forward to the schedule's delay. */
  private onClockPong(correlationId: number, pong: tsunagi.v1.IClockSyncPong, t3: number): void {
    if (correlationId === 0 || correlationId !== this.pendingPing) { this.unexpected(`a ClockSyncPong for correlation id ${correlationId}, not the ping awaited`); return; }
    this.pendingPing = 0;
    this.silentRounds = 0;
    if (!this.options.clock.addPong(pong, t3)) this.options.logger.warn({ pong }, "ignored an impossible ClockSyncPong");
    this.scheduleClockRound(this.pingSchedule.afterPong());
  }

  private scheduleClockRound(delayMs: number): void {
    clearTimeout(this.clockSyncTimer);
    this.clockSyncTimer = setTimeout(() => this.clockRound(), delayMs);
  }

  private dispatch(envelope: Envelope): void {
    const correlationId = Number(envelope.correlationId);
    const { clock, logger } = this.options;
    switch (envelope.body) {
      case "clockSyncPong":
        this.onClockPong(correlationId, envelope.clockSyncPong!, clock.clientNow());
        return;
      case "ping":
        this.write({ correlationId, pong: { clientTimeMs: envelope.ping!.clientTimeMs, serverTimeMs: clock.serverNow() } });
        return;
      default:
        this.host.received(envelope);
    }
  }

  private write(envelope: IEnvelope): boolean {
    if (this.ws.readyState !== WebSocket.OPEN) return false;
    let bytes: Uint8Array;
    try {
      bytes = encodeEnvelope(envelope);
    } catch (error) {
      this.options.logger.error({ err: error }, `could not encode an outgoing envelope (a bug): ${(error as Error).message}`);
      return false;
    }
    this.ws.send(this.seal && this.isWelcomed ? this.seal.seal(bytes) : bytes, { binary: true });
    return true;
  }

  /**
   * The gateway did not prove that it knows the device secret: whoever answered is not our
   * region. Nothing it sent was obeyed (nothing is before the welcome); cut the socket.
   */
  private proofFailed(what: string): void {
    this.host.counters.gatewayProofFailures++;
    this.host.failed("handshake", "GATEWAY_PROOF_FAILED", `${this.gateway.url}: ${what}: the gateway did not prove it knows the device secret; nothing it sends is obeyed`);
    this.ws.terminate();
  }

  /** A frame that did not open: dropped unread, counted; logged at most once a second. */
  private refusedFrame(reason: SealRefusal): void {
    this.host.counters.refusedFrames++;
    const now = this.options.clock.clientNow();
    if (now - this.refusalLoggedAt < REFUSAL_LOG_INTERVAL_MS) return;
    this.refusalLoggedAt = now;
    this.options.logger.warn({ reason, refusedFrames: this.host.counters.refusedFrames }, `dropped a frame ${SEAL_REFUSAL_TEXT[reason]}: nothing in it was acted upon`);
  }

  private unexpected(what: string): void {
    this.host.counters.unexpected++;
    this.options.logger.warn(`ignored ${what}`);
  }
}
