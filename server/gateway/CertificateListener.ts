/**
 * The gateway's certificate listener: where devices whose credential is a client
 * certificate (DeviceHello.client_certificate) connect, on its own port
 * (gateway.certPort). uWS does not hand the peer certificate to JS, so this listener is
 * node's TLS (`https` + `ws`), asking every client for a certificate chaining to the
 * cluster's device CA (gateway.deviceCaFile). It does not refuse in the handshake
 * (rejectUnauthorized false): a bare TLS alert tells an adapter nothing, so it records
 * what the handshake showed (authorized or OpenSSL's reason, the subject's CN, the serial)
 * and hands the socket to the DeviceGateway (adopt()), which refuses at the hello with a
 * coded Error, logged and counted like its other refusals: CERTIFICATE_MISSING,
 * _UNTRUSTED, _EXPIRED, _REVOKED or _MISMATCH. Pending caps, the hello timeout, rate
 * limits and revalidation are the gateway's, as for its own sockets.
 *
 * @example
 *   const listener = await CertificateListener.start({ host, port: 2571, tls, deviceCaPem, maxFrameBytes, gateway, logger });
 *   listener.port; // the bound port (port 0: any free one)
 *   await listener.close();
 */
import https from "node:https";
import { readFileSync } from "node:fs";
import type { TLSSocket, TlsOptions } from "node:tls";
import { constants as cryptoConstants } from "node:crypto";
import type { AddressInfo } from "node:net";
import { WebSocketServer, type RawData, type WebSocket } from "ws";
import type { DeviceGateway } from "./DeviceGateway.ts";
import type { PresentedCertificate } from "../auth/DeviceCertificates.ts";
import { normalizeSerial, subjectCommonName } from "../auth/x509.ts";
import type { TlsFiles } from "../tls.ts";
import type { Logger } from "../observability/logging.ts";

export interface CertificateListenerOptions {
  host: string;
  /** 0: any free port. */
  port: number;
  /** The node's certificate and key (the gateway's, server/tls.ts). */
  tls: TlsFiles;
  /** PEM of the cluster's device CA: client certificates must chain to it. */
  deviceCaPem: string;
  /** Largest frame accepted from a device (a larger one closes the socket, 1009). */
  maxFrameBytes: number;
  gateway: DeviceGateway;
  logger: Logger;
}

/** Bytes queued on a socket past which a frame is dropped, as the uWS listener's maxBackpressure. */
const MAX_BACKPRESSURE_BYTES = 1024 * 1024;
/** A socket that has not answered a ping within this is closed, as uWS's idle timeout does. */
const IDLE_PING_MS = 8000;

/**
 * The TLS server options of the certificate listener (the bench's mTLS server uses them
 * too): the device CA's client certificates asked for, and recorded rather than refused
 * in the handshake (see above); no session tickets, since an adapter holds one connection
 * for hours and resumption would only cost every handshake a session to encode (with
 * OpenSSL 3, a good share of a full handshake's CPU).
 */
export function deviceTlsServerOptions(cert: string | Buffer, key: string | Buffer, deviceCaPem: string | Buffer): TlsOptions {
  return {
    cert, key, ca: deviceCaPem,
    requestCert: true, rejectUnauthorized: false, minVersion: "TLSv1.2",
    secureOptions: cryptoConstants.SSL_OP_NO_TICKET,
  };
}

export class CertificateListener {
  /** The bound port. */
  readonly port: number;
  /** The TLS server. */
  private readonly server: https.Server;
  /** The WebSocket server on it. */
  private readonly sockets: WebSocketServer;
  /** Pings every socket; closes those that did not answer the last ping. */
  private readonly idleTimer: NodeJS.Timeout;
  /** Sockets that answered since the last ping round. */
  private readonly alive = new WeakSet<WebSocket>();

  private constructor(server: https.Server, sockets: WebSocketServer, port: number) {
    this.server = server;
    this.sockets = sockets;
    this.port = port;
    this.idleTimer = setInterval(() => {
      for (const ws of this.sockets.clients) {
        if (!this.alive.has(ws)) { ws.terminate(); continue; }
        this.alive.delete(ws);
        ws.ping();
      }
    }, IDLE_PING_MS);
    this.idleTimer.unref();
  }

