/**
 * A Janus this node starts and keeps running: Debian's `janus`, on free ports of a
 * loopback (or configured private) address, with a configuration written for this node
 * alone (JanusConfig: secrets of its own, both APIs on that address only, only VideoRoom
 * and Streaming loaded, each behind an admin_key).
 *
 * - start() finds the binary and its plugins, writes the configuration into a folder
 *   only this user can read (it holds the secrets), starts Janus and resolves once its
 *   API answers `info`. A port taken meanwhile (Janus exits at start) is retried on fresh
 *   ports, up to 3 times.
 * - If Janus dies, it is started again on the same ports with the same secrets, after
 *   250 ms, doubling up to 5 s while it keeps failing; `onRestart` is called once it
 *   answers, since its rooms went with it and must be created again.
 * - stop() ends it (SIGTERM, SIGKILL after 3 s) and removes the folder. It runs under a
 *   guard (GUARD) that ends it when this process dies, even by SIGKILL.
 *
 * @example
 *   const janus = await JanusProcess.start({ host: "127.0.0.1", rtpPortRange: "20000-20999", serverName: "tokyo-1", logger, onRestart: () => backend.recreateRooms() });
 *   janus.endpoint.apiUrl;   // ws://127.0.0.1:41234
 *   await janus.stop();
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { accessSync, constants, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import WebSocket from "ws";
import type { Logger } from "../observability/logging.ts";
import { janusConfigFiles, type JanusSecrets } from "./JanusConfig.ts";
import { mediaInterfacesProblem } from "./settings.ts";

/** Where this node reaches its Janus, and the secrets it holds. */
export interface JanusEndpoint {
  apiUrl: string;
  adminUrl: string;
  secrets: JanusSecrets;
}

export interface JanusProcessOptions {
  /** The address both APIs listen on. Default 127.0.0.1. */
  host?: string;
  /** Media ports, "min-max". */
  rtpPortRange: string;
  /** Where ICE candidates are gathered (JanusConfigOptions.mediaInterfaces; never loopback). Default: every interface. */
  mediaInterfaces?: string;
  /** Names the Janus (this node's id). */
  serverName: string;
  logger: Logger;
  /** The janus binary; default: `janus` on the PATH. */
  binary?: string;
  /** Where its plugins and transports are; default: found among Debian's and the usual places. */
  libFolder?: string;
  /** Janus' debug level, 0-7. Default 4 (info). */
  debugLevel?: number;
  /** Janus died (it is started again; onRestart follows once it answers). */
  onExit?: () => void;
  /** After a restart: Janus answers again, and its rooms are gone. */
  onRestart?: () => void;
}

/** Janus is not installed: what to do about it. */
export class JanusMissing extends Error {}
/** Janus could not bind one of its ports: start() tries fresh ones. */
class PortTaken extends Error {}

/**
 * Janus runs under this sh, which ends it when this process goes, even by SIGKILL (Janus
 * cannot be told to die with its parent): a watcher holds the read end of a pipe whose
 * write end only this process holds, and when it reads the end of it (this process
 * gone, or stop()), marks the folder and kills Janus; the sh then removes the folder
 * (the secrets). The sh prints Janus' pid first; when Janus exits by itself it ends the
 * watcher (the folder stays for the restart) and exits with Janus' status. `$1` is the
 * folder, the rest Janus' command.
 */
const GUARD = 'dir=$1; shift; exec 3<&0 0</dev/null; "$@" 3<&- & pid=$!; echo "janus-pid $pid" >&2; '
  + '( read -r _ <&3; : > "$dir/.owner-gone"; kill -TERM $pid 2>/dev/null ) & watcher=$!; '
  + 'wait $pid; status=$?; kill $watcher 2>/dev/null; if [ -e "$dir/.owner-gone" ]; then rm -rf "$dir"; fi; exit $status';

/** How long Janus has to answer `info` after it starts. */
const READY_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 3000;
const OUTPUT_KEPT = 40;

export class JanusProcess {
  private child?: ChildProcess;
  /** Janus' own pid (its guard's child). */
  private janusPid?: number;
  private stopping = false;
  private restartDelayMs = 250;
  private restartTimer?: NodeJS.Timeout;
  /** The last lines Janus printed (for errors). */
  private readonly output: string[] = [];

