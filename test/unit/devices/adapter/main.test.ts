/**
 * The adapter CLI: argument rules (each problem names its flag), and the process itself
 * against a scripted gateway: the human "online" line, JSON log lines, exit 2 on bad
 * arguments and exit 0 on SIGTERM.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, it, expect } from "vitest";
import { ArgsError, parseAdapterArgs } from "../../../../devices/adapter/args.ts";
import { ScriptedGateway } from "../../../fixtures/fakes/ScriptedGateway.ts";
import { makeTestPki } from "../../../fixtures/tls.ts";
import { DeviceCa } from "../../../../server/auth/DeviceCa.ts";

const SECRET = "c3".repeat(32);
const NODE = ["--node", "http://127.0.0.1:2567"];
const BASE = ["--device", "ex-1", "--driver", "sim-excavator", ...NODE, "--dev"];
/** The header every POST to the local endpoint carries. */
const LOCAL = { "x-tsunagi-adapter": "1" };

describe("parseAdapterArgs", () => {
  it("parses a full command line, with repeated --node", () => {
    const args = parseAdapterArgs([...BASE, "--node", "http://127.0.0.1:2568/", "--secret", SECRET, "--telemetry-hz", "10", "--status-port", "0", "--log-level", "debug", "--log-format", "json", "--camera", "sim"], {});
    expect(args).toEqual({
      deviceId: "ex-1", driver: "sim-excavator", driverOptions: {}, nodes: ["http://127.0.0.1:2567", "http://127.0.0.1:2568/"],
      credential: { secret: SECRET }, ca: undefined, devMode: true, telemetryHz: 10, statusPort: 0, logLevel: "debug", logFormat: "json", camera: "sim", help: false,
      warnings: [expect.stringMatching(/--secret puts a secret in the process list/)],
    });
  });

  it("reads --driver-config as a JSON object, and refuses a missing file, bad JSON or anything but an object", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "tsunagi-driver-config-"));
    const file = (name: string, text: string) => { const at = path.join(dir, name); writeFileSync(at, text); return at; };
    const good = file("drone.json", JSON.stringify({ endpoint: "udpout:127.0.0.1:14555", estopAction: "land" }));
    expect(parseAdapterArgs([...BASE, "--secret", SECRET, "--driver-config", good], {}).driverOptions).toEqual({ endpoint: "udpout:127.0.0.1:14555", estopAction: "land" });
    expect(parseAdapterArgs([...BASE, "--secret", SECRET], {}).driverOptions).toEqual({});
    expect(() => parseAdapterArgs([...BASE, "--secret", SECRET, "--driver-config", path.join(dir, "none.json")], {})).toThrow(/--driver-config .*none\.json: ENOENT/);
    expect(() => parseAdapterArgs([...BASE, "--secret", SECRET, "--driver-config", file("bad.json", "{ endpoint: ")], {})).toThrow(/--driver-config .*bad\.json: .*JSON/);
    for (const text of ["[]", "null", "42"]) {
      expect(() => parseAdapterArgs([...BASE, "--secret", SECRET, "--driver-config", file("not-object.json", text)], {})).toThrow(/must hold a JSON object/);
    }
  });

  it("has no camera unless asked, and refuses an unknown camera mode", () => {
    expect(parseAdapterArgs([...BASE, "--secret", SECRET], {}).camera).toBe("off");
    expect(() => parseAdapterArgs([...BASE, "--secret", SECRET, "--camera", "usb"], {})).toThrow(/--camera "usb" must be sim or off/);
  });

  it("refuses plain http:// nodes outside dev mode, and reads --ca", () => {
    const https = ["--device", "ex-1", "--driver", "sim-excavator", "--node", "https://tokyo-1.example.net:2567", "--secret", SECRET];
    expect(() => parseAdapterArgs(["--device", "ex-1", "--driver", "sim-excavator", ...NODE, "--secret", SECRET], {}))
      .toThrow(/--node http:\/\/127\.0\.0\.1:2567 is plain http:\/\/: outside dev mode.*--dev/);
    expect(() => parseAdapterArgs([...https, "--node", "http://osaka-1.example.net:2567"], {})).toThrow(/plain http:\/\//);
    expect(parseAdapterArgs(https, {})).toMatchObject({ devMode: false, ca: undefined });
    const pki = makeTestPki();
    try {
      expect(parseAdapterArgs([...https, "--ca", pki.caFile], {}).ca).toBe(pki.ca);
    } finally {
      pki.remove();
    }
    expect(() => parseAdapterArgs([...https, "--ca", "/nonexistent/ca.pem"], {})).toThrow(/--ca \/nonexistent\/ca.pem: ENOENT/);
    expect(() => parseAdapterArgs([...https, "--ca", fileURLToPath(import.meta.url)], {})).toThrow(/holds no PEM certificate/);
  });

  it("takes the credential from the environment, flags first", () => {
    expect(parseAdapterArgs(BASE, { TSUNAGI_DEVICE_SECRET: SECRET }).credential).toEqual({ secret: SECRET });
    expect(parseAdapterArgs(BASE, { TSUNAGI_DEVICE_TOKEN: "jwt" }).credential).toEqual({ token: "jwt" });
    expect(parseAdapterArgs([...BASE, "--token", "flag-jwt"], { TSUNAGI_DEVICE_SECRET: SECRET }).credential).toEqual({ token: "flag-jwt" });
    expect(parseAdapterArgs(BASE, { TSUNAGI_DEVICE_SECRET: SECRET }).telemetryHz).toBe(20);
    expect(parseAdapterArgs(BASE, { TSUNAGI_DEVICE_SECRET: SECRET }).logLevel).toBe("info");
    expect(parseAdapterArgs(BASE, { TSUNAGI_DEVICE_SECRET: SECRET }).statusPort).toBeUndefined();
  });

  it.each([
    [["--driver", "sim-excavator", ...NODE, "--secret", SECRET], /--device is required/],
    [["--device", "bad id", "--driver", "sim-excavator", ...NODE, "--secret", SECRET], /--device "bad id"/],
    [["--device", "ex-1", ...NODE, "--secret", SECRET], /--driver is required/],
    [["--device", "ex-1", "--driver", "sim-bulldozer", ...NODE, "--secret", SECRET], /--driver "sim-bulldozer" is not a driver; valid drivers: sim-excavator, sim-drone/],
    [["--device", "ex-1", "--driver", "sim-drone", "--secret", SECRET], /--node is required/],
    [[...BASE, "--node", "ftp://x", "--secret", SECRET], /--node "ftp:\/\/x"/],
    [[...BASE, "--node", "http://127.0.0.1:2567", "--secret", SECRET], /given twice/],
    [BASE, /a credential is required/],
    [[...BASE, "--secret", "xyz"], /--secret must be the 64 hex/],
    [[...BASE, "--secret", SECRET, "--token", "t"], /--secret and --token both give a credential/],
    [[...BASE, "--secret", SECRET, "--secret-file", "/nonexistent"], /--secret or --secret-file/],
    [[...BASE, "--secret-file", "/nonexistent/secret"], /--secret-file \/nonexistent\/secret/],
    [[...BASE, "--secret", SECRET, "--telemetry-hz", "fast"], /--telemetry-hz "fast"/],
    [[...BASE, "--secret", SECRET, "--telemetry-hz", "0"], /--telemetry-hz/],
    [[...BASE, "--secret", SECRET, "--log-level", "loud"], /--log-level "loud"/],
    [[...BASE, "--secret", SECRET, "--log-format", "xml"], /--log-format "xml" must be one of auto, json, pretty/],
    [[...BASE, "--secret", SECRET, "--status-port", "70000"], /--status-port "70000" must be a port number/],
    [[...BASE, "--secret", SECRET, "--status-port", "x"], /--status-port "x"/],
    [[...BASE, "--secret", SECRET, "--nodes", "x"], /--nodes/],
    [[...BASE, "--secret", SECRET, "extra"], /extra/],
    [[...BASE, "--secret"], /--secret/],
  ])("refuses %j, naming the flag", (argv, message) => {
    expect(() => parseAdapterArgs(argv, {})).toThrow(ArgsError);
    expect(() => parseAdapterArgs(argv, {})).toThrow(message);
  });

  it("refuses both credentials in the environment", () => {
    expect(() => parseAdapterArgs(BASE, { TSUNAGI_DEVICE_SECRET: SECRET, TSUNAGI_DEVICE_TOKEN: "t" })).toThrow(/TSUNAGI_DEVICE_SECRET and TSUNAGI_DEVICE_TOKEN both give a credential/);
    expect(() => parseAdapterArgs(BASE, { TSUNAGI_DEVICE_SECRET: "nothex" })).toThrow(/TSUNAGI_DEVICE_SECRET must be the 64 hex/);
  });

  it("reads the credential from a file, and warns only when it is given as a flag", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "tsunagi-adapter-"));
    const secretFile = path.join(dir, "secret");
    writeFileSync(secretFile, `${SECRET}\n`);
    const tokenFile = path.join(dir, "token");
    writeFileSync(tokenFile, "file-jwt\n");
    expect(parseAdapterArgs([...BASE, "--secret-file", secretFile], {})).toMatchObject({ credential: { secret: SECRET }, warnings: [] });
    expect(parseAdapterArgs(BASE, { TSUNAGI_DEVICE_SECRET_FILE: secretFile })).toMatchObject({ credential: { secret: SECRET }, warnings: [] });
    expect(parseAdapterArgs(BASE, { TSUNAGI_DEVICE_TOKEN_FILE: tokenFile })).toMatchObject({ credential: { token: "file-jwt" }, warnings: [] });
    expect(parseAdapterArgs([...BASE, "--token-file", tokenFile], { TSUNAGI_DEVICE_SECRET: SECRET })).toMatchObject({ credential: { token: "file-jwt" }, warnings: [] });
    expect(parseAdapterArgs(BASE, { TSUNAGI_DEVICE_SECRET: SECRET }).warnings).toEqual([]);
    expect(parseAdapterArgs([...BASE, "--token", "flag-jwt"], {}).warnings.join("\n")).toMatch(/--token puts a secret in the process list/);
  });

  it("takes the parent to exit with from TSUNAGI_ADAPTER_PARENT_PID, and refuses one that is not a process id", () => {
    expect(parseAdapterArgs(BASE, { TSUNAGI_DEVICE_SECRET: SECRET, TSUNAGI_ADAPTER_PARENT_PID: "4242" }).parentPid).toBe(4242);
    expect(parseAdapterArgs(BASE, { TSUNAGI_DEVICE_SECRET: SECRET }).parentPid).toBeUndefined();
    expect(() => parseAdapterArgs(BASE, { TSUNAGI_DEVICE_SECRET: SECRET, TSUNAGI_ADAPTER_PARENT_PID: "init" })).toThrow(/TSUNAGI_ADAPTER_PARENT_PID "init"/);
    expect(() => parseAdapterArgs(BASE, { TSUNAGI_DEVICE_SECRET: SECRET, TSUNAGI_ADAPTER_PARENT_PID: "1" })).toThrow(ArgsError);
  });

  it("selects certificate mode with --cert and --key, and refuses either alone, beside a secret, or a file without PEM", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "adapter-cert-"));
    const made = DeviceCa.create();
    const issued = DeviceCa.load(made.certPem, made.keyPem).issue("ex-1");
    const cert = path.join(dir, "ex-1.crt");
    const key = path.join(dir, "ex-1.key");
    writeFileSync(cert, issued.certPem);
    writeFileSync(key, issued.keyPem);
    expect(parseAdapterArgs([...BASE, "--cert", cert, "--key", key], { TSUNAGI_DEVICE_SECRET: SECRET }).credential)
      .toEqual({ certificate: { cert: issued.certPem, key: issued.keyPem } });
    expect(() => parseAdapterArgs([...BASE, "--cert", cert], {})).toThrow(/--cert needs --key/);
    expect(() => parseAdapterArgs([...BASE, "--key", key], {})).toThrow(/--key needs --cert/);
    expect(() => parseAdapterArgs([...BASE, "--cert", cert, "--key", key, "--secret", SECRET], {})).toThrow(/--cert and --secret both give a credential/);
    expect(() => parseAdapterArgs([...BASE, "--cert", key, "--key", key], {})).toThrow(/--cert .* holds no PEM certificate/);
    expect(() => parseAdapterArgs([...BASE, "--cert", cert, "--key", cert], {})).toThrow(/--key .* holds no PEM private key/);
    expect(() => parseAdapterArgs([...BASE, "--cert", path.join(dir, "missing.crt"), "--key", key], {})).toThrow(/--cert .*missing\.crt: ENOENT/);
  });

  it("--help short-circuits the checks", () => {
    expect(parseAdapterArgs(["--help"], {}).help).toBe(true);
  });
});

