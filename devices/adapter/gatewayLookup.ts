/**
 * The adapter's two questions to a node over HTTP(S), before any gateway: how far away it
 * is (`GET <node>/ping`, RegionProbe's sample) and where its device endpoint is
 * (`GET <node>/gateway`: { url, regionId, nodeId }). Both are checked against `ca` (or
 * the system's CAs) and end with `signal`; a failure is an Error that says why. Which
 * node to ask, and whether its endpoint may be used, is GatewayConnection's.
 *
 * @example
 *   const rttMs = await measurePing("https://tokyo-1.example.net:2567", { ca, signal });
 *   const gateway = await fetchGateway("https://tokyo-1.example.net:2567", { ca, signal });
 */
import { httpRequest } from "../../common/httpRequest.ts";
import type { GatewayEndpoint } from "./DeviceChannel.ts";

/** How a request to a node is made. */
export interface NodeRequestOptions {
  /** PEM CA certificates the node's certificate must chain to; absent: the system's. */
  ca: string | Buffer | undefined;
  /** Ends the request (a timeout, the adapter stopping). */
  signal: AbortSignal;
}

/** One /ping round trip to a node, ms (RegionProbe's sample). */
export async function measurePing(node: string, { ca, signal }: NodeRequestOptions): Promise<number> {
  const started = performance.now();
  let answer: { ok: boolean; status: number };
  try {
    answer = await httpRequest(`${node}/ping`, { ca, signal, headers: { "cache-control": "no-store" } });
  } catch (error) {
    throw new Error(describeFetchError(error), { cause: error });
  }
  if (!answer.ok) throw new Error(`GET ${node}/ping answered HTTP ${answer.status}`);
  return performance.now() - started;
}

/** `GET <node>/gateway`: where this node's device endpoint is. */
export async function fetchGateway(node: string, { ca, signal }: NodeRequestOptions): Promise<GatewayEndpoint> {
  let response: { ok: boolean; status: number; text: string };
  try {
    response = await httpRequest(`${node}/gateway`, { signal, ca, headers: { accept: "application/json" } });
  } catch (error) {
    throw new Error(describeFetchError(error), { cause: error });
  }
  const text = response.text;
  if (!response.ok) throw new Error(`HTTP ${response.status}${text ? `: ${text.slice(0, 200)}` : ""}`);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`answered ${JSON.stringify(text.slice(0, 100))}, not JSON`);
  }
  const { url, certUrl, regionId, nodeId } = (body ?? {}) as Record<string, unknown>;
  if (typeof url !== "string" || !/^wss?:\/\//.test(url)) throw new Error(`answered no ws:// or wss:// url (${JSON.stringify(url)})`);
  return {
    url, regionId: typeof regionId === "string" ? regionId : "", nodeId: typeof nodeId === "string" ? nodeId : "",
    ...(typeof certUrl === "string" && /^wss:\/\//.test(certUrl) ? { certUrl } : {}),
  };
}

/** "fetch failed: ECONNREFUSED" rather than undici's bare "fetch failed". */
function describeFetchError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const cause = (error as { cause?: { code?: unknown; message?: unknown } } | undefined)?.cause;
  const detail = typeof cause?.code === "string" ? cause.code : typeof cause?.message === "string" ? cause.message : undefined;
  return detail && !message.includes(detail) ? `${message}: ${detail}` : message;
}
