/**
 * A teleop room's media: its voice (RoomVoice: operators and supervisors talk with their
 * site, those who watch listen) and its machines' cameras (DeviceCameras), on the node's
 * Janus when it runs one.
 *
 * @example
 *   this.media = new TeleopMedia({ roomId, devices, roles: access.join, ... });
 *   this.media.register((kind, handler) => this.onEnvelope(kind, handler));
 *   this.media.cameras.attached(deviceId);   // a device's link attached here
 *   this.media.left(sessionId);              // a participant left
 *   this.media.close();                      // the room closed
 */
import type { Client } from "@colyseus/core";
import type { EnvelopeBody, tsunagi } from "../../proto/index.ts";
import type { NodeContext } from "../../server/context.ts";
import type { SlotLink } from "./DeviceSlot.ts";
import { everyoneRoomVoice, type RoomVoice } from "../shared/RoomVoice.ts";
import { DeviceCameras } from "./DeviceCameras.ts";

/** Who speaks in a teleop room; the room's other roles listen. */
const speakers: ReadonlySet<string> = new Set(["operator", "supervisor", "admin"]);

export interface TeleopMediaOptions {
  roomId: string;
  devices: readonly string[];
  /** The roles that may join the room. */
  roles: readonly string[];
  context: Pick<NodeContext, "voice" | "cameras" | "logger" | "metrics">;
  present(sessionId: string): boolean;
  moving(): boolean;
  link(deviceId: string): SlotLink | undefined;
  send(client: Client, envelope: tsunagi.v1.IEnvelope): void;
  reject(client: Client, code: number, message: string, correlationId: tsunagi.v1.IEnvelope["correlationId"]): void;
}

export class TeleopMedia {
  readonly voice: RoomVoice;
  readonly cameras: DeviceCameras;

  constructor(options: TeleopMediaOptions) {
    const { context } = options;
    this.voice = everyoneRoomVoice({
      roomId: options.roomId, backend: () => context.voice, present: options.present, moving: options.moving, logger: context.logger, metrics: context.metrics,
      rights: (role) => (speakers.has(role) ? "speak" : options.roles.includes(role) ? "listen" : undefined),
      send: options.send, reject: options.reject,
    });
    this.cameras = new DeviceCameras({
      roomId: options.roomId, devices: options.devices, cameras: () => context.cameras, link: options.link,
      send: options.send, reject: options.reject, logger: context.logger,
    });
  }

  register(on: (kind: EnvelopeBody, handler: (client: Client, envelope: tsunagi.v1.Envelope) => void) => void): void {
    this.voice.register(on);
    this.cameras.register(on);
  }

  left(sessionId: string): void {
    this.voice.leave(sessionId);
    this.cameras.left(sessionId);
  }

  close(): void {
    this.voice.release();
    this.cameras.close();
  }
}
