/**
 * The adapter's local endpoint, for the technician beside the machine and for supervision
 * tools on the edge host: plain HTTP on loopback (by default).
 *
 *   GET /status   AdapterRuntime.status() as JSON: connection, safety state, last stop,
 *                 last error, counters, the axes as they are now
 *   GET /healthz  200 {"state":"online"} while welcomed by a gateway, else 503 with the state
 *   POST /estop   stops the machine and latches an e-stop at once, online or not, before
 *                 reading the body; the room hears of it (now, or when the adapter is back
 *                 online). Body: optional JSON {"reason": "..."}, raised again with that
 *                 reason once read. Answers 200 with the safety state.
 *
 * The one route that acts can only stop: nothing here moves, resets or reconfigures the
 * device. A latched e-stop is reset by a supervisor through the room, as any other.
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

  static async start(runtime: Pick<AdapterRuntime, "status" | "raiseEStop">, options: StatusServerOptions): Promise<StatusServer> {
    const server = createServer((request, response) => {
      const path = (request.url ?? "/").split("?")[0];
      const send = (status: number, body: unknown) => {
        response.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
        response.end(JSON.stringify(body));
      };
      if (path === "/estop") {
        if (request.method !== "POST") { send(405, { error: "POST /estop stops the machine" }); return; }
        // Stop before reading anything: a slow or broken body must not delay it. A reason,
        // once read, is raised again with it (the latch holds already), so the room hears why.
        runtime.raiseEStop(DEFAULT_REASON);
        void readReason(request).then(({ reason, problem }) => {
          if (reason !== DEFAULT_REASON) runtime.raiseEStop(reason);
          send(200, { estopped: true, reason, ...(problem ? { warning: `${problem}; stopped anyway` } : {}), safety: runtime.status().safety });
        });
        return;
      }
      if (request.method !== "GET") { send(405, { error: "GET /status or /healthz, or POST /estop" }); return; }
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
      send(404, { error: "not found: GET /status or /healthz, or POST /estop" });
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

/** Longest accepted /estop body, bytes; the reason is cut to 200 characters. */
const MAX_ESTOP_BODY_BYTES = 4096;

const DEFAULT_REASON = "local e-stop at the adapter";

/**
 * The reason of a POST /estop: its JSON body's `reason`, cut to 200 characters; the
 * default, with the problem, when the body is empty, too large or not such JSON.
 */
function readReason(request: import("node:http").IncomingMessage): Promise<{ reason: string; problem?: string }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const done = (result: { reason: string; problem?: string }) => { if (!settled) { settled = true; resolve(result); } };
    request.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_ESTOP_BODY_BYTES) chunks.push(chunk);
    });
    request.on("error", (error) => done({ reason: DEFAULT_REASON, problem: `reading the body failed (${error.message})` }));
    request.on("end", () => {
      if (size > MAX_ESTOP_BODY_BYTES) { done({ reason: DEFAULT_REASON, problem: `body above ${MAX_ESTOP_BODY_BYTES} bytes ignored` }); return; }
      const text = Buffer.concat(chunks).toString("utf8").trim();
      if (text === "") { done({ reason: DEFAULT_REASON }); return; }
      let body: unknown;
      try { body = JSON.parse(text); } catch { done({ reason: DEFAULT_REASON, problem: 'body is not JSON ({"reason": "..."})' }); return; }
      const reason = (body as { reason?: unknown } | null)?.reason;
      if (reason !== undefined && typeof reason !== "string") { done({ reason: DEFAULT_REASON, problem: "reason is not a string" }); return; }
      done({ reason: reason?.slice(0, 200) || DEFAULT_REASON });
    });
  });
}
