/**
 * `npm run operator -- --node URL --room ID --device ID [--role operator|supervisor|visitor]
 *   [--token JWT] [--rate-hz N] [--watch-hz N]`
 *
 * An operator console on a terminal: joins a teleop room, drives one device through
 * OperatorControls, and reads commands line by line from stdin (a terminal or a pipe).
 * Every output line on stdout starts with a prefix ("status: ", "lease: ", "error: ",
 * ...) so scripts can parse it; `help` lists the commands.
 *
 * Exit codes: 0 after quit, end of input, SIGINT or SIGTERM; 1 when the join fails or the
 * session ends on its own (or on an internal error); 2 on bad usage.
 *
 * Safety: every way out (quit, end of input, a signal, an unexpected error) first stops
 * the loop (a neutral command), releases the lease if held, and leaves the room, whose
 * server then ends any lease left; the exit is bounded (3 s). Commands go out only from
 * OperatorControls' fixed-rate loop, never faster than --rate-hz. An e-stop is never
 * queued behind a pending command.
 */
import os from "node:os";
import readline from "node:readline";
import { parseArgs } from "node:util";
import { DEFAULT_WATCHDOG_WINDOW_MS, ErrorCode, errorCodeName, tsunagi } from "../../proto/index.ts";
import { TsunagiError, fromServerError } from "../../client-sdk/errors.ts";
import { axisBounds } from "../../proto/deviceProfile.ts";
import { DEVICE_ID_PATTERN, DEVICE_ID_TEXT } from "../../proto/ids.ts";
import { OperatorControls, type DeviceProfile, type LeaseState, type Telemetry } from "../../client-sdk/OperatorControls.ts";
import type { RoomSession } from "../../client-sdk/RoomSession.ts";
import { TsunagiClient } from "../../client-sdk/TsunagiClient.ts";
import { cliEnv } from "../env.ts";
import { nodeUrl } from "../../common/nodeUrl.ts";

const AckStatus = tsunagi.v1.CommandAck.Status;
const AxisMode = tsunagi.v1.AxisMode;

const roles = ["operator", "supervisor", "visitor"] as const;
type ConsoleRole = (typeof roles)[number];
const numberPattern = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/** Bound of the whole way out, whatever hangs. */
const EXIT_BOUND_MS = 3000;
/** Bound of the release and of the leave on the way out, each. */
const SHUTDOWN_STEP_MS = 1200;
/** Bound of the join (matchmaking and the socket). */
const JOIN_TIMEOUT_MS = 15_000;
/** How long to wait after joining for the room's state of the device. */
const GREETING_TIMEOUT_MS = 3000;
/** Bound of lease, e-stop and reset requests. */
const REQUEST_TIMEOUT_MS = 5000;
/** Telemetry older than this (server clock) is flagged in the status line. */
const STALE_TELEMETRY_MS = 2000;
/** At most this many "ack: " lines (and, separately, "error: " lines from events) per second. */
const LINES_PER_SECOND = 5;

const usageText = `usage: npm run operator -- --node URL --room ID --device ID [--role operator|supervisor|visitor]
                            [--token JWT] [--rate-hz N] [--watch-hz N] [--help]
  --node URL       a region node's http(s) base URL, e.g. http://127.0.0.1:2567 (required)
  --room ID        the teleop room to join, by id, e.g. teleop-demo (required)
  --device ID      the device to drive, e.g. excavator-1 (required)
  --role ROLE      operator (default), supervisor or visitor: the role asked of /dev/token
  --token JWT      access token (default: env TSUNAGI_TOKEN; without either, a dev token
                   from GET <node>/dev/token, which only a node in dev mode serves)
  --rate-hz N      commands per second while driving, in (0, 1000] (default 50)
  --watch-hz N     status lines per second, 0 = only on "status" (default 2)
  --help           this text
`;

