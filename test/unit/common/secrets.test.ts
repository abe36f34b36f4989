import { describe, it, expect } from "vitest";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { resolveSecret } from "../../../common/secrets.ts";

const names = { flagName: "--secret", fileName: "--secret-file", envName: "TSUNAGI_S", envFileName: "TSUNAGI_S_FILE" };

describe("resolveSecret", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "tsunagi-secrets-"));
  const file = path.join(dir, "s");
  writeFileSync(file, "from-file\n");

  it("takes a flag or file first, then the environment, and warns only for a flag", () => {
    expect(resolveSecret("s", { ...names, flag: "from-flag", env: "from-env" })).toMatchObject({ secret: "from-flag", source: "--secret", warning: expect.stringMatching(/process list/) });
    expect(resolveSecret("s", { ...names, file, env: "from-env" })).toEqual({ secret: "from-file", source: "--secret-file" });
    expect(resolveSecret("s", { ...names, env: "from-env" })).toEqual({ secret: "from-env", source: "TSUNAGI_S" });
    expect(resolveSecret("s", { ...names, envFile: file })).toEqual({ secret: "from-file", source: "TSUNAGI_S_FILE" });
    expect(resolveSecret("s", { ...names, env: "" })).toEqual({ secret: undefined, source: undefined });
  });

  it("refuses two sources at one level, an empty or unreadable file", () => {
    expect(() => resolveSecret("s", { ...names, flag: "a", file })).toThrow(/--secret or --secret-file for the s, not both/);
    expect(() => resolveSecret("s", { ...names, env: "a", envFile: file })).toThrow(/both TSUNAGI_S and TSUNAGI_S_FILE/);
    expect(() => resolveSecret("s", { ...names, file: path.join(dir, "none") })).toThrow(/--secret-file .*none/);
    const empty = path.join(dir, "empty");
    writeFileSync(empty, "\n");
    expect(() => resolveSecret("s", { ...names, file: empty })).toThrow(/is empty/);
  });
});
