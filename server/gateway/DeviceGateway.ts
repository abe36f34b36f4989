/**
 * The device side of a region node: edge adapters connect here over WebSocket (its own
 * uWebSockets.js listener, separate from the client port, so devices and the public
 * can be firewalled apart) and prove a per-device credential before anything else.
 *
 * Handshake (device.proto, "Device channel: authentication"):
 *   gateway → DeviceChallenge (fresh nonce per connection)
 *   adapter → DeviceHello (signed challenge with the adapter's own nonce, or device token)
 *   gateway → DeviceWelcome (with the gateway's proof over the adapter's nonce), then
 *             LeaseState (no lease) | Error, then close 1008
 *
 * Signed-challenge mode seals the channel from the welcome on (proto/deviceAuth.ts,
 * ChannelSeal): every frame both ways carries a sequence number and a MAC under keys
 * derived from the device secret and both nonces. A frame from the adapter without a seal,
 * with a wrong MAC or an old sequence number is dropped unread and counted
 * (tsunagi_device_frames_refused_total), and the adapter told at most once a second; the
 * connection stays (ConnectionLimits). Token mode has no secret to seal with and relies
 * on TLS alone.
 *
 * Refusals, each with a coded Error to the adapter, a log line and a metric:
 * DEVICE_UNKNOWN (not enrolled), FORBIDDEN (revoked, a token for another device or
 * role, or for an earlier enrolment), AUTH_FAILED (bad proof, stale nonce, anything before the hello), TOKEN_* (token
 * mode), WRONG_TYPE (malformed hello), and the hello timeout. After the welcome, bad
 * frames get coded errors and the connection stays: one garbled frame must not cut a
 * machine off its operator. What a welcomed adapter may send is in adapterFrames.ts.
 *
 * A second connection for a connected device (settleDuplicate): if the connected adapter
 * answers a ping within duplicateProbeMs, the newcomer is refused DEVICE_CONFLICT (close
 * 4410) and the operator driving through the first is not cut off; if not (a stale
 * socket), the newcomer replaces it (close 4409). Two live adapters never alternate.
 * Sockets without a completed hello are capped per address and in all (PendingSockets).
 *
 * Certificate mode (DeviceHello.client_certificate): devices whose credential is a client
 * certificate from the cluster's device CA connect to a second listener
 * (CertificateListener: node's TLS, because uWS does not hand the peer certificate to
 * JS), which hands each socket here through adopt(): the same handshake, limits and
 * links as a socket of this listener. The certificate is checked at the hello (DeviceCertificates:
 * CERTIFICATE_MISSING, _UNTRUSTED, _EXPIRED, _REVOKED, _MISMATCH), its serial at every revalidation;
 * a redirect sends such a device to the other node's certificate listener.
 *
 * Close codes (DeviceCloseCode): 1008 credential refused or hello timeout; 4001 node draining; 4003 redirected;
 * 4409 replaced by a newer connection of the same device; 4410 another adapter answers; 4429 too many pending.
 *
 * @example
 *   const gateway = await DeviceGateway.start({ host: "127.0.0.1", port: 0, credentials, tokens, logger, metrics, ... });
 *   gateway.onAttach((link) => rooms.forDevice(link.deviceId)?.attach(link));
 *   await gateway.close();
 */
