/**
 * OperatorChannel against a fake session (test/fixtures/fakes/FakeOperatorSession.ts):
 * which pushes concern the device, and replies checked for the type asked for.
 */
import { describe, it, expect } from "vitest";
import { OperatorChannel, type DevicePushHandlers } from "../../../client-sdk/OperatorChannel.ts";
import { TsunagiError } from "../../../client-sdk/errors.ts";
import { ErrorCode, tsunagi } from "../../../proto/index.ts";
import { FakeOperatorSession } from "../../fixtures/fakes/FakeOperatorSession.ts";

const Action = tsunagi.v1.LeaseRequest.Action;

/** Handlers that log "kind:detail" for each push they get. */
function recorder(log: string[]): DevicePushHandlers {
  return {
    profile: (profile) => log.push(`profile:${profile.driver}`),
    lease: (lease) => log.push(`lease:${lease.leaseId}`),
    ack: (ack) => log.push(`ack:${ack.seq}`),
    telemetry: (telemetry) => log.push(`telemetry:${telemetry.mode}`),
    estop: (estop) => log.push(`estop:${estop.reason}`),
    reset: (reset) => log.push(`reset:${reset.reason}`),
    roomError: (error) => log.push(`error:${error.codeName}`),
  };
}

describe("OperatorChannel", () => {
  it("hands on the pushes about its device, e-stops of all devices, and errors that answer no request", () => {
    const session = new FakeOperatorSession();
    const channel = new OperatorChannel(session, "ex-1");
    const log: string[] = [];
    const off = channel.listen(recorder(log));
    for (const deviceId of ["drone-1", "ex-1"]) {
      session.push({ deviceProfile: { deviceId, driver: `d-${deviceId}` } });
      session.push({ leaseState: { deviceId, leaseId: `l-${deviceId}` } });
      session.push({ commandAck: { deviceId, seq: deviceId === "ex-1" ? 7 : 9 } });
      session.push({ telemetry: { deviceId, mode: `m-${deviceId}` } });
      session.push({ estop: { deviceId, reason: `r-${deviceId}` } });
      session.push({ reset: { deviceId, reason: `r-${deviceId}` } });
    }
    session.push({ estop: { all: true, reason: "all" } });
    session.push({ estop: { reason: "no device named" } });
    session.push({ error: { code: ErrorCode.RATE_LIMITED, message: "slow down" } });
    session.push({ correlationId: 12, error: { code: ErrorCode.FORBIDDEN, message: "a late reply" } });
    expect(log).toEqual([
      "profile:d-ex-1", "lease:l-ex-1", "ack:7", "telemetry:m-ex-1", "estop:r-ex-1", "reset:r-ex-1",
      "estop:all", "estop:no device named", "error:RATE_LIMITED",
    ]);
    off();
    session.push({ estop: { all: true, reason: "after off" } });
    expect(log).toHaveLength(9);
  });

  it("sends requests for its device and checks each reply's type", async () => {
    const session = new FakeOperatorSession();
    const channel = new OperatorChannel(session, "ex-1");
    session.reply = () => ({ leaseState: { deviceId: "ex-1", leaseId: "lease-1" } });
    await expect(channel.leaseRequest(Action.TRANSFER, "other")).resolves.toMatchObject({ leaseId: "lease-1" });
    expect(session.requests[0]).toEqual({ leaseRequest: { deviceId: "ex-1", action: Action.TRANSFER, toSessionId: "other" } });
    session.reply = () => ({ leaseState: { deviceId: "drone-1", leaseId: "lease-2" } });
    await expect(channel.leaseRequest(Action.ACQUIRE)).rejects.toMatchObject({ code: ErrorCode.WRONG_TYPE });
    session.reply = () => ({ leaseState: { deviceId: "ex-1" } });
    for (const request of [channel.estop({ deviceId: "ex-1" }), channel.reset("ok"), channel.action({ action: "arm" })]) {
      await expect(request).rejects.toBeInstanceOf(TsunagiError);
    }
    session.reply = () => ({ actionResult: { deviceId: "ex-1", action: "arm" } });
    await expect(channel.action({ leaseId: "lease-1", action: "arm" })).resolves.toMatchObject({ action: "arm" });
    expect(session.requests.at(-1)).toEqual({ deviceAction: { leaseId: "lease-1", action: "arm", deviceId: "ex-1" } });
  });

  it("releases without waiting: a refusal is not an unhandled rejection", async () => {
    const session = new FakeOperatorSession();
    session.reply = () => { throw new TsunagiError(ErrorCode.LEASE_NOT_HELD, "not yours"); };
    new OperatorChannel(session, "ex-1").releaseWithoutWaiting();
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(session.requests).toEqual([{ leaseRequest: { deviceId: "ex-1", action: Action.RELEASE, toSessionId: "" } }]);
  });
});