  /** Listens (exclusively: a taken port rejects, naming it); rejects when the files cannot be read. */
  static async start(options: CertificateListenerOptions): Promise<CertificateListener> {
    const server = https.createServer(deviceTlsServerOptions(readFileSync(options.tls.certFile), readFileSync(options.tls.keyFile), options.deviceCaPem),
      (_request, response) => { response.writeHead(404).end("device certificate listener: connect a WebSocket to /device"); });
    const sockets = new WebSocketServer({ server, path: "/device", maxPayload: options.maxFrameBytes, perMessageDeflate: false });
    // It re-emits the server's errors, which the server's own listeners below handle.
    sockets.on("error", () => {});
    // Node never shares a port (no SO_REUSEPORT): a taken one fails the listen.
    await new Promise<void>((resolve, reject) => {
      const failed = (error: Error) => reject(new Error(`device certificate listener cannot listen on ${options.host}:${options.port} (${(error as NodeJS.ErrnoException).code ?? error.message}: address in use or not available)`));
      server.once("error", failed);
      server.listen({ host: options.host, port: options.port, exclusive: true }, () => { server.off("error", failed); resolve(); });
    });
    const listener = new CertificateListener(server, sockets, (server.address() as AddressInfo).port);
    server.on("error", (error) => options.logger.error({ err: error }, "device certificate listener failed"));
    server.on("tlsClientError", (error) => options.logger.debug({ err: error }, "device certificate listener: a TLS handshake failed"));
    sockets.on("connection", (ws, request) => listener.connected(options.gateway, ws, request.socket as TLSSocket));
    options.logger.info({ port: listener.port }, `device certificate listener on wss://${options.host}:${listener.port}/device (client certificates of the device CA)`);
    return listener;
  }

  /** Stops listening and drops every socket still open (the gateway has told them why first). */
  async close(): Promise<void> {
    clearInterval(this.idleTimer);
    for (const ws of this.sockets.clients) ws.terminate();
    await new Promise<void>((resolve) => this.sockets.close(() => resolve()));
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private connected(gateway: DeviceGateway, ws: WebSocket, socket: TLSSocket): void {
    this.alive.add(ws);
    ws.on("pong", () => this.alive.add(ws));
    let awaitingDrain = false;
    const events = gateway.adopt({
      send: (bytes) => {
        if (ws.readyState !== ws.OPEN || ws.bufferedAmount > MAX_BACKPRESSURE_BYTES) return 2;
        ws.send(bytes, { binary: true }, () => {
          if (awaitingDrain && ws.bufferedAmount === 0) { awaitingDrain = false; events.drained(); }
        });
        if (ws.bufferedAmount === 0) return 1;
        awaitingDrain = true;
        return 0;
      },
      end: (code, reason) => ws.close(code, reason),
      bufferedAmount: () => ws.bufferedAmount,
    }, socket.remoteAddress ?? "", presentedCertificate(socket));
    ws.on("message", (data) => events.received(bytesOf(data)));
    ws.on("close", (code) => events.closed(code));
    ws.on("error", () => { /* the close that follows reports it */ });
  }
}

/** What the TLS handshake showed of the client certificate; null when the client sent none. */
export function presentedCertificate(socket: TLSSocket): PresentedCertificate | null {
  const certificate = socket.getPeerX509Certificate();
  if (!certificate) return null;
  const authorizationError = socket.authorizationError as unknown as string | Error | null | undefined;
  return {
    authorized: socket.authorized,
    authorizationError: authorizationError ? String((authorizationError as { code?: string }).code ?? authorizationError) : undefined,
    subjectCn: subjectCommonName(certificate),
    serial: normalizeSerial(certificate.serialNumber),
  };
}

function bytesOf(data: RawData): Uint8Array {
  if (Array.isArray(data)) return new Uint8Array(Buffer.concat(data));
  return data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
