/**
 * The operator console's flags, checked once at start: each bad flag is a UsageError
 * that names it (exit 2, with USAGE on stderr). Defaults from the environment come from
 * cli/env.ts; the node URL goes through common/nodeUrl.ts like every tool's.
 *
 * @example
 *   const options = parseConsoleArgs(["--node", "http://127.0.0.1:2567", "--room", "teleop-demo", "--device", "excavator-1"], cliEnv());
 *   // { node: "http://127.0.0.1:2567", room: "teleop-demo", device: "excavator-1", role: "operator", rateHz: 50, watchHz: 2 }
 */
import { parseArgs } from "node:util";
import { nodeUrl } from "../../common/nodeUrl.ts";
import { DEVICE_ID_PATTERN, DEVICE_ID_TEXT } from "../../proto/ids.ts";
import { accessToken, tokenFlags, type CliEnv } from "../env.ts";
import { SecretError } from "../../common/secrets.ts";

/** The roles the console may ask of /dev/token. */
export const consoleRoles = ["operator", "supervisor", "visitor"] as const;
export type ConsoleRole = (typeof consoleRoles)[number];

/** What the console was asked to do. */
export interface ConsoleOptions {
  /** The region node's base URL, without a trailing slash. */
  node: string;
  /** The teleop room to join, by id. */
  room: string;
  /** The device to drive. */
  device: string;
  /** The role asked of /dev/token when no token is given. */
  role: ConsoleRole;
  /** The access token: --token-file or --token, else TSUNAGI_TOKEN_FILE or TSUNAGI_TOKEN; undefined asks the node for a dev token. */
  token?: string;
  /** Problems that do not stop the console (a token given as a flag), printed at start. */
  warnings: string[];
  /** Commands per second while driving. */
  rateHz: number;
  /** Status lines per second; 0: only on "status". */
  watchHz: number;
}

/** A flag the console cannot use; the message names it. */
export class UsageError extends Error {}

export const USAGE = `usage: npm run operator -- --node URL --room ID --device ID [--role operator|supervisor|visitor]
                            [--token-file FILE] [--rate-hz N] [--watch-hz N] [--help]
  --node URL       a region node's http(s) base URL, e.g. http://127.0.0.1:2567 (required)
  --room ID        the teleop room to join, by id, e.g. teleop-demo (required)
  --device ID      the device to drive, e.g. excavator-1 (required)
  --role ROLE      operator (default), supervisor or visitor: the role asked of /dev/token
  --token-file FILE  a file holding the access token (default: env TSUNAGI_TOKEN_FILE or
                   TSUNAGI_TOKEN; without any, a dev token from GET <node>/dev/token, which
                   only a node in dev mode serves). --token JWT works too, with a warning:
                   the command line shows in the process list
  --rate-hz N      commands per second while driving, in (0, 1000] (default 50)
  --watch-hz N     status lines per second, 0 = only on "status" (default 2)
  --help           this text`;

/** A plain decimal number ("0.3", "-2", "1e-3"), not "", "0x10", "Infinity" or "1_000". */
const numberPattern = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/** `text` as a finite number, or undefined when it is not one. */
export function parseNumber(text: string): number | undefined {
  if (!numberPattern.test(text.trim())) return undefined;
  const value = Number(text);
  return Number.isFinite(value) ? value : undefined;
}

/** The console's options from its arguments, or "help"; throws UsageError naming the bad flag. */
export function parseConsoleArgs(argv: string[], env: CliEnv): ConsoleOptions | "help" {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv, strict: true, allowPositionals: false,
      options: {
        node: { type: "string" },
        room: { type: "string" },
        device: { type: "string" },
        role: { type: "string", default: "operator" },
        ...tokenFlags,
        "rate-hz": { type: "string", default: "50" },
        "watch-hz": { type: "string", default: "2" },
        help: { type: "boolean", default: false },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const values = parsed.values;
  if (values.help) return "help";

  if (values.node === undefined) throw new UsageError("--node is required (a region node's http base URL)");
  let node: string;
  try {
    node = nodeUrl(values.node);
  } catch (error) {
    throw new UsageError(`--node: ${(error as Error).message}`);
  }
  if (values.room === undefined || values.room === "") throw new UsageError("--room is required (the teleop room's id)");
  if (values.device === undefined) throw new UsageError("--device is required (the device to drive)");
  if (!DEVICE_ID_PATTERN.test(values.device)) throw new UsageError(`--device must match ${DEVICE_ID_TEXT}, got ${JSON.stringify(values.device)}`);
  const role = values.role!;
  if (!(consoleRoles as readonly string[]).includes(role)) throw new UsageError(`--role must be one of ${consoleRoles.join(", ")}, got ${JSON.stringify(role)}`);
  let token: ReturnType<typeof accessToken>;
  try {
    token = accessToken(values, env);
  } catch (error) {
    if (error instanceof SecretError) throw new UsageError(error.message);
    throw error;
  }
  const rateHz = parseNumber(values["rate-hz"]!);
  if (rateHz === undefined || !(rateHz > 0 && rateHz <= 1000)) throw new UsageError(`--rate-hz must be a number in (0, 1000], got ${JSON.stringify(values["rate-hz"])}`);
  const watchHz = parseNumber(values["watch-hz"]!);
  if (watchHz === undefined || !(watchHz >= 0 && watchHz <= 100)) throw new UsageError(`--watch-hz must be a number in [0, 100] (0: never), got ${JSON.stringify(values["watch-hz"])}`);
  return {
    node, room: values.room, device: values.device, role: role as ConsoleRole,
    token: token.token, rateHz, watchHz, warnings: token.warning ? [token.warning] : [],
  };
}
