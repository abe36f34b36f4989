/**
 * `npm run bench -- <name> [--flag value ...] [--timeout <s>]`: runs one bench and
 * prints its figures as exactly one JSON line on stdout; progress goes to stderr.
 * Exit codes: 0 done, 1 failed or timed out, 2 bad usage, 130/143 interrupted.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { z } from "zod";
import type { BenchDefinition } from "./lib/bench.ts";
import { transportBench } from "./transport.ts";
import { credentialsBench } from "./credentials.ts";
import { controlBench } from "./control.ts";
import { expoBench } from "./expo.ts";
import { connectionsBench } from "./connections.ts";
import { httpBodyBench } from "./http-body.ts";
import { handoffBench } from "./handoff.ts";
import { voiceBench } from "./voice.ts";
import { mqttBench } from "./mqtt.ts";

const benches: Record<string, BenchDefinition> = {
  transport: transportBench,
  credentials: credentialsBench,
  control: controlBench,
  expo: expoBench,
  connections: connectionsBench,
  "http-body": httpBodyBench,
  handoff: handoffBench,
  voice: voiceBench,
  mqtt: mqttBench,
};

const timeoutFlag = z.coerce.number().positive().optional();

/** The command-line spelling of an option: `estopRounds` is `--estop-rounds`. */
function flagName(option: string): string {
  return option.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
}

function usage(): string {
  const lines = ["usage: npm run bench -- <name> [--flag value ...] [--timeout <seconds>]", "benches:"];
  for (const [name, bench] of Object.entries(benches)) {
    const defaults = Object.entries(bench.options.parse({})).map(([option, value]) => `--${flagName(option)} ${value}`).join(" ");
    lines.push(`  ${name}: ${bench.description}`, `    flags (defaults): ${defaults}`);
  }
  return lines.join("\n");
}

function exitWithUsage(problem: string): never {
  process.stderr.write(`${problem}\n${usage()}\n`);
  process.exit(2);
}

function parseFlags(bench: BenchDefinition, args: string[]) {
  const flags: ParseArgsConfig["options"] = { timeout: { type: "string" } };
  const optionOfFlag = new Map(Object.keys(bench.options.shape).map((option) => [flagName(option), option]));
  for (const flag of optionOfFlag.keys()) flags[flag] = { type: "string" };
  let values: Record<string, unknown>;
  try {
    ({ values } = parseArgs({ args, options: flags, strict: true, allowPositionals: false }));
  } catch (error) {
    exitWithUsage((error as Error).message);
  }
  const { timeout, ...benchFlags } = values;
  const options = bench.options.safeParse(Object.fromEntries(Object.entries(benchFlags).map(([flag, value]) => [optionOfFlag.get(flag), value])));
  const timeoutSeconds = timeoutFlag.safeParse(timeout);
  if (!options.success) exitWithUsage(`invalid flags:\n${z.prettifyError(options.error)}`);
  if (!timeoutSeconds.success) exitWithUsage(`invalid --timeout:\n${z.prettifyError(timeoutSeconds.error)}`);
  return { options: options.data, timeoutSeconds: timeoutSeconds.data ?? bench.timeoutSeconds(options.data) };
}

async function main(): Promise<void> {
  const [name, ...args] = process.argv.slice(2);
  if (name === undefined) exitWithUsage("no bench named");
  if (!Object.hasOwn(benches, name)) exitWithUsage(`unknown bench "${name}"; available: ${Object.keys(benches).join(", ")}`);
  const bench = benches[name]!;
  const { options, timeoutSeconds } = parseFlags(bench, args);

  // Exiting kills every bench child (see lib/child-process.ts), so a plain exit is a full abort.
  process.once("SIGINT", () => { process.stderr.write("interrupted\n"); process.exit(130); });
  process.once("SIGTERM", () => { process.stderr.write("terminated\n"); process.exit(143); });
  setTimeout(() => {
    process.stderr.write(`bench "${name}" timed out after ${timeoutSeconds} s (set --timeout to allow longer); aborted\n`);
    process.exit(1);
  }, timeoutSeconds * 1000).unref();

  try {
    const figures = await bench.run(options);
    process.stdout.write(`${JSON.stringify(figures)}\n`);
    process.exit(0);
  } catch (error) {
    process.stderr.write(`bench "${name}" failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
    process.exit(1);
  }
}

await main();
