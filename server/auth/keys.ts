/**
 * The cluster's keys. One secret is shared by the nodes of a cluster (`authSecret`);
 * nothing signs with it directly. HKDF-SHA256 derives one key per purpose from it, so a
 * holder of one key can do that one thing only:
 *
 * - `token`: signs and checks access tokens (HS256). Identity services that issue
 *   tokens get this key (`npm run keys -- token-key`).
 * - `device`: derives device secrets from enrolment records. The provisioning tool
 *   (`npm run devices`) gets this key (`npm run keys -- device-key`), never the token key,
 *   so a provisioning box cannot mint access tokens.
 * - `roomOptions`: signs server-to-server claims that travel through clients in room
 *   options (hall zones, visitor handoffs); only nodes hold it.
 * - `node`: node-to-node calls (a room handed to another region): only nodes hold it
 *   (server/auth/nodeAuth.ts).
 *
 * @example
 *   const keys = clusterKeys(clusterSecret(config));
 *   new TokenService({ key: keys.token, audience: config.clusterName });
 */
import { hkdfSync } from "node:crypto";

export type KeyPurpose = "token" | "device" | "roomOptions" | "node";

export type ClusterKeys = Readonly<Record<KeyPurpose, Buffer>>;

/** Bytes of every derived key. */
export const KEY_BYTES = 32;

/** A derived key written as text (files, environment): its bytes in hex. */
export const KEY_HEX_PATTERN = /^[0-9a-f]{64}$/;

/** The shortest cluster secret accepted anywhere. */
export const MIN_SECRET_LENGTH = 32;

/** HKDF's salt: names the scheme, so these keys differ from any other use of the secret. */
const HKDF_SALT = "tsunagi-cluster-keys";

/** HKDF's info for each purpose; a new purpose gets a new label, never a reused one. */
const HKDF_INFO: Record<KeyPurpose, string> = {
  token: "tsunagi/v1 access-token signing",
  device: "tsunagi/v1 device-secret derivation",
  roomOptions: "tsunagi/v1 room-option signing",
  node: "tsunagi/v1 node-to-node calls",
};

/** The key for one purpose, derived from the cluster secret. */
export function deriveKey(clusterSecret: string, purpose: KeyPurpose): Buffer {
  if (clusterSecret.length < MIN_SECRET_LENGTH) throw new RangeError(`the cluster secret must be at least ${MIN_SECRET_LENGTH} characters`);
  return Buffer.from(hkdfSync("sha256", clusterSecret, HKDF_SALT, HKDF_INFO[purpose], KEY_BYTES));
}

/** Every purpose's key, derived once at start. */
export function clusterKeys(clusterSecret: string): ClusterKeys {
  return Object.freeze({
    token: deriveKey(clusterSecret, "token"),
    device: deriveKey(clusterSecret, "device"),
    roomOptions: deriveKey(clusterSecret, "roomOptions"),
    node: deriveKey(clusterSecret, "node"),
  });
}

/** A derived key from its hex text (a key file or variable); throws naming `source` when it is not one. */
export function keyFromHex(text: string, source: string): Buffer {
  const trimmed = text.trim().toLowerCase();
  if (!KEY_HEX_PATTERN.test(trimmed)) throw new TypeError(`${source} must hold a derived key: ${KEY_BYTES * 2} hex characters`);
  return Buffer.from(trimmed, "hex");
}

/**
 * Dev-mode secret: fixed so tokens survive restarts of `npm start`. Only a dev-mode node
 * uses it (loopback host, no Redis: config.ts refuses anything else), through
 * clusterSecret() below and nowhere else.
 */
const DEV_SECRET = "tsunagi-dev-mode-secret-not-for-production-use";

/**
 * The cluster secret a node runs on: its `authSecret`, or the dev secret in dev mode
 * without one. Throws outside dev mode without a secret: nothing may fall back to the
 * dev secret there.
 */
export function clusterSecret(config: { authSecret?: string; devMode: boolean }): string {
  if (config.authSecret) return config.authSecret;
  if (config.devMode) return DEV_SECRET;
  throw new Error("no authSecret outside dev mode: refusing to run on the built-in dev secret");
}
