/**
 * Verifies a compact HS256 JWT synchronously with node:crypto: about 8 µs of CPU, where
 * jose's WebCrypto path costs about 80 (a thread-pool job per token), and every join
 * verifies one. Strict by design: only `alg` HS256, no `crit`, a 32-byte signature
 * compared in constant time, then `iss`, `aud`, `exp`, `iat` and `nbf` as RFC 7519 says.
 * Tokens are still issued by jose (tokens.ts); this only reads them.
 *
 * @example
 *   const payload = verifyHs256(token, key, { issuer: "tsunagi", audience: "cluster-a" });
 */
import { createHmac, timingSafeEqual } from "node:crypto";

/** Longest token accepted, characters: far above any we issue, so a huge header costs nothing. */
export const MAX_TOKEN_LENGTH = 8192;

const COMPACT_JWS = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/;

/** Why a token was refused: "expired" (exp passed), or "invalid" with the reason. */
export class Hs256Error extends Error {
  constructor(readonly reason: "expired" | "invalid", message: string) {
    super(message);
  }
}

export interface Hs256Expectations {
  issuer: string;
  audience: string;
  /** Now, ms (tests). */
  nowMs?: number;
}

/** The payload of a token signed with `key` that meets `expected`; Hs256Error otherwise. */
export function verifyHs256(token: string, key: Uint8Array, expected: Hs256Expectations): Record<string, unknown> {
  if (token.length > MAX_TOKEN_LENGTH) throw new Hs256Error("invalid", `longer than ${MAX_TOKEN_LENGTH} characters`);
  const parts = COMPACT_JWS.exec(token);
  if (!parts) throw new Hs256Error("invalid", "not a compact JWS (three base64url parts)");
  const [, headerText, payloadText, signatureText] = parts;
  const header = jsonObject(headerText, "header");
  if (header.alg !== "HS256") throw new Hs256Error("invalid", `alg ${JSON.stringify(header.alg)} is not HS256`);
  if ("crit" in header) throw new Hs256Error("invalid", "crit header parameters are not supported");
  const signature = Buffer.from(signatureText, "base64url");
  const expectedSignature = createHmac("sha256", key).update(`${headerText}.${payloadText}`).digest();
  if (signature.length !== expectedSignature.length || !timingSafeEqual(signature, expectedSignature)) {
    throw new Hs256Error("invalid", "signature verification failed");
  }
  const payload = jsonObject(payloadText, "payload");
  const nowS = Math.floor((expected.nowMs ?? Date.now()) / 1000);
  if (payload.iss !== expected.issuer) throw new Hs256Error("invalid", 'unexpected "iss" claim value');
  const audience = payload.aud;
  if (!(audience === expected.audience || (Array.isArray(audience) && audience.includes(expected.audience)))) {
    throw new Hs256Error("invalid", 'unexpected "aud" claim value');
  }
  for (const claim of ["exp", "iat"] as const) {
    if (!(claim in payload)) throw new Hs256Error("invalid", `missing required "${claim}" claim`);
  }
  for (const claim of ["exp", "iat", "nbf"] as const) {
    if (claim in payload && !(typeof payload[claim] === "number" && Number.isFinite(payload[claim]))) {
      throw new Hs256Error("invalid", `"${claim}" claim must be a number`);
    }
  }
  if (typeof payload.nbf === "number" && payload.nbf > nowS) throw new Hs256Error("invalid", '"nbf" claim timestamp check failed');
  if ((payload.exp as number) <= nowS) throw new Hs256Error("expired", '"exp" claim timestamp check failed');
  return payload;
}

function jsonObject(base64url: string, part: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(base64url, "base64url").toString("utf8"));
  } catch {
    throw new Hs256Error("invalid", `${part} is not JSON`);
  }
  if (!value || typeof value !== "object" || Array.isArray(value)) throw new Hs256Error("invalid", `${part} is not a JSON object`);
  return value as Record<string, unknown>;
}
