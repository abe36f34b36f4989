/**
 * Machine cameras through Janus' Streaming plugin: one RTP mountpoint per teleoperated
 * device, fed by the device's adapter (devices/adapter/CameraFeed) and watched by its
 * operators, driven over janode connections of its own to the node's Janus
 * (JanusProcess): the API (with its API secret) and the Admin API (tokens).
 *
 * - A mountpoint carries video only: H.264 constrained baseline 3.1 (profile-level-id
 *   42e01f), packetization-mode 1, payload type 96 (CAMERA_VIDEO): what Debian's ffmpeg
 *   sends (libx264) and Chromium decodes. No simulcast, no RTCP port: the feed sends a
 *   keyframe every second instead of answering PLIs.
 * - Its port is chosen by Janus in its range and bound on `rtpHost` only (by default the
 *   host Janus' API listens on: loopback or a private address, never all interfaces).
 *   It takes SRTP only, with a key of its own: a packet not sealed with it never reaches
 *   an operator, whether a stale feed still sending to a port Janus has since given
 *   another device, or anyone else who can reach the port.
 * - Its id is random: Streaming's `switch` moves a watching viewer to any mountpoint by
 *   id alone, without its pin, so an id is only ever known to those granted it. It is
 *   private (never listed), has a secret of its own (info, destroy) and a pin (watch).
 * - A grant is a fresh token, Streaming only, plus the id and the pin. After
 *   `grantTtlMs` (at most 60 s) the token may no longer attach to Streaming: it starts
 *   no new viewer; one watching goes on (Janus checks the token on every request of its
 *   session, so the token stays). revoke() removes the token and detaches the handles it
 *   opened: that viewer stops at once. close() ends the grants and destroys the mountpoint.
 * - After Janus restarts (JanusProcess.onRestart) the mountpoints are gone: restarted()
 *   reconnects, forgets them, and names the devices whose adapters need a new address.
 *
 * @example
 *   const cameras = await JanusCameras.connect(janus.endpoint, { logger });
 *   const feed = await cameras.open("excavator-1");   // { mountpointId, rtpHost, rtpPort, payloadType, srtpKey }: to the adapter
 *   const grant = await cameras.grant("excavator-1", sessionId);   // to the operator's client
 *   await cameras.revoke("excavator-1", sessionId);
 *   await cameras.close("excavator-1");
 */
import { randomBytes } from "node:crypto";
import type { Logger } from "../observability/logging.ts";
import type { JanusEndpoint } from "./JanusProcess.ts";
import { JanusLink } from "./JanusLink.ts";
import { endHandlesOfToken, pluginData, randomSecret } from "./janusRequests.ts";
import { MAX_GRANT_TTL_MS } from "./VoiceBackend.ts";

const STREAMING = "janus.plugin.streaming";

/** The one video format of every camera mountpoint; the adapter's feed sends exactly this. */
export const CAMERA_VIDEO = { codec: "h264", payloadType: 96, fmtp: "profile-level-id=42e01f;packetization-mode=1" } as const;
/** SRTP suite of the feed: AES_CM_128_HMAC_SHA1_80 (Janus' `srtpsuite` 80). */
const SRTP_SUITE = 80;

/** Where and how an adapter sends its camera. */
export interface CameraMountpoint {
  mountpointId: string;
  rtpHost: string;
  rtpPort: number;
  payloadType: number;
  /** SRTP master key and salt, 30 bytes, base64 (AES_CM_128_HMAC_SHA1_80). */
  srtpKey: string;
}

/** What a viewer needs to watch a device's camera. */
export interface CameraGrant {
  /** Janus' client API (WebSockets). */
  url: string;
  /** Starts a viewer (attaches to Streaming) until `expiresAt`; nothing else. */
  token: string;
  mountpointId: string;
  pin: string;
  /** ms since the epoch. */
  expiresAt: number;
}

export interface CameraHealth {
  up: boolean;
  mountpoints: number;
  grants: number;
}

/** What Janus says of a mountpoint now. */
export interface CameraStatus {
  viewers: number;
  /** ms since its port last received a packet (or since it was made); undefined before Janus reports it. */
  lastPacketAgeMs?: number;
}

