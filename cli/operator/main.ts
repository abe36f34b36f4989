/**
 * `npm run operator -- --node URL --room ID --device ID [--role operator|supervisor|visitor]
 *   [--token JWT] [--rate-hz N] [--watch-hz N]`
 *
 * An operator console on a terminal: joins a teleop room, drives one device through
 * OperatorControls, and reads commands line by line from stdin (a terminal or a pipe).
 * Every output line on stdout starts with a prefix ("status: ", "lease: ", "error: ",
 * ...) so scripts can parse it; `help` lists the commands.
 *
 * Exit codes (cli/env.ts): 0 after quit, end of input, SIGINT or SIGTERM; 1 when the join
 * fails or the session ends on its own (or on an internal error); 2 on bad usage.
 *
 * The pieces: args.ts (flags), commands.ts (the command lines), Console.ts (the
 * terminal), format.ts (the lines' text), ConsoleCommands.ts (what each command does),
 * CommandQueue.ts (their order; e-stops skip it), OperatorConsole.ts (join, events and
 * the bounded way out, which always stops the device and lets the lease go). This file
 * wires them to the process: signals, a closed stdout, unexpected errors.
 */
import { ErrorCode } from "../../proto/index.ts";
import { TsunagiError } from "../../client-sdk/errors.ts";
import { cliEnv, runCli, usageError } from "../env.ts";
import { USAGE, UsageError, parseConsoleArgs } from "./args.ts";
import { helpLines } from "./commands.ts";
import { Console } from "./Console.ts";
import { OperatorConsole } from "./OperatorConsole.ts";

const TOOL = "operator";

async function main(): Promise<number> {
  let options;
  try {
    options = parseConsoleArgs(process.argv.slice(2), cliEnv());
  } catch (error) {
    if (error instanceof UsageError) return usageError(TOOL, USAGE, error.message);
    throw error;
  }
  if (options === "help") {
    process.stdout.write(`${USAGE}\ncommands (one a line on stdin):\n${helpLines.map((line) => `  ${line}\n`).join("")}`);
    return 0;
  }

  for (const warning of options.warnings) process.stderr.write(`${TOOL}: warning: ${warning}\n`);
  const terminal = new Console();
  const operator = new OperatorConsole(options, terminal, { exitNow: (code) => process.exit(code) });
  const failed = (error: unknown) => {
    terminal.report(new TsunagiError(ErrorCode.INTERNAL, `unexpected error: ${(error as Error)?.message ?? String(error)}`, { cause: error }));
    void operator.exit(1);
  };
  let signals = 0;
  const onSignal = () => {
    // A second signal while exiting: go now (the room ends the lease of a dropped connection).
    if (++signals > 1) process.exit(0);
    void operator.exit(0);
  };
  // Nobody reads the output any more (a closed pipe): nobody sees what the machine does; stop it.
  process.stdout.on("error", () => void operator.exit(1));
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  process.on("uncaughtException", failed);
  process.on("unhandledRejection", failed);
  void operator.run().catch((error) => {
    terminal.report(error);
    void operator.exit(1);
  });
  return operator.exited;
}

runCli(TOOL, main);
