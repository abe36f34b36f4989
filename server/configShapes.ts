/**
 * Shapes several sections of the node's configuration share (server/config.ts and the
 * settings files beside the pieces they configure).
 */
import { z } from "zod";
import { RedisAddressError, parseRedisAddress } from "./redisAddress.ts";

/** A Redis address setting: redis://, rediss://, or redis-sentinel:// (server/redisAddress.ts). */
export const redisUrlShape = z.string().superRefine((address, ctx) => {
  try {
    parseRedisAddress(address);
  } catch (error) {
    if (!(error instanceof RedisAddressError)) throw error;
    ctx.addIssue({ code: "custom", message: error.message });
  }
});
