/**
 * Requests from one node to another across regions. Matchmaking is forwarded over the
 * target node's own public HTTP matchmaking route with the client's token, so the target
 * authenticates the client itself and answers with a seat reservation whose
 * `publicAddress` names the node the client must connect to.
 */
import { readFileSync } from "node:fs";
import { ServerError } from "@colyseus/core";
import { httpRequest } from "../../common/httpRequest.ts";
import { ErrorCode } from "../../proto/index.ts";
import type { NodeInfo } from "./types.ts";

/** Marks a forwarded request so the receiver handles it locally instead of forwarding again. */
export const FORWARDED_HEADER = "x-tsunagi-forwarded-by";

/** How this node reaches its peers: the cluster's scheme (server/tls.ts) and the CA their certificates chain to. */
export interface NodeRpcTls {
  scheme: "http" | "https";
  /** PEM CA file (tls.caFile); absent: the system's CAs. */
  caFile?: string;
}

/** `nodeId=host:port` entries (cluster.peerRoutes) as a map. */
export function parsePeerRoutes(entries: readonly string[]): Map<string, string> {
  return new Map(entries.map((entry) => {
    const at = entry.indexOf("=");
    return [entry.slice(0, at), entry.slice(at + 1)] as const;
  }));
}

export class NodeRpc {
  /** The CA certificates peers are checked against (https), read once. */
  private readonly ca: Buffer | undefined;

  constructor(
    private readonly selfNodeId: string,
    private readonly timeoutMs: number,
    private readonly tls: NodeRpcTls = { scheme: "http" },
    private readonly routes: ReadonlyMap<string, string> = new Map(),
  ) {
    this.ca = tls.caFile ? readFileSync(tls.caFile) : undefined;
  }

  /** Where this node reaches `target`: its route (cluster.peerRoutes), or the public address it registered. */
  addressOf(target: Pick<NodeInfo, "nodeId" | "publicAddress">): string {
    return this.routes.get(target.nodeId) ?? target.publicAddress;
  }

  /**
   * `clientAddress` goes in `X-Forwarded-For`: the target believes it when it lists this
   * node among its `http.trustedProxies`, and limits the client instead of this node.
   */
  async forwardMatchmake(target: NodeInfo, method: string, roomName: string, options: unknown, authorization?: string | null, clientAddress?: string): Promise<any> {
    // The client's bearer token goes along: over https, to a peer whose certificate chains to the cluster's CA.
    const url = `${this.tls.scheme}://${this.addressOf(target)}/matchmake/${encodeURIComponent(method)}/${encodeURIComponent(roomName)}`;
    const headers: Record<string, string> = { "content-type": "application/json", [FORWARDED_HEADER]: this.selfNodeId };
    if (authorization) headers.authorization = authorization;
    if (clientAddress) headers["x-forwarded-for"] = clientAddress;
    let response: { ok: boolean; status: number; text: string };
    try {
      response = await httpRequest(url, {
        method: "POST", headers, body: JSON.stringify(options ?? {}), ca: this.ca,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      throw new ServerError(ErrorCode.REGION_UNAVAILABLE,
        `region ${target.regionId} (node ${target.nodeId}) did not answer: ${(error as Error).message}`, { cause: error });
    }
    const text = response.text;
    let body: any;
    try { body = JSON.parse(text); } catch { body = { error: text }; }
    if (!response.ok) {
      throw new ServerError(typeof body?.code === "number" ? body.code : ErrorCode.REGION_UNAVAILABLE,
        body?.error ?? body?.message ?? `node ${target.nodeId} answered ${response.status}`);
    }
    return body;
  }

  /** Whether `target` answers a GET of `path` in time, as itself (its node id in the JSON answer, whatever the status). Never throws. */
  async answersAs(target: Pick<NodeInfo, "nodeId" | "publicAddress">, path: string, timeoutMs: number): Promise<boolean> {
    try {
      const response = await httpRequest(`${this.tls.scheme}://${this.addressOf(target)}${path}`, {
        headers: { [FORWARDED_HEADER]: this.selfNodeId }, ca: this.ca, signal: AbortSignal.timeout(timeoutMs),
      });
      return JSON.parse(response.text)?.nodeId === target.nodeId;
    } catch {
      return false;
    }
  }

  /**
   * POSTs `body` as JSON (nothing when undefined) to `path` on `target` (a node-to-node route), with `authorization`
   * (a node credential, or a client's token being forwarded); resolves with the JSON answer.
   * @throws ServerError: REGION_UNAVAILABLE when the node does not answer in time, or the coded error it answered.
   */
  async post(target: Pick<NodeInfo, "nodeId" | "regionId" | "publicAddress">, path: string, body: unknown, authorization: string, timeoutMs = this.timeoutMs): Promise<any> {
    let response: { ok: boolean; status: number; text: string };
    try {
      response = await httpRequest(`${this.tls.scheme}://${this.addressOf(target)}${path}`, {
        method: "POST",
        // No body at all for `undefined`: a route that takes none (an admin POST forwarded) refuses even `{}`.
        headers: { ...(body === undefined ? {} : { "content-type": "application/json" }), authorization, [FORWARDED_HEADER]: this.selfNodeId },
        body: body === undefined ? undefined : JSON.stringify(body), ca: this.ca, signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      throw new ServerError(ErrorCode.REGION_UNAVAILABLE, `node ${target.nodeId} (${target.regionId}) did not answer ${path}: ${(error as Error).message}`, { cause: error });
    }
    let answer: any;
    try { answer = JSON.parse(response.text); } catch { answer = { error: response.text.slice(0, 200) }; }
    if (!response.ok) {
      throw new ServerError(typeof answer?.code === "number" ? answer.code : ErrorCode.REGION_UNAVAILABLE, answer?.error ?? `node ${target.nodeId} answered ${response.status} to ${path}`);
    }
    return answer;
  }
}
