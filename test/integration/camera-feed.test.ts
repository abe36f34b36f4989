/**
 * The adapter's CameraFeed with Debian's real ffmpeg, sending to a UDP socket of this
 * test: RTP with the payload type asked for, in packets of at most 1200 bytes, and H.264
 * keyframes; started again after ffmpeg dies; ended by stop(), and ended with the Node
 * process that started it even when that process is SIGKILLed; without ffmpeg, an error
 * saying how to install it.
 */
import { spawn } from "node:child_process";
import { createSocket, type Socket } from "node:dgram";
import { afterAll, describe, expect, it } from "vitest";
import { CameraFeed, FfmpegMissing } from "../../devices/adapter/CameraFeed.ts";
import { repoRoot, waitFor } from "../fixtures/processes.ts";

const feeds: CameraFeed[] = [];
const sockets: Socket[] = [];
afterAll(async () => {
  await Promise.allSettled(feeds.map((feed) => feed.stop()));
  for (const socket of sockets) socket.close();
});

/** A UDP socket on loopback that records what arrives: packets, SSRCs, payload types, the largest size, whether an IDR came. */
async function receiver() {
  const socket = createSocket("udp4");
  sockets.push(socket);
  const seen = { packets: 0, ssrcs: new Set<number>(), payloadTypes: new Set<number>(), largest: 0, keyframe: false };
  socket.on("message", (packet) => {
    seen.packets++;
    seen.ssrcs.add(packet.readUInt32BE(8));
    seen.payloadTypes.add(packet[1]! & 0x7f);
    seen.largest = Math.max(seen.largest, packet.length);
    const nal = packet[12]! & 0x1f; // no CSRCs or extensions from ffmpeg
    if (nal === 5 || (nal === 28 && (packet[13]! & 0x1f) === 5)) seen.keyframe = true;
  });
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  return { port: socket.address().port, seen };
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

describe("CameraFeed", () => {
  it("sends H.264 over RTP with the mountpoint's payload type, and is started again after ffmpeg dies", { timeout: 30_000 }, async () => {
    const { port, seen } = await receiver();
    const feed = CameraFeed.start({ rtpHost: "127.0.0.1", rtpPort: port, payloadType: 102 });
    feeds.push(feed);
    await waitFor(() => seen.keyframe && seen.packets > 20, 15_000, "RTP with a keyframe from ffmpeg");
    expect([...seen.payloadTypes]).toEqual([102]);
    expect(seen.largest).toBeLessThanOrEqual(1200);
    const first = await waitFor(() => feed.pid, 5000, "ffmpeg's pid");
    process.kill(first, "SIGKILL");
    await waitFor(() => feed.restarts === 1 && feed.pid !== undefined && feed.pid !== first, 10_000, "ffmpeg started again");
    await waitFor(() => seen.ssrcs.size === 2, 10_000, "the new ffmpeg's packets");
    await feed.stop();
    expect(alive(first)).toBe(false);
  });

  it("ends ffmpeg when the process that started it is SIGKILLed", { timeout: 30_000 }, async () => {
    const script = 'const { CameraFeed } = await import("./devices/adapter/CameraFeed.ts");'
      + ' const feed = CameraFeed.start({ rtpHost: "127.0.0.1", rtpPort: 9 });'
      + ' const timer = setInterval(() => { if (feed.pid) { console.log(`ffmpeg ${feed.pid}`); clearInterval(timer); } }, 50);';
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { cwd: repoRoot, stdio: ["ignore", "pipe", "inherit"] });
    try {
      let output = "";
      child.stdout!.on("data", (chunk) => { output += chunk; });
      const pid = Number(await waitFor(() => /ffmpeg (\d+)/.exec(output)?.[1], 15_000, "the child's ffmpeg"));
      expect(alive(pid)).toBe(true);
      child.kill("SIGKILL");
      await waitFor(() => !alive(pid), 10_000, "ffmpeg ended after its parent was killed");
    } finally {
      child.kill("SIGKILL");
    }
  });

  it("says how to install ffmpeg when it is missing", () => {
    const path = process.env.PATH;
    process.env.PATH = "";
    try {
      expect(() => CameraFeed.start({ rtpHost: "127.0.0.1", rtpPort: 9 })).toThrow(FfmpegMissing);
      expect(() => CameraFeed.start({ rtpHost: "127.0.0.1", rtpPort: 9 })).toThrow(/apt-get install ffmpeg/);
    } finally {
      process.env.PATH = path;
    }
  });
});
