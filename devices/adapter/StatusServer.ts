/**
 * The adapter's local status endpoint, for the technician beside the machine and for
 * supervision tools on the edge host: plain HTTP on loopback (by default), read-only.
 *
 *   GET /status   AdapterRuntime.status() as JSON: connection, safety state, last stop,
 *                 last error, counters, the axes as they are now
 *   GET /healthz  200 {"state":"online"} while welcomed by a gateway, else 503 with the state
 *
 * It can change nothing: there is no route that moves, resets or reconfigures the device.
 *
 * @example
 *   const status = await StatusServer.start(runtime, { host: "127.0.0.1", port: 0 });
 *   console.log(status.url); // http://127.0.0.1:40123/status
 *   await status.close();
 */
import { createServer, type Server } from "node:http";
import type { AdapterRuntime } from "./AdapterRuntime.ts";

export interface StatusServerOptions {
  /** Bind address. Keep it on loopback unless the edge host's firewall covers the port. */
  host: string;
  /** Listen port; 0 picks a free one. */
  port: number;
}

export class StatusServer {
  /** `http://host:port/status`. */
  readonly url: string;
  /** The bound port. */
  readonly port: number;

  /** The listening HTTP server. */
  private readonly server: Server;

  private constructor(server: Server, host: string, port: number) {
    this.server = server;
    this.port = port;
    this.url = `http://${host}:${port}/status`;
  }

  static async start(runtime: Pick<AdapterRuntime, "status">, options: StatusServerOptions): Promise<StatusServer> {
    const server = createServer((request, response) => {
      const path = (request.url ?? "/").split("?")[0];
      const send = (status: number, body: unknown) => {
        response.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
        response.end(JSON.stringify(body));
      };
      if (request.method !== "GET") { send(405, { error: "read-only: GET /status or /healthz" }); return; }
      try {
        if (path === "/status") { send(200, runtime.status()); return; }
        if (path === "/healthz") {
          const { state } = runtime.status();
          send(state === "online" ? 200 : 503, { state });
          return;
        }
      } catch (error) {
        send(500, { error: `status failed: ${(error as Error).message}` });
        return;
      }
      send(404, { error: "not found: GET /status or /healthz" });
    });
    // A technician's browser must not keep the process alive on stop.
    server.keepAliveTimeout = 1000;
    const port = await new Promise<number>((resolve, reject) => {
      server.once("error", (error) => reject(new Error(`adapter status endpoint cannot listen on ${options.host}:${options.port}: ${error.message}`)));
      server.listen(options.port, options.host, () => resolve((server.address() as { port: number }).port));
    });
    return new StatusServer(server, options.host, port);
  }

  /** Stops listening and ends open connections. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
