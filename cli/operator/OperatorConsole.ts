/**
 * One run of the operator console: joins the teleop room, drives one device through
 * OperatorControls with the commands read from the terminal, prints what happens, and
 * leaves. `exited` settles with the exit code once everything is let go.
 *
 * Safety: every way out (quit, end of input, a signal, an unexpected error, a session
 * that ends) first stops the loop (a neutral command), releases the lease if held, and
 * leaves the room, whose server then ends any lease left. The way out is bounded
 * (EXIT_BOUND_MS): past it, `exitNow` ends the process whatever hangs. A console that
 * cannot show what happens (a listener failed) does not keep driving.
 *
 * @example
 *   const operator = new OperatorConsole(options, new Console(), { exitNow: (code) => process.exit(code) });
 *   void operator.run();
 *   process.on("SIGTERM", () => void operator.exit(0));
 *   const code = await operator.exited;
 */
import { ErrorCode, tsunagi } from "../../proto/index.ts";
import { TsunagiError } from "../../client-sdk/errors.ts";
import { OperatorControls } from "../../client-sdk/OperatorControls.ts";
import type { RoomSession } from "../../client-sdk/RoomSession.ts";
import { TsunagiClient } from "../../client-sdk/TsunagiClient.ts";
import type { ConsoleOptions } from "./args.ts";
import { CommandQueue } from "./CommandQueue.ts";
import { ConsoleCommands } from "./ConsoleCommands.ts";
import { parseLine } from "./commands.ts";
import type { Console } from "./Console.ts";
import { fetchDevToken, tokenIdentity } from "./devToken.ts";
import { ackText, demotedText, estopText, leaseText, profileText, resetText } from "./format.ts";

const AckStatus = tsunagi.v1.CommandAck.Status;

/** Bound of the whole way out, whatever hangs, ms. */
const EXIT_BOUND_MS = 3000;
/** Bound of the release and of the leave on the way out, each, ms. */
const SHUTDOWN_STEP_MS = 1200;
/** Bound of the join (matchmaking and the socket), ms. */
const JOIN_TIMEOUT_MS = 15_000;
/** How long to wait after joining for the room's state of the device, ms. */
const GREETING_TIMEOUT_MS = 3000;
/** How often to look for that state meanwhile, ms. */
const GREETING_POLL_MS = 25;
/** Bound of lease, e-stop and reset requests, ms. */
const REQUEST_TIMEOUT_MS = 5000;

/** What the console needs of the process. */
export interface OperatorConsoleHost {
  /** Ends the process at once with `code`: the bound on the way out. */
  exitNow(code: number): void;
}

export class OperatorConsole {
  /** Settles with the exit code once the console has let everything go. */
  readonly exited: Promise<number>;
  /** The flags it runs with. */
  private readonly options: ConsoleOptions;
  /** The terminal. */
  private readonly terminal: Console;
  /** The process, for the bounded way out. */
  private readonly host: OperatorConsoleHost;
  /** Typed commands, one after another; e-stops beside them. */
  private readonly queue: CommandQueue;
  /** Settles `exited`. */
  private settleExited!: (code: number) => void;
  /** The room session, once joined. */
  private session?: RoomSession;
  /** The device's controls, once joined. */
  private controls?: OperatorControls;
  /** What the commands do, once joined. */
  private commands?: ConsoleCommands;
  /** The periodic status line (--watch-hz). */
  private watchTimer?: ReturnType<typeof setInterval>;
  /** The way out, once begun. */
  private exiting?: Promise<void>;
  /** The lease we hold, as of the last lease event. */
  private ourLeaseId?: string;

  constructor(options: ConsoleOptions, terminal: Console, host: OperatorConsoleHost) {
    this.options = options;
    this.terminal = terminal;
    this.host = host;
    this.exited = new Promise((resolve) => { this.settleExited = resolve; });
    this.queue = new CommandQueue({
      refused: (message) => terminal.say("invalid", message),
      failed: (error) => terminal.report(error),
      stopped: () => this.exiting !== undefined,
    });
  }

  /** Joins, waits for the device's state, then reads commands until the way out. */
  async run(): Promise<void> {
    const { options, terminal } = this;
    let token: string;
    let session: RoomSession;
    try {
      token = options.token ?? await fetchDevToken(options.node, options.role, REQUEST_TIMEOUT_MS);
      const client = new TsunagiClient({
        url: options.node, token,
        session: { requestTimeoutMs: REQUEST_TIMEOUT_MS, leaveTimeoutMs: SHUTDOWN_STEP_MS, onListenerError: (error, source) => this.listenerFailed(error, source) },
      });
      session = await withTimeout(client.join("teleop", { roomId: options.room }), JOIN_TIMEOUT_MS, () => new TsunagiError(ErrorCode.REGION_UNAVAILABLE, `no answer from ${options.node} within ${JOIN_TIMEOUT_MS / 1000} s while joining room ${options.room}`));
    } catch (error) {
      terminal.report(error);
      return this.exit(1);
    }
    if (this.exiting) { void leaveRoom(session); return; } // a signal came during the join
    this.session = session;

    let controls: OperatorControls;
    try {
      controls = new OperatorControls(session, {
        deviceId: options.device, rateHz: options.rateHz, requestTimeoutMs: REQUEST_TIMEOUT_MS,
        onListenerError: (error, source) => this.listenerFailed(error, source),
      });
    } catch (error) {
      terminal.report(error);
      return this.exit(1);
    }
    this.controls = controls;
    this.commands = new ConsoleCommands(controls, terminal);
    this.listen(session, controls);

    // The room greets every participant with each device's state; none means no such device here.
    const deadline = Date.now() + GREETING_TIMEOUT_MS;
    while (!controls.lease && !session.closed && Date.now() < deadline) await sleep(GREETING_POLL_MS);
    if (session.closed) return; // the leave listener reports it and exits
    if (!controls.lease) {
      terminal.report(new TsunagiError(ErrorCode.DEVICE_UNKNOWN, `room ${options.room} sent no state for device ${options.device} within ${GREETING_TIMEOUT_MS / 1000} s: no such device in it, or not a teleop room`));
      return this.exit(1);
    }

    const identity = tokenIdentity(token);
    terminal.say("joined", `room ${options.room} (session ${session.sessionId})${identity ? ` as ${identity}` : ""}; device ${options.device} ${controls.lease.online ? "online" : "offline"}; type "help" for the commands`);
    if (options.watchHz > 0) this.watchTimer = setInterval(() => this.commands?.printStatus(true), 1000 / options.watchHz);
    terminal.read(`${options.device}> `, {
      line: (line) => this.onLine(line),
      end: () => void this.queue.idle().then(() => this.exit(0)),
      interrupt: () => void this.exit(0),
    });
  }

