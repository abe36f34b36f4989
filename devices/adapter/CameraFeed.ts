/**
 * The machine's camera, as the node's Janus takes it (server/voice/JanusCameras): H.264
 * constrained baseline over SRTP to the mountpoint's address, sent by `ffmpeg`. Until a
 * real camera is wired in, the picture is ffmpeg's synthetic test pattern (`testsrc`:
 * colour bars, a scrolling gradient and a running timestamp, so no two frames are alike).
 *
 * - The stream is what the mountpoint expects: libx264 baseline, level 3.1, zero-latency
 *   tuning, no B-frames, a keyframe every second (the mountpoint sends no PLI, so a new
 *   viewer waits at most that long), a small bitrate; RTP with the mountpoint's payload
 *   type, packets of at most 1200 bytes (they cross WebRTC after Janus), no RTCP; sealed
 *   with the mountpoint's SRTP key (AES_CM_128_HMAC_SHA1_80) when it has one.
 * - If ffmpeg dies it is started again after 250 ms, doubling up to 5 s while it keeps
 *   dying (back to 250 ms once it has run 10 s). stop() ends it (SIGTERM, SIGKILL after
 *   3 s). It runs under a guard (GUARD) that ends it when this process dies, even by
 *   SIGKILL: ffmpeg does not end when its stdin closes.
 * - Without ffmpeg installed, start() throws FfmpegMissing, saying how to install it.
 *
 * @example
 *   const feed = CameraFeed.start({ rtpHost: "10.0.0.5", rtpPort: 20004, payloadType: 96, srtpKey, logger });
 *   await feed.stop();
 */
import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants } from "node:fs";
import path from "node:path";
import { pino, type Logger } from "pino";

export interface CameraFeedOptions {
  /** Where the mountpoint listens (JanusCameras.open()'s answer). */
  rtpHost: string;
  rtpPort: number;
  /** The mountpoint's payload type. Default 96. */
  payloadType?: number;
  /** The mountpoint's SRTP master key and salt (30 bytes, base64); none: plain RTP. */
  srtpKey?: string;
  /** "WIDTHxHEIGHT". Default 640x360. */
  size?: string;
  /** Frames per second. Default 15. */
  frameRate?: number;
  /** Default 300 kbit/s. */
  bitrateKbps?: number;
  /** The ffmpeg binary; default: `ffmpeg` on the PATH. */
  binary?: string;
  /** Default: silent. */
  logger?: Logger;
}

/** ffmpeg is not installed: what to do about it. */
export class FfmpegMissing extends Error {}

/**
 * ffmpeg runs under this sh, which ends it when this process goes, even by SIGKILL: a
 * watcher holds the read end of a pipe whose write end only this process holds, and
 * when it reads the end of it (this process gone, or stop()), sends ffmpeg SIGTERM. The
 * sh prints ffmpeg's pid first; when ffmpeg exits by itself it ends the watcher and
 * exits with ffmpeg's status. The arguments are ffmpeg's command.
 */
const GUARD = 'exec 3<&0 0</dev/null; "$@" 3<&- & pid=$!; echo "ffmpeg-pid $pid" >&2; '
  + '( read -r _ <&3; kill -TERM $pid 2>/dev/null ) & watcher=$!; '
  + 'wait $pid; status=$?; kill $watcher 2>/dev/null; exit $status';

const FIRST_RESTART_MS = 250;
const MAX_RESTART_MS = 5000;
/** A run this long counts as healthy: the next restart waits FIRST_RESTART_MS again. */
const HEALTHY_RUN_MS = 10_000;
const STOP_GRACE_MS = 3000;
const OUTPUT_KEPT = 20;
/** RTP packets stay under this (bytes), so they fit a WebRTC path after Janus. */
const PACKET_BYTES = 1200;

export class CameraFeed {
  private child?: ChildProcess;
  /** ffmpeg's own pid (its guard's child). */
  private ffmpegPid?: number;
  private stopping = false;
  private restartDelayMs = FIRST_RESTART_MS;
  private restartTimer?: NodeJS.Timeout;
  private startedAt = 0;
  /** How many times ffmpeg was started again after dying. */
  private restartCount = 0;
  /** ffmpeg's last lines (for the log when it dies). */
  private readonly output: string[] = [];
  private readonly logger: Logger;

  private constructor(private readonly binary: string, private readonly args: string[], logger: Logger | undefined) {
    this.logger = logger ?? pino({ level: "silent" });
  }

