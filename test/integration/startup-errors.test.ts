/** A node that cannot start says why and exits with the documented code. */
import { describe, it, expect } from "vitest";
import { spawn } from "node:child_process";
import { createServer, type AddressInfo } from "node:net";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { DeviceCa } from "../../server/auth/DeviceCa.ts";
import { makeTestPki } from "../fixtures/tls.ts";
import { repoRoot } from "../fixtures/processes.ts";
import { testRedisUrl } from "../fixtures/redis.ts";

/** Runs the node with `args`; no TSUNAGI_* setting comes from the test's own environment. */
function run(args: string[]): Promise<{ code: number | null; output: string }> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("TSUNAGI_")));
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", "server/main.ts", "--gateway-port", "0", ...args], { cwd: repoRoot, env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d) => { output += d; });
    child.stderr.on("data", (d) => { output += d; });
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    child.on("close", (code) => { clearTimeout(timer); resolve({ code, output }); }); // "close": after the output is all read
  });
}

describe("node start-up errors", () => {
  it("exits 2 and names every bad setting", async () => {
    const { code, output } = await run(["--port", "seventy", "--transport", "carrier-pigeon", "--demo", "false"]);
    expect(code).toBe(2);
    expect(output).toContain("--port: expected an integer");
  });

  it("exits 2 on a schema violation, naming the field", async () => {
    const { code, output } = await run(["--transport", "carrier-pigeon", "--port", "0", "--demo", "false"]);
    expect(code).toBe(2);
    expect(output).toMatch(/transport: .*"uws"/);
  });

  it("exits 1 with a clear message when the port is taken", async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const { code, output } = await run(["--port", String(port), "--demo", "false"]);
      expect(code).toBe(1);
      expect(output).toContain(`cannot listen on 127.0.0.1:${port}`);
    } finally {
      blocker.close();
    }
  });

  it("exits 1 naming the setting when Redis is unreachable", async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const port = (blocker.address() as { port: number }).port;
    blocker.close(); // a port nothing listens on
    const { code, output } = await run(["--port", "0", "--demo", "false", "--redis-url", `redis://127.0.0.1:${port}`, "--auth-secret", "x".repeat(32)]);
    expect(code).toBe(1);
    expect(output).toContain(`redisUrl redis://127.0.0.1:${port}: Redis not reachable`);
    // The secret on the command line is used, with a warning.
    expect(output).toMatch(/--auth-secret puts a secret in the process list/);
  });

  it("exits 1 naming the setting when etcd is unreachable, within its call bound", async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const port = (blocker.address() as { port: number }).port;
    blocker.close(); // a port nothing listens on
    const { code, output } = await run([
      "--port", "0", "--demo", "false", "--redis-url", testRedisUrl(), "--auth-secret", "x".repeat(32),
      "--etcd-endpoints", `http://127.0.0.1:${port}`, "--etcd-call-timeout-ms", "500",
    ]);
    expect(code).toBe(1);
    expect(output).toContain(`etcd.endpoints http://127.0.0.1:${port}: etcd not reachable, or without quorum, within 500 ms`);
  });

  it("exits 2 naming the reason when dev mode is asked for with Redis, even a reachable one", async () => {
    const { code, output } = await run(["--port", "0", "--demo", "false", "--redis-url", testRedisUrl(), "--dev-mode", "true"]);
    expect(code).toBe(2);
    expect(output).toMatch(/devMode: refused with Redis/);
  });

  it("on a non-loopback host: dev mode is off, so no secret exits 2; dev mode asked for exits 2", async () => {
    const withoutSecret = await run(["--port", "0", "--demo", "false", "--host", "0.0.0.0"]);
    expect(withoutSecret.code).toBe(2);
    expect(withoutSecret.output).toMatch(/authSecret: required outside dev mode/);
    const asked = await run(["--port", "0", "--demo", "false", "--host", "0.0.0.0", "--dev-mode", "true"]);
    expect(asked.code).toBe(2);
    expect(asked.output).toMatch(/devMode: refused on host 0.0.0.0/);
  });

  it("the certificate listener: exits 2 without the gateway's TLS files or with a device CA that is not a CA; exits 1 on a taken cert port", { timeout: 60_000 }, async () => {
    const pki = makeTestPki();
    const dir = mkdtempSync(path.join(tmpdir(), "tsunagi-startup-ca-"));
    const blocker = createServer();
    try {
      const caFile = path.join(dir, "ca.crt");
      writeFileSync(caFile, DeviceCa.create().certPem);
      const withoutTls = await run(["--port", "0", "--demo", "false", "--gateway-device-ca-file", caFile]);
      expect(withoutTls.code).toBe(2);
      expect(withoutTls.output).toMatch(/gateway.deviceCaFile: the certificate listener is TLS, and needs the node's certificate and key/);
      const tlsArgs = ["--gateway-cert-file", pki.certFile, "--gateway-key-file", pki.keyFile];
      const notCa = await run(["--port", "0", "--demo", "false", ...tlsArgs, "--gateway-device-ca-file", pki.certFile]);
      expect(notCa.code).toBe(2);
      expect(notCa.output).toMatch(/gateway.deviceCaFile: .* is not a CA certificate/);
      await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
      const taken = (blocker.address() as AddressInfo).port;
      const busy = await run(["--port", "0", "--demo", "false", ...tlsArgs, "--gateway-device-ca-file", caFile, "--gateway-cert-port", String(taken)]);
      expect(busy.code).toBe(1);
      expect(busy.output).toContain(`device certificate listener cannot listen on 127.0.0.1:${taken}`);
    } finally {
      blocker.close();
      pki.remove();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("prints the settings table for --help", async () => {
    const { code, output } = await run(["--help"]);
    expect(code).toBe(0);
    expect(output).toContain("--limits-max-frame-bytes");
    expect(output).toContain("TSUNAGI_REDIS_URL");
  });
});