const commandsText = [
  "acquire | a                 take the lease and start sending the setpoint at --rate-hz",
  "set | s AXIS VALUE ...      set axes (velocity axes in unit/s), clamped to the profile; needs the lease",
  "neutral | n                 velocity and torque axes to 0 (keeps the lease, keeps sending)",
  "stop                        stop sending motion: a stop command, then heartbeats (keeps the lease)",
  "start                       send the setpoint again after stop (while holding the lease)",
  "release                     stop, then give the lease up",
  "do ACTION [VALUE]           a device action (a drone: do arm, do takeoff 5, do hold, do land, do disarm); needs the lease",
  "estop | e [REASON]          e-stop this device: it latches until a supervisor resets it",
  "estop-all [REASON]          e-stop every device in the room",
  "reset [REASON]              clear the device's e-stop (supervisors); then acquire again",
  "status | ?                  print the status line now",
  "axes                        the device's axes: mode, unit, limits",
  "help | h                    this list",
  "quit | q                    release the lease if held, leave the room, exit (also: end of input, Ctrl+C)",
];

/** Commands that take arguments; the others refuse any. */
const takesArguments: ReadonlySet<string> = new Set(["set", "s", "do", "estop", "e", "estop-all", "reset"]);

interface Options {
  node: string;
  room: string;
  device: string;
  role: ConsoleRole;
  token?: string;
  rateHz: number;
  watchHz: number;
}

class UsageError extends Error {}

