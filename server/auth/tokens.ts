/**
 * Signed access tokens (JWT, HS256 via jose) with a role and optional room scope.
 *
 * Tokens travel the way Colyseus SDKs send them: `client.auth.token` becomes an
 * `Authorization: Bearer` header on matchmaking and `_authToken` on the socket, so stock
 * SDKs (Unity's included) work unchanged.
 *
 * @example
 *   const tokens = new TokenService({ secret, issuer: "tsunagi" });
 *   const jwt = await tokens.issue({ sub: "alice", role: "operator", rooms: ["site-42"] });
 *   const claims = await tokens.verify(jwt); // throws AuthError with a shared code
 */
import { SignJWT, jwtVerify, errors as joseErrors } from "jose";
import { ServerError } from "@colyseus/core";
import { ErrorCode } from "../../proto/index.ts";

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
}

/** A token problem; `code` is one of TOKEN_MISSING, TOKEN_INVALID, TOKEN_EXPIRED, FORBIDDEN. */
export class AuthError extends ServerError {
  constructor(code: number, message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.name = "AuthError";
  }
}

export interface TokenServiceOptions {
  secret: string;
  issuer?: string;
  /** Default lifetime of issued tokens. */
  defaultTtlSeconds?: number;
}

export class TokenService {
  /** HMAC key derived from the shared cluster secret. */
  private readonly key: Uint8Array;
  /** `iss` claim written and required. */
  private readonly issuer: string;
  private readonly defaultTtlSeconds: number;

  constructor(options: TokenServiceOptions) {
    this.key = new TextEncoder().encode(options.secret);
    this.issuer = options.issuer ?? "tsunagi";
    this.defaultTtlSeconds = options.defaultTtlSeconds ?? 3600;
  }

  async issue(claims: Omit<TokenClaims, "exp">, ttlSeconds = this.defaultTtlSeconds): Promise<string> {
    if (!isRole(claims.role)) throw new TypeError(`unknown role "${String(claims.role)}"; expected one of ${roles.join(", ")}`);
    if (!claims.sub) throw new TypeError("sub is required");
    const payload: Record<string, unknown> = { role: claims.role };
    if (claims.rooms) payload.rooms = claims.rooms;
    if (claims.name) payload.name = claims.name;
    return new SignJWT(payload)
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setSubject(claims.sub)
      .setIssuer(this.issuer)
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
      .sign(this.key);
  }

  async verify(token: string | undefined | null): Promise<TokenClaims> {
    if (!token) throw new AuthError(ErrorCode.TOKEN_MISSING, "no token: send one as client.auth.token / Authorization: Bearer");
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, this.key, { issuer: this.issuer, algorithms: ["HS256"] }));
    } catch (error) {
      if (error instanceof joseErrors.JWTExpired) {
        throw new AuthError(ErrorCode.TOKEN_EXPIRED, "token expired: get a new one", { cause: error });
      }
      throw new AuthError(ErrorCode.TOKEN_INVALID, `token rejected: ${(error as Error).message}`, { cause: error });
    }
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
    };
  }
}

/** Throws FORBIDDEN unless the claims' role and room scope admit this room. */
export function authorizeRoom(claims: TokenClaims, room: { roomName: string; roomId?: string; allowedRoles: readonly Role[] }): void {
  if (!room.allowedRoles.includes(claims.role) && claims.role !== "admin") {
    throw new AuthError(ErrorCode.FORBIDDEN, `role "${claims.role}" may not join "${room.roomName}" (allowed: ${room.allowedRoles.join(", ")})`);
  }
  if (claims.rooms && room.roomId && !claims.rooms.includes(room.roomId)) {
    throw new AuthError(ErrorCode.FORBIDDEN, `token is scoped to rooms ${claims.rooms.join(", ")}, not "${room.roomId}"`);
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

/** Dev-mode secret: fixed so tokens survive restarts of `npm start`; never valid outside dev mode. */
export const DEV_SECRET = "tsunagi-dev-mode-secret-not-for-production-use";
