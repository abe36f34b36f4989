/**
 * What each console command does to the device's OperatorControls, and what it prints.
 * A command refuses itself with a TypeError ("invalid: " line) for bad arguments or the
 * wrong moment; the room's refusals come back as coded errors ("error: " line).
 *
 * Motion needs our own lease and a running loop: `set` refuses otherwise, so no setpoint
 * waits to move the machine later.
 *
 * @example
 *   const commands = new ConsoleCommands(controls, terminal);
 *   await commands.run(parseLine("set boom 0.3") as ConsoleCommand);   // "set: boom +0.300 rad/s"
 */
import type { OperatorControls } from "../../client-sdk/OperatorControls.ts";
import type { Console } from "./Console.ts";
import { helpLines, parseActionArguments, parseSetArguments, type ConsoleCommand } from "./commands.ts";
import { actionResultText, axesLines, setText, statusLine } from "./format.ts";

/** The part of the terminal the commands print through. */
export type CommandOutput = Pick<Console, "say">;

export class ConsoleCommands {
  /** The device's controls. */
  private readonly controls: OperatorControls;
  /** Where the commands' lines go. */
  private readonly output: CommandOutput;

  constructor(controls: OperatorControls, output: CommandOutput) {
    this.controls = controls;
    this.output = output;
  }

  /** Runs one command but quit (the console's own); settles when it is done. */
  run(command: ConsoleCommand): Promise<void> | void {
    switch (command.verb) {
      case "acquire": return this.acquire();
      case "set": return this.set(command.args);
      case "neutral": return this.neutral();
      case "stop": return this.stopLoop();
      case "start": return this.startLoop();
      case "release": return this.release();
      case "do": return this.perform(command.args);
      case "estop": return this.estop(command.rest, false);
      case "estop-all": return this.estop(command.rest, true);
      case "reset": return this.reset(command.rest);
      case "status": return this.printStatus();
      case "axes": return this.printAxes();
      case "help": for (const text of helpLines) this.output.say("help", text); return;
      case "quit": throw new Error("quit is the console's own: OperatorConsole runs it");
    }
  }

  /** The status line; `periodic` lines overwrite each other on a terminal. */
  printStatus(periodic = false): void {
    const controls = this.controls;
    this.output.say("status", statusLine({
      mySessionId: controls.session.sessionId, lease: controls.lease, telemetry: controls.telemetry, profile: controls.profile,
      holding: controls.holding, started: controls.started, rateHz: controls.rateHz, serverNow: controls.clock.now(), latency: controls.latency(),
    }), { replace: periodic });
  }

  private async acquire() {
    await this.controls.acquire();
    this.controls.start();
  }

  private async release() {
    const controls = this.controls;
    controls.stop();
    if (!controls.holding) { this.output.say("invalid", `not holding the lease of ${controls.deviceId}`); return; }
    await controls.release();
  }

  private set(args: string[]) {
    const controls = this.controls;
    const values = parseSetArguments(args);
    if (!controls.holding) throw new TypeError(`not holding the lease of ${controls.deviceId}: acquire first`);
    if (!controls.started) throw new TypeError("the loop is stopped: start (or acquire) to send commands again");
    const applied = controls.setAxes(values);
    this.output.say("set", setText(applied, values, controls.profile));
  }

  private async perform(args: string[]) {
    const { name, value, valueGiven } = parseActionArguments(args, this.controls.actions.map((action) => action.name));
    const result = await this.controls.perform(name, value);
    this.output.say("action", actionResultText(name, valueGiven ? value : undefined, result));
  }

  private neutral() {
    this.controls.neutral();
    this.output.say("set", "neutral: velocity and torque axes 0");
  }

  private stopLoop() {
    const controls = this.controls;
    if (!controls.started) { this.output.say("invalid", "the loop is not running"); return; }
    controls.stop();
    this.output.say("stop", controls.holding ? "stop command sent; keeping the lease with heartbeats (start to send again, release to let go)" : "loop stopped");
  }

  private startLoop() {
    const controls = this.controls;
    if (!controls.holding) throw new TypeError(`not holding the lease of ${controls.deviceId}: acquire first`);
    if (controls.started) { this.output.say("invalid", "the loop is already running"); return; }
    controls.neutral();
    controls.start();
    this.output.say("start", `sending the setpoint at ${controls.rateHz} Hz (from neutral)`);
  }

  private async estop(reason: string, all: boolean) {
    if (all) await this.controls.estopAll(reason || undefined);
    else await this.controls.estop(reason || undefined);
  }

  private async reset(reason: string) {
    await this.controls.reset(reason);
  }

  private printAxes() {
    const controls = this.controls;
    const profile = controls.profile;
    if (!profile) { this.output.say("axes", `no profile for ${controls.deviceId} yet (is its adapter online?)`); return; }
    for (const line of axesLines(profile, controls.actions)) this.output.say("axes", line);
  }
}
