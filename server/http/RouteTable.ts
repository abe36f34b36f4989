/**
 * The one table of the node's HTTP routes: per path (or prefix), the methods it answers,
 * the largest body it reads, who may ask, whether a bearer token is checked before the
 * body is read, and whether a browser on another origin may read it (CORS). The edge
 * (HttpEdge.ts) enforces every column the same way on both transports; a room module
 * brings its rows with its handler (RoomModule.http.routes).
 *
 * @example
 *   const table = new RouteTable([
 *     { path: "/ping", methods: ["GET"], bodyLimit: 0, access: "public", cors: true, handle: ping },
 *     { path: "/expo/halls", methods: ["POST"], bodyLimit: 4 << 20, access: "public", tokenRoles: ["host", "admin"], cors: false, handle },
 *   ]);
 *   table.find("POST", "/expo/halls"); // the second row
 */
import type { Role } from "../auth/tokens.ts";

export type HttpMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

/**
 * Who may ask a route:
 * - `public`: anyone (a token, when `tokenRoles` asks for one);
 * - `loopback`: TCP peers on 127.0.0.0/8 or ::1 only, by the transport's stamp, never a header;
 * - `metrics`: with `http.metricsToken` set, whoever sends it as a bearer token; unset, loopback peers only;
 * - `cluster`: other nodes of the cluster, by their node credential (server/auth/nodeAuth.ts), checked before the body is read.
 */
export type RouteAccess = "public" | "loopback" | "metrics" | "cluster";

/** One row of the table, without its handler: what a room module declares. */
export interface RouteRule {
  /** An exact path (`/ping`), or a prefix when it ends with "/" (`/matchmake/`). */
  path: string;
  methods: readonly HttpMethod[];
  /** Largest request body read, bytes; larger is refused 413 and the connection closed. 0: none. */
  bodyLimit: number;
  access: RouteAccess;
  /** When set, a bearer token carrying one of these roles, verified before a byte of the body is read. */
  tokenRoles?: readonly Role[];
  /** Whether browsers on the allowed origins (`http.corsOrigins`) may read it. Never on admin, dev or metrics routes. */
  cors: boolean;
}

/** A row with the handler that answers it. */
export interface HttpRoute extends RouteRule {
  /** Answers a request the edge admitted; its body (if any) is complete and within `bodyLimit`. */
  handle(request: Request): Promise<Response>;
}

export class RouteTable {
  /** Rows by exact path. */
  private readonly exact = new Map<string, HttpRoute[]>();
  /** Prefix rows, longest prefix first. */
  private readonly prefixes: HttpRoute[] = [];

  /** @throws Error when two rows answer the same method on the same path: a rule is written once. */
  constructor(routes: readonly HttpRoute[]) {
    for (const route of routes) {
      if (!route.path.startsWith("/")) throw new Error(`route "${route.path}": a path starts with "/"`);
      if (!Number.isInteger(route.bodyLimit) || route.bodyLimit < 0) throw new Error(`route "${route.path}": bodyLimit must be a non-negative integer`);
      if (route.cors && (route.access !== "public" || route.tokenRoles)) throw new Error(`route "${route.path}": CORS is for public routes only, never admin, dev or metrics ones`);
      const same = route.path.endsWith("/") ? this.prefixes.filter((other) => other.path === route.path) : this.exact.get(route.path) ?? [];
      const clash = same.find((other) => other.methods.some((method) => route.methods.includes(method)));
      if (clash) throw new Error(`route "${route.path}" is in the table twice for ${route.methods.filter((m) => clash.methods.includes(m)).join(", ")}`);
      if (route.path.endsWith("/")) this.prefixes.push(route);
      else this.exact.set(route.path, [...same, route]);
    }
    this.prefixes.sort((a, b) => b.path.length - a.path.length);
  }

  /** The row answering `method` on `path`: an exact row first, else the longest prefix. */
  find(method: string, path: string): HttpRoute | undefined {
    return this.candidates(path).find((route) => route.methods.includes(method as HttpMethod));
  }

  /** Every row whose path matches, whatever its methods (for a preflight, and for "which methods are there"). */
  candidates(path: string): HttpRoute[] {
    const exact = this.exact.get(path) ?? [];
    return [...exact, ...this.prefixes.filter((route) => path.startsWith(route.path))];
  }
}