  /**
   * Stops the loop, releases the lease if held, leaves the room, and settles `exited`
   * with `code`. Bounded by EXIT_BOUND_MS whatever hangs; a second call does nothing more.
   */
  exit(code: number): Promise<void> {
    if (this.exiting) return this.exiting;
    const bound = setTimeout(() => this.host.exitNow(code), EXIT_BOUND_MS);
    this.exiting = this.letGo(code).finally(() => {
      clearTimeout(bound);
      this.settleExited(code);
    });
    return this.exiting;
  }

  private async letGo(code: number): Promise<void> {
    try {
      if (this.watchTimer) clearInterval(this.watchTimer);
      this.terminal.close();
      const { controls, session } = this;
      if (controls) {
        try {
          controls.stop();
          if (controls.holding) await withTimeout(controls.release(), SHUTDOWN_STEP_MS, () => new TsunagiError(ErrorCode.REGION_UNAVAILABLE, "no reply to the release")).catch((error) => this.terminal.report(error));
        } finally {
          controls.dispose(); // still holding (no reply): a stop command and a release, fire-and-forget
        }
      }
      if (session && !session.closed) await leaveRoom(session);
      if (session && code === 0) this.terminal.say("quit", `left room ${this.options.room}`);
    } catch (error) {
      this.terminal.report(error);
    }
  }

  // --- events ------------------------------------------------------------------------

  private listen(session: RoomSession, controls: OperatorControls) {
    const { terminal } = this;
    controls.on("lease", (lease) => {
      const endedOurs = this.ourLeaseId !== undefined && !controls.holding;
      this.ourLeaseId = controls.holding ? lease.leaseId : undefined;
      terminal.say("lease", leaseText(lease, session.sessionId, { endedOurs }));
    });
    controls.on("estop", (estop) => terminal.say("estop", estopText(estop)));
    controls.on("reset", (reset) => terminal.say("reset", resetText(reset)));
    controls.on("demoted", (event) => terminal.say("demoted", demotedText(event)));
    controls.on("profile", (profile) => terminal.say("profile", profileText(profile)));
    controls.on("error", (error) => terminal.report(error, { limited: true }));
    controls.on("ack", (ack) => { if (ack.status !== AckStatus.APPLIED) terminal.sayLimited("ack", ackText(ack)); });
    session.on("error", (error) => terminal.report(error, { limited: true }));
    session.on("reconnecting", ({ attempt, maxRetries }) => terminal.say("session", `connection lost, reconnecting (attempt ${attempt} of ${maxRetries})`));
    session.on("reconnected", () => terminal.say("session", "reconnected: the room ended the lease of the dropped connection; acquire again to drive"));
    session.on("leave", ({ code, error }) => {
      if (this.exiting) return;
      terminal.report(error ?? new TsunagiError(ErrorCode.REGION_UNAVAILABLE, `the session ended (close code ${code})`));
      void this.exit(1);
    });
  }

  private listenerFailed(error: unknown, source: string) {
    // A console that cannot show what happens must not keep driving.
    this.terminal.report(new TsunagiError(ErrorCode.INTERNAL, `${source} failed: ${(error as Error)?.message ?? String(error)}`));
    void this.exit(1);
  }

  // --- input -------------------------------------------------------------------------

  private onLine(line: string) {
    const parsed = parseLine(line);
    if (parsed.kind === "empty") { this.terminal.prompt(); return; }
    if (parsed.kind === "invalid") { this.terminal.say("invalid", parsed.message); return; }
    const commands = this.commands!;
    if (parsed.immediate) { void this.queue.runNow(() => commands.run(parsed)); return; }
    const queued = this.queue.enqueue(parsed.verb === "quit" ? () => this.exit(0) : () => commands.run(parsed));
    if (!queued) this.terminal.say("invalid", `${this.queue.size} commands are still waiting: "${parsed.verb}" dropped (wait for them, or estop)`);
  }
}

/**
 * Leaves the room, within SHUTDOWN_STEP_MS. It may fail or time out when the connection
 * is already gone; there is nothing left to do then, as the room ends the participation
 * (and any lease) of a connection that drops.
 */
function leaveRoom(session: RoomSession): Promise<void> {
  return withTimeout(session.leave(), SHUTDOWN_STEP_MS, () => new Error("leave timed out")).then(() => undefined, () => undefined);
}

function withTimeout<T>(promise: Promise<T>, ms: number, timeoutError: () => Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => { timer = setTimeout(() => reject(timeoutError()), ms); }),
  ]).finally(() => clearTimeout(timer));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
