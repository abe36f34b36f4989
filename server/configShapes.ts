/**
 * Shapes several sections of the node's configuration share (server/config.ts and the
 * settings files beside the pieces they configure).
 */
import { z } from "zod";

/** A Redis URL setting: redis:// or rediss://. */
export const redisUrlShape = z.string().regex(/^rediss?:\/\//, "a redis:// or rediss:// URL");
