/**
 * Node-to-node credentials: how one node of the cluster proves itself to another on the
 * cluster's internal routes (a room handed to another region). Only nodes hold the
 * `node` key (keys.ts); clients, tokens and adapters never see it.
 *
 * A credential is `v1.<nodeId>.<expiresAtMs>.<mac>`, where mac = HMAC-SHA256(node key,
 * "v1.<nodeId>.<expiresAtMs>") in base64url. It is good until `expiresAtMs`, at most
 * MAX_LIFETIME_MS ahead of the verifier's clock, and sent as `Authorization: Node <credential>`.
 * It names the caller and proves it holds the key; the body's integrity is the TLS
 * connection's (every hop outside dev mode).
 *
 * @example
 *   const auth = new NodeAuth(keys.node, "tokyo-1");
 *   headers.authorization = `Node ${auth.credential()}`;   // caller
 *   const caller = auth.verify(request.headers.get("authorization")); // "tokyo-1", or throws
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { ServerError } from "@colyseus/core";
import { ErrorCode } from "../../proto/index.ts";

/** A credential's lifetime; a verifier refuses one valid for longer than this from its own clock. */
export const NODE_CREDENTIAL_LIFETIME_MS = 60_000;
/** Clock skew between nodes tolerated on top of the lifetime, ms. */
const MAX_SKEW_MS = 30_000;
/** A fresh credential is made once the cached one has less than this left, ms. */
const RENEW_BEFORE_MS = 20_000;
const NODE_ID = /^[A-Za-z0-9._-]{1,128}$/;

export class NodeAuth {
  private cached?: { value: string; expiresAt: number };

  constructor(private readonly key: Buffer, private readonly nodeId: string, private readonly now: () => number = Date.now) {}

  /** This node's credential, renewed before it expires. */
  credential(): string {
    const now = this.now();
    if (!this.cached || this.cached.expiresAt - now < RENEW_BEFORE_MS) {
      const expiresAt = now + NODE_CREDENTIAL_LIFETIME_MS;
      const body = `v1.${this.nodeId}.${expiresAt}`;
      this.cached = { value: `${body}.${this.mac(body)}`, expiresAt };
    }
    return this.cached.value;
  }

  /** The `Authorization` header value for a call to another node. */
  header(): string {
    return `Node ${this.credential()}`;
  }

  /**
   * The calling node's id, from an `Authorization: Node …` header.
   * @throws ServerError TOKEN_MISSING, TOKEN_INVALID (forged, malformed, another cluster's) or TOKEN_EXPIRED.
   */
  verify(authorization: string | null | undefined): string {
    const match = /^Node\s+(\S+)$/.exec(authorization ?? "");
    if (!match) throw new ServerError(ErrorCode.TOKEN_MISSING, "this route answers nodes of the cluster only: Authorization: Node <credential>");
    const parts = match[1].split(".");
    if (parts.length !== 4 || parts[0] !== "v1" || !NODE_ID.test(parts[1]) || !/^\d{1,16}$/.test(parts[2])) {
      throw new ServerError(ErrorCode.TOKEN_INVALID, "malformed node credential");
    }
    const body = parts.slice(0, 3).join(".");
    const expected = Buffer.from(this.mac(body));
    const given = Buffer.from(parts[3]);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new ServerError(ErrorCode.TOKEN_INVALID, "node credential not signed with this cluster's node key");
    const expiresAt = Number(parts[2]);
    const now = this.now();
    if (expiresAt <= now - MAX_SKEW_MS) throw new ServerError(ErrorCode.TOKEN_EXPIRED, "node credential expired");
    if (expiresAt > now + NODE_CREDENTIAL_LIFETIME_MS + MAX_SKEW_MS) throw new ServerError(ErrorCode.TOKEN_INVALID, "node credential valid for longer than the cluster allows");
    return parts[1];
  }

  private mac(body: string): string {
    return createHmac("sha256", this.key).update(body).digest("base64url");
  }
}
