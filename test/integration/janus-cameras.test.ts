/**
 * JanusCameras against the real Janus (JanusProcess) with the adapter's CameraFeed
 * (Debian's ffmpeg) sending to it: a device's mountpoint is made once, on Janus' host,
 * and Janus reports the feed arriving; a grant's holder watches it (janode) and gets an
 * H.264 offer, and the video reaches a WebRTC viewer (node-datachannel): SPS, PPS and
 * keyframes; no token, a forged one, the wrong pin or an expired grant is refused; what
 * is not sealed with the mountpoint's SRTP key never reaches a viewer; a session's new
 * grant ends its previous one; after revoke the token opens nothing and its viewer is
 * stopped; close destroys the mountpoint and frees its port; after a Janus restart the
 * cameras are forgotten and open again. One Janus for the file; the feeds reach it on
 * loopback, the viewers on the machine's own address (Janus 1.1.2 gathers no media
 * candidate on loopback).
 */
import { createSocket } from "node:dgram";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import StreamingPlugin, { type StreamingHandle } from "janode/plugins/streaming";
import nodeDataChannel, { type PeerConnection } from "node-datachannel";
import { CameraFeed } from "../../devices/adapter/CameraFeed.ts";
import { CAMERA_VIDEO, JanusCameras, type CameraGrant, type CameraMountpoint } from "../../server/voice/JanusCameras.ts";
import { JanusProcess } from "../../server/voice/JanusProcess.ts";
import { machineAddress } from "../../server/voice/settings.ts";
import { createLogger } from "../../server/observability/logging.ts";
import { waitFor } from "../fixtures/processes.ts";
import { JanusClients, JanusConnectFailed } from "../fixtures/janus.ts";
import { JanusLink } from "../../server/voice/JanusLink.ts";

const GRANT_TTL_MS = 2000;
const NO_TOKEN = /^refused: 403 Unauthorized request \(wrong or missing secret\/token\)/;
const logger = createLogger({ level: "warn", regionId: "test", nodeId: "cameras-test" });
let janus: JanusProcess;
let cameras: JanusCameras;
let restarted = 0;
const feeds: CameraFeed[] = [];
const clients = new JanusClients();
const peers: PeerConnection[] = [];

beforeAll(async () => {
  janus = await JanusProcess.start({ rtpPortRange: "42500-42599", mediaInterfaces: machineAddress(), serverName: "cameras-test", logger, onRestart: () => { restarted++; } });
  cameras = await JanusCameras.connect(janus.endpoint, { logger, grantTtlMs: GRANT_TTL_MS });
}, 30_000);
afterAll(async () => {
  for (const peer of peers) peer.close();
  await Promise.allSettled([...feeds.map((feed) => feed.stop()), clients.closeAll()]);
  await cameras?.shutdown();
  await janus?.stop();
});

function feed(mountpoint: Omit<CameraMountpoint, "mountpointId">): CameraFeed {
  const started = CameraFeed.start({ ...mountpoint, logger });
  feeds.push(started);
  return started;
}

/** Resolves once Janus says the device's port got a packet lately while the mountpoint is older than 1.5 s (age_ms counts from its making until a packet comes). */
async function arriving(deviceId: string, openedAt: number): Promise<void> {
  await waitFor(async () => {
    const status = await cameras.status(deviceId);
    return Date.now() - openedAt > 1500 && status?.lastPacketAgeMs !== undefined && status.lastPacketAgeMs < 500;
  }, 20_000, `Janus reporting ${deviceId}'s feed arriving`, 100);
}

/** A viewer's attempt to watch: its handle and Janus' offer, or Janus' refusal. */
async function watch(grant: CameraGrant, token: string | undefined, pin: string | undefined): Promise<{ handle: StreamingHandle; offer: string } | string> {
  try {
    const handle = await clients.attach<StreamingHandle>(grant.url, token, StreamingPlugin);
    const watched = await handle.watch({ id: grant.mountpointId, ...(pin !== undefined ? { pin } : {}) });
    return watched.jsep?.sdp ? { handle, offer: watched.jsep.sdp } : `no offer: ${JSON.stringify(watched)}`;
  } catch (error) {
    return `${error instanceof JanusConnectFailed ? "connect" : "refused"}: ${(error as Error).message}`;
  }
}