export interface JanusCamerasOptions {
  logger: Logger;
  /** The address mountpoints bind (an address of this machine). Default: the host of Janus' API. */
  rtpHost?: string;
  /** How long a grant starts a viewer, ms (≤ 60 s). Default 30 s. */
  grantTtlMs?: number;
}

interface Grant { token: string; expiry: NodeJS.Timeout }
interface Camera { mountpointId: string; secret: string; pin: string; srtpKey: string; grants: Map<string, Grant>; opened: Promise<CameraMountpoint> }

export class JanusCameras {
  private readonly cameras = new Map<string, Camera>();
  private readonly grantTtlMs: number;
  private readonly rtpHost: string;

  private constructor(
    private readonly endpoint: JanusEndpoint,
    private readonly link: JanusLink,
    private readonly options: JanusCamerasOptions,
  ) {
    this.grantTtlMs = Math.min(options.grantTtlMs ?? 30_000, MAX_GRANT_TTL_MS);
    this.rtpHost = options.rtpHost ?? new URL(endpoint.apiUrl).hostname.replace(/^\[(.*)\]$/, "$1");
  }

  static async connect(endpoint: JanusEndpoint, options: JanusCamerasOptions): Promise<JanusCameras> {
    return new JanusCameras(endpoint, await JanusLink.open(endpoint, STREAMING), options);
  }


  /** The device's mountpoint, made now if it is not there yet: where its adapter sends. */
  async open(deviceId: string): Promise<CameraMountpoint> {
    return this.camera(deviceId).opened;
  }

  /** A viewer's grant to the device's camera (its mountpoint made now if need be); the session's previous grant ends. */
  async grant(deviceId: string, sessionId: string): Promise<CameraGrant> {
    const camera = this.camera(deviceId);
    await camera.opened;
    const token = randomSecret();
    pluginData(await this.link.admin({ janus: "add_token", token, plugins: [STREAMING] }), "a camera token");
    if (this.cameras.get(deviceId) !== camera) {
      await this.link.admin({ janus: "remove_token", token }).catch(() => {});
      throw new Error(`the camera of ${deviceId} closed meanwhile`);
    }
    // Past its time it starts no viewer; the one it started goes on (the token stays until revoke).
    const expiry = setTimeout(() => void this.link.admin({ janus: "disallow_token", token, plugins: [STREAMING] }).catch(() => {}), this.grantTtlMs);
    expiry.unref?.();
    // Swapped in at once, so of two grants at the same time the later one stays and the other's token goes.
    const previous = camera.grants.get(sessionId);
    camera.grants.set(sessionId, { token, expiry });
    if (previous) await this.endToken(previous, sessionId, false);
    return { url: this.endpoint.apiUrl, token, mountpointId: camera.mountpointId, pin: camera.pin, expiresAt: Date.now() + this.grantTtlMs };
  }

  /** The session may no longer watch: its token goes, and the viewer it started stops. */
  async revoke(deviceId: string, sessionId: string): Promise<void> {
    const camera = this.cameras.get(deviceId);
    if (camera) await this.endGrant(camera, sessionId, true);
  }

  /** The device's camera goes: its grants end, and its mountpoint is destroyed (its viewers with it). */
  async close(deviceId: string): Promise<void> {
    const camera = this.cameras.get(deviceId);
    if (!camera) return;
    this.cameras.delete(deviceId);
    for (const sessionId of [...camera.grants.keys()]) await this.endGrant(camera, sessionId, false);
    if (!(await camera.opened.then(() => true, () => false))) return;
    await this.ask({ request: "destroy", id: camera.mountpointId, secret: camera.secret }, "a camera's end").catch((error) => {
      this.options.logger.warn({ err: error, deviceId }, `the camera mountpoint of ${deviceId} could not be destroyed in Janus`);
    });
  }

  /** What Janus says of the device's mountpoint (viewers, how fresh its feed is); undefined when there is none. */
  async status(deviceId: string): Promise<CameraStatus | undefined> {
    const camera = this.cameras.get(deviceId);
    if (!camera || !(await camera.opened.then(() => true, () => false))) return undefined;
    const info = (await this.ask({ request: "info", id: camera.mountpointId, secret: camera.secret }, "a camera's info")).info;
    const age = info?.media?.find((media: any) => media.mid === "v")?.age_ms;
    return { viewers: Number(info?.viewers ?? 0), lastPacketAgeMs: typeof age === "number" ? age : undefined };
  }

