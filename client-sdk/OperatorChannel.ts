/**
 * One device's end of the operator channel (teleop.proto) over a room session: the
 * requests an operator makes, each checked for the reply it expects, and the room's
 * pushes about the device, handed to typed handlers. Pushes about other devices are
 * left out; an e-stop naming no device, or all of them, covers this one too.
 *
 * @example
 *   const channel = new OperatorChannel(session, "excavator-1");
 *   const off = channel.listen({ lease: (lease) => show(lease), ... });
 *   const lease = await channel.leaseRequest(tsunagi.v1.LeaseRequest.Action.ACQUIRE);
 */
import { ErrorCode, tsunagi, type Envelope } from "../proto/index.ts";
import { TsunagiError } from "./errors.ts";
import type { RoomSession } from "./RoomSession.ts";

type DeviceProfile = tsunagi.v1.DeviceProfile;
type LeaseState = tsunagi.v1.LeaseState;
type CommandAck = tsunagi.v1.CommandAck;
type Telemetry = tsunagi.v1.Telemetry;
type EStop = tsunagi.v1.EStop;
type Reset = tsunagi.v1.Reset;
type ActionResult = tsunagi.v1.ActionResult;

/** What the channel needs of the session: requests with replies, and the pushes. */
export type OperatorChannelSession = Pick<RoomSession, "request" | "onEnvelope">;

/** Where the room's pushes about the device go. */
export interface DevicePushHandlers {
  profile(profile: DeviceProfile): void;
  lease(lease: LeaseState): void;
  ack(ack: CommandAck): void;
  telemetry(telemetry: Telemetry): void;
  /** An e-stop that covers the device: its own, `all`, or one naming no device. */
  estop(estop: EStop): void;
  reset(reset: Reset): void;
  /** A coded error that answers no request (correlation id 0); the room does not say which device it concerns. */
  roomError(error: TsunagiError): void;
}

/** Replies that are also notices (RoomSession's RequestOptions). */
const NOTICE = Object.freeze({ notice: true });

/** A DeviceAction but the device id, which the channel adds. */
export type ActionRequest = Omit<tsunagi.v1.IDeviceAction, "deviceId">;

export class OperatorChannel {
  /** The device the requests are about. */
  readonly deviceId: string;
  /** The room session the channel runs over. */
  private readonly session: OperatorChannelSession;
  /** Bound on each request, ms (undefined: the session's default). */
  private readonly requestTimeoutMs?: number;

  constructor(session: OperatorChannelSession, deviceId: string, requestTimeoutMs?: number) {
    this.session = session;
    this.deviceId = deviceId;
    this.requestTimeoutMs = requestTimeoutMs;
  }

  /** Hands the room's pushes about the device to `handlers`; returns the function that stops it. */
  listen(handlers: DevicePushHandlers): () => void {
    return this.session.onEnvelope((envelope) => this.route(envelope, handlers));
  }

  /** A LeaseRequest; resolves with the device's LeaseState, rejects with the room's coded refusal. */
  async leaseRequest(action: tsunagi.v1.LeaseRequest.Action, toSessionId?: string): Promise<LeaseState> {
    const reply = await this.session.request({ leaseRequest: { deviceId: this.deviceId, action, toSessionId: toSessionId ?? "" } }, this.requestTimeoutMs);
    const lease = reply.body === "leaseState" ? reply.leaseState as LeaseState : undefined;
    if (!lease || lease.deviceId !== this.deviceId) {
      throw new TsunagiError(ErrorCode.WRONG_TYPE, `expected the LeaseState of ${this.deviceId} in reply, got ${String(reply.body)}`);
    }
    return lease;
  }

  /**
   * Releases the lease without waiting for the reply, on the way out. A refusal or a
   * timeout changes nothing worth reporting: the caller sent its stop command first,
   * and the room ends the lease of a participant that leaves.
   */
  releaseWithoutWaiting(): void {
    this.leaseRequest(tsunagi.v1.LeaseRequest.Action.RELEASE).catch(() => undefined);
  }

  /**
   * An EStop (this device's, or `all`); resolves with the room's confirmation. The room
   * sends the sender that reply in place of the notice everyone else gets, so the reply
   * also goes to the listeners (`estop`), of this device and of every other it covers.
   */
  async estop(estop: tsunagi.v1.IEStop): Promise<EStop> {
    const reply = await this.session.request({ estop }, this.requestTimeoutMs, NOTICE);
    if (reply.body !== "estop") throw new TsunagiError(ErrorCode.WRONG_TYPE, `expected an EStop in reply, got ${String(reply.body)}`);
    return reply.estop as EStop;
  }

  /** A Reset of the device's e-stop; resolves with the room's notice, which also goes to the listeners (`reset`), as for estop(). */
  async reset(reason: string): Promise<Reset> {
    const reply = await this.session.request({ reset: { deviceId: this.deviceId, reason } }, this.requestTimeoutMs, NOTICE);
    if (reply.body !== "reset") throw new TsunagiError(ErrorCode.WRONG_TYPE, `expected a Reset in reply, got ${String(reply.body)}`);
    return reply.reset as Reset;
  }

  /** A DeviceAction; resolves with the device's ActionResult. */
  async action(request: ActionRequest): Promise<ActionResult> {
    const reply = await this.session.request({ deviceAction: { ...request, deviceId: this.deviceId } }, this.requestTimeoutMs);
    if (reply.body !== "actionResult") throw new TsunagiError(ErrorCode.WRONG_TYPE, `expected an ActionResult in reply, got ${String(reply.body)}`);
    return reply.actionResult as ActionResult;
  }

  private route(envelope: Envelope, handlers: DevicePushHandlers) {
    // Decoded bodies are instances of the generated classes (every field present), even
    // though the Envelope's member types are the optional-field shapes.
    switch (envelope.body) {
      case "deviceProfile": {
        const profile = envelope.deviceProfile as DeviceProfile;
        if (profile.deviceId === this.deviceId) handlers.profile(profile);
        break;
      }
      case "leaseState": {
        const lease = envelope.leaseState as LeaseState;
        if (lease.deviceId === this.deviceId) handlers.lease(lease);
        break;
      }
      case "commandAck": {
        const ack = envelope.commandAck as CommandAck;
        if (ack.deviceId === this.deviceId) handlers.ack(ack);
        break;
      }
      case "telemetry": {
        const telemetry = envelope.telemetry as Telemetry;
        if (telemetry.deviceId === this.deviceId) handlers.telemetry(telemetry);
        break;
      }
      case "estop": {
        const estop = envelope.estop as EStop;
        if (estop.deviceId === this.deviceId || estop.all || !estop.deviceId) handlers.estop(estop);
        break;
      }
      case "reset": {
        const reset = envelope.reset as Reset;
        if (reset.deviceId === this.deviceId) handlers.reset(reset);
        break;
      }
      case "error":
        if (!envelope.correlationId) {
          const { code, message, retryable } = envelope.error;
          handlers.roomError(new TsunagiError(code ?? ErrorCode.INTERNAL, message || "error from the room", { retryable: retryable ?? undefined }));
        }
        break;
    }
  }
}
