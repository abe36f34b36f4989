import { describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const probe = fileURLToPath(new URL("../../fixtures/probes/bigOutputCli.ts", import.meta.url));

describe("runCli", () => {
  it("exits only once its output is out, however slowly the pipe is read (an export must not lose its tail)", async () => {
    const bytes = 1 << 20;
    const child = spawn(process.execPath, ["--import", "tsx", probe, String(bytes)], { stdio: ["ignore", "pipe", "inherit"] });
    // Read nothing until the child had time to write and, before the fix, to exit.
    child.stdout.pause();
    await new Promise((resolve) => setTimeout(resolve, 1500));
    let received = 0;
    child.stdout.on("data", (chunk: Buffer) => { received += chunk.length; });
    child.stdout.resume();
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    expect(code).toBe(0);
    expect(received).toBe(Math.ceil(bytes / 100) * 100);
  }, 30_000);
});
