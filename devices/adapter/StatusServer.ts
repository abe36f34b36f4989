/**
 * The adapter's local endpoint, for the technician beside the machine and for supervision
 * tools on the edge host: plain HTTP on loopback (by default).
 *
 *   GET /status        AdapterRuntime.status() as JSON: connection, safety state, last
 *                      stop, last error, counters, the axes as they are now
 *   GET /healthz       200 {"state":"online"} while welcomed by a gateway, else 503 with
 *                      the state
 *   POST /estop        stops the machine and latches an e-stop at once, online or not,
 *                      before reading the body; the room hears of it (now, or when the
 *                      adapter is back online). Body: optional JSON {"reason": "..."},
 *                      raised again with that reason once read. Answers 200 with the
 *                      safety state.
 *   POST /local-reset  the technician's half of clearing an e-stop raised here (POST
 *                      /estop, the device's own stop): the latch HOLDS, but a
 *                      supervisor's reset through the room may now clear it. 409 while
 *                      the device's own stop is engaged or no local latch holds.
 *
 * Nothing here moves the machine, and nothing here alone clears a latch: a supervisor's
 * reset through the room does, as for any e-stop.
 *
 * Only the machine's own host may use it: every request must name the address it is
 * bound to in `Host` (a web page on a rebound DNS name cannot), and every POST must
 * carry `X-Tsunagi-Adapter: 1`, a header a browser does not send cross-origin without a
 * preflight this endpoint never grants; both refused 403. So a web page open on the
 * edge host cannot raise a stop through it.
 *
 * @example
 *   const status = await StatusServer.start(runtime, { host: "127.0.0.1", port: 0 });
 *   console.log(status.url); // http://127.0.0.1:40123/status
 *   // curl -X POST -H 'X-Tsunagi-Adapter: 1' http://127.0.0.1:40123/estop
 *   await status.close();
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AdapterRuntime } from "./AdapterRuntime.ts";

export interface StatusServerOptions {
  /** Bind address. Keep it on loopback unless the edge host's firewall covers the port. */
  host: string;
  /** Listen port; 0 picks a free one. */
  port: number;
  /** Told of each refused request (a foreign Host, a POST without the header), for a log line. */
  onRefused?(reason: string): void;
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

  static async start(runtime: Pick<AdapterRuntime, "status" | "raiseEStop" | "localReset">, options: StatusServerOptions): Promise<StatusServer> {
    let hosts: ReadonlySet<string> = new Set();
    const server = createServer((request, response) => {
      const path = (request.url ?? "/").split("?")[0];
      const send = (status: number, body: unknown) => {
        response.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
        response.end(JSON.stringify(body));
      };
      const refusal = requestRefusal(request, hosts);
      if (refusal) {
        send(403, { error: refusal });
        options.onRefused?.(refusal);
        return;
      }
      if (path === "/local-reset") {
        if (request.method !== "POST") { send(405, { error: "POST /local-reset releases an e-stop raised here, for a supervisor's reset" }); return; }
        const outcome = runtime.localReset();
        send(outcome.released ? 200 : 409, { ...outcome, safety: runtime.status().safety });
        return;
      }
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
      if (request.method !== "GET") { send(405, { error: "GET /status or /healthz, or POST /estop or /local-reset" }); return; }
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
      send(404, { error: "not found: GET /status or /healthz, or POST /estop or /local-reset" });
    });
    // A technician's browser must not keep the process alive on stop.
    server.keepAliveTimeout = 1000;
    const port = await new Promise<number>((resolve, reject) => {
      server.once("error", (error) => reject(new Error(`adapter status endpoint cannot listen on ${options.host}:${options.port}: ${error.message}`)));
      server.listen(options.port, options.host, () => resolve((server.address() as { port: number }).port));
    });
    hosts = allowedHosts(options.host, port);
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

/** The header every POST must carry, and its value. */
export const ADAPTER_HEADER = "x-tsunagi-adapter";

/**
 * The `Host` values this endpoint answers: the address it is bound to with its port,
 * and `localhost` with its port when that address is a loopback one.
 */
function allowedHosts(host: string, port: number): ReadonlySet<string> {
  const literal = host.includes(":") ? `[${host}]` : host;
  const hosts = new Set([`${literal}:${port}`.toLowerCase()]);
  if (host === "127.0.0.1" || host === "::1" || host === "localhost") hosts.add(`localhost:${port}`);
  return hosts;
}

/** Why a request is refused (a foreign Host, a POST without the adapter header); undefined when it may proceed. */
function requestRefusal(request: IncomingMessage, hosts: ReadonlySet<string>): string | undefined {
  const host = (request.headers.host ?? "").toLowerCase();
  if (!hosts.has(host)) return `Host ${JSON.stringify(host.slice(0, 100))} is not this endpoint (${[...hosts].join(" or ")})`;
  if (request.method === "POST" && request.headers[ADAPTER_HEADER] !== "1") return "a POST needs the header X-Tsunagi-Adapter: 1";
  return undefined;
}

/** Longest accepted /estop body, bytes; the reason is cut to 200 characters. */
const MAX_ESTOP_BODY_BYTES = 4096;

const DEFAULT_REASON = "local e-stop at the adapter";

/**
 * The reason of a POST /estop: its JSON body's `reason`, cut to 200 characters; the
 * default, with the problem, when the body is empty, too large or not such JSON.
 */
function readReason(request: IncomingMessage): Promise<{ reason: string; problem?: string }> {
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
