/**
 * The MAVLink driver's link to a vehicle, in-process against the MAVLink test vehicle:
 * when the vehicle counts as available (heard, and its failsafe parameters checked), its
 * loss and return, a vehicle whose failsafe parameters are refused, and a flood of
 * garbage datagrams at the driver's own socket.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { createSocket } from "node:dgram";
import { common, minimal, MavLinkProtocolV2, type MavLinkData } from "node-mavlink";
import { ComponentState } from "../../../../../devices/hal/index.ts";
import type { MavlinkDrone } from "../../../../../devices/drivers/mavlink/index.ts";
import { prng } from "../../../../fixtures/random.ts";
import { HEARTBEAT_TIMEOUT_MS, TEST, holds, startRig, stopRig, until, type Rig, refusal } from "./harness.ts";

type Fault = { code: string; message: string; severity: string };

let rig: Rig | undefined;

afterEach(async () => {
  vi.restoreAllMocks();
  await stopRig(rig);
  rig = undefined;
});

function faults(drone: MavlinkDrone): Fault[] {
  return (drone.telemetry() as { faults: Fault[] }).faults;
}

/** What the driver says of itself at the first vehicle HEARTBEAT it hears from now on (after its own state took it in). */
function atNextHeartbeat(drone: MavlinkDrone): Promise<{ available: boolean; mode: string; faults: string[] }> {
  return new Promise((resolve) => {
    const unsubscribe = drone.vehicle.link!.onMessage((message) => {
      if (!(message instanceof minimal.Heartbeat)) return;
      unsubscribe();
      resolve({ available: drone.available(), mode: drone.mode(), faults: faults(drone).map((fault) => fault.code) });
    });
  });
}


describe("availability", () => {
  it("is unavailable and 'connecting' until the vehicle answers and its failsafe check has passed", TEST, async () => {
    rig = await startRig({ idle: true });
    const { drone, vehicle } = rig;
    vehicle.silence(true);
    drone.init();
    drone.start();
    expect(drone.available()).toBe(false);
    expect(drone.mode()).toBe("connecting");

    // the vehicle hears the driver's GCS heartbeat, but says nothing back
    await vehicle.waitFor((s) => s.lastGcsHeartbeatAt !== undefined, 3000, "the driver's first GCS heartbeat");
    await holds(() => !drone.available() && drone.mode() === "connecting", 300, "unavailable and connecting while the vehicle is silent");
    expect(faults(drone)).toEqual([]);

    const first = atNextHeartbeat(drone);
    vehicle.silence(false);
    // heard, but the failsafe parameters are not read yet
    expect(await first).toEqual({ available: false, mode: "connecting", faults: [] });
    await until(() => drone.available(), 3000, "available once the failsafe check passed");
    expect(drone.mode()).toBe("STABILIZE");
    expect(drone.vehicle.state).toBe(ComponentState.Ready);
    expect(faults(drone)).toEqual([]);
  });

  it("is lost within heartbeatTimeoutMs of the vehicle's silence, with VEHICLE_LOST, and available again when it answers", TEST, async () => {
    rig = await startRig();
    const { drone, vehicle } = rig;
    await until(() => drone.available(), 3000, "available");

    const silencedAt = performance.now();
    vehicle.silence(true);
    await until(() => !drone.available(), HEARTBEAT_TIMEOUT_MS + 500, "unavailable after the vehicle's silence");
    const lostAfterMs = performance.now() - silencedAt;
    // the last heartbeat came at most 100 ms (10 Hz) before the silence
    expect(lostAfterMs).toBeGreaterThan(HEARTBEAT_TIMEOUT_MS - 150);
    expect(drone.mode()).toBe("lost");
    const lost = faults(drone).find((fault) => fault.code === "VEHICLE_LOST");
    expect(lost).toMatchObject({ severity: "critical", message: expect.stringMatching(/no HEARTBEAT from the vehicle for \d+ ms/) });
    expect(refusal(() => drone.perform("arm", 0)).code).toBe("COMMAND_REFUSED");

    const back = atNextHeartbeat(drone);
    vehicle.silence(false);
    // heard again, and its failsafe parameters are read again (it may have rebooted with others)
    expect(await back).toEqual({ available: false, mode: "connecting", faults: [] });
    await until(() => drone.available(), 3000, "available again");
    expect(drone.mode()).toBe("STABILIZE");
    expect(faults(drone).map((fault) => fault.code)).not.toContain("VEHICLE_LOST");
  });

  it("checks the failsafe again after a loss the loop never saw (a stalled tick)", TEST, async () => {
    rig = await startRig();
    const { drone, vehicle } = rig;
    await until(() => drone.available(), 3000, "available");

    // the driver's loop stalls while the vehicle falls silent for longer than heartbeatTimeoutMs
    drone.stop();
    vehicle.silence(true);
    await until(() => !drone.available(), HEARTBEAT_TIMEOUT_MS + 500, "unavailable");
    expect(drone.mode()).toBe("lost");

    const link = drone.vehicle.link!;
    const send = link.send.bind(link);
    const parameterReads: string[] = [];
    vi.spyOn(link, "send").mockImplementation((message: MavLinkData) => {
      if (message instanceof common.ParamRequestRead) parameterReads.push(message.paramId);
      return send(message);
    });
    const back = atNextHeartbeat(drone);
    vehicle.silence(false);
    // it was lost: until its parameters are read again it is not available
    expect(await back).toEqual({ available: false, mode: "connecting", faults: [] });
    drone.start();
    await until(() => drone.available(), 3000, "available again after a new check");
    expect(parameterReads.slice(0, 4)).toEqual(["SYSID_MYGCS", "FS_GCS_ENABLE", "FS_GCS_TIMEOUT", "GUID_TIMEOUT"]);
  });
});

