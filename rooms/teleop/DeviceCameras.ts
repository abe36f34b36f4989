/**
 * A teleop room's cameras (voice.proto, "Cameras"): each device's Streaming mountpoint on
 * the node's Janus (server/voice/JanusCameras), its adapter told where to send the
 * camera (CameraTarget, over its device link), and grants to watch it for the room's
 * participants (CameraWatch → CameraGrant).
 *
 * - A device's mountpoint is opened when its link attaches here, and its adapter is told
 *   the target; when Janus restarted (a new generation) every attached device is told its
 *   new one (`check()`, from the room's periodic checks).
 * - Every role in the room may watch; a device may not (FORBIDDEN). A device not in the
 *   room: DEVICE_UNKNOWN. No media server, or it is down: VOICE_UNAVAILABLE. Grants are
 *   rate-limited per session (as voice grants are).
 * - A participant leaving ends its grants (its viewer stops); the room's close ends the
 *   rest, closes the mountpoints and tells the adapters still linked here to stop.
 *
 * @example
 *   const cameras = new DeviceCameras({ roomId, devices, cameras: () => context.cameras, link: (id) => slots.get(id)?.link, ... });
 *   cameras.register((kind, handler) => this.onEnvelope(kind, handler));
 *   cameras.attached("excavator-1");      // its link attached
 */
import type { Client } from "@colyseus/core";
import { ErrorCode, type EnvelopeBody, type tsunagi } from "../../proto/index.ts";
import type { Logger } from "../../server/observability/logging.ts";
import type { SlotLink } from "./DeviceSlot.ts";
import type { NodeCameras } from "../../server/voice/startVoice.ts";
import { CAMERA_VIDEO } from "../../server/voice/JanusCameras.ts";
import { GrantAllowances } from "../shared/RoomVoice.ts";

type CorrelationId = tsunagi.v1.IEnvelope["correlationId"];

export interface DeviceCamerasHost {
  readonly roomId: string;
  /** The room's devices. */
  readonly devices: readonly string[];
  /** The node's cameras, if it runs a media server. */
  cameras(): NodeCameras | undefined;
  /** A device's link while it is attached to this room. */
  link(deviceId: string): SlotLink | undefined;
  send(client: Client, envelope: tsunagi.v1.IEnvelope): void;
  reject(client: Client, code: number, message: string, correlationId: CorrelationId): void;
  readonly logger: Pick<Logger, "info" | "warn">;
}

export class DeviceCameras {
  /** The generation of the node's cameras each device's adapter was last told a target of. */
  private readonly told = new Map<string, number>();
  /** Sessions granted each device's camera. */
  private readonly viewers = new Map<string, Set<string>>();
  private readonly allowances = new GrantAllowances();
  private closed = false;

  constructor(private readonly host: DeviceCamerasHost) {}

  register(on: (kind: EnvelopeBody, handler: (client: Client, envelope: tsunagi.v1.Envelope) => void) => void): void {
    on("cameraWatch", (client, envelope) => void this.watch(client, envelope));
  }

  /** The device's link attached here: its mountpoint, and its adapter told where to send. */
  attached(deviceId: string): void {
    this.told.delete(deviceId);
    void this.target(deviceId);
  }

  /** After Janus restarted: every attached device's adapter is told its new target. */
  check(): void {
    const cameras = this.host.cameras();
    if (!cameras) return;
    for (const deviceId of this.host.devices) {
      if (this.host.link(deviceId) && this.told.get(deviceId) !== cameras.generation) void this.target(deviceId);
    }
  }

  /** A participant left: its viewers stop. */
  left(sessionId: string): void {
    this.allowances.forget(sessionId);
    for (const [deviceId, sessions] of this.viewers) {
      if (sessions.delete(sessionId)) void this.host.cameras()?.backend.revoke(deviceId, sessionId).catch(() => {});
    }
  }

  /** The room closed: adapters still linked here stop sending, and the mountpoints go. */
  close(): void {
    this.closed = true;
    const cameras = this.host.cameras();
    for (const deviceId of this.host.devices) {
      if (this.told.has(deviceId)) this.host.link(deviceId)?.sendCameraTarget({ port: 0 });
      if (cameras && (this.told.has(deviceId) || this.viewers.has(deviceId))) void cameras.backend.close(deviceId).catch(() => {});
    }
    this.told.clear();
    this.viewers.clear();
  }

  private async target(deviceId: string): Promise<void> {
    const cameras = this.host.cameras();
    if (!cameras || this.closed) return;
    const generation = cameras.generation;
    try {
      const mountpoint = await cameras.backend.open(deviceId);
      const link = this.host.link(deviceId);
      if (!link || this.closed) return;
      link.sendCameraTarget({ host: mountpoint.rtpHost, port: mountpoint.rtpPort, payloadType: mountpoint.payloadType, codec: CAMERA_VIDEO.codec, srtpKey: mountpoint.srtpKey });
      this.told.set(deviceId, generation);
    } catch (error) {
      this.host.logger.warn({ err: error, roomId: this.host.roomId, deviceId }, `cameras: no mountpoint for ${deviceId}; it will be tried again`);
    }
  }

  private async watch(client: Client, envelope: tsunagi.v1.Envelope): Promise<void> {
    const { host } = this;
    const correlationId = envelope.correlationId;
    const deviceId = envelope.cameraWatch?.deviceId ?? "";
    const role = (client.auth as { role?: string } | undefined)?.role;
    if (role === "device") return host.reject(client, ErrorCode.FORBIDDEN, "a device does not watch cameras", correlationId);
    if (!host.devices.includes(deviceId)) return host.reject(client, ErrorCode.DEVICE_UNKNOWN, `room ${host.roomId} has no device "${deviceId.slice(0, 64)}"`, correlationId);
    const cameras = host.cameras();
    if (!cameras || !cameras.backend.health().up) {
      return host.reject(client, ErrorCode.VOICE_UNAVAILABLE, cameras ? "the node's media server is down; try again shortly" : "this node runs no media server (voice.mode off)", correlationId);
    }
    if (!this.allowances.take(client.sessionId)) return host.reject(client, ErrorCode.RATE_LIMITED, `camera ${GrantAllowances.REFUSAL}`, correlationId);
    try {
      const grant = await cameras.backend.grant(deviceId, client.sessionId);
      let sessions = this.viewers.get(deviceId);
      if (!sessions) this.viewers.set(deviceId, sessions = new Set());
      sessions.add(client.sessionId);
      host.send(client, {
        correlationId,
        cameraGrant: { deviceId, url: grant.url, token: grant.token, mountpointId: grant.mountpointId, pin: grant.pin, expiresAtMs: grant.expiresAt, codec: CAMERA_VIDEO.codec },
      });
    } catch (error) {
      host.logger.warn({ err: error, roomId: host.roomId, deviceId }, `cameras: no grant to watch ${deviceId}`);
      host.reject(client, ErrorCode.VOICE_UNAVAILABLE, "the media server did not grant the camera; try again shortly", correlationId);
    }
  }
}