describe("npm run adapter (process)", () => {
  const mainPath = fileURLToPath(new URL("../../../../devices/adapter/main.ts", import.meta.url));
  const children: ChildProcess[] = [];
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  /** Runs main.ts under tsx; resolves output and exit code. */
  function runAdapter(argv: string[], env: Record<string, string> = {}) {
    const child = spawn(process.execPath, ["--import", "tsx", mainPath, ...argv], { env: { ...process.env, TSUNAGI_DEVICE_SECRET: "", TSUNAGI_DEVICE_TOKEN: "", ...env }, stdio: ["ignore", "pipe", "pipe"] });
    children.push(child);
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (chunk) => { stdout += chunk; });
    child.stderr!.on("data", (chunk) => { stderr += chunk; });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    return { child, exited, output: () => ({ stdout, stderr }) };
  }

  it("exits 2 naming the flag on bad arguments", { timeout: 30_000 }, async () => {
    const run = runAdapter(["--device", "ex-1", "--driver", "sim-bulldozer", ...NODE, "--secret", SECRET]);
    expect(await run.exited).toBe(2);
    expect(run.output().stderr).toMatch(/adapter: --driver "sim-bulldozer" is not a driver/);
    expect(run.output().stderr).toMatch(/usage: npm run adapter/);
  });

  it("exits 2 naming the field when the driver refuses its config, before connecting anywhere", { timeout: 30_000 }, async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "tsunagi-driver-config-"));
    const config = path.join(dir, "drone.json");
    writeFileSync(config, JSON.stringify({ endpoint: "serial:/dev/ttyACM0", estopAction: "explode" }));
    const run = runAdapter(["--device", "dr-1", "--driver", "mavlink", "--driver-config", config, ...NODE, "--dev", "--secret", SECRET]);
    expect(await run.exited).toBe(2);
    expect(run.output().stderr).toMatch(/adapter: driver mavlink: mavlink driver config: endpoint: must be udpin:HOST:PORT .*; estopAction: /);
  });

  it("comes online, logs JSON, serves its local status, and exits 0 on SIGTERM", { timeout: 30_000 }, async () => {
    const gateway = await ScriptedGateway.start({ deviceId: "ex-9", secret: SECRET, regionId: "jp-osaka", nodeId: "osaka-1" });
    cleanups.push(() => gateway.close());
    const run = runAdapter(["--device", "ex-9", "--driver", "sim-excavator", "--node", gateway.httpUrl, "--dev", "--telemetry-hz", "5", "--status-port", "0"], { TSUNAGI_DEVICE_SECRET: SECRET });
    const deadline = Date.now() + 25_000;
    while (!run.output().stdout.includes("adapter ex-9 online via jp-osaka/osaka-1\n")) {
      if (run.child.exitCode !== null || Date.now() > deadline) throw new Error(`adapter did not come online: ${JSON.stringify(run.output())}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await gateway.waitFor((e) => e.body === "deviceProfile");
    const statusUrl = run.output().stdout.match(/adapter ex-9 status on (http:\/\/127\.0\.0\.1:\d+\/status)\n/)?.[1];
    expect(statusUrl).toBeDefined();
    const status = await (await fetch(statusUrl!)).json();
    expect(status).toMatchObject({ deviceId: "ex-9", driver: "sim-excavator", state: "online", connection: { regionId: "jp-osaka", nodeId: "osaka-1" }, safety: { estopped: false } });
    expect(status.joints.map((joint: { name: string }) => joint.name)).toEqual(["swing", "boom", "arm", "bucket", "left-track", "right-track"]);
    expect(status.joints.every((joint: { velocity: number }) => joint.velocity === 0)).toBe(true);
    expect(status.lastStop).toBeUndefined(); // never commanded to move
    expect((await fetch(statusUrl!.replace("/status", "/healthz"))).status).toBe(200);
    expect((await fetch(statusUrl!, { method: "POST" })).status).toBe(403); // no X-Tsunagi-Adapter header
    expect((await fetch(statusUrl!, { method: "POST", headers: LOCAL })).status).toBe(405);
    expect((await fetch(statusUrl!.replace("/status", "/estop"))).status).toBe(405); // GET moves nothing
    run.child.kill("SIGTERM");
    expect(await run.exited).toBe(0);
    const jsonLines = run.output().stdout.split("\n").filter((line) => line.startsWith("{")).map((line) => JSON.parse(line) as { msg: string });
    expect(jsonLines.some((line) => line.msg === "adapter ex-9 online via jp-osaka/osaka-1")).toBe(true);
    expect(jsonLines.some((line) => line.msg === "adapter ex-9 exited")).toBe(true);
  });

  it("POST /estop on the local endpoint stops a moving machine, latches, and tells the gateway; a garbled body still stops", { timeout: 30_000 }, async () => {
    const gateway = await ScriptedGateway.start({ deviceId: "ex-10", secret: SECRET, nodeId: "osaka-2" });
    cleanups.push(() => gateway.close());
    const run = runAdapter(["--device", "ex-10", "--driver", "sim-excavator", "--node", gateway.httpUrl, "--dev", "--telemetry-hz", "5", "--status-port", "0"], { TSUNAGI_DEVICE_SECRET: SECRET });
    await gateway.waitFor((e) => e.body === "deviceProfile", 0, 25_000);
    const statusUrl = run.output().stdout.match(/adapter ex-10 status on (http:\/\/127\.0\.0\.1:\d+\/status)\n/)?.[1];
    expect(statusUrl).toBeDefined();
    const estopUrl = statusUrl!.replace("/status", "/estop");
    const swing = async () => ((await (await fetch(statusUrl!)).json()) as { joints: Array<{ name: string; velocity: number }> }).joints.find((j) => j.name === "swing")!.velocity;

    gateway.send({ correlationId: 0, leaseState: { deviceId: "ex-10", leaseId: "lease-1", holderSessionId: "op", holderRole: "operator" } });
    const drive = setInterval(() => {
      const now = Date.now();
      try { gateway.send({ correlationId: 0, controlCommand: { deviceId: "ex-10", leaseId: "lease-1", seq: now, issuedAtMs: now, deadlineMs: now + 5000, axes: [{ name: "swing", value: 0.5 }] } }); } catch { /* reconnecting */ }
    }, 20);
    try {
      const deadline = Date.now() + 10_000;
      while (Math.abs((await swing()) - 0.5) > 1e-6) {
        if (Date.now() > deadline) throw new Error(`the machine never swung: ${run.output().stdout.slice(-2000)}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const since = gateway.mark();
      const response = await fetch(estopUrl, { method: "POST", headers: LOCAL, body: JSON.stringify({ reason: "technician pressed stop" }) });
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({ estopped: true, reason: "technician pressed stop", safety: { estopped: true } });
      // Stopped before the body is read, then told again with the reason it carried.
      const first = await gateway.waitFor((e) => e.body === "estop", since);
      expect(first.estop).toMatchObject({ deviceId: "ex-10", reason: "local e-stop at the adapter", raisedBy: "device:ex-10" });
      const told = await gateway.waitFor((e) => e.body === "estop" && e.estop?.reason !== "local e-stop at the adapter", since);
      expect(told.estop).toMatchObject({ deviceId: "ex-10", reason: "technician pressed stop", raisedBy: "device:ex-10" });
      await new Promise((resolve) => setTimeout(resolve, 100)); // commands keep coming: none moves it
      expect(await swing()).toBe(0);

      const garbled = await fetch(estopUrl, { method: "POST", headers: LOCAL, body: "{not json" });
      expect(garbled.status).toBe(200);
      expect(await garbled.json()).toMatchObject({ estopped: true, reason: "local e-stop at the adapter", warning: expect.stringContaining("not JSON") });
    } finally {
      clearInterval(drive);
    }
    run.child.kill("SIGTERM");
    expect(await run.exited).toBe(0);
  });
});
