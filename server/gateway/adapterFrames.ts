/**
 * What a welcomed adapter may send, and what the gateway does with each frame: an answer
 * goes to the command or action whose correlation id it echoes, telemetry and a checked
 * profile to the device's link, an e-stop and the device's own errors to the link and the
 * log; clock pings and pings are answered, pongs settle liveness probes. Anything else,
 * and anything that does not fit, gets a coded error; the connection stays. Kept apart
 * from DeviceGateway, which owns the listener and the handshake before it.
 *
 * @example
 *   if (connection.state === "online") dispatchAdapterFrame(context, ws, connection.link, envelope);
 */
import { ErrorCode, errorCodeName, type Envelope, type tsunagi } from "../../proto/index.ts";
import { enrolledClassProblem, profileProblem } from "../../proto/deviceProfile.ts";
import type { Logger } from "../observability/logging.ts";
import type { DeviceLink } from "./DeviceLink.ts";
import type { LivenessProbes } from "./LivenessProbes.ts";

/** What the dispatch needs of the gateway, for the connection a frame came on. */
export interface AdapterFrameContext<S> {
  readonly logger: Logger;
  /** Server clock. */
  readonly now: () => number;
  /** Settled by the pongs that answer them. */
  readonly probes: LivenessProbes;
  /** A coded error to the adapter, counted, its log line throttled; the connection stays. */
  report(ws: S, code: number, message: string, correlationId: number): void;
  /** Whether a line of `kind` from this connection may be logged now. */
  logAllowed(ws: S, kind: string): boolean;
  /** The class the device was enrolled as; its profile must say the same. */
  enrolledClass(ws: S): string;
}

/** Handles one decoded frame of a welcomed device's connection. */
export function dispatchAdapterFrame<S>(context: AdapterFrameContext<S>, ws: S, link: DeviceLink, envelope: Envelope): void {
  const correlationId = Number(envelope.correlationId);
  switch (envelope.body) {
    // An answer must echo its command's (or action's) correlation id: one that matches
    // nothing is dropped, and the adapter told, counted and logged (its operator sees no ack).
    case "commandAck": {
      if (!link.receiveAck(correlationId, envelope.commandAck as tsunagi.v1.CommandAck)) {
        context.report(ws, ErrorCode.UNMATCHED_ACK, `CommandAck with correlation id ${correlationId} (seq ${String(envelope.commandAck!.seq)}) answers no command awaiting an ack: echo the forwarded command's correlation id; dropped`, correlationId);
      }
      return;
    }
    case "actionResult": {
      if (!link.receiveActionResult(correlationId, envelope.actionResult as tsunagi.v1.ActionResult)) {
        context.report(ws, ErrorCode.UNMATCHED_ACK, `ActionResult with correlation id ${correlationId} answers no action awaiting a result: echo the forwarded action's correlation id; dropped`, correlationId);
      }
      return;
    }
    case "telemetry": {
      const telemetry = envelope.telemetry as tsunagi.v1.Telemetry;
      if (telemetry.deviceId !== link.deviceId) { context.report(ws, ErrorCode.FORBIDDEN, `telemetry for "${telemetry.deviceId.slice(0, 64)}" on device ${link.deviceId}'s connection`, correlationId); return; }
      link.receiveTelemetry(telemetry);
      return;
    }
    case "clockSyncPing": {
      const t1 = context.now();
      link.write({ correlationId, clockSyncPong: { t0Ms: envelope.clockSyncPing!.t0Ms, t1Ms: t1, t2Ms: context.now() } });
      return;
    }
    case "deviceProfile": {
      const profile = envelope.deviceProfile as tsunagi.v1.DeviceProfile;
      const problem = profileProblem(profile, link.deviceId);
      const classProblem = problem ? undefined : enrolledClassProblem(profile, context.enrolledClass(ws));
      if (problem || classProblem) {
        // No profile to drive by until a valid one arrives: the room ends the lease, refuses commands.
        link.refuseProfile(problem ?? classProblem!);
        context.report(ws, problem ? ErrorCode.WRONG_TYPE : ErrorCode.FORBIDDEN, `device profile refused: ${problem ?? classProblem}`, correlationId);
        return;
      }
      link.receiveProfile(profile);
      context.logger.info({ deviceId: link.deviceId, axes: profile.axes.map((a) => a.name), watchdogMs: profile.watchdogWindowMs }, `device ${link.deviceId} profile received`);
      return;
    }
    case "estop": {
      const estop = envelope.estop as tsunagi.v1.EStop;
      estop.deviceId = link.deviceId;
      estop.raisedBy = `device:${link.deviceId}`;
      if (context.logAllowed(ws, "estop")) context.logger.warn({ deviceId: link.deviceId, reason: estop.reason }, `device ${link.deviceId} raised an e-stop`);
      link.receiveEStop(estop);
      return;
    }
    case "ping": {
      link.write({ correlationId, pong: { clientTimeMs: envelope.ping!.clientTimeMs, serverTimeMs: context.now() } });
      return;
    }
    case "pong": {
      // the answer to a liveness ping (DeviceGateway's settleDuplicate); any other pong is harmless
      context.probes.answered(correlationId);
      return;
    }
    case "error": {
      const error = envelope.error as tsunagi.v1.Error;
      if (context.logAllowed(ws, "device-error")) context.logger.warn({ deviceId: link.deviceId, code: errorCodeName(error.code) }, `device ${link.deviceId} reported: ${error.message.slice(0, 200)}`);
      link.receiveError(error);
      return;
    }
    default:
      context.report(ws, ErrorCode.UNKNOWN_MESSAGE, `the device channel does not accept "${envelope.body}" from an adapter`, correlationId);
  }
}