  /** Starts ffmpeg sending to the mountpoint; throws FfmpegMissing when it is not installed. */
  static start(options: CameraFeedOptions): CameraFeed {
    const binary = options.binary ?? findOnPath("ffmpeg");
    if (!binary) throw new FfmpegMissing("ffmpeg is not installed (no `ffmpeg` on the PATH): apt-get install ffmpeg");
    const feed = new CameraFeed(binary, ffmpegArgs(options), options.logger);
    feed.launch();
    return feed;
  }

  /** ffmpeg's pid while it runs (tests, logs). */
  get pid(): number | undefined { return this.ffmpegPid; }
  get restarts(): number { return this.restartCount; }

  /** Ends ffmpeg; resolves once it exited. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.stdin?.end(); // the guard ends ffmpeg (SIGTERM)
    const timer = setTimeout(() => this.kill(), STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
  }

  private launch() {
    const child = spawn("/bin/sh", ["-c", GUARD, "camera-feed-guard", this.binary, ...this.args], { stdio: ["pipe", "ignore", "pipe"] });
    this.child = child;
    this.ffmpegPid = undefined;
    this.startedAt = Date.now();
    child.stdin!.on("error", () => {}); // the guard gone first
    child.stderr!.on("data", (chunk: Buffer) => {
      for (const line of chunk.toString("utf8").split("\n")) {
        const pid = /^ffmpeg-pid (\d+)$/.exec(line.trim());
        if (pid && this.ffmpegPid === undefined) this.ffmpegPid = Number(pid[1]);
        else if (line.trim()) this.output.push(line);
      }
      this.output.splice(0, Math.max(0, this.output.length - OUTPUT_KEPT));
    });
    child.once("error", (error) => this.output.push(`spawn: ${error.message}`));
    child.once("exit", (code, signal) => this.exited(code, signal));
  }

  private exited(code: number | null, signal: NodeJS.Signals | null) {
    this.ffmpegPid = undefined;
    if (this.stopping) return;
    if (Date.now() - this.startedAt >= HEALTHY_RUN_MS) this.restartDelayMs = FIRST_RESTART_MS;
    this.logger.warn({ code, signal, output: this.output.slice(-8) }, `the camera feed (ffmpeg) exited (${signal ?? `code ${code}`}); starting it again in ${this.restartDelayMs} ms`);
    this.restartTimer = setTimeout(() => {
      if (this.stopping) return;
      this.restartCount++;
      this.launch();
    }, this.restartDelayMs);
    this.restartTimer.unref?.();
    this.restartDelayMs = Math.min(this.restartDelayMs * 2, MAX_RESTART_MS);
  }

  /** SIGKILL to ffmpeg and its guard (a stop past its grace). */
  private kill() {
    if (this.ffmpegPid) { try { process.kill(this.ffmpegPid, "SIGKILL"); } catch { /* gone */ } }
    this.child?.kill("SIGKILL");
    this.child?.stdin?.destroy();
  }
}

/** ffmpeg's arguments: the test pattern, encoded and sent as the mountpoint expects. */
export function ffmpegArgs(options: CameraFeedOptions): string[] {
  const frameRate = options.frameRate ?? 15;
  const kbps = options.bitrateKbps ?? 300;
  const host = options.rtpHost.includes(":") ? `[${options.rtpHost}]` : options.rtpHost;
  const srtp = options.srtpKey ? ["-srtp_out_suite", "AES_CM_128_HMAC_SHA1_80", "-srtp_out_params", options.srtpKey] : [];
  return [
    "-hide_banner", "-nostdin", "-loglevel", "warning",
    "-re", "-f", "lavfi", "-i", `testsrc=size=${options.size ?? "640x360"}:rate=${frameRate}`,
    "-an", "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-profile:v", "baseline", "-level:v", "3.1", "-pix_fmt", "yuv420p",
    "-b:v", `${kbps}k`, "-maxrate", `${kbps}k`, "-bufsize", `${kbps}k`, "-g", String(frameRate), "-keyint_min", String(frameRate), "-sc_threshold", "0", "-bf", "0",
    "-f", "rtp", "-payload_type", String(options.payloadType ?? 96), "-rtpflags", "skip_rtcp", ...srtp,
    `${options.srtpKey ? "srtp" : "rtp"}://${host}:${options.rtpPort}?pkt_size=${PACKET_BYTES}`,
  ];
}

function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    const candidate = path.join(dir, name);
    try { accessSync(candidate, constants.X_OK); return candidate; } catch { /* not here */ }
  }
  return undefined;
}
