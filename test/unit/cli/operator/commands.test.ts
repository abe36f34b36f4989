/** The console's command lines: names and aliases, arguments, and what runs at once. */
import { describe, it, expect } from "vitest";
import { helpLines, parseActionArguments, parseLine, parseSetArguments } from "../../../../cli/operator/commands.ts";

describe("the console's command lines", () => {
  it("resolves aliases, keeps the words and the text after the name", () => {
    expect(parseLine("  S boom 0.3 swing -1 ")).toEqual({ kind: "command", verb: "set", args: ["boom", "0.3", "swing", "-1"], rest: "boom 0.3 swing -1", immediate: false });
    expect(parseLine("e hydraulic   leak")).toMatchObject({ verb: "estop", rest: "hydraulic   leak", immediate: true });
    expect(parseLine("exit")).toMatchObject({ verb: "quit", immediate: false });
    expect(parseLine("?")).toMatchObject({ verb: "status", immediate: true });
    expect(parseLine("   ")).toEqual({ kind: "empty" });
  });

  it("runs e-stops and the printing commands at once, the others in turn", () => {
    const immediate = ["estop", "estop-all", "status", "axes", "help", "acquire", "release", "set", "do", "reset", "stop", "start", "neutral", "quit"]
      .filter((name) => (parseLine(`${name}${["set", "do"].includes(name) ? " x 1" : ""}`) as { immediate: boolean }).immediate);
    expect(immediate).toEqual(["estop", "estop-all", "status", "axes", "help"]);
  });

  it("refuses unknown commands and arguments to commands that take none", () => {
    expect(parseLine("fly away")).toEqual({ kind: "invalid", message: "unknown command \"fly\" (\"help\" lists the commands)" });
    expect(parseLine("acquire now")).toEqual({ kind: "invalid", message: "\"acquire\" takes no arguments (\"help\" lists the commands)" });
  });

  it("parses set's axis value pairs, refusing odd counts, repeats and non-numbers", () => {
    expect(parseSetArguments(["boom", "0.3", "swing", "-1e-1"])).toEqual({ boom: 0.3, swing: -0.1 });
    expect(() => parseSetArguments(["boom"])).toThrow(/usage: set AXIS VALUE/);
    expect(() => parseSetArguments(["boom", "1", "boom", "2"])).toThrow(/given twice/);
    for (const text of ["0x10", "Infinity", "1_0", ""]) expect(() => parseSetArguments(["boom", text]), text).toThrow(/is not a number/);
  });

  it("parses do's action and optional value", () => {
    expect(parseActionArguments(["takeoff", "5"], ["takeoff"])).toEqual({ name: "takeoff", value: 5, valueGiven: true });
    expect(parseActionArguments(["arm"], ["arm"])).toEqual({ name: "arm", value: 0, valueGiven: false });
    expect(() => parseActionArguments([], ["arm", "land"])).toThrow("(actions: arm, land)");
    expect(() => parseActionArguments(["takeoff", "high"], [])).toThrow(/"high" is not a number/);
  });

  it("lists every command in the help, aligned", () => {
    expect(helpLines).toHaveLength(14);
    expect(helpLines[0]).toBe("acquire | a                 take the lease and start sending the setpoint at --rate-hz");
    expect(helpLines.every((line) => /^\S.{26}\s\S/.test(line) && line[27] === " ")).toBe(true);
  });
});
