/**
 * Requests from one node to another across regions. Matchmaking is forwarded over the
 * target node's own public HTTP matchmaking route with the client's token, so the target
 * authenticates the client itself and answers with a seat reservation whose
 * `publicAddress` names the node the client must connect to.
 */
import { ServerError } from "@colyseus/core";
import { ErrorCode } from "../../proto/index.ts";
import type { NodeInfo } from "./types.ts";

/** Marks a forwarded request so the receiver handles it locally instead of forwarding again. */
export const FORWARDED_HEADER = "x-tsunagi-forwarded-by";

export class NodeRpc {
  constructor(private readonly selfNodeId: string, private readonly timeoutMs: number) {}

  /**
   * `clientAddress` goes in `X-Forwarded-For`: the target believes it when it lists this
   * node among its `http.trustedProxies`, and limits the client instead of this node.
   */
  async forwardMatchmake(target: NodeInfo, method: string, roomName: string, options: unknown, authorization?: string | null, clientAddress?: string): Promise<any> {
    const url = `http://${target.publicAddress}/matchmake/${encodeURIComponent(method)}/${encodeURIComponent(roomName)}`;
    const headers: Record<string, string> = { "content-type": "application/json", [FORWARDED_HEADER]: this.selfNodeId };
    if (authorization) headers.authorization = authorization;
    if (clientAddress) headers["x-forwarded-for"] = clientAddress;
    let response: Response;
    try {
      response = await fetch(url, {
        method: "POST", headers, body: JSON.stringify(options ?? {}),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      throw new ServerError(ErrorCode.REGION_UNAVAILABLE,
        `region ${target.regionId} (node ${target.nodeId}) did not answer: ${(error as Error).message}`, { cause: error });
    }
    const text = await response.text();
    let body: any;
    try { body = JSON.parse(text); } catch { body = { error: text }; }
    if (!response.ok) {
      throw new ServerError(typeof body?.code === "number" ? body.code : ErrorCode.REGION_UNAVAILABLE,
        body?.error ?? body?.message ?? `node ${target.nodeId} answered ${response.status}`);
    }
    return body;
  }
}