describe("the failsafe parameter check at connect", () => {
  it("faults a vehicle with FS_GCS_ENABLE 0 and refuses to arm it, naming the parameter", TEST, async () => {
    rig = await startRig({ vehicle: { params: { FS_GCS_ENABLE: 0 } } });
    const { drone, vehicle } = rig;
    // available (the adapter shows the device and its fault), but faulted
    await until(() => drone.available(), 3000, "available with its check done");
    const flight = drone.hal.get("flight");
    expect(flight.state).toBe(ComponentState.Fault);
    expect(flight.faultReason).toMatch(/FS_GCS_ENABLE is 0 \(disabled\)/);

    const error = refusal(() => drone.perform("arm", 0));
    expect(error.code).toBe("COMMAND_REFUSED");
    expect(error.message).toMatch(/FS_GCS_ENABLE/);
    await holds(() => !vehicle.state.armed, 300, "the vehicle stays disarmed");
    expect(vehicle.commandCounts).toEqual({});
  });

  it("faults a vehicle whose SYSID_MYGCS is not the adapter's GCS id and refuses to arm it, naming SYSID_MYGCS", TEST, async () => {
    rig = await startRig({ vehicle: { params: { SYSID_MYGCS: 42 } } });
    const { drone, vehicle } = rig;
    await until(() => drone.available(), 3000, "available with its check done");
    const flight = drone.hal.get("flight");
    expect(flight.state).toBe(ComponentState.Fault);
    expect(flight.faultReason).toMatch(/SYSID_MYGCS is 42 but this adapter's GCS system id is 255/);
    expect(flight.faultReason).not.toMatch(/FS_GCS_ENABLE/);

    const error = refusal(() => drone.perform("arm", 0));
    expect(error.code).toBe("COMMAND_REFUSED");
    expect(error.message).toMatch(/SYSID_MYGCS/);
    expect(vehicle.commandCounts).toEqual({});
  });
});

describe("robustness", () => {
  it("counts 200 garbage datagrams at its own socket as malformed and keeps hearing the vehicle", TEST, async () => {
    rig = await startRig();
    const { drone, vehicle } = rig;
    await until(() => drone.available(), 3000, "available");
    const link = drone.vehicle.link!;
    const before = { ...link.counters };
    const heartbeatAtBefore = drone.vehicle.vehicleState.heartbeatAt!;

    // Three kinds, none of them a whole valid packet: bytes without a start marker, a
    // HEARTBEAT from the vehicle's own ids with a broken checksum, and a truncated one.
    const random = prng(12);
    const heartbeat = new MavLinkProtocolV2(1, 1).serialize(Object.assign(new minimal.Heartbeat(), { type: minimal.MavType.QUADROTOR, mavlinkVersion: 3 }), 0);
    const garbage: Buffer[] = [];
    for (let i = 0; i < 200; i++) {
      if (i % 3 === 0) {
        garbage.push(Buffer.from(Array.from({ length: 1 + Math.floor(random() * 300) }, () => Math.floor(random() * 0xfd))));
      } else if (i % 3 === 1) {
        const corrupt = Buffer.from(heartbeat);
        corrupt[corrupt.length - 1] ^= 0x5a;
        garbage.push(corrupt);
      } else {
        garbage.push(heartbeat.subarray(0, 1 + Math.floor(random() * (heartbeat.length - 1))));
      }
    }
    const sender = createSocket("udp4");
    try {
      await new Promise<void>((resolve) => sender.bind(0, "127.0.0.1", resolve));
      const { port } = link.localAddress;
      for (const datagram of garbage) {
        await new Promise<void>((resolve, reject) => sender.send(datagram, port, "127.0.0.1", (error) => (error ? reject(error) : resolve())));
      }
      await until(() => link.counters.malformed - before.malformed >= 200, 5000, "200 malformed datagrams counted");
    } finally {
      await new Promise<void>((resolve) => sender.close(() => resolve()));
    }
    expect(link.counters.unknown).toBe(before.unknown);
    expect(link.counters.foreign).toBe(before.foreign);

    // still hearing the vehicle: new heartbeats decoded after the flood, and available throughout the next second
    await until(() => drone.vehicle.vehicleState.heartbeatAt! > heartbeatAtBefore && link.counters.received > before.received, 3000, "the vehicle's next heartbeat");
    await holds(() => drone.available(), HEARTBEAT_TIMEOUT_MS, "available after the flood");
    expect(vehicle.faults).toEqual([]);
  });
});
