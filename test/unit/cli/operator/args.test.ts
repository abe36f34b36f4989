/** The console's flags: defaults, the environment's token, and each bad flag named. */
import { describe, it, expect } from "vitest";
import { UsageError, parseConsoleArgs } from "../../../../cli/operator/args.ts";
import { cliEnv } from "../../../../cli/env.ts";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

const required = ["--node", "http://127.0.0.1:2567/", "--room", "teleop-demo", "--device", "excavator-1"];

describe("the console's flags", () => {
  it("fills the defaults, trims the node URL and takes the token from TSUNAGI_TOKEN", () => {
    expect(parseConsoleArgs(required, cliEnv({ TSUNAGI_TOKEN: "jwt-env" }))).toEqual({
      node: "http://127.0.0.1:2567", room: "teleop-demo", device: "excavator-1", role: "operator", token: "jwt-env", rateHz: 50, watchHz: 2, warnings: [],
    });
    expect(parseConsoleArgs([...required, "--token", "jwt-flag", "--role", "supervisor", "--rate-hz", "20", "--watch-hz", "0"], cliEnv({ TSUNAGI_TOKEN: "jwt-env" })))
      .toMatchObject({ token: "jwt-flag", role: "supervisor", rateHz: 20, watchHz: 0 });
    expect(parseConsoleArgs(required, cliEnv({}))).toMatchObject({ token: undefined });
    expect(parseConsoleArgs(["--help"], cliEnv({}))).toBe("help");
  });

  it("reads the token from a file, and warns when it is given as a flag", () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), "tsunagi-console-")), "token");
    writeFileSync(file, "jwt-file\n");
    expect(parseConsoleArgs([...required, "--token-file", file], cliEnv({ TSUNAGI_TOKEN: "jwt-env" }))).toMatchObject({ token: "jwt-file", warnings: [] });
    expect(parseConsoleArgs(required, cliEnv({ TSUNAGI_TOKEN_FILE: file }))).toMatchObject({ token: "jwt-file", warnings: [] });
    const flagged = parseConsoleArgs([...required, "--token", "jwt-flag"], cliEnv({}));
    expect(flagged).toMatchObject({ token: "jwt-flag", warnings: [expect.stringMatching(/--token puts a secret in the process list/)] });
    expect(() => parseConsoleArgs([...required, "--token", "a", "--token-file", file], cliEnv({}))).toThrow(/--token or --token-file/);
  });

  it("names the bad flag", () => {
    const bad: Array<[string[], RegExp]> = [
      [["--bogus"], /--bogus/],
      [required.slice(2), /--node is required/],
      [["--node", "ftp://x", ...required.slice(2)], /^--node: /],
      [[...required.slice(0, 2), "--device", "d"], /--room is required/],
      [[...required.slice(0, 4), "--device", "no spaces"], /--device must match/],
      [[...required, "--role", "admin"], /--role must be one of operator, supervisor, visitor/],
      [[...required, "--token", ""], /--token must not be empty/],
      [[...required, "--rate-hz", "0"], /--rate-hz must be a number in \(0, 1000\]/],
      [[...required, "--rate-hz", "1001"], /--rate-hz/],
      [[...required, "--watch-hz", "101"], /--watch-hz must be a number in \[0, 100\]/],
      [[...required, "--watch-hz", "-1"], /--watch-hz/], // parseArgs takes "-1" for a flag and names --watch-hz itself
    ];
    for (const [argv, message] of bad) {
      expect(() => parseConsoleArgs(argv, cliEnv({})), argv.join(" ")).toThrow(UsageError);
      expect(() => parseConsoleArgs(argv, cliEnv({})), argv.join(" ")).toThrow(message);
    }
  });
});
