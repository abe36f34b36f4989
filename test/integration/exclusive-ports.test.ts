/**
 * A node started on a port another node holds fails and says so: uWS listens with
 * SO_REUSEPORT unless told otherwise, and then both come up and the kernel splits the
 * connections between them. Both listeners count: the client port and the gateway port.
 * (The ws transport never shared; it is here so both transports keep the rule.)
 */
import { describe, it, expect, afterAll, beforeAll } from "vitest";
import { spawn } from "node:child_process";
import { freePort, repoRoot, startNode, type NodeProcess } from "../fixtures/processes.ts";

/** Runs `server/main.ts` with `args` until it exits (or 30 s pass: then it is killed, and the exit code is null). */
function run(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", "server/main.ts", "--host", "127.0.0.1", "--demo", "false", ...args], { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d) => { output += d; });
    child.stderr.on("data", (d) => { output += d; });
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.on("close", (code) => { clearTimeout(timer); resolve({ code, output }); }); // "close": after the output is all read
  });
}

describe.each(["uws", "ws"] as const)("a port another node holds (first node on %s)", (transport) => {
  let first: NodeProcess;
  // Fixed ports, as in production: Linux lets no one share a port the kernel picked for
  // port 0, so only a chosen port shows the sharing.
  beforeAll(async () => { first = await startNode({ transport, port: await freePort(), gatewayPort: await freePort() }); }, 60_000);
  afterAll(async () => { await first?.stop(); });

  it.each(["uws", "ws"] as const)("a second node on its client port (%s) exits 1 naming the address", async (secondTransport) => {
    const { code, output } = await run(["--transport", secondTransport, "--port", String(first.port), "--gateway-port", "0"]);
    expect(code).toBe(1);
    expect(output).toContain(`cannot listen on 127.0.0.1:${first.port}`);
  }, 45_000);

  it("a second node on its gateway port exits 1 naming the device gateway", async () => {
    const gatewayPort = Number(new URL(first.gatewayUrl).port);
    const { code, output } = await run(["--port", "0", "--gateway-port", String(gatewayPort)]);
    expect(code).toBe(1);
    expect(output).toContain(`device gateway cannot listen on 127.0.0.1:${gatewayPort}`);
  }, 45_000);
});