/** The H.264 NAL unit types an RTP packet carries (a STAP-A's each, a FU-A's fragment's). */
function nalTypes(packet: Buffer): number[] {
  let offset = 12 + (packet[0]! & 0x0f) * 4;
  if (packet[0]! & 0x10) offset += 4 + packet.readUInt16BE(offset + 2) * 4;
  const type = packet[offset]! & 0x1f;
  if (type === 28) return [packet[offset + 1]! & 0x1f];
  if (type !== 24) return [type];
  const types: number[] = [];
  for (let at = offset + 1; at + 2 < packet.length; at += 2 + packet.readUInt16BE(at)) types.push(packet[at + 2]! & 0x1f);
  return types;
}

/** Answers the offer from a node-datachannel peer and starts the stream; counts the video packets that reach it. */
async function receive(viewer: { handle: StreamingHandle; offer: string }) {
  const peer = new nodeDataChannel.PeerConnection("viewer", { iceServers: [], bindAddress: machineAddress() });
  peers.push(peer);
  const seen = { packets: 0, payloadTypes: new Set<number>(), nals: new Set<number>(), peer };
  peer.onTrack((track) => {
    track.setMediaHandler(new nodeDataChannel.RtcpReceivingSession());
    track.onMessage((packet) => {
      const payloadType = packet[1]! & 0x7f;
      if (payloadType >= 64 && payloadType <= 95) return; // RTCP
      seen.packets++;
      seen.payloadTypes.add(payloadType);
      for (const type of nalTypes(packet)) seen.nals.add(type);
    });
  });
  const gathered = new Promise<void>((resolve) => peer.onGatheringStateChange((state) => { if (state === "complete") resolve(); }));
  peer.setRemoteDescription(viewer.offer, "offer");
  await gathered;
  await viewer.handle.start({ jsep: { type: "answer", sdp: peer.localDescription()!.sdp } });
  return seen;
}

