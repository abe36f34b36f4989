/**
 * Where a process's log lines go and in what form: JSON lines (pino's own) for files,
 * pipes and log collectors, and human-readable lines (pino-pretty) for a person at a
 * terminal. `auto` picks by whether stdout is a terminal. The node and the edge adapter
 * both log through this, so the rule is the same for each.
 *
 * @example
 *   const logger = pino({ level: "info" }, logDestination("auto"));
 */
import type { DestinationStream } from "pino";
import pretty from "pino-pretty";

export const LOG_FORMATS = ["auto", "json", "pretty"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** Whether `format` means human-readable lines on this process's stdout. */
export function prettyLogs(format: LogFormat, stdout: { isTTY?: boolean } = process.stdout): boolean {
  return format === "pretty" || (format === "auto" && stdout.isTTY === true);
}

/**
 * The stream for pino: undefined (pino's default, JSON to stdout) unless the lines are
 * for a person, then pino-pretty writing synchronously to stdout (a log line printed
 * before a crash is not lost in a buffer).
 */
export function logDestination(format: LogFormat): DestinationStream | undefined {
  if (!prettyLogs(format)) return undefined;
  // One line per entry; the region and node are in the banner, so they are left out here.
  return pretty({ colorize: true, sync: true, singleLine: true, translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname,region,node" });
}
