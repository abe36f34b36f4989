/**
 * Dev mode only: `GET /dev/token` signs a token for any role, `GET /dev/device` enrols a
 * device and answers its secret, for demos and benches without a provisioning tool.
 * Their rows answer loopback peers only, and never with CORS: no web page may read them.
 */
import { ErrorCode } from "../../proto/index.ts";
import { isRole, type TokenService } from "../auth/tokens.ts";
import type { NodeContext } from "../context.ts";
import { codedErrorResponse, jsonResponse, textResponse } from "./responses.ts";
import type { HttpRoute, RouteRule } from "./RouteTable.ts";

/** The longest a dev token lives, and its default lifetime, s. */
const DEV_TOKEN_MAX_TTL_S = 86_400;
const DEV_TOKEN_DEFAULT_TTL_S = 3600;

/** What every dev route is: a GET for loopback peers, no body, no CORS. */
const DEV_ROUTE: Omit<RouteRule, "path"> = { methods: ["GET"], bodyLimit: 0, access: "loopback", cors: false };

export function devRoutes(context: NodeContext, tokens: TokenService): HttpRoute[] {
  return [
    { ...DEV_ROUTE, path: "/dev/token", handle: async (request) => {
      const query = new URL(request.url).searchParams;
      const role = query.get("role") ?? "visitor";
      if (!isRole(role)) return codedErrorResponse(ErrorCode.WRONG_TYPE, `unknown role "${role.slice(0, 40)}"`);
      const asked = query.get("sub");
      if (asked !== null && (asked.length === 0 || asked.length > 64)) return codedErrorResponse(ErrorCode.WRONG_TYPE, "sub must be 1 to 64 characters (or left out for a random one)");
      const sub = asked ?? `${role}-${Math.random().toString(36).slice(2, 8)}`;
      const room = query.get("room");
      const rooms = room !== null ? [room] : undefined;
      const ttl = Number(query.get("ttl") ?? DEV_TOKEN_DEFAULT_TTL_S);
      const longest = Math.min(DEV_TOKEN_MAX_TTL_S, tokens.maxAgeSeconds);
      const ttlSeconds = Number.isFinite(ttl) && ttl > 0 && ttl <= longest ? ttl : Math.min(DEV_TOKEN_DEFAULT_TTL_S, longest);
      return textResponse(200, await tokens.issue({ sub, role, rooms }, ttlSeconds));
    } },
    { ...DEV_ROUTE, path: "/dev/device", handle: async (request) => {
      const query = new URL(request.url).searchParams;
      const id = query.get("id") ?? "";
      const deviceClass = (query.get("class") ?? "other").slice(0, 32);
      try {
        const { record, deviceSecret } = await context.devices.enroll(id, deviceClass);
        return jsonResponse(200, { deviceId: record.deviceId, deviceClass: record.deviceClass, version: record.version, deviceSecret });
      } catch (error) {
        return codedErrorResponse(ErrorCode.WRONG_TYPE, (error as Error).message);
      }
    } },
  ];
}
