/**
 * The console's commands as typed on stdin, one a line: their names and aliases, the
 * help list, which take arguments, which run at once instead of waiting in the queue,
 * and the parsing of a line and of the arguments of `set` and `do`.
 *
 * An e-stop runs at once, never queued behind a pending command; so do the commands that
 * only print (status, axes, help). The others wait their turn, in the order typed.
 *
 * @example
 *   parseLine("set boom 0.3");   // { kind: "command", verb: "set", args: ["boom", "0.3"], rest: "boom 0.3", immediate: false }
 *   parseLine("e hydraulic leak"); // { kind: "command", verb: "estop", args: [...], rest: "hydraulic leak", immediate: true }
 *   parseSetArguments(["boom", "0.3"]); // { boom: 0.3 }
 */
import { parseNumber } from "./args.ts";

/** Each command by its canonical name. */
export type Verb =
  | "acquire" | "set" | "neutral" | "stop" | "start" | "release" | "do"
  | "estop" | "estop-all" | "reset" | "status" | "axes" | "help" | "quit";

interface CommandSpec {
  verb: Verb;
  /** Other names it answers to. */
  aliases: readonly string[];
  /** How the help list shows its name and arguments. */
  synopsis: string;
  description: string;
  /** Whether it takes arguments; the others refuse any. */
  takesArguments: boolean;
  /** Whether it runs at once rather than after the commands before it. */
  immediate: boolean;
}

/** The commands, in the order the help list shows them. */
const specs: readonly CommandSpec[] = [
  { verb: "acquire", aliases: ["a"], synopsis: "acquire | a", description: "take the lease and start sending the setpoint at --rate-hz", takesArguments: false, immediate: false },
  { verb: "set", aliases: ["s"], synopsis: "set | s AXIS VALUE ...", description: "set axes (velocity axes in unit/s), clamped to the profile; needs the lease", takesArguments: true, immediate: false },
  { verb: "neutral", aliases: ["n"], synopsis: "neutral | n", description: "velocity and torque axes to 0 (keeps the lease, keeps sending)", takesArguments: false, immediate: false },
  { verb: "stop", aliases: [], synopsis: "stop", description: "stop sending motion: a stop command, then heartbeats (keeps the lease)", takesArguments: false, immediate: false },
  { verb: "start", aliases: [], synopsis: "start", description: "send the setpoint again after stop (while holding the lease)", takesArguments: false, immediate: false },
  { verb: "release", aliases: [], synopsis: "release", description: "stop, then give the lease up", takesArguments: false, immediate: false },
  { verb: "do", aliases: [], synopsis: "do ACTION [VALUE]", description: "a device action (a drone: do arm, do takeoff 5, do hold, do land, do disarm); needs the lease", takesArguments: true, immediate: false },
  { verb: "estop", aliases: ["e"], synopsis: "estop | e [REASON]", description: "e-stop this device: it latches until a supervisor resets it", takesArguments: true, immediate: true },
  { verb: "estop-all", aliases: [], synopsis: "estop-all [REASON]", description: "e-stop every device in the room", takesArguments: true, immediate: true },
  { verb: "reset", aliases: [], synopsis: "reset [REASON]", description: "clear the device's e-stop (supervisors); then acquire again", takesArguments: true, immediate: false },
  { verb: "status", aliases: ["?"], synopsis: "status | ?", description: "print the status line now", takesArguments: false, immediate: true },
  { verb: "axes", aliases: [], synopsis: "axes", description: "the device's axes: mode, unit, limits", takesArguments: false, immediate: true },
  { verb: "help", aliases: ["h"], synopsis: "help | h", description: "this list", takesArguments: false, immediate: true },
  { verb: "quit", aliases: ["q", "exit"], synopsis: "quit | q", description: "release the lease if held, leave the room, exit (also: end of input, Ctrl+C)", takesArguments: false, immediate: false },
];

/** Width of the help list's first column. */
const SYNOPSIS_WIDTH = 28;
/** How much of a typed word goes back into a message. */
const ECHO_CHARS = 40;

/** The help list, one command a line. */
export const helpLines: readonly string[] = specs.map((spec) => `${spec.synopsis.padEnd(SYNOPSIS_WIDTH)}${spec.description}`);

const specByName = new Map<string, CommandSpec>(specs.flatMap((spec) => [spec.verb, ...spec.aliases].map((name) => [name, spec] as const)));

/** One line of input, understood. */
export type ParsedLine =
  | { kind: "empty" }
  | { kind: "invalid"; message: string }
  | { kind: "command"; verb: Verb; args: string[]; rest: string; immediate: boolean };

/** A parsed command line. */
export type ConsoleCommand = Extract<ParsedLine, { kind: "command" }>;

/** What a line asks for: a command with its words and the text after its name, or why not. */
export function parseLine(line: string): ParsedLine {
  const trimmed = line.trim();
  const words = trimmed.split(/\s+/).filter((word) => word !== "");
  if (words.length === 0) return { kind: "empty" };
  const [name, ...args] = words;
  const spec = specByName.get(name.toLowerCase());
  if (!spec) return { kind: "invalid", message: `unknown command "${name.slice(0, ECHO_CHARS)}" ("help" lists the commands)` };
  if (args.length > 0 && !spec.takesArguments) return { kind: "invalid", message: `"${name.slice(0, ECHO_CHARS)}" takes no arguments ("help" lists the commands)` };
  return { kind: "command", verb: spec.verb, args, rest: trimmed.slice(name.length).trim(), immediate: spec.immediate };
}

/** `set`'s AXIS VALUE pairs as axis values by name; TypeError saying what is wrong. */
export function parseSetArguments(args: readonly string[]): Record<string, number> {
  if (args.length === 0 || args.length % 2 !== 0) throw new TypeError("usage: set AXIS VALUE [AXIS VALUE ...], e.g. set boom 0.3");
  const values: Record<string, number> = {};
  for (let i = 0; i < args.length; i += 2) {
    const [axis, text] = [args[i], args[i + 1]];
    if (Object.hasOwn(values, axis)) throw new TypeError(`axis "${axis}" given twice`);
    const value = parseNumber(text);
    if (value === undefined) throw new TypeError(`axis "${axis}": "${text.slice(0, ECHO_CHARS)}" is not a number`);
    values[axis] = value;
  }
  return values;
}

/** `do`'s ACTION [VALUE]. */
export interface ActionArguments {
  name: string;
  /** 0 when no value was given. */
  value: number;
  /** Whether a value was typed. */
  valueGiven: boolean;
}

/** `do`'s arguments; TypeError saying what is wrong, listing the device's actions (`offered`). */
export function parseActionArguments(args: readonly string[], offered: readonly string[]): ActionArguments {
  if (args.length < 1 || args.length > 2) throw new TypeError(`usage: do ACTION [VALUE], e.g. do takeoff 5 (actions: ${offered.join(", ") || "none"})`);
  const [name, text] = args;
  const value = text === undefined ? 0 : parseNumber(text);
  if (value === undefined) throw new TypeError(`action ${name}: "${text!.slice(0, ECHO_CHARS)}" is not a number`);
  return { name, value, valueGiven: text !== undefined };
}