  private constructor(
    readonly endpoint: JanusEndpoint,
    private readonly folder: string,
    private readonly binary: string,
    private readonly options: JanusProcessOptions,
  ) {}

  static async start(options: JanusProcessOptions): Promise<JanusProcess> {
    const binary = options.binary ?? findOnPath("janus");
    if (!binary) throw new JanusMissing("Janus is not installed (no `janus` on the PATH): apt-get install janus");
    const libFolder = options.libFolder ?? findLibFolder();
    if (!libFolder) throw new JanusMissing("Janus' plugins were not found (libjanus_videoroom.so): apt-get install janus, or set its folder");
    const host = options.host ?? "127.0.0.1";
    const mediaProblem = mediaInterfacesProblem(options.mediaInterfaces ?? "");
    if (mediaProblem) throw new Error(`voice.mediaInterfaces "${options.mediaInterfaces}": ${mediaProblem}`);
    const secrets: JanusSecrets = { apiSecret: secret(), adminSecret: secret(), adminKey: secret() };
    let lastError: Error | undefined;
    for (let attempt = 0; attempt < 3; attempt++) {
      const folder = mkdtempSync(path.join(tmpdir(), "tsunagi-janus-"));
      const [apiPort, adminPort] = await freePorts(host, 2);
      const files = janusConfigFiles({
        folder, libFolder, host, apiPort, adminPort, secrets,
        rtpPortRange: options.rtpPortRange, mediaInterfaces: options.mediaInterfaces ?? "", serverName: options.serverName, debugLevel: options.debugLevel ?? 4,
      });
      for (const [name, text] of Object.entries(files)) writeFileSync(path.join(folder, name), text, { mode: 0o600 });
      const url = (port: number) => `ws://${host.includes(":") ? `[${host}]` : host}:${port}`;
      const janus = new JanusProcess({ apiUrl: url(apiPort), adminUrl: url(adminPort), secrets }, folder, binary, options);
      try {
        await janus.launch();
        options.logger.info({ apiUrl: janus.endpoint.apiUrl, adminUrl: janus.endpoint.adminUrl, pid: janus.pid }, `Janus started for voice on ${janus.endpoint.apiUrl}`);
        return janus;
      } catch (error) {
        lastError = error as Error;
        await janus.stop();
        if (!(lastError instanceof PortTaken)) break;
      }
    }
    throw lastError!;
  }

  /** The running Janus' process id (tests, logs). */
  get pid(): number | undefined { return this.janusPid; }

  /** Ends Janus and removes its folder; resolves once it exited. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.stdin?.end(); // the guard ends Janus (SIGTERM)
      const timer = setTimeout(() => this.kill(), STOP_GRACE_MS);
      await exited;
      clearTimeout(timer);
    }
    rmSync(this.folder, { recursive: true, force: true });
  }

  /** Starts Janus and waits until it answers; rejects (Janus stopped) when it exits or does not answer in time. */
  private async launch(): Promise<void> {
    const child = spawn("/bin/sh", ["-c", GUARD, "janus-guard", this.folder, this.binary, "-C", path.join(this.folder, "janus.jcfg"), "-F", this.folder], { stdio: ["pipe", "pipe", "pipe"] });
    this.child = child;
    this.janusPid = undefined;
    child.stdin!.on("error", () => {}); // the guard gone first
    const keep = (chunk: Buffer) => {
      for (const line of chunk.toString("utf8").split("\n")) {
        const pid = /^janus-pid (\d+)$/.exec(line.trim());
        if (pid && this.janusPid === undefined) this.janusPid = Number(pid[1]);
        else if (line.trim()) this.output.push(line);
      }
      this.output.splice(0, Math.max(0, this.output.length - OUTPUT_KEPT));
    };
    child.stdout!.on("data", keep);
    child.stderr!.on("data", keep);
    const exited = new Promise<never>((_, reject) => child.once("exit", (code, signal) => {
      const why = `Janus exited at start (${signal ?? `code ${code}`}):\n${this.output.slice(-15).join("\n")}`;
      // Its WebSockets transport could not bind a port (taken since freePorts() let it go).
      reject(/Error creating vhost|address already in use/i.test(why) ? new PortTaken(why) : new Error(why));
    }));
    exited.catch(() => {});
    child.once("error", (error) => this.output.push(`spawn: ${error.message}`));
    await Promise.race([this.answersInfo(), exited]);
    child.once("exit", (code, signal) => this.exited(code, signal));
  }

