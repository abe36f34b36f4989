/**
 * Dev mode only: `GET /dev/token` signs a token for any role, `GET /dev/device` enrols a
 * device and answers its secret, for demos and benches without a provisioning tool.
 */
import { createEndpoint } from "@colyseus/core";
import { ErrorCode } from "../../proto/index.ts";
import { isRole, type TokenService } from "../auth/tokens.ts";
import type { NodeContext } from "../context.ts";
import { codedErrorResponse, jsonResponse, textResponse } from "./responses.ts";

/** The longest a dev token lives, and its default lifetime, s. */
const DEV_TOKEN_MAX_TTL_S = 86_400;
const DEV_TOKEN_DEFAULT_TTL_S = 3600;

export function devEndpoints(context: NodeContext, tokens: TokenService) {
  return {
    devToken: createEndpoint("/dev/token", { method: "GET" }, async (ctx: { query?: Record<string, unknown> }) => {
      const role = ctx.query?.role ?? "visitor";
      if (!isRole(role)) return codedErrorResponse(ErrorCode.WRONG_TYPE, `unknown role "${String(role).slice(0, 40)}"`);
      const sub = typeof ctx.query?.sub === "string" ? ctx.query.sub.slice(0, 64) : `${role}-${Math.random().toString(36).slice(2, 8)}`;
      const rooms = typeof ctx.query?.room === "string" ? [ctx.query.room] : undefined;
      const ttl = Number(ctx.query?.ttl ?? DEV_TOKEN_DEFAULT_TTL_S);
      const longest = Math.min(DEV_TOKEN_MAX_TTL_S, tokens.maxAgeSeconds);
      const ttlSeconds = Number.isFinite(ttl) && ttl > 0 && ttl <= longest ? ttl : Math.min(DEV_TOKEN_DEFAULT_TTL_S, longest);
      return textResponse(200, await tokens.issue({ sub, role, rooms }, ttlSeconds));
    }),
    devDevice: createEndpoint("/dev/device", { method: "GET" }, async (ctx: { query?: Record<string, unknown> }) => {
      const id = String(ctx.query?.id ?? "");
      const deviceClass = String(ctx.query?.class ?? "other").slice(0, 32);
      try {
        const { record, deviceSecret } = await context.devices.enroll(id, deviceClass);
        return jsonResponse(200, { deviceId: record.deviceId, deviceClass: record.deviceClass, version: record.version, deviceSecret });
      } catch (error) {
        return codedErrorResponse(ErrorCode.WRONG_TYPE, (error as Error).message);
      }
    }),
  };
}
