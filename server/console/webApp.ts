/**
 * The web apps every node serves (web/, built by Vite into web/dist at install or by
 * `npm run build:web`): the visitor's expo at `/expo/:hallId`, the operator's cockpit at
 * `/teleop/:roomId`, the operations console at `/console`. Every page route answers the
 * one `index.html` (the app routes by path in the browser); `/app/` serves its assets.
 *
 * The files are read once, at start, into memory: a request can only ever name one of
 * them, so no path from a request touches the file system. A node whose web app was not
 * built says so (503, with the command that builds it) and serves everything else.
 *
 * Headers: a Content-Security-Policy that loads scripts and styles from the node only,
 * lets the SDK reach any node of the cluster (its regions may be elsewhere) and lets only
 * the node itself and `http.corsOrigins` embed the pages (`frame-ancestors`, for an
 * embedding site that hands the page its token); no MIME sniffing, no referrer.
 *
 * @example
 *   const routes = webAppRoutes({ corsOrigins: config.http.corsOrigins });
 *   // GET /expo/expo-demo -> index.html; GET /app/assets/index-abc.js -> the script
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { HttpRoute, RouteRule } from "../http/RouteTable.ts";

/** Where Vite writes the build (web/vite.config.ts: outDir). */
export const WEB_DIST = path.join(path.dirname(fileURLToPath(import.meta.url)), "../../web/dist");
/** The prefix the app's assets are served under (web/vite.config.ts: base). */
export const WEB_ASSETS_PREFIX = "/app/";
/** The page routes: each answers index.html. */
export const WEB_PAGES = ["/expo/", "/teleop/", "/console", "/console/", "/web"] as const;

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml", ".png": "image/png", ".json": "application/json", ".woff2": "font/woff2", ".map": "application/json",
};

/** The largest file of the build read into memory; a build with a larger one fails the node's start, loudly. */
const MAX_FILE_BYTES = 8 << 20;

interface WebFile { body: Buffer<ArrayBuffer>; contentType: string }

export interface WebAppOptions {
  /** Origins allowed to embed the pages (http.corsOrigins). */
  corsOrigins: readonly string[];
  /** Where the build is; default WEB_DIST. */
  dist?: string;
}

/** Every file of the build, by its URL path under WEB_ASSETS_PREFIX; undefined when there is no build. */
export function loadWebBuild(dist: string): Map<string, WebFile> | undefined {
  if (!existsSync(path.join(dist, "index.html"))) return undefined;
  const files = new Map<string, WebFile>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) { walk(full); continue; }
      if (!entry.isFile()) continue;
      const size = statSync(full).size;
      if (size > MAX_FILE_BYTES) throw new Error(`web build: ${entry.name} is ${size} bytes, above ${MAX_FILE_BYTES}`);
      const relative = path.relative(dist, full).split(path.sep).join("/");
      files.set(relative, { body: readFileSync(full) as Buffer<ArrayBuffer>, contentType: CONTENT_TYPES[path.extname(entry.name)] ?? "application/octet-stream" });
    }
  };
  walk(dist);
  return files;
}

/** The page, asset and header rules, with their handlers. */
export function webAppRoutes(options: WebAppOptions): HttpRoute[] {
  const files = loadWebBuild(options.dist ?? WEB_DIST);
  const embedders = options.corsOrigins.filter((origin) => origin !== "*");
  const headers = {
    "content-security-policy": [
      "default-src 'self'", "script-src 'self'", "style-src 'self' 'unsafe-inline'", "img-src 'self' data: blob:",
      "connect-src 'self' http: https: ws: wss:", "media-src 'self' blob:", "object-src 'none'", "base-uri 'none'",
      `frame-ancestors 'self'${embedders.length ? ` ${embedders.join(" ")}` : ""}`,
    ].join("; "),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
  };
  const notBuilt = () => new Response("the web app is not built on this node: run npm run build:web (npm ci does it)\n", {
    status: 503, headers: { "content-type": "text/plain; charset=utf-8", ...headers },
  });
  const send = (file: WebFile, cache: string) => new Response(file.body, { status: 200, headers: { "content-type": file.contentType, "cache-control": cache, ...headers } });
  const rule: Omit<RouteRule, "path"> = { methods: ["GET"], bodyLimit: 0, access: "public", cors: false };
  const page = async () => {
    const index = files?.get("index.html");
    // the page is small and names the hashed assets of this build: never cached stale
    return index ? send(index, "no-cache") : notBuilt();
  };
  return [
    ...WEB_PAGES.map((pagePath): HttpRoute => ({ ...rule, path: pagePath, handle: page })),
    { ...rule, path: WEB_ASSETS_PREFIX, handle: async (request) => {
      if (!files) return notBuilt();
      const name = decodeURIComponent(new URL(request.url).pathname.slice(WEB_ASSETS_PREFIX.length));
      const file = name === "index.html" ? undefined : files.get(name);
      if (!file) return new Response("no such file in the web app\n", { status: 404, headers: { "content-type": "text/plain; charset=utf-8", ...headers } });
      // asset names carry their content's hash: a year, immutable
      return send(file, name.startsWith("assets/") ? "public, max-age=31536000, immutable" : "no-cache");
    } },
  ];
}