import uWS from "uWebSockets.js";
import { DeviceCloseCode, ErrorCode, decodeEnvelope, encodeEnvelope, errorEnvelope, errorCodeName, ProtocolError, tsunagi, type Envelope } from "../../proto/index.ts";
import { DeviceCredentialError, enrolmentOf, type DeviceCredentials, type DeviceRecord } from "../auth/DeviceCredentials.ts";
import type { DeviceCertificates, PresentedCertificate } from "../auth/DeviceCertificates.ts";
import { refusalOf } from "./refusals.ts";
import { credentialMode, revalidationRefusal, verifyHello, type ProvenCredential } from "./helloCredentials.ts";
import type { AdoptedEvents, AdoptedTransport } from "./AdoptedSocket.ts";
import type { TokenService } from "../auth/tokens.ts";
import type { Logger } from "../observability/logging.ts";
import type { TlsFiles } from "../tls.ts";
import type { NodeMetrics } from "../observability/metrics.ts";
import { DeviceLink } from "./DeviceLink.ts";
import { LivenessProbes } from "./LivenessProbes.ts";
import { PendingSockets, type PendingLimits } from "./PendingSockets.ts";
import { ConnectionLimits } from "./ConnectionLimits.ts";
import { dispatchAdapterFrame, type AdapterFrameContext } from "./adapterFrames.ts";
import { SafeEmitter } from "../../common/SafeEmitter.ts";
import { FloodWindow } from "../../common/FloodWindow.ts";
import { trySend } from "../../common/trySend.ts";
import { LogThrottle } from "../../common/LogThrottle.ts";
import { DEVICE_ID_TEXT, isDeviceId } from "../../proto/ids.ts";
import { ChannelSeal, proveGateway } from "../../proto/deviceAuth.ts";
import { listenExclusive, listenPort } from "../listen.ts";

export interface DeviceGatewayOptions {
  host: string;
  port: number;
  regionId: string;
  nodeId: string;
  credentials: DeviceCredentials;
  tokens: TokenService;
  logger: Logger;
  metrics: NodeMetrics;
  /** Largest frame accepted from a device. */
  maxFrameBytes: number;
  /** Frames per second per device before excess is dropped with RATE_LIMITED. */
  maxMessagesPerSecond: number;
  /** Time an adapter has to send a valid DeviceHello. */
  helloTimeoutMs: number;
  /** Sockets without a completed hello, per remote address and in all; more are refused RATE_LIMITED (close 4429). Defaults 16 and 512. */
  maxPending?: Partial<PendingLimits>;
  /** The latency budget when a profile leaves it 0 (teleop.defaultLatencyBudgetMs), ms: told in the welcome. */
  defaultLatencyBudgetMs: number;
  /**
   * How often online devices' credentials are checked again, ms: a device revoked (or
   * re-enrolled, which rotates its secret) while connected is cut off within this.
   * Default 5000.
   */
  revalidateMs?: number;
  /** How long a connected adapter has to answer the ping a second connection for its device triggers (LivenessProbes), ms. Default 1000. */
  duplicateProbeMs?: number;
  /** Server clock. Default Date.now. */
  now?: () => number;
  /**
   * Serve wss (uWS SSLApp) with this certificate and key; absent: plain ws (dev mode or a
   * loopback-only node, server/tls.ts). Client certificates (mTLS) are the certificate
   * listener's (CertificateListener), which adopt() takes sockets from.
   */
  tls?: TlsFiles;
  /** The issued device certificates: what admits a device in certificate mode (CertificateListener). */
  certificates?: DeviceCertificates;
}

/** Per-socket state, kept in uWS user data. */
interface Connection {
  state: "challenged" | "verifying" | "online" | "closed";
  challenge: { nonce: string; serverTimeMs: number };
  helloTimer?: NodeJS.Timeout;
  link?: DeviceLink;
  /** How the device proved itself, and the enrolment (or certificate serial) it proved, for revalidation. */
  credential?: ProvenCredential;
  /** Sockets of the certificate listener: what its TLS handshake showed (null: no client certificate). */
  presented?: PresentedCertificate | null;
  remote: string;
  /** The connection's frames per second, for the rate limit. */
  flood: FloodWindow;
  /** Signed-challenge mode, from the welcome on: seals what goes out, opens what comes in. */
  seal?: ChannelSeal;
  /** When the adapter was last told of a refused frame (told at most once a second). */
  sealReportedAt: number;
  /** Counts the socket out of the pending ones (hello completed, or closed); idempotent. */
  leavePending?: () => void;
  /** The device's e-stops past the rate limit (STOP_FRAMES_PER_SECOND); made on the first. */
  stopBudget?: FloodWindow;
  /** The class the device was enrolled as; its profile must say the same. */
  enrolledClass?: string;
  /** Bounds the log lines of this connection's refusals, per code; made on the first. */
  logThrottle?: LogThrottle;
}

