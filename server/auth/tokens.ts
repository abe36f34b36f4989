/**
 * Signed access tokens (JWT, HS256 via jose) with a role and optional room scope.
 *
 * A token is accepted only with an expiry (`exp`), an issue time (`iat`) no older than
 * the cluster's maximum token age, and an audience (`aud`) equal to the cluster name, so
 * a token of one cluster does not open another that happens to share a secret. The key
 * is the cluster's token key (keys.ts), never the cluster secret itself.
 *
 * Tokens travel the way Colyseus SDKs send them: `client.auth.token` becomes an
 * `Authorization: Bearer` header on matchmaking and `_authToken` on the socket, so stock
 * SDKs (Unity's included) work unchanged.
 *
 * @example
 *   const tokens = new TokenService({ key: clusterKeys(secret).token, audience: "tsunagi" });
 *   const jwt = await tokens.issue({ sub: "alice", role: "operator", rooms: ["site-42"] });
 *   const claims = await tokens.verify(jwt); // throws AuthError with a shared code
 */
import { SignJWT } from "jose";
import { Hs256Error, verifyHs256 } from "./hs256.ts";
import { ServerError } from "@colyseus/core";
import { ErrorCode } from "../../proto/index.ts";
import { KEY_BYTES } from "./keys.ts";

export const roles = ["visitor", "host", "operator", "supervisor", "device", "admin"] as const;
export type Role = (typeof roles)[number];

export function isRole(value: unknown): value is Role {
  return typeof value === "string" && (roles as readonly string[]).includes(value);
}

/**
 * Roles that may raise an e-stop (docs/safety.md, "E-stop rights"): everyone who may drive
 * may stop. Read by the teleop room and by the input guard, which lets their e-stops past
 * a flood limit; a visitor's or host's never passes it.
 */
export const estopRoles: readonly Role[] = ["operator", "supervisor", "admin"];
/** Roles that may reset an e-stop. */
export const resetRoles: readonly Role[] = ["supervisor", "admin"];

export interface TokenClaims {
  /** Subject: user, device or service id. */
  sub: string;
  role: Role;
  /** Room ids this token may enter; absent means any room its role allows. */
  rooms?: string[];
  /** Display name, optional. */
  name?: string;
  /** Expiry, seconds since the epoch (set by issue()). */
  exp?: number;
  /** Issued at, seconds since the epoch (set by issue(); verify() returns it). */
  iat?: number;
  /** Device tokens: the enrolment they were issued for (DeviceCredentials.tokenClaims()). */
  ver?: number;
  enr?: string;
}

/** A token problem; `code` is one of TOKEN_MISSING, TOKEN_INVALID, TOKEN_EXPIRED, FORBIDDEN. */
export class AuthError extends ServerError {
  constructor(code: number, message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.name = "AuthError";
  }
}

export interface TokenServiceOptions {
  /** The cluster's token key (keys.ts `clusterKeys(secret).token`). */
  key: Uint8Array;
  /** `aud` claim written and required: the cluster name. */
  audience: string;
  issuer?: string;
  /** Default lifetime of issued tokens. */
  defaultTtlSeconds?: number;
  /** Tokens issued (`iat`) longer ago than this are refused, whatever their `exp`. Default one day. */
  maxAgeSeconds?: number;
}

/** The default of `tokenMaxAgeSeconds` (config.ts): one day. */
export const DEFAULT_TOKEN_MAX_AGE_S = 86_400;

/**
 * How far in the future a token's `iat` may be: an issuer's clock a little ahead of the
 * node's must not make its fresh tokens unusable. `exp` gets no tolerance: a token is
 * refused from the second it expires.
 */
const ISSUED_AHEAD_TOLERANCE_S = 5;

export class TokenService {
  /** HS256 key: the cluster's token key, for verifyHs256; and imported once for jose's signing. */
  private readonly rawKey: Uint8Array;
  private readonly key: Promise<CryptoKey>;
  /** `iss` claim written and required. */
  private readonly issuer: string;
  /** `aud` claim written and required. */
  private readonly audience: string;
  private readonly defaultTtlSeconds: number;
  /** Oldest `iat` accepted, as an age in seconds; also the longest lifetime issue() grants. */
  readonly maxAgeSeconds: number;