function parseOptions(argv: string[]): Options | "help" {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv, strict: true, allowPositionals: false,
      options: {
        node: { type: "string" },
        room: { type: "string" },
        device: { type: "string" },
        role: { type: "string", default: "operator" },
        token: { type: "string" },
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

  const node = values.node;
  if (node === undefined) throw new UsageError("--node is required (a region node's http base URL)");
  try {
    nodeUrl(node);
  } catch (error) {
    throw new UsageError(`--node: ${(error as Error).message}`);
  }
  if (values.room === undefined || values.room === "") throw new UsageError("--room is required (the teleop room's id)");
  if (values.device === undefined) throw new UsageError("--device is required (the device to drive)");
  if (!DEVICE_ID_PATTERN.test(values.device)) throw new UsageError(`--device must match ${DEVICE_ID_TEXT}, got ${JSON.stringify(values.device)}`);
  const role = values.role!;
  if (!(roles as readonly string[]).includes(role)) throw new UsageError(`--role must be one of ${roles.join(", ")}, got ${JSON.stringify(role)}`);
  if (values.token !== undefined && values.token === "") throw new UsageError("--token must not be empty");
  const rateHz = parseNumber(values["rate-hz"]!);
  if (rateHz === undefined || !(rateHz > 0 && rateHz <= 1000)) throw new UsageError(`--rate-hz must be a number in (0, 1000], got ${JSON.stringify(values["rate-hz"])}`);
  const watchHz = parseNumber(values["watch-hz"]!);
  if (watchHz === undefined || !(watchHz >= 0 && watchHz <= 100)) throw new UsageError(`--watch-hz must be a number in [0, 100] (0: never), got ${JSON.stringify(values["watch-hz"])}`);
  return {
    node: node.replace(/\/+$/, ""), room: values.room, device: values.device, role: role as ConsoleRole,
    token: values.token ?? cliEnv().token, rateHz, watchHz,
  };
}

function parseNumber(text: string): number | undefined {
  if (!numberPattern.test(text.trim())) return undefined;
  const value = Number(text);
  return Number.isFinite(value) ? value : undefined;
}

// --- output ------------------------------------------------------------------------

const tty = process.stdout.isTTY === true && process.stdin.isTTY === true;
let rl: readline.Interface | undefined;

/** Terminal rows the last line took when it may be redrawn in place (the watch's status line); 0 otherwise. */
let replaceableRows = 0;

/**
 * One output line, `prefix: text`. On a terminal the prompt and the typed input are
 * redrawn below it, and a `replace` line (the periodic status) overwrites the previous
 * one when nothing was printed or typed since, instead of scrolling.
 */
function say(prefix: string, text: string, options: { replace?: boolean } = {}) {
  const line = `${prefix}: ${text}`;
  if (!process.stdout.writable) return; // stdout is gone (a closed pipe): the console is on its way out
  if (!(tty && rl)) {
    process.stdout.write(`${line}\n`);
    return;
  }
  readline.cursorTo(process.stdout, 0);
  if (options.replace && replaceableRows > 0) readline.moveCursor(process.stdout, 0, -replaceableRows);
  readline.clearScreenDown(process.stdout);
  process.stdout.write(`${line}\n`);
  const columns = process.stdout.columns || 80;
  replaceableRows = options.replace ? Math.max(1, Math.ceil(line.length / columns)) : 0;
  rl.prompt(true);
}

/** The cursor left the line below the last output (the user pressed Enter). */
function inputLineEnded() {
  replaceableRows = 0;
}

function codeNameOf(error: unknown): { name: string; message: string } {
  const coded = error instanceof TsunagiError ? error : fromServerError(error);
  return { name: errorCodeName(coded.code), message: coded.message };
}

/** At most `perSecond` lines a second; counts what it held back. */
class LineLimiter {
  private windowStart = 0;
  private shown = 0;
  private held = 0;
  constructor(private readonly perSecond: number) {}
  /** The suffix to print, or undefined to drop the line. */
  take(): string | undefined {
    const now = Date.now();
    if (now - this.windowStart >= 1000) { this.windowStart = now; this.shown = 0; }
    if (this.shown >= this.perSecond) { this.held++; return undefined; }
    this.shown++;
    const suffix = this.held > 0 ? ` (${this.held} more not shown)` : "";
    this.held = 0;
    return suffix;
  }
}

const ackLines = new LineLimiter(LINES_PER_SECOND);
const eventErrorLines = new LineLimiter(LINES_PER_SECOND);
/** The room reports a refusal both as a room error and in the reply: print each once. */
const recentErrors = new Map<string, number>();

function reportError(error: unknown, options: { limited?: boolean } = {}) {
  const { name, message } = codeNameOf(error);
  const key = `${name} ${message}`;
  const now = Date.now();
  for (const [k, at] of recentErrors) if (now - at > 1000) recentErrors.delete(k);
  if (recentErrors.has(key)) return;
  recentErrors.set(key, now);
  let suffix = "";
  if (options.limited) {
    const taken = eventErrorLines.take();
    if (taken === undefined) return;
    suffix = taken;
  }
  say("error", `${name} ${message}${suffix}`);
}

function fmt(value: number, digits = 3): string {
  return String(Number(value.toFixed(digits)) + 0);
}

function fixed(value: number, digits = 2): string {
  const text = value.toFixed(digits);
  return Number(text) === 0 ? (0).toFixed(digits) : text; // no "-0.00"
}

function signed(value: number, digits = 2): string {
  const text = fixed(value, digits);
  return text.startsWith("-") ? text : `+${text}`;
}

function axesOf(profile: DeviceProfile | undefined): tsunagi.v1.AxisProfile[] {
  return (profile?.axes ?? []) as tsunagi.v1.AxisProfile[];
}

/** The unit a command value of this axis is in. */
function commandUnit(axis: tsunagi.v1.AxisProfile): string {
  switch (axis.mode) {
    case AxisMode.AXIS_MODE_VELOCITY: return axis.rateUnit || (axis.unit ? `${axis.unit}/s` : "");
    case AxisMode.AXIS_MODE_POSITION: return axis.unit;
    case AxisMode.AXIS_MODE_TORQUE: return axis.effortUnit;
    default: return "";
  }
}

function modeName(mode: number): string {
  return (AxisMode[mode] ?? String(mode)).replace(/^AXIS_MODE_/, "").toLowerCase();
}

// --- the console -------------------------------------------------------------------

class OperatorConsole {
  private controls?: OperatorControls;
  private session?: RoomSession;
  private watchTimer?: ReturnType<typeof setInterval>;
  private queue: Promise<void> = Promise.resolve();
  private exiting?: Promise<void>;
  /** The lease we hold, as of the last lease event. */
  private ourLeaseId?: string;

  constructor(private readonly options: Options) {}

  async run(): Promise<void> {
    const { options } = this;
    let token: string;
    let session: RoomSession;
    try {
      token = options.token ?? await fetchDevToken(options.node, options.role);
      const client = new TsunagiClient({
        url: options.node, token,
        session: { requestTimeoutMs: REQUEST_TIMEOUT_MS, leaveTimeoutMs: SHUTDOWN_STEP_MS, onListenerError: (error, source) => this.listenerFailed(error, source) },
      });
      session = await withTimeout(client.joinById(options.room), JOIN_TIMEOUT_MS, () => new TsunagiError(ErrorCode.REGION_UNAVAILABLE, `no answer from ${options.node} within ${JOIN_TIMEOUT_MS / 1000} s while joining room ${options.room}`));
    } catch (error) {
      reportError(error);
      return this.exit(1);
    }
    if (this.exiting) { void session.leave().catch(() => {}); return; } // a signal came during the join
    this.session = session;

    let controls: OperatorControls;
    try {
      controls = new OperatorControls(session, {
        deviceId: options.device, rateHz: options.rateHz, requestTimeoutMs: REQUEST_TIMEOUT_MS,
        onListenerError: (error, source) => this.listenerFailed(error, source),
      });
    } catch (error) {
      reportError(error);
      return this.exit(1);
    }
    this.controls = controls;
    this.listen(session, controls);

    // The room greets every participant with each device's state; none means no such device here.
    const deadline = Date.now() + GREETING_TIMEOUT_MS;
    while (!controls.lease && !session.closed && Date.now() < deadline) await sleep(25);
    if (session.closed) return; // the leave listener reports it and exits
    if (!controls.lease) {
      reportError(new TsunagiError(ErrorCode.DEVICE_UNKNOWN, `room ${options.room} sent no state for device ${options.device} within ${GREETING_TIMEOUT_MS / 1000} s: no such device in it, or not a teleop room`));
      return this.exit(1);
    }

    const identity = tokenIdentity(token);
    say("joined", `room ${options.room} (session ${session.sessionId})${identity ? ` as ${identity}` : ""}; device ${options.device} ${controls.lease.online ? "online" : "offline"}; type "help" for the commands`);
    if (options.watchHz > 0) this.watchTimer = setInterval(() => this.printStatus(true), 1000 / options.watchHz);
    this.readCommands();
  }

  // --- events ------------------------------------------------------------------------

  private listen(session: RoomSession, controls: OperatorControls) {
    controls.on("lease", (lease) => {
      const endedOurs = this.ourLeaseId !== undefined && !controls.holding;
      this.ourLeaseId = controls.holding ? lease.leaseId : undefined;
      say("lease", this.leaseText(lease, { endedOurs }));
    });
    controls.on("estop", (estop) => say("estop", `${estop.all || !estop.deviceId ? "all devices" : estop.deviceId}${estop.raisedBy ? ` by ${estop.raisedBy}` : ""}${estop.reason ? `: ${estop.reason}` : ""} (latched: a supervisor must reset)`));
    controls.on("reset", (reset) => say("reset", `${reset.deviceId}${reset.by ? ` by ${reset.by}` : ""}${reset.reason ? `: ${reset.reason}` : ""} (acquire to drive again)`));
    controls.on("demoted", (event) => say("demoted", `${event.message ?? "the round trip exceeded the device's latency budget"} (lease ${event.endedLeaseId} ended)`));
    controls.on("profile", (profile) => say("profile", `${profile.deviceId} ${profile.driver || "?"}: ${axesOf(profile).map((a) => a.name).join(", ")}`));
    controls.on("error", (error) => reportError(error, { limited: true }));
    controls.on("ack", (ack) => {
      if (ack.status === AckStatus.APPLIED) return;
      const suffix = ackLines.take();
      if (suffix === undefined) return;
      say("ack", `${AckStatus[ack.status] ?? String(ack.status)} ${ack.detail || "(no detail)"}${suffix}`);
    });
    session.on("error", (error) => reportError(error, { limited: true }));
    session.on("reconnecting", ({ attempt, maxRetries }) => say("session", `connection lost, reconnecting (attempt ${attempt} of ${maxRetries})`));
    session.on("reconnected", () => say("session", "reconnected: the room ended the lease of the dropped connection; acquire again to drive"));
    session.on("leave", ({ code, error }) => {
      if (this.exiting) return;
      reportError(error ?? new TsunagiError(ErrorCode.REGION_UNAVAILABLE, `the session ended (close code ${code})`));
      void this.exit(1);
    });
  }

  private listenerFailed(error: unknown, source: string) {
    // A console that cannot show what happens must not keep driving.
    reportError(new TsunagiError(ErrorCode.INTERNAL, `${source} failed: ${(error as Error)?.message ?? String(error)}`));
    void this.exit(1);
  }

  // --- input -------------------------------------------------------------------------

  private readCommands() {
    rl = readline.createInterface({ input: process.stdin, output: tty ? process.stdout : undefined, terminal: tty, prompt: `${this.options.device}> ` });
    rl.on("line", (line) => this.onLine(line));
    rl.on("close", () => this.enqueue(() => this.exit(0)));
    // On a terminal readline takes Ctrl+C itself instead of the process getting SIGINT.
    rl.on("SIGINT", () => void this.exit(0));
    if (tty) rl.prompt();
  }

  private onLine(line: string) {
    inputLineEnded();
    const words = line.trim().split(/\s+/).filter((w) => w !== "");
    if (words.length === 0) { if (tty) rl?.prompt(); return; }
    const [name, ...args] = words;
    const rest = line.trim().slice(name.length).trim();
    const command = name.toLowerCase();
    if (args.length > 0 && !takesArguments.has(command)) {
      say("invalid", `"${name.slice(0, 40)}" takes no arguments ("help" lists the commands)`);
      return;
    }
    switch (command) {
      // never queued behind a pending request: an e-stop goes out at once
      case "estop": case "e": void this.run_(() => this.estop(rest, false)); return;
      case "estop-all": void this.run_(() => this.estop(rest, true)); return;
      case "status": case "?": this.printStatus(); return;
      case "help": case "h": for (const text of commandsText) say("help", text); return;
      case "axes": this.printAxes(); return;
      case "acquire": case "a": this.enqueue(() => this.acquire()); return;
      case "release": this.enqueue(() => this.release()); return;
      case "set": case "s": this.enqueue(() => this.set(args)); return;
      case "do": this.enqueue(() => this.perform(args)); return;
      case "neutral": case "n": this.enqueue(() => this.neutral()); return;
      case "stop": this.enqueue(() => this.stopLoop()); return;
      case "start": this.enqueue(() => this.startLoop()); return;
      case "reset": this.enqueue(() => this.reset(rest)); return;
      case "quit": case "q": case "exit": this.enqueue(() => this.exit(0)); return;
      default: say("invalid", `unknown command "${name.slice(0, 40)}" ("help" lists the commands)`);
    }
  }

  /** Commands run one after another, in the order typed. */
  private enqueue(command: () => unknown) {
    this.queue = this.queue.then(() => this.exiting ? undefined : this.run_(command));
  }

  private async run_(command: () => unknown): Promise<void> {
    try {
      await command();
    } catch (error) {
      if (error instanceof TypeError) say("invalid", error.message);
      else reportError(error);
    }
  }

  // --- commands ----------------------------------------------------------------------

  private async acquire() {
    const controls = this.controls!;
    await controls.acquire();
    controls.start();
  }

  private async release() {
    const controls = this.controls!;
    controls.stop();
    if (!controls.holding) { say("invalid", `not holding the lease of ${controls.deviceId}`); return; }
    await controls.release();
  }

  private set(args: string[]) {
    const controls = this.controls!;
    if (args.length === 0 || args.length % 2 !== 0) throw new TypeError("usage: set AXIS VALUE [AXIS VALUE ...], e.g. set boom 0.3");
    const values: Record<string, number> = {};
    for (let i = 0; i < args.length; i += 2) {
      const [axis, text] = [args[i], args[i + 1]];
      if (Object.hasOwn(values, axis)) throw new TypeError(`axis "${axis}" given twice`);
      const value = parseNumber(text);
      if (value === undefined) throw new TypeError(`axis "${axis}": "${text.slice(0, 40)}" is not a number`);
      values[axis] = value;
    }
    // Motion only under our own lease and a running loop: never a setpoint waiting to move the machine later.
    if (!controls.holding) throw new TypeError(`not holding the lease of ${controls.deviceId}: acquire first`);
    if (!controls.started) throw new TypeError("the loop is stopped: start (or acquire) to send commands again");
    const applied = controls.setAxes(values);
    const byName = new Map(axesOf(controls.profile).map((axis) => [axis.name, axis]));
    say("set", Object.entries(applied).map(([name, value]) => {
      const axis = byName.get(name)!;
      const unit = commandUnit(axis);
      return `${name} ${signed(value, 3)}${unit ? ` ${unit}` : ""}${value !== values[name] ? ` (clamped from ${fmt(values[name])})` : ""}`;
    }).join(", "));
  }

  private async perform(args: string[]) {
    const controls = this.controls!;
    if (args.length < 1 || args.length > 2) throw new TypeError(`usage: do ACTION [VALUE], e.g. do takeoff 5 (actions: ${controls.actions.map((a) => a.name).join(", ") || "none"})`);
    const [name, text] = args;
    const value = text === undefined ? 0 : parseNumber(text);
    if (value === undefined) throw new TypeError(`action ${name}: "${text!.slice(0, 40)}" is not a number`);
    const result = await controls.perform(name, value);
    const status = AckStatus[result.status] ?? String(result.status);
    if (result.status === AckStatus.APPLIED) say("action", `${name}${text === undefined ? "" : ` ${fmt(value)}`}: applied`);
    else say("action", `${name}: ${status === "STATUS_UNSPECIFIED" ? "refused by the device" : status} ${result.detail || ""}`.trim());
  }

  private neutral() {
    const controls = this.controls!;
    controls.neutral();
    say("set", "neutral: velocity and torque axes 0");
  }

  private stopLoop() {
    const controls = this.controls!;
    if (!controls.started) { say("invalid", "the loop is not running"); return; }
    controls.stop();
    say("stop", controls.holding ? "stop command sent; keeping the lease with heartbeats (start to send again, release to let go)" : "loop stopped");
  }

  private startLoop() {
    const controls = this.controls!;
    if (!controls.holding) throw new TypeError(`not holding the lease of ${controls.deviceId}: acquire first`);
    if (controls.started) { say("invalid", "the loop is already running"); return; }
    controls.neutral();
    controls.start();
    say("start", `sending the setpoint at ${this.options.rateHz} Hz (from neutral)`);
  }

  private async estop(reason: string, all: boolean) {
    const controls = this.controls!;
    if (all) await controls.estopAll(reason || undefined);
    else await controls.estop(reason || undefined);
  }

  private async reset(reason: string) {
    await this.controls!.reset(reason);
  }

  // --- status ------------------------------------------------------------------------

  /** "free", "held by me", "held by operator SESSION"; for a lease event also what ended and what next. */
  private leaseText(lease: LeaseState | undefined, event?: { endedOurs: boolean }): string {
    if (!lease) return "unknown";
    let text: string;
    if (!lease.leaseId) text = "free";
    else if (lease.holderSessionId === this.session?.sessionId) text = event ? `held by me (lease ${lease.leaseId}, ttl ${lease.ttlMs} ms)` : "held by me";
    else text = `held by ${lease.holderRole || "someone"} ${lease.holderSessionId}`;
    if (!event) return text;
    if (lease.endedLeaseId) text += ` (ended ${lease.endedLeaseId}: ${lease.cause || "?"})`;
    if (lease.estopped) text += ", e-stop latched";
    if (!lease.online) text += ", device offline";
    if (event.endedOurs && lease.cause !== "released") text += lease.estopped ? "; a supervisor must reset it before anyone drives" : "; acquire to drive again";
    return text;
  }

  statusLine(): string {
    const controls = this.controls;
    if (!controls) return "not joined";
    const lease = controls.lease;
    const telemetry = controls.telemetry;
    const parts = [
      `lease ${this.leaseText(lease)}`,
      `estopped ${lease?.estopped || telemetry?.estopped ? "yes" : "no"}`,
      `online ${lease?.online ? "yes" : "no"}`,
    ];
    if (controls.holding) parts.push(controls.started ? `sending ${fmt(this.options.rateHz)} Hz` : "sending heartbeats");
    parts.push(this.jointsText(controls.profile, telemetry, controls.clock.now()));
    const latency = controls.latency();
    parts.push(latency.ackRttP50Ms === undefined
      ? "ack rtt -"
      : `ack rtt p50 ${latency.ackRttP50Ms.toFixed(1)} ms p99 ${latency.ackRttP99Ms!.toFixed(1)} ms (${latency.samples} acks)`);
    return parts.join(" | ");
  }

  private jointsText(profile: DeviceProfile | undefined, telemetry: Telemetry | undefined, serverNow: number): string {
    if (!telemetry) return "no telemetry";
    const units = new Map(axesOf(profile).map((axis) => [axis.name, axis.unit]));
    const joints = (telemetry.joints as tsunagi.v1.JointState[]).map((joint) => {
      const unit = units.get(joint.name);
      return `${joint.name} ${fixed(joint.position)}${unit ? ` ${unit}` : ""} @ ${signed(joint.velocity)}/s`;
    });
    let text = joints.length > 0 ? joints.join(", ") : "no joints";
    if (telemetry.mode) text = `mode ${telemetry.mode}, ${text}`;
    const pose = telemetry.pose as tsunagi.v1.Pose | null | undefined;
    if (pose && profile?.deviceClass === tsunagi.v1.DeviceClass.DEVICE_CLASS_DRONE) text += `, at (${fixed(pose.x, 1)}, ${fixed(pose.y, 1)}, ${fixed(pose.z, 1)}) m`;
    if (telemetry.watchdogTripped) text += ", watchdog tripped";
    if (telemetry.faults.length > 0) text += `, faults ${telemetry.faults.map((f) => f.code).join(" ")}`;
    const ageMs = serverNow - telemetry.sampledAtMs;
    if (telemetry.sampledAtMs > 0 && ageMs > STALE_TELEMETRY_MS) text += ` (telemetry ${(ageMs / 1000).toFixed(1)} s old)`;
    return text;
  }

  private printStatus(periodic = false) {
    say("status", this.statusLine(), { replace: periodic });
  }

  private printAxes() {
    const controls = this.controls!;
    const profile = controls.profile;
    if (!profile) { say("axes", `no profile for ${controls.deviceId} yet (is its adapter online?)`); return; }
    const deviceClass = (tsunagi.v1.DeviceClass[profile.deviceClass] ?? String(profile.deviceClass)).replace(/^DEVICE_CLASS_/, "").toLowerCase();
    say("axes", `${profile.deviceId}: ${profile.driver || "?"} (${deviceClass}), ${profile.axes.length} axes, watchdog ${profile.watchdogWindowMs || DEFAULT_WATCHDOG_WINDOW_MS} ms, latency budget ${profile.latencyBudgetMs || "server default"}${profile.latencyBudgetMs ? " ms" : ""}`);
    for (const axis of axesOf(profile)) {
      let text = `${axis.name} ${modeName(axis.mode)}`;
      try {
        const [low, high] = axisBounds(axis);
        const unit = commandUnit(axis);
        text += low === -high ? ` ±${fmt(high)}` : ` ${fmt(low)}..${fmt(high)}`;
        if (unit) text += ` ${unit}`;
      } catch (error) {
        text += ` (not commandable: ${(error as Error).message})`;
      }
      if (axis.mode !== AxisMode.AXIS_MODE_POSITION) {
        const hasMin = axis.min !== undefined && axis.min !== null;
        const hasMax = axis.max !== undefined && axis.max !== null;
        const position = hasMin || hasMax ? `${hasMin ? fmt(axis.min!) : "-inf"}..${hasMax ? fmt(axis.max!) : "+inf"}` : "unbounded";
        text += `, position ${position}${axis.unit ? ` ${axis.unit}` : ""}`;
      } else if (axis.maxRate) {
        text += `, at most ${fmt(axis.maxRate)} ${axis.rateUnit || `${axis.unit}/s`}`;
      }
      say("axes", text);
    }
    for (const action of controls.actions) {
      say("axes", `action ${action.name}${action.hasValue ? ` VALUE (${fmt(action.min)}..${fmt(action.max)}${action.unit ? ` ${action.unit}` : ""})` : ""}: ${action.description}`);
    }
  }

  // --- the way out -------------------------------------------------------------------

  /**
   * Stops the loop, releases the lease if held, leaves the room, exits with `code`.
   * Bounded by EXIT_BOUND_MS whatever hangs; a second call while exiting does nothing.
   */
  exit(code: number): Promise<void> {
    if (this.exiting) return this.exiting;
    const hard = setTimeout(() => process.exit(code), EXIT_BOUND_MS);
    this.exiting = (async () => {
      try {
        if (this.watchTimer) clearInterval(this.watchTimer);
        const input = rl;
        rl = undefined;
        input?.close();
        if (input && tty) process.stdout.write("\n");
        const controls = this.controls;
        const session = this.session;
        if (controls) {
          try {
            controls.stop();
            if (controls.holding) await withTimeout(controls.release(), SHUTDOWN_STEP_MS, () => new TsunagiError(ErrorCode.REGION_UNAVAILABLE, "no reply to the release")).catch(reportError);
          } finally {
            controls.dispose(); // still holding (no reply): a stop command and a release, fire-and-forget
          }
        }
        if (session && !session.closed) await withTimeout(session.leave(), SHUTDOWN_STEP_MS, () => new Error("leave timed out")).catch(() => {});
        if (session && code === 0) say("quit", `left room ${this.options.room}`);
      } catch (error) {
        reportError(error);
      } finally {
        clearTimeout(hard);
        process.exit(code);
      }
    })();
    return this.exiting;
  }
}

// --- helpers -----------------------------------------------------------------------

async function fetchDevToken(node: string, role: ConsoleRole): Promise<string> {
  const sub = readableSubject();
  const url = `${node}/dev/token?role=${encodeURIComponent(role)}&sub=${encodeURIComponent(sub)}`;
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  } catch (error) {
    if ((error as Error)?.name === "TimeoutError") throw new TsunagiError(ErrorCode.REGION_UNAVAILABLE, `GET ${node}/dev/token: no answer within ${REQUEST_TIMEOUT_MS / 1000} s`);
    const coded = fromServerError(error);
    throw new TsunagiError(coded.code, `GET ${node}/dev/token (for a dev token): ${coded.message}`, { cause: error });
  }
  const body = await response.text();
  if (response.status === 404) {
    throw new TsunagiError(ErrorCode.TOKEN_MISSING, `a token is needed: ${node} does not issue dev tokens (GET /dev/token answered 404; the node is not in dev mode). Pass --token JWT or set TSUNAGI_TOKEN`);
  }
  if (!response.ok) {
    let detail: { code?: unknown; error?: unknown } = {};
    try { detail = JSON.parse(body); } catch { /* not JSON */ }
    const message = `GET /dev/token answered ${response.status}${typeof detail.error === "string" ? `: ${detail.error}` : ""}`;
    throw fromServerError({ code: typeof detail.code === "number" ? detail.code : response.status, message });
  }
  if (!body) throw new TsunagiError(ErrorCode.TOKEN_MISSING, "GET /dev/token answered with an empty token");
  return body.trim();
}