/** A device socket: a uWS WebSocket of this listener, or an adopted one (adopt()). */
interface Socket {
  getUserData(): Connection;
  send(bytes: Uint8Array, isBinary: boolean): number;
  end(code?: number, reason?: string): void;
  getBufferedAmount(): number;
}

const { POLICY: CLOSE_POLICY, DRAINING: CLOSE_DRAINING, REDIRECTED: CLOSE_REDIRECTED, REPLACED: CLOSE_REPLACED, CONFLICT: CLOSE_CONFLICT, TOO_MANY_PENDING: CLOSE_TOO_MANY_PENDING } = DeviceCloseCode;
const DEFAULT_DUPLICATE_PROBE_MS = 1000;
const ADAPTER_VERSION_PATTERN = /^\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$/;

export class DeviceGateway {
  readonly port: number;
  private readonly app: uWS.TemplatedApp;
  private listenSocket: uWS.us_listen_socket | false = false;
  /** The current link of each online device. */
  private readonly links = new Map<string, DeviceLink>();
  private readonly sockets = new Set<Socket>();
  /** Told of every newly authenticated device. */
  private readonly events: SafeEmitter<{ attach: (link: DeviceLink) => void }>;
  private readonly sweepTimer: NodeJS.Timeout;
  /** Checks online devices' credentials again (revocation, rotation). */
  private readonly revalidateTimer: NodeJS.Timeout;
  /** Sockets that have not completed their hello, capped per address and in all. */
  private readonly pending: PendingSockets;
  /** Pings a connected adapter when a second connection claims its device. */
  private readonly probes: LivenessProbes;
  /** Each connection's frame rate, refused frames and coded errors (ConnectionLimits). */
  private readonly limits: ConnectionLimits<Socket>;
  /** What the dispatch of a welcomed device's frames needs of the gateway (adapterFrames). */
  private readonly frames: AdapterFrameContext<Socket>;
  /** Whether the last revalidation failed to reach the registry (logged once per outage). */
  private registryDown = false;
  private readonly now: () => number;
  private closing = false;

  private constructor(private readonly options: DeviceGatewayOptions, app: uWS.TemplatedApp, listenSocket: uWS.us_listen_socket, port: number) {
    this.app = app;
    this.listenSocket = listenSocket;
    this.port = port;
    this.now = options.now ?? Date.now;
    this.pending = new PendingSockets({ perAddress: options.maxPending?.perAddress ?? 16, total: options.maxPending?.total ?? 512 });
    this.probes = new LivenessProbes(options.duplicateProbeMs ?? DEFAULT_DUPLICATE_PROBE_MS, this.now);
    this.limits = new ConnectionLimits<Socket>({
      maxFrameBytes: options.maxFrameBytes, maxMessagesPerSecond: options.maxMessagesPerSecond,
      logger: options.logger, metrics: options.metrics, now: this.now, sendFrame: (ws, bytes) => this.sendFrame(ws, bytes),
    });
    this.frames = {
      logger: options.logger, now: this.now, probes: this.probes,
      report: (ws, code, message, correlationId) => this.limits.report(ws, code, message, correlationId),
      logAllowed: (ws, kind) => this.limits.logAllowed(ws, kind),
      enrolledClass: (ws) => ws.getUserData().enrolledClass ?? "",
    };
    this.events = new SafeEmitter((error, source) => options.logger.error({ err: error }, `device gateway: a ${source} failed`));
    this.sweepTimer = setInterval(() => { for (const link of this.links.values()) link.sweep(); }, 50);
    this.sweepTimer.unref();
    this.revalidateTimer = setInterval(() => void this.revalidate(), options.revalidateMs ?? 5000);
    this.revalidateTimer.unref();
  }

