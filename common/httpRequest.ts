/**
 * One HTTP or HTTPS request, its answer read as text, with the CA certificates an https://
 * URL is checked against. Node's global fetch cannot take a CA per request, and a region's
 * certificates usually chain to the operator's own CA, not a public one: node-to-node
 * calls and the adapter's requests to its nodes go through here.
 *
 * @example
 *   const answer = await httpRequest("https://tokyo-1:2567/gateway", { ca: readFileSync("ca.pem"), signal: AbortSignal.timeout(2000) });
 *   if (answer.ok) JSON.parse(answer.text);
 */
import http from "node:http";
import https from "node:https";

export interface HttpRequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  /** PEM CA certificates to trust for https:// instead of the system's. */
  ca?: string | Buffer;
  /** Aborts the request (a timeout, a shutdown). */
  signal?: AbortSignal;
}

export interface HttpAnswer {
  status: number;
  ok: boolean;
  text: string;
}

/** Largest answer read; anything longer is refused (nobody we call answers that much). */
const MAX_ANSWER_BYTES = 1024 * 1024;

/** Resolves with the status and body text; rejects on a network, TLS or certificate error, an abort, or an oversized answer. */
export function httpRequest(url: string, options: HttpRequestOptions = {}): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const secure = url.startsWith("https:");
    const request = (secure ? https : http).request(url, {
      method: options.method ?? "GET",
      headers: options.headers,
      signal: options.signal,
      ...(secure && options.ca ? { ca: options.ca } : {}),
    }, (response) => {
      const chunks: Buffer[] = [];
      let size = 0;
      response.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_ANSWER_BYTES) { request.destroy(new Error(`answer above ${MAX_ANSWER_BYTES} bytes`)); return; }
        chunks.push(chunk);
      });
      response.on("error", reject);
      response.on("end", () => {
        const status = response.statusCode ?? 0;
        resolve({ status, ok: status >= 200 && status < 300, text: Buffer.concat(chunks).toString("utf8") });
      });
    });
    request.on("error", reject);
    request.end(options.body);
  });
}
