/**
 * Server-to-server claims that travel through a client: the opening of a hall's zone
 * rooms and a visitor's zone handoff. Both ride in Colyseus room options, which a client
 * can also set when it matchmakes, so each is HMAC-signed with the cluster's
 * room-option key (not the token key: a token's signature is no room option's) and
 * bounded in time; a room believes only what verifies.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { nodeContext } from "../../server/context.ts";

export interface Signed { payload: string; mac: string }

function mac(purpose: string, payload: string): string {
  return createHmac("sha256", nodeContext().roomOptionsKey).update(purpose).update("\0").update(payload).digest("base64url");
}

/** Signs `value` for `purpose`, valid for `ttlMs`. */
export function sign(purpose: string, value: unknown, ttlMs: number): Signed {
  const payload = JSON.stringify({ v: value, exp: Date.now() + ttlMs });
  return { payload, mac: mac(purpose, payload) };
}

/** The signed value, or undefined when `signed` is absent, forged, for another purpose or expired. */
export function verify<T>(purpose: string, signed: unknown): T | undefined {
  if (!signed || typeof signed !== "object") return undefined;
  const { payload, mac: given } = signed as Partial<Signed>;
  if (typeof payload !== "string" || typeof given !== "string") return undefined;
  const expected = Buffer.from(mac(purpose, payload));
  const actual = Buffer.from(given);
  if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) return undefined;
  try {
    const { v, exp } = JSON.parse(payload) as { v: T; exp: number };
    return typeof exp === "number" && exp >= Date.now() ? v : undefined;
  } catch {
    return undefined;
  }
}