  static async start(options: DeviceGatewayOptions): Promise<DeviceGateway> {
    const app = options.tls ? uWS.SSLApp({ cert_file_name: options.tls.certFile, key_file_name: options.tls.keyFile }) : uWS.App();
    let gateway: DeviceGateway | undefined;
    app.ws<Connection>("/device", {
      maxPayloadLength: options.maxFrameBytes,
      idleTimeout: 16,
      sendPingsAutomatically: true,
      maxBackpressure: 1024 * 1024,
      closeOnBackpressureLimit: 0,
      upgrade: (res, req, context) => {
        const connection = newConnection(options, Buffer.from(res.getRemoteAddressAsText()).toString());
        res.upgrade(connection, req.getHeader("sec-websocket-key"), req.getHeader("sec-websocket-protocol"), req.getHeader("sec-websocket-extensions"), context);
      },
      open: (ws) => gateway!.opened(ws),
      message: (ws, message) => gateway!.received(ws, message),
      drain: (ws) => ws.getUserData().link?.drain(),
      close: (ws, code) => gateway!.closed(ws, code),
    });
    app.any("/*", (res) => { res.writeStatus("404 Not Found").end("device gateway: connect a WebSocket to /device"); });
    // Exclusive: a gateway port another process holds fails the start instead of sharing it.
    const socket = await listenExclusive(app, options.host, options.port, "device gateway");
    const port = listenPort(socket);
    gateway = new DeviceGateway(options, app, socket, port);
    options.logger.info({ port, tls: Boolean(options.tls) }, `device gateway listening on ${options.tls ? "wss" : "ws"}://${options.host}:${port}/device`);
    return gateway;
  }

  /** The online link of a device, if its adapter is connected here. */
  link(deviceId: string): DeviceLink | undefined {
    return this.links.get(deviceId);
  }

  /** Every online device. */
  onlineDevices(): DeviceLink[] {
    return [...this.links.values()];
  }

  /** Called for every newly authenticated device (also a reconnect or a replacement). */
  onAttach(listener: (link: DeviceLink) => void): () => void {
    return this.events.on("attach", listener);
  }

  /**
   * Sends the device's adapter to another node's gateway (GatewayRedirect, then close
   * 4003): its room lives there; to that node's certificate listener (`certUrl`) if it
   * attached with a certificate. False when the device is not connected here, or there
   * is no listener there for its credential (it stays; logged).
   */
  redirect(deviceId: string, target: { url: string; certUrl?: string; regionId: string; nodeId: string }, reason: string): boolean {
    const link = this.links.get(deviceId);
    if (!link) return false;
    const url = link.viaCertificate ? target.certUrl : target.url;
    if (!url) {
      this.options.logger.error({ deviceId, to: target.nodeId }, `device ${deviceId} not sent to node ${target.nodeId} (${reason}): that node takes no device certificates (gateway.deviceCaFile)`);
      return false;
    }
    link.write({ correlationId: 0, gatewayRedirect: { url, regionId: target.regionId, nodeId: target.nodeId, reason } });
    this.options.logger.info({ deviceId, to: target.nodeId, url }, `device ${deviceId} sent to node ${target.nodeId}: ${reason}`);
    this.options.metrics.deviceRedirects.inc();
    link.disconnect(CLOSE_REDIRECTED, "redirected");
    return true;
  }

