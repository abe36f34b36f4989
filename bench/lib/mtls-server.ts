/**
 * Bench child: a TLS server that asks every client for its certificate and verifies it
 * against the device CA with the gateway's certificate listener's own TLS options, and closes each connection once the handshake is through. The
 * credentials bench reads this process's CPU time from /proc, so its figure is the
 * server's side of a handshake alone. Argument: MtlsServerConfig. Ready data: { port }.
 * Calls: counts → { authorized, refused }.
 */
import tls from "node:tls";
import type { AddressInfo } from "node:net";
import { serveParent } from "./parent-channel.ts";
import { deviceTlsServerOptions } from "../../server/gateway/CertificateListener.ts";

export interface MtlsServerConfig { certPem: string; keyPem: string; caPem: string }

const config = JSON.parse(process.argv[2] ?? "null") as MtlsServerConfig;
let authorized = 0;
let refused = 0;
const listener = tls.createServer(deviceTlsServerOptions(config.certPem, config.keyPem, config.caPem));
listener.on("secureConnection", (socket) => {
  if (socket.authorized) authorized++;
  else refused++;
  socket.on("error", () => {});
  socket.end();
});
listener.on("tlsClientError", () => { refused++; });
await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", 511, resolve));
serveParent({ counts: () => ({ authorized, refused }) }, { port: (listener.address() as AddressInfo).port });