  /** Janus died: down (health) until restarted() reconnects. */
  janusDown(): void {
    this.link.janusDown();
  }

  /**
   * Janus started again: its mountpoints, tokens and sessions are gone. Reconnects and
   * forgets them; resolves with the devices that had one: open() each again, and give
   * its adapter the new address (its old port may now be another device's).
   */
  async restarted(): Promise<string[]> {
    const devices = [...this.cameras.keys()];
    for (const camera of this.cameras.values()) for (const grant of camera.grants.values()) clearTimeout(grant.expiry);
    this.cameras.clear();
    await this.link.reopen();
    return devices;
  }

  health(): CameraHealth {
    let grants = 0;
    for (const camera of this.cameras.values()) grants += camera.grants.size;
    return { up: this.link.up, mountpoints: this.cameras.size, grants };
  }

  /** Closes every camera, then its connections to Janus. */
  async shutdown(): Promise<void> {
    for (const deviceId of [...this.cameras.keys()]) await this.close(deviceId);
    await this.link.close();
  }

  /** The device's camera, its mountpoint made once (a failed making is forgotten, so the next call tries again). */
  private camera(deviceId: string): Camera {
    let camera = this.cameras.get(deviceId);
    if (camera) return camera;
    const made: Camera = {
      mountpointId: `${deviceId}-${randomSecret()}`, secret: randomSecret(), pin: randomSecret(),
      srtpKey: randomBytes(30).toString("base64"), grants: new Map(), opened: undefined!,
    };
    made.opened = this.create(deviceId, made);
    made.opened.catch(() => { if (this.cameras.get(deviceId) === made) this.cameras.delete(deviceId); });
    this.cameras.set(deviceId, made);
    return made;
  }

  private async create(deviceId: string, camera: Camera): Promise<CameraMountpoint> {
    const created = await this.ask({
      request: "create", type: "rtp", id: camera.mountpointId, name: camera.mountpointId, description: `camera of ${deviceId}`,
      admin_key: this.endpoint.secrets.adminKey, secret: camera.secret, pin: camera.pin, is_private: true, permanent: false,
      srtpsuite: SRTP_SUITE, srtpcrypto: camera.srtpKey,
      media: [{ type: "video", mid: "v", label: "camera", port: 0, iface: this.rtpHost, codec: CAMERA_VIDEO.codec, pt: CAMERA_VIDEO.payloadType, fmtp: CAMERA_VIDEO.fmtp }],
    }, `the camera mountpoint of ${deviceId}`);
    const port = (created.stream?.ports ?? []).find((bound: any) => bound.mid === "v")?.port;
    if (typeof port !== "number" || port <= 0) {
      await this.ask({ request: "destroy", id: camera.mountpointId, secret: camera.secret }, "a portless mountpoint's end").catch(() => {});
      throw new Error(`Janus bound no port for the camera of ${deviceId}: ${JSON.stringify(created.stream ?? created)}`);
    }
    return { mountpointId: camera.mountpointId, rtpHost: this.rtpHost, rtpPort: port, payloadType: CAMERA_VIDEO.payloadType, srtpKey: camera.srtpKey };
  }

  /** Ends the session's grant: its token leaves Janus; `out`: the handles it opened are detached too (its viewer stops). */
  private async endGrant(camera: Camera, sessionId: string, out: boolean) {
    const grant = camera.grants.get(sessionId);
    if (!grant) return;
    camera.grants.delete(sessionId);
    await this.endToken(grant, sessionId, out);
  }

  private async endToken(grant: Grant, sessionId: string, out: boolean) {
    clearTimeout(grant.expiry);
    await this.link.admin({ janus: "remove_token", token: grant.token }).catch(() => {});
    if (out) {
      await endHandlesOfToken(this.link.adminConnection, grant.token).catch((error) => {
        this.options.logger.warn({ err: error, sessionId }, "a revoked camera viewer could not be stopped in Janus (its session lapses within Janus' session timeout)");
      });
    }
  }

  private async ask(body: Record<string, unknown>, what: string): Promise<any> {
    return this.link.ask(body, what);
  }
}