  /**
   * Takes a socket another listener accepted (CertificateListener) through this gateway's
   * handshake, limits and links, as if it had connected here; `presented` is what its TLS
   * handshake showed of the client certificate (null: none). Answers where the listener
   * reports the socket's frames, drains and close.
   */
  adopt(transport: AdoptedTransport, remote: string, presented: PresentedCertificate | null): AdoptedEvents {
    const connection: Connection = { ...newConnection(this.options, remote), presented };
    const ws: Socket = {
      getUserData: () => connection,
      send: (bytes) => transport.send(bytes),
      end: (code, reason) => transport.end(code ?? 1000, reason ?? ""),
      getBufferedAmount: () => transport.bufferedAmount(),
    };
    this.opened(ws);
    return {
      received: (bytes) => this.received(ws, bytes),
      drained: () => connection.link?.drain(),
      closed: (code) => this.closed(ws, code),
    };
  }

  /** Stops listening and closes every device connection (4001: reconnect elsewhere). */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    clearInterval(this.sweepTimer);
    clearInterval(this.revalidateTimer);
    this.probes.close();
    if (this.listenSocket) {
      uWS.us_listen_socket_close(this.listenSocket);
      this.listenSocket = false;
    }
    for (const ws of [...this.sockets]) {
      trySend(() => {
        this.sendFrame(ws, errorEnvelope(ErrorCode.NODE_DRAINING, "this node is shutting down: reconnect through another node", 0));
        ws.end(CLOSE_DRAINING, "node draining");
      });
    }
  }

  // --- socket events -----------------------------------------------------------------

  private opened(ws: Socket) {
    if (this.closing) { ws.end(CLOSE_DRAINING, "node draining"); return; }
    const connection = ws.getUserData();
    if (!this.admitPending(ws, connection)) return;
    this.sockets.add(ws);
    ws.send(encodeEnvelope({ correlationId: 0, deviceChallenge: { nonce: connection.challenge.nonce, serverTimeMs: connection.challenge.serverTimeMs } }), true);
    connection.helloTimer = setTimeout(() => {
      if (connection.state === "challenged" || connection.state === "verifying") {
        this.refuse(ws, ErrorCode.AUTH_FAILED, `no valid DeviceHello within ${this.options.helloTimeoutMs} ms`, 0);
      }
    }, this.options.helloTimeoutMs);
  }

  private closed(ws: Socket, code: number) {
    this.sockets.delete(ws);
    const connection = ws.getUserData();
    connection.leavePending?.();
    clearTimeout(connection.helloTimer);
    const wasOnline = connection.state === "online";
    connection.state = "closed";
    const link = connection.link;
    if (!link) return;
    if (this.links.get(link.deviceId) === link) this.links.delete(link.deviceId);
    if (link.online) {
      link.closed(`connection closed (code ${code})`);
      if (wasOnline) this.options.logger.warn({ deviceId: link.deviceId, code }, `device ${link.deviceId} disconnected`);
    }
  }

  private received(ws: Socket, message: ArrayBuffer | Uint8Array) {
    const connection = ws.getUserData();
    if (connection.state === "closed") return;
    let bytes: Uint8Array = new Uint8Array(message);
    if (!this.limits.withinRate(ws, bytes)) return;
    if (connection.seal) {
      const opened = connection.seal.open(bytes);
      if (opened.refused) { this.limits.refusedFrame(ws, opened.refused); return; }
      bytes = opened.envelope;
    }
    let envelope: Envelope;
    try {
      envelope = decodeEnvelope(bytes, this.options.maxFrameBytes);
    } catch (error) {
      const code = error instanceof ProtocolError ? error.code : ErrorCode.MALFORMED_PROTOBUF;
      if (connection.state !== "online") { this.refuse(ws, code, `before authentication: ${(error as Error).message}`, 0); return; }
      this.limits.report(ws, code, (error as Error).message, 0);
      return;
    }
    if (connection.state === "online") { dispatchAdapterFrame(this.frames, ws, connection.link!, envelope); return; }
    if (connection.state === "verifying") { this.limits.report(ws, ErrorCode.AUTH_FAILED, "wait for the DeviceWelcome before sending anything else", Number(envelope.correlationId)); return; }
    if (envelope.body !== "deviceHello") {
      this.refuse(ws, ErrorCode.AUTH_FAILED, `expected a DeviceHello first, got ${envelope.body}`, Number(envelope.correlationId));
      return;
    }
    connection.state = "verifying";
    void this.authenticate(ws, connection, envelope.deviceHello as tsunagi.v1.DeviceHello, Number(envelope.correlationId));
  }

  // --- authentication ----------------------------------------------------------------

  private async authenticate(ws: Socket, connection: Connection, hello: tsunagi.v1.DeviceHello, correlationId: number) {
    const deviceId = hello.deviceId;
    let record: DeviceRecord;
    let serial: string | undefined;
    try {
      if (!isDeviceId(deviceId)) throw new ProtocolError(ErrorCode.WRONG_TYPE, `device_id must match ${DEVICE_ID_TEXT}`);
      if (hello.adapterVersion && !ADAPTER_VERSION_PATTERN.test(hello.adapterVersion)) throw new ProtocolError(ErrorCode.WRONG_TYPE, "adapter_version must be semver (1.4.2)");
      ({ record, serial } = await verifyHello(this.options, connection, hello));
    } catch (error) {
      if ((connection.state as Connection["state"]) === "closed") return;
      const { code, message } = refusalOf(error);
      this.refuse(ws, code, `device "${String(deviceId).slice(0, 64)}" refused: ${message}`, correlationId);
      return;
    }
    if ((connection.state as Connection["state"]) === "closed" || this.closing) return;
    if (await this.probes.settleDuplicate(() => this.links.get(deviceId)) === "refuse") {
      if ((connection.state as Connection["state"]) === "closed") return;
      this.refuse(ws, ErrorCode.DEVICE_CONFLICT, `another adapter is connected as device ${deviceId} and answers: this connection is refused; stop it, or stop the other`, correlationId, CLOSE_CONFLICT);
      return;
    }
    if ((connection.state as Connection["state"]) === "closed" || this.closing) return;
    clearTimeout(connection.helloTimer);
    connection.leavePending?.();
    connection.state = "online";
    connection.credential = { mode: credentialMode(hello), enrolment: enrolmentOf(record), serial };
    let gatewayProof = "";
    if (hello.credential === "signedChallenge") {
      // Prove ourselves to the adapter, and seal everything from the welcome on.
      const secret = this.options.credentials.secretOf(record);
      const nonces = { gatewayNonce: connection.challenge.nonce, adapterNonce: hello.adapterNonce };
      gatewayProof = proveGateway(secret, deviceId, nonces);
      connection.seal = ChannelSeal.forGateway(secret, deviceId, nonces);
    }
    connection.enrolledClass = record.deviceClass;
    const link = new DeviceLink({
      deviceId, adapterVersion: hello.adapterVersion, driver: hello.driver, now: this.now, viaCertificate: connection.credential.mode === "certificate",
      socket: {
        send: (bytes) => connection.state === "online" && this.sendFrame(ws, bytes) !== 2,
        bufferedAmount: () => (connection.state === "online" ? ws.getBufferedAmount() : 0),
        close: (code, reason) => ws.end(code, reason),
      },
    });
    connection.link = link;
    const previous = this.links.get(deviceId);
    this.links.set(deviceId, link);
    if (previous) {
      this.options.logger.warn({ deviceId }, `device ${deviceId} connected again; closing its previous connection`);
      previous.disconnect(CLOSE_REPLACED, "replaced by a newer connection of the same device");
    }
    link.write({
      correlationId,
      deviceWelcome: { deviceId, regionId: this.options.regionId, nodeId: this.options.nodeId, serverTimeMs: this.now(), gatewayProof, defaultLatencyBudgetMs: this.options.defaultLatencyBudgetMs },
    });
    // Nothing may move until a room announces a lease.
    link.sendLeaseState({ deviceId, leaseId: "", online: true, cause: "connected" });
    this.options.logger.info({ deviceId, deviceClass: record.deviceClass, driver: hello.driver, adapterVersion: hello.adapterVersion, remote: connection.remote },
      `device ${deviceId} attached (${hello.driver || "unknown driver"}, adapter ${hello.adapterVersion || "?"})`);
    this.events.emit("attach", link);
  }

  /**
   * Cuts off online devices whose credential no longer holds: revoked, or re-enrolled
   * (a new secret, and a device token of the old enrolment no longer counts). Cutting a device off stops its machine,
   * which is the safe direction. An unreachable registry keeps devices connected: they
   * proved themselves, and stopping every machine because Redis blinked is worse.
   */
  private async revalidate() {
    const online = [...this.sockets].filter((ws) => ws.getUserData().state === "online");
    for (const ws of online) {
      const connection = ws.getUserData();
      const link = connection.link;
      if (!link || !connection.credential) continue;
      let refusal: { code: number; why: string } | undefined;
      try {
        let record: DeviceRecord | undefined;
        try {
          record = await this.options.credentials.lookup(link.deviceId);
        } catch (error) {
          if (!(error instanceof DeviceCredentialError)) throw error;
          record = undefined; // no longer enrolled
        }
        refusal = await revalidationRefusal(this.options, record, connection.credential);
        if (this.registryDown) this.options.logger.info("device registry reachable again");
        this.registryDown = false;
      } catch (error) {
        if (!this.registryDown) this.options.logger.error({ err: error }, "device registry unreachable; connected devices stay attached until it is back");
        this.registryDown = true;
        return;
      }
      if (connection.state !== "online" || connection.link !== link || !refusal) continue;
      this.refuse(ws, refusal.code, `device ${link.deviceId}'s credential ${refusal.why}: disconnected`, 0);
    }
  }

  // --- refusals and writes (each connection's limits: ConnectionLimits) ---------------

  /** Counts a new socket as pending its hello; over a cap it is refused RATE_LIMITED (close 4429), counted, logged once a second at most. */
  private admitPending(ws: Socket, connection: Connection): boolean {
    const admission = this.pending.admitOrRefuse(connection.remote, this.now());
    if ("release" in admission) { connection.leavePending = admission.release; return true; }
    const { message } = admission;
    connection.state = "closed";
    this.options.metrics.errors.inc({ code: errorCodeName(ErrorCode.RATE_LIMITED), source: "gateway-pending" });
    if (admission.shouldLog) this.options.logger.warn({ remote: connection.remote, pending: this.pending.size }, `device gateway refused a connection: ${message}`);
    trySend(() => {
      ws.send(errorEnvelope(ErrorCode.RATE_LIMITED, message, 0), true);
      ws.end(CLOSE_TOO_MANY_PENDING, "too many pending connections");
    });
    return false;
  }

  /** Writes one envelope's bytes, sealed once the channel is; uWS's send result (2: dropped). */
  private sendFrame(ws: Socket, bytes: Uint8Array): number {
    const seal = ws.getUserData().seal;
    return ws.send(seal ? seal.seal(bytes) : bytes, true);
  }

  /** A coded error, then the connection closes (1008, or `closeCode`). */
  private refuse(ws: Socket, code: number, message: string, correlationId: number, closeCode: number = CLOSE_POLICY) {
    const connection = ws.getUserData();
    if (connection.state === "closed") return;
    this.limits.report(ws, code, message, correlationId);
    clearTimeout(connection.helloTimer);
    try { ws.end(closeCode, errorCodeName(code)); } catch { /* closed */ }
  }
}

/** A socket's state before its hello. */
function newConnection(options: DeviceGatewayOptions, remote: string): Connection {
  const now = options.now ?? Date.now;
  return {
    state: "challenged", challenge: options.credentials.challenge(now()), remote,
    flood: new FloodWindow(options.maxMessagesPerSecond, now), sealReportedAt: -Infinity,
  };
}
