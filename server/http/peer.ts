/**
 * Who sent an HTTP request, from something the sender cannot choose: the transport stamps
 * each request with the TCP peer's address in `PEER_ADDRESS_HEADER`, after dropping any
 * copy the client sent. `X-Forwarded-For` counts only when the peer is a configured proxy.
 *
 * @example
 *   if (!isLoopbackAddress(peerAddress(request))) return codedErrorResponse(ErrorCode.FORBIDDEN, "loopback only");
 *   const key = clientAddress(request, config.http.trustedProxies);
 */
import { isIP } from "node:net";

/** Set by the transport to the TCP peer's address; never taken from the client. */
export const PEER_ADDRESS_HEADER = "x-tsunagi-peer-address";

/** The TCP peer's address as the transport saw it ("" when unknown). */
export function peerAddress(request: Request): string {
  return normaliseAddress(request.headers.get(PEER_ADDRESS_HEADER) ?? "");
}

/** `::ffff:127.0.0.1` → `127.0.0.1`, and uWS's zero-padded IPv6 text compared as written. */
export function normaliseAddress(address: string): string {
  const trimmed = address.trim();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(trimmed);
  return mapped ? mapped[1] : trimmed.toLowerCase();
}

/** 127.0.0.0/8 or ::1 (in any of its spellings). */
export function isLoopbackAddress(address: string): boolean {
  const normalised = normaliseAddress(address);
  if (isIP(normalised) === 4) return normalised.startsWith("127.");
  if (isIP(normalised) === 6) return /^(0{0,4}:){7}0{0,3}1$|^::1$/.test(normalised);
  return false;
}

/**
 * The client's address: the peer itself, or, when the peer is one of `trustedProxies`,
 * the rightmost `X-Forwarded-For` entry that is not a trusted proxy (entries left of it
 * are the client's own claims).
 */
export function clientAddress(request: Request, trustedProxies: readonly string[]): string {
  const peer = peerAddress(request);
  if (!trustedProxies.length || !trustedProxies.includes(peer)) return peer;
  const forwarded = (request.headers.get("x-forwarded-for") ?? "").split(",").map(normaliseAddress).filter(Boolean);
  for (let i = forwarded.length - 1; i >= 0; i--) {
    if (!trustedProxies.includes(forwarded[i])) return forwarded[i];
  }
  return peer;
}
