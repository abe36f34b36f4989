/**
 * Who may do what with a room: the one rule, applied wherever a room is created, joined
 * or administered, over WebSocket or HTTP alike (docs/protocol.md, "Who may do what").
 *
 * - Roles: each room type declares an `access` rule: the roles that may join, create one
 *   through matchmaking, name a new one, and administer it. `admin` passes every role check.
 * - Scope: a token with a `rooms` claim may only touch what it names. It joins and
 *   administers only rooms it names; it creates only rooms it names, never an unnamed one
 *   (whose id nobody chose, so no scope can name it); and a room it creates may bind only
 *   the devices it names as `device:<id>` (a teleop room claims its machines). A name
 *   in the scope is the issuer's grant of that name: it may create it even if its role
 *   may not name rooms unscoped.
 * - Naming: an unscoped token names a new room only if its role is in `name`; others
 *   create unnamed rooms (a random id) or join named ones.
 *
 * @example
 *   export const sessionAccess: RoomAccess = { join: roles, create: roles, name: ["host", "supervisor"] };
 *   authorizeCreate(claims, sessionAccess, { roomType: "session", name: options.roomId });
 *   authorizeScope(claims, ["site-7"], "room \"site-7\"");
 */
import { ErrorCode } from "../../proto/index.ts";
import { AuthError, type Role, type TokenClaims } from "./tokens.ts";

/** A room type's rule. Empty `create`: only the node opens such rooms (expo halls through their HTTP route). */
export interface RoomAccess {
  /** Roles that may join a room of this type. */
  join: readonly Role[];
  /** Roles that may create one through matchmaking. */
  create: readonly Role[];
  /** Roles that may choose a new room's id (`roomId`) without a scope naming it. */
  name: readonly Role[];
  /** Roles that may administer one over HTTP (open, close, read analytics). */
  admin?: readonly Role[];
}

/** How a device is named in a `rooms` scope, so a device id never passes for a room of that name. */
export const DEVICE_SCOPE_PREFIX = "device:";

/** The access rule a room class declares as `static access`, if any. */
export function accessOf(roomClass: unknown): RoomAccess | undefined {
  const access = (roomClass as { access?: RoomAccess } | undefined)?.access;
  return access && Array.isArray(access.join) && Array.isArray(access.create) && Array.isArray(access.name) ? access : undefined;
}

/** FORBIDDEN unless `claims.role` is one of `roles` (admin always is). */
export function authorizeRole(claims: TokenClaims, roles: readonly Role[], what: string): void {
  if (claims.role === "admin" || roles.includes(claims.role)) return;
  throw new AuthError(ErrorCode.FORBIDDEN, `role "${claims.role}" may not ${what} (allowed: ${roles.join(", ") || "no role"})`);
}

/** FORBIDDEN when the token has a scope and it names none of `names` (the ids that identify the target). */
export function authorizeScope(claims: TokenClaims, names: readonly string[], what: string): void {
  if (!claims.rooms || names.some((name) => claims.rooms!.includes(name))) return;
  throw new AuthError(ErrorCode.FORBIDDEN, `token is scoped to ${claims.rooms.join(", ") || "nothing"}, not ${what}`);
}

/**
 * Creating a room of `roomType` named `name` (undefined: a random id), binding `devices`:
 * the role may create it, the name is granted (by the scope, or the role may name rooms),
 * and a scoped token names every device. Throws AuthError FORBIDDEN.
 */
export function authorizeCreate(claims: TokenClaims, access: RoomAccess, request: { roomType: string; name?: string; devices?: readonly unknown[] }): void {
  const { roomType, name } = request;
  authorizeRole(claims, access.create, `create a ${roomType} room`);
  if (claims.rooms) {
    if (name === undefined) {
      throw new AuthError(ErrorCode.FORBIDDEN, `a scoped token creates only the rooms it names (${claims.rooms.join(", ") || "none"}): give one as roomId`);
    }
    authorizeScope(claims, [name], `${roomType} room "${name}"`);
    for (const device of request.devices ?? []) {
      if (typeof device === "string" && !claims.rooms.includes(DEVICE_SCOPE_PREFIX + device)) {
        throw new AuthError(ErrorCode.FORBIDDEN, `token's scope does not name device "${device}" (as ${DEVICE_SCOPE_PREFIX}${device}): it may not bind it to a room`);
      }
    }
  } else if (name !== undefined) {
    authorizeRole(claims, access.name, `name a new ${roomType} room (leave roomId out for one with a random id)`);
  }
}