/** "operator-cli:alice@host": who is at the console, for the room's audit log. */
function readableSubject(): string {
  let user = "someone";
  try { user = os.userInfo().username || user; } catch { /* no passwd entry (containers) */ }
  return `operator-cli:${user}@${os.hostname()}`.replace(/[^A-Za-z0-9_.:@-]/g, "_").slice(0, 64);
}

/** "operator operator-cli:alice@host" from the token's payload, when it reads as a JWT. */
function tokenIdentity(token: string): string | undefined {
  try {
    const payload = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8")) as { role?: unknown; sub?: unknown };
    if (typeof payload.role !== "string") return undefined;
    return typeof payload.sub === "string" ? `${payload.role} ${payload.sub}` : payload.role;
  } catch {
    return undefined;
  }
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

// --- main --------------------------------------------------------------------------

function main() {
  let options: Options | "help";
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`${error.message}\n${usageText}`);
    process.exit(2);
  }
  if (options === "help") {
    process.stdout.write(`${usageText}commands (one a line on stdin):\n${commandsText.map((c) => `  ${c}\n`).join("")}`);
    process.exit(0);
  }

  const console_ = new OperatorConsole(options);
  let signals = 0;
  const onSignal = () => {
    // A second signal while exiting: go now (the room ends the lease of a dropped connection).
    if (++signals > 1) process.exit(0);
    void console_.exit(0);
  };
  // Nobody reads the output any more (a closed pipe): nobody sees what the machine does; stop it.
  process.stdout.on("error", () => void console_.exit(1));
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  process.on("uncaughtException", (error) => {
    reportError(new TsunagiError(ErrorCode.INTERNAL, `unexpected error: ${error?.message ?? String(error)}`, { cause: error }));
    void console_.exit(1);
  });
  process.on("unhandledRejection", (error) => {
    reportError(new TsunagiError(ErrorCode.INTERNAL, `unexpected error: ${(error as Error)?.message ?? String(error)}`, { cause: error }));
    void console_.exit(1);
  });
  void console_.run().catch((error) => {
    reportError(error);
    void console_.exit(1);
  });
}

main();
