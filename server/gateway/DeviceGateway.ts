/**
 * The device side of a region node: edge adapters connect here over WebSocket (its own
 * uWebSockets.js listener, separate from the client port, so devices and the public
 * can be firewalled apart) and prove a per-device credential before anything else.
 *
 * Handshake (device.proto, "Device channel: authentication"):
 *   gateway → DeviceChallenge (fresh nonce per connection)
 *   adapter → DeviceHello (signed challenge or device token)
 *   gateway → DeviceWelcome, then LeaseState (no lease) | Error, then close 1008
 *
 * Refusals, each with a coded Error to the adapter, a log line and a metric:
 * DEVICE_UNKNOWN (not enrolled), FORBIDDEN (revoked, or a token for another device or
 * role), AUTH_FAILED (bad proof, stale nonce, anything before the hello), TOKEN_* (token
 * mode), WRONG_TYPE (malformed hello), and the hello timeout. After the welcome, bad
 * frames get coded errors and the connection stays: one garbled frame must not cut a
 * machine off its operator.
 *
 * A second connection for the same device replaces the first (close 4409): an adapter
 * that reconnected before the old socket timed out takes over at once.
 *
 * Close codes (DeviceCloseCode): 1008 credential refused or hello timeout; 4001 node
 * draining; 4003 redirected to another node's gateway; 4409 replaced by a newer
 * connection of the same device.
 *
 * @example
 *   const gateway = await DeviceGateway.start({ host: "127.0.0.1", port: 0, credentials, tokens, logger, metrics, ... });
 *   gateway.onAttach((link) => rooms.forDevice(link.deviceId)?.attach(link));
 *   await gateway.close();
 */
import uWS from "uWebSockets.js";
import { DeviceCloseCode, ErrorCode, decodeEnvelope, decodeStopEnvelope, encodeEnvelope, errorEnvelope, errorCodeName, ProtocolError, tsunagi, type Envelope } from "../../proto/index.ts";
import { DeviceCredentialError, type DeviceCredentials, type DeviceRecord } from "../auth/DeviceCredentials.ts";
import type { TokenService } from "../auth/tokens.ts";
import type { Logger } from "../observability/logging.ts";
import type { NodeMetrics } from "../observability/metrics.ts";
import { DeviceLink } from "./DeviceLink.ts";
import { SafeEmitter } from "../../common/SafeEmitter.ts";
import { FloodWindow, STOP_FRAMES_PER_SECOND } from "../../common/FloodWindow.ts";
import { trySend } from "../../common/trySend.ts";
import { enrolledClassProblem, profileProblem } from "../../proto/deviceProfile.ts";
import { LogThrottle } from "../../common/LogThrottle.ts";
import { DEVICE_ID_TEXT, isDeviceId } from "../../proto/ids.ts";

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
  /** The latency budget when a profile leaves it 0 (teleop.defaultLatencyBudgetMs), ms: told in the welcome. */
  defaultLatencyBudgetMs: number;
  /**
   * How often online devices' credentials are checked again, ms: a device revoked (or
   * re-enrolled, which rotates its secret) while connected is cut off within this.
   * Default 5000.
   */
  revalidateMs?: number;
  /** Server clock. Default Date.now. */
  now?: () => number;
}

/** Per-socket state, kept in uWS user data. */
interface Connection {
  state: "challenged" | "verifying" | "online" | "closed";
  challenge: { nonce: string; serverTimeMs: number };
  helloTimer?: NodeJS.Timeout;
  link?: DeviceLink;
  /** How the device proved itself, and the enrolment version it proved (for revalidation). */
  credential?: { mode: "signed-challenge" | "token"; version: number };
  remote: string;
  /** The connection's frames per second, for the rate limit. */
  flood: FloodWindow;
  /** The device's e-stops past the rate limit (STOP_FRAMES_PER_SECOND); made on the first. */
  stopBudget?: FloodWindow;
  /** The class the device was enrolled as; its profile must say the same. */
  enrolledClass?: string;
  /** Bounds the log lines of this connection's refusals, per code; made on the first. */
  logThrottle?: LogThrottle;
}

type Socket = uWS.WebSocket<Connection>;