  constructor(options: TokenServiceOptions) {
    if (options.key.byteLength < KEY_BYTES) throw new RangeError(`the token key must be at least ${KEY_BYTES} bytes`);
    if (!options.audience) throw new TypeError("audience (the cluster name) is required");
    this.rawKey = Uint8Array.from(options.key);
    this.key = crypto.subtle.importKey("raw", Uint8Array.from(options.key), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
    this.issuer = options.issuer ?? "tsunagi";
    this.audience = options.audience;
    this.maxAgeSeconds = options.maxAgeSeconds ?? DEFAULT_TOKEN_MAX_AGE_S;
    this.defaultTtlSeconds = Math.min(options.defaultTtlSeconds ?? 3600, this.maxAgeSeconds);
  }

  /** Signs a token for `ttlSeconds` (at most maxAgeSeconds: a longer one would be refused before it expired). */
  async issue(claims: Omit<TokenClaims, "exp" | "iat">, ttlSeconds = this.defaultTtlSeconds): Promise<string> {
    if (!isRole(claims.role)) throw new TypeError(`unknown role "${String(claims.role)}"; expected one of ${roles.join(", ")}`);
    if (!claims.sub) throw new TypeError("sub is required");
    if (!(ttlSeconds > 0 && ttlSeconds <= this.maxAgeSeconds)) throw new RangeError(`token lifetime ${ttlSeconds} s is outside (0, ${this.maxAgeSeconds}] (the maximum token age)`);
    const payload: Record<string, unknown> = { role: claims.role };
    if (claims.rooms) payload.rooms = claims.rooms;
    if (claims.name) payload.name = claims.name;
    if (claims.ver !== undefined) payload.ver = claims.ver;
    if (claims.enr !== undefined) payload.enr = claims.enr;
    return new SignJWT(payload)
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setSubject(claims.sub)
      .setIssuer(this.issuer)
      .setAudience(this.audience)
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
      .sign(await this.key);
  }

  async verify(token: string | undefined | null): Promise<TokenClaims> {
    if (!token) throw new AuthError(ErrorCode.TOKEN_MISSING, "no token: send one as client.auth.token / Authorization: Bearer");
    let payload: Record<string, unknown>;
    try {
      payload = verifyHs256(token, this.rawKey, { issuer: this.issuer, audience: this.audience });
    } catch (error) {
      if (error instanceof Hs256Error && error.reason === "expired") {
        throw new AuthError(ErrorCode.TOKEN_EXPIRED, "token expired: get a new one", { cause: error });
      }
      throw new AuthError(ErrorCode.TOKEN_INVALID, `token rejected: ${(error as Error).message}`, { cause: error });
    }
    // verifyHs256 checked that iat is a number; exp has no tolerance, iat the one below.
    const age = Math.floor(Date.now() / 1000) - (payload.iat as number);
    if (age > this.maxAgeSeconds) {
      throw new AuthError(ErrorCode.TOKEN_EXPIRED, `token expired: issued ${age} s ago, more than the maximum token age (${this.maxAgeSeconds} s); get a new one`);
    }
    if (age < -ISSUED_AHEAD_TOLERANCE_S) throw new AuthError(ErrorCode.TOKEN_INVALID, "token rejected: issued in the future (iat)");
    if (typeof payload.sub !== "string" || !isRole(payload.role)) {
      throw new AuthError(ErrorCode.TOKEN_INVALID, "token rejected: missing sub or unknown role");
    }
    const rooms = Array.isArray(payload.rooms) ? payload.rooms.filter((r): r is string => typeof r === "string") : undefined;
    return {
      sub: payload.sub,
      role: payload.role,
      rooms,
      name: typeof payload.name === "string" ? payload.name : undefined,
      exp: typeof payload.exp === "number" ? payload.exp : undefined,
      ver: typeof payload.ver === "number" ? payload.ver : undefined,
      enr: typeof payload.enr === "string" ? payload.enr : undefined,
      iat: payload.iat as number,
    };
  }
}

/**
 * The token service of this process. Colyseus calls a room's static onAuth without a
 * reference to the node, and Colyseus itself is one matchmaker per process, so the
 * process-wide authority is set once by RegionNode.start().
 */
let currentAuthority: TokenService | undefined;
export function setAuthority(service: TokenService | undefined) { currentAuthority = service; }
export function authority(): TokenService {
  if (!currentAuthority) throw new ServerError(ErrorCode.INTERNAL, "token service not initialised");
  return currentAuthority;
}
