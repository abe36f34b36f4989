/**
 * The wire contract stays usable from C# (Unity clients, docs/unity.md): Debian's protoc
 * (`protobuf-compiler`; `.ci/run` installs it) generates C# from every .proto under
 * proto/, and every message of each file becomes a class of its generated file.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { repoRoot } from "../fixtures/processes.ts";

/** Every .proto under proto/, relative to it. */
function protoFiles(dir = path.join(repoRoot, "proto"), base = ""): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    if (entry.isDirectory()) return entry.name === "gen" ? [] : protoFiles(path.join(dir, entry.name), path.join(base, entry.name));
    return entry.name.endsWith(".proto") ? [path.join(base, entry.name)] : [];
  }).sort();
}

/** `envelope.proto` → `Envelope.cs`: protoc's name for a file's C# output. */
function csharpName(file: string): string {
  return path.basename(file, ".proto").split(/[_-]/).map((part) => part[0]!.toUpperCase() + part.slice(1)).join("") + ".cs";
}

describe("the contract in C#", () => {
  it("protoc --csharp_out generates every .proto, each message a class", { timeout: 60_000 }, () => {
    const files = protoFiles();
    expect(files.length).toBeGreaterThan(0);
    const out = mkdtempSync(path.join(tmpdir(), "tsunagi-csharp-"));
    try {
      const run = spawnSync("protoc", [`--csharp_out=${out}`, "-I", path.join(repoRoot, "proto"), ...files], { encoding: "utf8" });
      if (run.error) throw new Error(`protoc could not run (${run.error.message}): apt-get install protobuf-compiler`);
      expect(run.status, run.stderr).toBe(0);
      expect(readdirSync(out).sort()).toEqual(files.map(csharpName).sort());
      for (const file of files) {
        const messages = [...readFileSync(path.join(repoRoot, "proto", file), "utf8").matchAll(/^message (\w+)/gm)].map((match) => match[1]!);
        const csharp = readFileSync(path.join(out, csharpName(file)), "utf8");
        expect(csharp).toMatch(/namespace Tsunagi\.V1/);
        for (const message of messages) expect(csharp, `${file}: message ${message}`).toMatch(new RegExp(`public sealed partial class ${message}\\b`));
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