const { POLICY: CLOSE_POLICY, DRAINING: CLOSE_DRAINING, REDIRECTED: CLOSE_REDIRECTED, REPLACED: CLOSE_REPLACED } = DeviceCloseCode;
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
  /** Whether the last revalidation failed to reach the registry (logged once per outage). */
  private registryDown = false;
  private readonly now: () => number;
  private closing = false;

  private constructor(private readonly options: DeviceGatewayOptions, app: uWS.TemplatedApp, listenSocket: uWS.us_listen_socket, port: number) {
    this.app = app;
    this.listenSocket = listenSocket;
    this.port = port;
    this.now = options.now ?? Date.now;
    this.events = new SafeEmitter((error, source) => options.logger.error({ err: error }, `device gateway: a ${source} failed`));
    this.sweepTimer = setInterval(() => { for (const link of this.links.values()) link.sweep(); }, 50);
    this.sweepTimer.unref();
    this.revalidateTimer = setInterval(() => void this.revalidate(), options.revalidateMs ?? 5000);
    this.revalidateTimer.unref();
  }

  static async start(options: DeviceGatewayOptions): Promise<DeviceGateway> {
    const app = uWS.App();
    let gateway: DeviceGateway | undefined;
    app.ws<Connection>("/device", {
      maxPayloadLength: options.maxFrameBytes,
      idleTimeout: 16,
      sendPingsAutomatically: true,
      maxBackpressure: 1024 * 1024,
      closeOnBackpressureLimit: 0,
      upgrade: (res, req, context) => {
        const connection: Connection = {
          state: "challenged", challenge: options.credentials.challenge((options.now ?? Date.now)()),
          remote: Buffer.from(res.getRemoteAddressAsText()).toString(),
          flood: new FloodWindow(options.maxMessagesPerSecond, options.now ?? Date.now),
        };
        res.upgrade(connection, req.getHeader("sec-websocket-key"), req.getHeader("sec-websocket-protocol"), req.getHeader("sec-websocket-extensions"), context);
      },
      open: (ws) => gateway!.opened(ws),
      message: (ws, message) => gateway!.received(ws, message),
      drain: (ws) => ws.getUserData().link?.drain(),
      close: (ws, code) => gateway!.closed(ws, code),
    });
    app.any("/*", (res) => { res.writeStatus("404 Not Found").end("device gateway: connect a WebSocket to /device"); });
    const { socket, port } = await new Promise<{ socket: uWS.us_listen_socket; port: number }>((resolve, reject) => {
      app.listen(options.host, options.port, (listenSocket) => {
        if (!listenSocket) { reject(new Error(`device gateway cannot listen on ${options.host}:${options.port} (address in use or not available)`)); return; }
        resolve({ socket: listenSocket, port: uWS.us_socket_local_port(listenSocket as unknown as uWS.us_socket) });
      });
    });
    gateway = new DeviceGateway(options, app, socket, port);
    options.logger.info({ port }, `device gateway listening on ws://${options.host}:${port}/device`);
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
   * 4003): its room lives there. False when the device is not connected here.
   */
  redirect(deviceId: string, target: { url: string; regionId: string; nodeId: string }, reason: string): boolean {
    const link = this.links.get(deviceId);
    if (!link) return false;
    link.write({ correlationId: 0, gatewayRedirect: { url: target.url, regionId: target.regionId, nodeId: target.nodeId, reason } });
    this.options.logger.info({ deviceId, to: target.nodeId, url: target.url }, `device ${deviceId} sent to node ${target.nodeId}: ${reason}`);
    this.options.metrics.deviceRedirects.inc();
    link.disconnect(CLOSE_REDIRECTED, "redirected");
    return true;
  }

  /** Stops listening and closes every device connection (4001: reconnect elsewhere). */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    clearInterval(this.sweepTimer);
    clearInterval(this.revalidateTimer);
    if (this.listenSocket) {
      uWS.us_listen_socket_close(this.listenSocket);
      this.listenSocket = false;
    }
    for (const ws of [...this.sockets]) {
      trySend(() => {
        ws.send(errorEnvelope(ErrorCode.NODE_DRAINING, "this node is shutting down: reconnect through another node", 0), true);
        ws.end(CLOSE_DRAINING, "node draining");
      });
    }
  }

  // --- socket events -----------------------------------------------------------------

  private opened(ws: Socket) {
    if (this.closing) { ws.end(CLOSE_DRAINING, "node draining"); return; }
    this.sockets.add(ws);
    const connection = ws.getUserData();
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

  private received(ws: Socket, message: ArrayBuffer) {
    const connection = ws.getUserData();
    if (connection.state === "closed") return;
    const bytes = new Uint8Array(message);
    if (!this.withinRate(ws, connection, bytes)) return;
    let envelope: Envelope;
    try {
      envelope = decodeEnvelope(bytes, this.options.maxFrameBytes);
    } catch (error) {
      const code = error instanceof ProtocolError ? error.code : ErrorCode.MALFORMED_PROTOBUF;
      if (connection.state !== "online") { this.refuse(ws, code, `before authentication: ${(error as Error).message}`, 0); return; }
      this.report(ws, code, (error as Error).message, 0);
      return;
    }
    if (connection.state === "online") { this.dispatch(ws, connection.link!, envelope); return; }
    if (connection.state === "verifying") { this.report(ws, ErrorCode.AUTH_FAILED, "wait for the DeviceWelcome before sending anything else", Number(envelope.correlationId)); return; }
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
    try {
      if (!isDeviceId(deviceId)) throw new ProtocolError(ErrorCode.WRONG_TYPE, `device_id must match ${DEVICE_ID_TEXT}`);
      if (hello.adapterVersion && !ADAPTER_VERSION_PATTERN.test(hello.adapterVersion)) throw new ProtocolError(ErrorCode.WRONG_TYPE, "adapter_version must be semver (1.4.2)");
      record = await this.verifyCredential(connection, hello);
    } catch (error) {
      if ((connection.state as Connection["state"]) === "closed") return;
      const { code, message } = refusalOf(error);
      this.refuse(ws, code, `device "${String(deviceId).slice(0, 64)}" refused: ${message}`, correlationId);
      return;
    }
    if ((connection.state as Connection["state"]) === "closed" || this.closing) return;
    clearTimeout(connection.helloTimer);
    connection.state = "online";
    connection.credential = { mode: hello.credential === "token" ? "token" : "signed-challenge", version: record.version };
    connection.enrolledClass = record.deviceClass;
    const link = new DeviceLink({
      deviceId, adapterVersion: hello.adapterVersion, driver: hello.driver, now: this.now,
      socket: {
        send: (bytes) => connection.state === "online" && ws.send(bytes, true) !== 2,
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
      deviceWelcome: { deviceId, regionId: this.options.regionId, nodeId: this.options.nodeId, serverTimeMs: this.now(), defaultLatencyBudgetMs: this.options.defaultLatencyBudgetMs },
    });
    // Nothing may move until a room announces a lease.
    link.sendLeaseState({ deviceId, leaseId: "", online: true, cause: "connected" });
    this.options.logger.info({ deviceId, deviceClass: record.deviceClass, driver: hello.driver, adapterVersion: hello.adapterVersion, remote: connection.remote },
      `device ${deviceId} attached (${hello.driver || "unknown driver"}, adapter ${hello.adapterVersion || "?"})`);
    this.events.emit("attach", link);
  }

  private async verifyCredential(connection: Connection, hello: tsunagi.v1.DeviceHello): Promise<DeviceRecord> {
    const deviceId = hello.deviceId;
    if (hello.credential === "signedChallenge") {
      const signed = hello.signedChallenge!;
      if (signed.nonce !== connection.challenge.nonce) throw new ProtocolError(ErrorCode.AUTH_FAILED, "the signed nonce is not this connection's challenge");
      return this.options.credentials.verify(deviceId, connection.challenge, signed.signature ?? "");
    }
    if (hello.credential === "token") {
      const claims = await this.options.tokens.verify(hello.token);
      if (claims.role !== "device") throw new ProtocolError(ErrorCode.FORBIDDEN, `a "${claims.role}" token cannot attach a device`);
      if (claims.sub !== deviceId) throw new ProtocolError(ErrorCode.FORBIDDEN, `the token is for device "${claims.sub}"`);
      const record = await this.options.credentials.lookup(deviceId);
      if (record.revoked) throw new DeviceCredentialError("revoked", `device "${deviceId}" is revoked`);
      return record;
    }
    throw new ProtocolError(ErrorCode.WRONG_TYPE, "DeviceHello carries no credential (token or signed_challenge)");
  }

  /**
   * Cuts off online devices whose credential no longer holds: revoked, or (signed
   * challenge) re-enrolled with a new secret. Cutting a device off stops its machine,
   * which is the safe direction. An unreachable registry keeps devices connected: they
   * proved themselves, and stopping every machine because Redis blinked is worse.
   */
  private async revalidate() {
    const online = [...this.sockets].filter((ws) => ws.getUserData().state === "online");
    for (const ws of online) {
      const connection = ws.getUserData();
      const link = connection.link;
      if (!link || !connection.credential) continue;
      let record: DeviceRecord | undefined;
      try {
        record = await this.options.credentials.lookup(link.deviceId);
        if (this.registryDown) this.options.logger.info("device registry reachable again");
        this.registryDown = false;
      } catch (error) {
        if (error instanceof DeviceCredentialError) {
          record = undefined; // no longer enrolled
        } else {
          if (!this.registryDown) this.options.logger.error({ err: error }, "device registry unreachable; connected devices stay attached until it is back");
          this.registryDown = true;
          return;
        }
      }
      if (connection.state !== "online" || connection.link !== link) continue;
      const why = !record ? "is no longer enrolled"
        : record.revoked ? "was revoked"
        : connection.credential.mode === "signed-challenge" && record.version !== connection.credential.version ? "was re-enrolled with a new secret"
        : undefined;
      if (!why) continue;
      this.refuse(ws, ErrorCode.FORBIDDEN, `device ${link.deviceId}'s credential ${why}: disconnected`, 0);
    }
  }

  // --- after authentication ----------------------------------------------------------

  private dispatch(ws: Socket, link: DeviceLink, envelope: Envelope) {
    const correlationId = Number(envelope.correlationId);
    switch (envelope.body) {
      // An answer must echo its command's (or action's) correlation id: one that matches
      // nothing is dropped, and the adapter told, counted and logged (its operator sees no ack).
      case "commandAck": {
        if (!link.receiveAck(correlationId, envelope.commandAck as tsunagi.v1.CommandAck)) {
          this.report(ws, ErrorCode.UNMATCHED_ACK, `CommandAck with correlation id ${correlationId} (seq ${String(envelope.commandAck!.seq)}) answers no command awaiting an ack: echo the forwarded command's correlation id; dropped`, correlationId);
        }
        return;
      }
      case "actionResult": {
        if (!link.receiveActionResult(correlationId, envelope.actionResult as tsunagi.v1.ActionResult)) {
          this.report(ws, ErrorCode.UNMATCHED_ACK, `ActionResult with correlation id ${correlationId} answers no action awaiting a result: echo the forwarded action's correlation id; dropped`, correlationId);
        }
        return;
      }
      case "telemetry": {
        const telemetry = envelope.telemetry as tsunagi.v1.Telemetry;
        if (telemetry.deviceId !== link.deviceId) { this.report(ws, ErrorCode.FORBIDDEN, `telemetry for "${telemetry.deviceId.slice(0, 64)}" on device ${link.deviceId}'s connection`, correlationId); return; }
        link.receiveTelemetry(telemetry);
        return;
      }
      case "clockSyncPing": {
        const t1 = this.now();
        link.write({ correlationId, clockSyncPong: { t0Ms: envelope.clockSyncPing!.t0Ms, t1Ms: t1, t2Ms: this.now() } });
        return;
      }
      case "deviceProfile": {
        const profile = envelope.deviceProfile as tsunagi.v1.DeviceProfile;
        const problem = profileProblem(profile, link.deviceId);
        const classProblem = problem ? undefined : enrolledClassProblem(profile, ws.getUserData().enrolledClass ?? "");
        if (problem || classProblem) {
          // No profile to drive by until a valid one arrives: the room ends the lease, refuses commands.
          link.refuseProfile(problem ?? classProblem!);
          this.report(ws, problem ? ErrorCode.WRONG_TYPE : ErrorCode.FORBIDDEN, `device profile refused: ${problem ?? classProblem}`, correlationId);
          return;
        }
        link.receiveProfile(profile);
        this.options.logger.info({ deviceId: link.deviceId, axes: profile.axes.map((a) => a.name), watchdogMs: profile.watchdogWindowMs }, `device ${link.deviceId} profile received`);
        return;
      }
      case "estop": {
        const estop = envelope.estop as tsunagi.v1.EStop;
        estop.deviceId = link.deviceId;
        estop.raisedBy = `device:${link.deviceId}`;
        if (this.logAllowed(ws, "estop")) this.options.logger.warn({ deviceId: link.deviceId, reason: estop.reason }, `device ${link.deviceId} raised an e-stop`);
        link.receiveEStop(estop);
        return;
      }
      case "ping": {
        link.write({ correlationId, pong: { clientTimeMs: envelope.ping!.clientTimeMs, serverTimeMs: this.now() } });
        return;
      }
      case "error": {
        const error = envelope.error as tsunagi.v1.Error;
        if (this.logAllowed(ws, "device-error")) this.options.logger.warn({ deviceId: link.deviceId, code: errorCodeName(error.code) }, `device ${link.deviceId} reported: ${error.message.slice(0, 200)}`);
        return;
      }
      default:
        this.report(ws, ErrorCode.UNKNOWN_MESSAGE, `the device channel does not accept "${envelope.body}" from an adapter`, correlationId);
    }
  }

  // --- errors and limits -------------------------------------------------------------

  /**
   * Whether a frame is within the connection's rate. Past it, a welcomed device's EStop
   * still is (stopping is always allowed), within its own small budget; only a frame that
   * decodes as an EStop counts, not one that merely starts like one.
   */
  private withinRate(ws: Socket, connection: Connection, bytes: Uint8Array): boolean {
    if (connection.flood.admit()) return true;
    if (connection.state === "online" && decodeStopEnvelope(bytes, this.options.maxFrameBytes)?.body === "estop") {
      connection.stopBudget ??= new FloodWindow(STOP_FRAMES_PER_SECOND, this.now);
      if (connection.stopBudget.admit()) return true;
    }
    if (connection.flood.drop() === "tell") {
      this.report(ws, ErrorCode.RATE_LIMITED, `more than ${this.options.maxMessagesPerSecond} frames per second; excess dropped`, 0);
    } else {
      this.options.metrics.errors.inc({ code: errorCodeName(ErrorCode.RATE_LIMITED), source: "gateway" });
    }
    return false;
  }

  /** A coded error to the adapter, counted, and logged at most once a second per connection and code; the connection stays. */
  private report(ws: Socket, code: number, message: string, correlationId: number) {
    const connection = ws.getUserData();
    this.options.metrics.errors.inc({ code: errorCodeName(code), source: "gateway" });
    const heldBack = this.logThrottle(connection).admit(code);
    if (heldBack !== undefined) {
      const more = heldBack > 0 ? ` (and ${heldBack} more like it from this connection, not logged)` : "";
      this.options.logger.warn({ deviceId: connection.link?.deviceId, remote: connection.remote, code: errorCodeName(code), heldBack }, `device channel: ${message}${more}`);
    }
    trySend(() => ws.send(errorEnvelope(code, message, correlationId), true));
  }

  /** The connection's bound on log lines, per kind (an error code, "estop"...). */
  private logThrottle(connection: Connection): LogThrottle {
    return connection.logThrottle ??= new LogThrottle(undefined, this.now);
  }

  /** Whether a line of `kind` from this connection may be logged now (one a second). */
  private logAllowed(ws: Socket, kind: string): boolean {
    return this.logThrottle(ws.getUserData()).admit(kind) !== undefined;
  }

  /** A coded error, then the connection closes (1008). */
  private refuse(ws: Socket, code: number, message: string, correlationId: number) {
    const connection = ws.getUserData();
    if (connection.state === "closed") return;
    this.report(ws, code, message, correlationId);
    clearTimeout(connection.helloTimer);
    try { ws.end(CLOSE_POLICY, errorCodeName(code)); } catch { /* closed */ }
  }
}

/** The coded error for a failed hello. */
function refusalOf(error: unknown): { code: number; message: string } {
  if (error instanceof DeviceCredentialError) {
    const code = {
      "unknown-device": ErrorCode.DEVICE_UNKNOWN,
      revoked: ErrorCode.FORBIDDEN,
      "bad-proof": ErrorCode.AUTH_FAILED,
      malformed: ErrorCode.WRONG_TYPE,
    }[error.reason];
    return { code, message: error.message };
  }
  if (error instanceof ProtocolError) return { code: error.code, message: error.message };
  const code = (error as { code?: unknown })?.code;
  if (typeof code === "number") return { code, message: (error as Error).message };
  return { code: ErrorCode.INTERNAL, message: "credential check failed (see the gateway log)" };
}
