/**
 * Which web origins may read the node's public routes from a browser. An origin on the
 * allow-list (`http.corsOrigins`) is answered with itself and credentials (the Colyseus
 * SDK sends its requests with `credentials: "include"`); `*` on the list lets any other
 * origin read them, never with credentials. In dev mode with an empty list, the loopback
 * origins (a local dev server on any port) are allowed. Every other origin gets no CORS
 * header at all, and routes whose row says `cors: false` (admin, dev, metrics) never do.
 *
 * @example
 *   const cors = new CorsPolicy(["https://app.example"], false);
 *   cors.headers("https://app.example", ["GET"]); // {"access-control-allow-origin": "https://app.example", ...}
 *   cors.headers("https://evil.example", ["GET"]); // {}
 */
import type { HttpMethod } from "./RouteTable.ts";

/** Request headers a browser may send cross-origin: the SDK's and ours. */
const ALLOWED_HEADERS = "Authorization, Content-Type, Accept, X-Requested-With";
/** How long a browser may cache a preflight answer, s. */
const PREFLIGHT_MAX_AGE_S = "600";
/** http(s)://localhost, 127.x.x.x or [::1], any port: the origins of a local dev server. */
const LOOPBACK_ORIGIN = /^https?:\/\/(localhost|127(\.\d{1,3}){3}|\[::1\])(:\d{1,5})?$/i;

export class CorsPolicy {
  /** Origins answered with themselves and credentials, lowercased. */
  private readonly exact: ReadonlySet<string>;
  /** Whether `*` is on the list: any other origin may read, without credentials. */
  private readonly any: boolean;
  /** Dev mode with an empty list: loopback origins are allowed. */
  private readonly loopbackOrigins: boolean;

  constructor(origins: readonly string[], devMode: boolean) {
    this.exact = new Set(origins.filter((origin) => origin !== "*").map((origin) => origin.toLowerCase()));
    this.any = origins.includes("*");
    this.loopbackOrigins = devMode && origins.length === 0;
  }

  /** The CORS headers of a response to a request from `origin` on a route allowing CORS; {} for an origin not allowed. */
  headers(origin: string | null, methods: readonly HttpMethod[], preflight = false): Record<string, string> {
    if (!origin) return {};
    const named = this.exact.has(origin.toLowerCase()) || (this.loopbackOrigins && LOOPBACK_ORIGIN.test(origin));
    if (!named && !this.any) return {};
    const headers: Record<string, string> = named
      ? { "access-control-allow-origin": origin, "access-control-allow-credentials": "true", vary: "Origin" }
      : { "access-control-allow-origin": "*" };
    if (preflight) {
      headers["access-control-allow-methods"] = methods.join(", ");
      headers["access-control-allow-headers"] = ALLOWED_HEADERS;
      headers["access-control-max-age"] = PREFLIGHT_MAX_AGE_S;
    }
    return headers;
  }
}