describe("JanusCameras", () => {
  const device = "excavator-1";
  let mountpoint: CameraMountpoint;
  let openedAt = 0;
  let watching: Awaited<ReturnType<typeof receive>>;

  it("opens one mountpoint per device on Janus' host, and the adapter's feed arrives", { timeout: 30_000 }, async () => {
    openedAt = Date.now();
    const [first, second] = await Promise.all([cameras.open(device), cameras.open(device)]);
    mountpoint = first;
    expect(second).toEqual(first);
    expect(mountpoint).toMatchObject({ rtpHost: "127.0.0.1", payloadType: CAMERA_VIDEO.payloadType });
    expect(mountpoint.rtpPort).toBeGreaterThanOrEqual(42500);
    expect(mountpoint.rtpPort).toBeLessThanOrEqual(42599);
    expect(Buffer.from(mountpoint.srtpKey, "base64")).toHaveLength(30);
    expect(cameras.health()).toEqual({ up: true, mountpoints: 1, grants: 0 });
    feed(mountpoint);
    await arriving(device, openedAt);
  });

  it("a grant's holder watches: Janus offers H.264, and the video reaches a WebRTC viewer", { timeout: 30_000 }, async () => {
    const grant = await cameras.grant(device, "op-1");
    expect(grant).toMatchObject({ url: janus.endpoint.apiUrl, mountpointId: mountpoint.mountpointId });
    expect(cameras.health().grants).toBe(1);
    const viewer = await watch(grant, grant.token, grant.pin);
    if (typeof viewer === "string") throw new Error(viewer);
    expect(viewer.offer).toMatch(/^m=video \d+ UDP\/TLS\/RTP\/SAVPF 96[ \r]/m);
    expect(viewer.offer).toContain("a=rtpmap:96 H264/90000");
    expect(viewer.offer).toContain("a=fmtp:96 profile-level-id=42e01f;packetization-mode=1");
    expect(viewer.offer).not.toMatch(/^m=audio/m);
    watching = await receive(viewer);
    // SPS, PPS and an IDR slice: a decoder can start from what arrived.
    await waitFor(() => [7, 8, 5].every((type) => watching.nals.has(type)) && watching.packets > 20, 15_000, "H.264 keyframes at the viewer");
    expect([...watching.payloadTypes]).toEqual([96]);
    expect((await cameras.status(device))?.viewers).toBe(1);
  });

  it("refuses a viewer with no token, a forged one, the wrong pin, or an expired grant", { timeout: 30_000 }, async () => {
    const grant = await cameras.grant(device, "op-2");
    expect(await watch(grant, undefined, grant.pin)).toMatch(NO_TOKEN);
    expect(await watch(grant, "forged-token", grant.pin)).toMatch(NO_TOKEN);
    expect(await watch(grant, grant.token, "wrong-pin")).toMatch(/^refused: 457 /);
    expect(await watch(grant, grant.token, undefined)).toMatch(/^refused: 45\d /);
    // Another device's grant opens Streaming, but not this mountpoint without its pin.
    const other = await cameras.grant("drone-1", "op-2");
    expect(await watch({ ...other, mountpointId: grant.mountpointId }, other.token, other.pin)).toMatch(/^refused: 457 /);
    await new Promise((resolve) => setTimeout(resolve, GRANT_TTL_MS + 500));
    expect(await watch(grant, grant.token, grant.pin)).toMatch(/^refused: 405 .*janus\.plugin\.streaming/);
  });

  it("drops what is not sealed with the mountpoint's key: only the adapter's feed reaches a viewer", { timeout: 40_000 }, async () => {
    const openedDroneAt = Date.now();
    const drone = await cameras.open("drone-1");
    const grant = await cameras.grant("drone-1", "op-3");
    const viewer = await watch(grant, grant.token, grant.pin);
    if (typeof viewer === "string") throw new Error(viewer);
    const seen = await receive(viewer);
    await waitFor(() => seen.peer.state() === "connected", 15_000, "the viewer connected");
    // The same stream sealed with another key: Janus counts its packets arriving (age_ms is
    // taken before SRTP), and drops every one; for 2 s the connected viewer gets nothing.
    const forged = feed({ rtpHost: drone.rtpHost, rtpPort: drone.rtpPort, payloadType: drone.payloadType, srtpKey: Buffer.alloc(30, 7).toString("base64") });
    await arriving("drone-1", openedDroneAt);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect(seen.packets).toBe(0);
    await forged.stop();
    feed(drone);
    await waitFor(() => seen.nals.has(5), 15_000, "the sealed feed's keyframes at the viewer");
  });

  it("a new grant ends the session's previous one; after revoke, the token opens nothing and its viewer is stopped", { timeout: 30_000 }, async () => {
    const previous = await cameras.grant(device, "op-4");
    const grant = await cameras.grant(device, "op-4");
    expect(await watch(previous, previous.token, previous.pin)).toMatch(NO_TOKEN);
    await cameras.revoke(device, "op-1");
    await waitFor(async () => (await cameras.status(device))?.viewers === 0, 10_000, "op-1's viewer gone from the mountpoint");
    await cameras.revoke(device, "op-4");
    expect(await watch(grant, grant.token, grant.pin)).toMatch(NO_TOKEN);
    // Left: op-2's two (expired, not revoked) and op-3's.
    expect(cameras.health()).toEqual({ up: true, mountpoints: 2, grants: 3 });
  });

  it("close destroys the mountpoint and frees its port", { timeout: 30_000 }, async () => {
    await cameras.close(device);
    expect(await cameras.status(device)).toBeUndefined();
    expect(cameras.health().mountpoints).toBe(1);
    const link = await JanusLink.open(janus.endpoint, StreamingPlugin.id);
    try {
      await expect(link.ask({ request: "info", id: mountpoint.mountpointId }, "the mountpoint's info")).rejects.toThrow(/\(455\)/);
    } finally {
      await link.close();
    }
    // Its port is free: this process may bind it (Janus bound it on Janus' host only).
    const socket = createSocket("udp4");
    await new Promise<void>((resolve, reject) => { socket.once("error", reject); socket.bind(mountpoint.rtpPort, mountpoint.rtpHost, resolve); });
    socket.close();
  });

  it("after Janus restarts, forgets its cameras; each opens again", { timeout: 40_000 }, async () => {
    process.kill(janus.pid!, "SIGKILL");
    await waitFor(() => restarted > 0, 20_000, "Janus started again");
    expect(await cameras.restarted()).toEqual(["drone-1"]);
    expect(cameras.health()).toEqual({ up: true, mountpoints: 0, grants: 0 });
    const openedAt = Date.now();
    const again = await cameras.open("drone-1");
    feed(again);
    await arriving("drone-1", openedAt);
  });
});
