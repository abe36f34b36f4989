/**
 * The node's logs through pino: JSON lines, or human-readable ones at a terminal
 * (common/logOutput.ts). Each node's logger carries its region and node id, so lines
 * from several nodes in one file can be told apart.
 */
import { pino, type Logger } from "pino";
import { logDestination, type LogFormat } from "../../common/logOutput.ts";

export type { Logger };

export function createLogger(options: { level: string; format?: LogFormat; regionId: string; nodeId: string }): Logger {
  const settings = {
    level: options.level,
    base: { region: options.regionId, node: options.nodeId },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  const destination = logDestination(options.format ?? "json");
  return destination ? pino(settings, destination) : pino(settings);
}