  /** SIGKILL to Janus and its guard (a stop past its grace, a start that failed). */
  private kill() {
    if (this.janusPid) { try { process.kill(this.janusPid, "SIGKILL"); } catch { /* gone */ } }
    this.child?.kill("SIGKILL");
    this.child?.stdin?.destroy();
  }

  private exited(code: number | null, signal: NodeJS.Signals | null) {
    if (this.stopping) return;
    this.options.onExit?.();
    this.options.logger.error({ code, signal, output: this.output.slice(-10) }, `Janus exited (${signal ?? `code ${code}`}): voice is down until it is started again in ${this.restartDelayMs} ms`);
    this.restartTimer = setTimeout(() => void this.restart(), this.restartDelayMs);
    this.restartTimer.unref?.();
  }

  private async restart() {
    if (this.stopping) return;
    try {
      await this.launch();
      this.restartDelayMs = 250;
      this.options.logger.warn({ pid: this.janusPid }, "Janus started again: creating its rooms again");
      this.options.onRestart?.();
    } catch (error) {
      this.restartDelayMs = Math.min(this.restartDelayMs * 2, 5000);
      this.kill();
      this.options.logger.error({ err: error }, `Janus could not be started again; next try in ${this.restartDelayMs} ms`);
      this.restartTimer = setTimeout(() => void this.restart(), this.restartDelayMs);
      this.restartTimer.unref?.();
    }
  }

  /** Resolves once the API answers `info` (asked every 50 ms), within READY_TIMEOUT_MS. */
  private async answersInfo(): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (await janusInfo(this.endpoint.apiUrl, 1000)) return;
      if (Date.now() > deadline) throw new Error(`Janus did not answer on ${this.endpoint.apiUrl} within ${READY_TIMEOUT_MS} ms:\n${this.output.slice(-15).join("\n")}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/** Whether a Janus answers `info` at `url` within `timeoutMs` (no secret needed for it). */
export async function janusInfo(url: string, timeoutMs: number): Promise<boolean> {
  return (await janusOnce(url, { janus: "info" }, timeoutMs))?.janus === "server_info";
}

/** One request on a fresh connection to Janus' API, with nothing added (no secret, no token): its first answer, or undefined. */
export function janusOnce(url: string, request: Record<string, unknown>, timeoutMs: number): Promise<any> {
  return new Promise((resolve) => {
    const socket = new WebSocket(url, "janus-protocol");
    const done = (answer: unknown) => { clearTimeout(timer); socket.removeAllListeners(); socket.on("error", () => {}); socket.terminate(); resolve(answer); };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.on("open", () => socket.send(JSON.stringify({ ...request, transaction: "once" })));
    socket.on("message", (data) => {
      try { done(JSON.parse(String(data))); } catch { done(undefined); }
    });
    socket.on("error", () => done(undefined));
  });
}

function secret(): string {
  return randomBytes(24).toString("base64url");
}

function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    const candidate = path.join(dir, name);
    try { accessSync(candidate, constants.X_OK); return candidate; } catch { /* not here */ }
  }
  return undefined;
}

/** Debian's folder for this machine's architecture, or the usual places of a build from source. */
function findLibFolder(): string | undefined {
  const multiarch = { x64: "x86_64-linux-gnu", arm64: "aarch64-linux-gnu" }[process.arch as string];
  const candidates = [multiarch && `/usr/lib/${multiarch}/janus`, "/usr/lib/janus", "/usr/local/lib/janus", "/opt/janus/lib/janus"].filter(Boolean) as string[];
  return candidates.find((folder) => existsSync(path.join(folder, "plugins", "libjanus_videoroom.so")));
}

/**
 * `count` distinct ports free on `host` just now (Janus binds them next; a race is retried by
 * start()). All are held open together until each is known: one at a time, the system may
 * hand out the same port twice, and Janus' API and Admin API would then share it.
 */
async function freePorts(host: string, count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(0, host, () => resolve());
      });
    }
    return servers.map((server) => (server.address() as { port: number }).port);
  } finally {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  }
}
