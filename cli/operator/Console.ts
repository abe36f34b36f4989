/**
 * The operator console's terminal: every output line is `prefix: text` on stdout, so
 * scripts can parse it; commands come from stdin, a terminal or a pipe, one a line.
 *
 * On a terminal the prompt and the typed input are redrawn below each line, and the
 * periodic status line overwrites the previous one when nothing was printed or typed
 * since, instead of scrolling. Errors print as `error: CODE_NAME message`, each once
 * (the room reports a refusal both as a room error and in the reply); lines from events
 * (errors, acks) at most LINES_PER_SECOND a second per prefix.
 *
 * @example
 *   const terminal = new Console();
 *   terminal.read("excavator-1> ", { line: onLine, end: () => exit(0), interrupt: () => exit(0) });
 *   terminal.say("status", "lease free | ...", { replace: true });
 *   terminal.report(error, { limited: true });
 */
import readline from "node:readline";
import { LineLimiter } from "./LineLimiter.ts";
import { errorParts } from "./format.ts";

/** At most this many lines from events a second, per prefix. */
const LINES_PER_SECOND = 5;
/** An error repeated within this long prints once, ms. */
const REPEAT_WINDOW_MS = 1000;
/** Columns assumed when the terminal does not say. */
const DEFAULT_COLUMNS = 80;

/** What the console does with input. */
export interface InputHandlers {
  /** A line was entered. */
  line(line: string): void;
  /** The input ended (Ctrl+D, or the end of a pipe). */
  end(): void;
  /** Ctrl+C on a terminal, which readline takes instead of the process getting SIGINT. */
  interrupt(): void;
}

export class Console {
  /** Where commands come from. */
  private readonly input: NodeJS.ReadStream;
  /** Where lines go. */
  private readonly output: NodeJS.WriteStream;
  /** Whether both ends are a terminal: then a prompt, and the status line redrawn in place. */
  private readonly tty: boolean;
  /** The line reader, between read() and close(). */
  private reader?: readline.Interface;
  /** Terminal rows the last line took when it may be redrawn in place (the periodic status line); 0 otherwise. */
  private replaceableRows = 0;
  /** One limiter per prefix of lines from events. */
  private readonly limiters = new Map<string, LineLimiter>();
  /** Errors printed lately, "CODE message" → when, to print a repeat once. */
  private readonly recentErrors = new Map<string, number>();

  constructor(input: NodeJS.ReadStream = process.stdin, output: NodeJS.WriteStream = process.stdout) {
    this.input = input;
    this.output = output;
    this.tty = output.isTTY === true && input.isTTY === true;
  }

  /** Starts reading commands, shown with `prompt` on a terminal. */
  read(prompt: string, handlers: InputHandlers): void {
    const reader = readline.createInterface({ input: this.input, output: this.tty ? this.output : undefined, terminal: this.tty, prompt });
    this.reader = reader;
    reader.on("line", (line) => {
      this.replaceableRows = 0; // the cursor left the line below the last output
      handlers.line(line);
    });
    reader.on("close", () => handlers.end());
    reader.on("SIGINT", () => handlers.interrupt());
    if (this.tty) reader.prompt();
  }

  /** Shows the prompt again (after an empty line). */
  prompt(): void {
    if (this.tty) this.reader?.prompt();
  }

  /** Stops reading; on a terminal, ends the prompt's line. */
  close(): void {
    const reader = this.reader;
    this.reader = undefined;
    reader?.close();
    if (reader && this.tty) this.output.write("\n");
  }

  /** One output line, `prefix: text`; `replace` marks a line the next replace line may overwrite. */
  say(prefix: string, text: string, options: { replace?: boolean } = {}): void {
    const line = `${prefix}: ${text}`;
    if (!this.output.writable) return; // stdout is gone (a closed pipe): the console is on its way out
    const reader = this.reader;
    if (!(this.tty && reader)) {
      this.output.write(`${line}\n`);
      return;
    }
    readline.cursorTo(this.output, 0);
    if (options.replace && this.replaceableRows > 0) readline.moveCursor(this.output, 0, -this.replaceableRows);
    readline.clearScreenDown(this.output);
    this.output.write(`${line}\n`);
    const columns = this.output.columns || DEFAULT_COLUMNS;
    this.replaceableRows = options.replace ? Math.max(1, Math.ceil(line.length / columns)) : 0;
    reader.prompt(true);
  }

  /** A line from an event, at most LINES_PER_SECOND a second for its prefix; those held back are counted in the next. */
  sayLimited(prefix: string, text: string): void {
    let limiter = this.limiters.get(prefix);
    if (!limiter) this.limiters.set(prefix, (limiter = new LineLimiter(LINES_PER_SECOND)));
    const suffix = limiter.take();
    if (suffix !== undefined) this.say(prefix, `${text}${suffix}`);
  }

  /** `error: CODE_NAME message`, once within REPEAT_WINDOW_MS; `limited` for errors from events. */
  report(error: unknown, options: { limited?: boolean } = {}): void {
    const { name, message } = errorParts(error);
    const key = `${name} ${message}`;
    const now = Date.now();
    for (const [seen, at] of this.recentErrors) if (now - at > REPEAT_WINDOW_MS) this.recentErrors.delete(seen);
    if (this.recentErrors.has(key)) return;
    this.recentErrors.set(key, now);
    if (options.limited) this.sayLimited("error", key);
    else this.say("error", key);
  }
}
