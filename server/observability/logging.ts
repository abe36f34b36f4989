/**
 * JSON logs through pino. Each node's logger carries its region and node id, so lines
 * from several nodes in one file can be told apart.
 */
import { pino, type Logger } from "pino";

export type { Logger };

export function createLogger(options: { level: string; regionId: string; nodeId: string }): Logger {
  return pino({
    level: options.level,
    base: { region: options.regionId, node: options.nodeId },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}
