/**
 * The MAVLink driver's commands, in-process against the MAVLink test vehicle: a command
 * whose ack is lost goes again (and is not executed twice), one never answered ends as a
 * COMMAND_FAILED fault after its retries, and the e-stop's manoeuvre on the ground and in
 * the air (land, or flight termination).
 */
import { afterEach, describe, expect, it } from "vitest";
import { ardupilotmega, common } from "node-mavlink";
import type { MavlinkDrone } from "../../../../../devices/drivers/mavlink/index.ts";
import type { CommandInfo } from "../../../../fixtures/mavlink-vehicle/index.ts";
import { ACK_TIMEOUT_MS, TEST, holds, startRig, stopRig, takeOff, until, type Rig } from "./harness.ts";

const { MavCmd } = common;
/** A vehicle that starts in GUIDED, so arming is one ARM_DISARM command (no DO_SET_MODE first). */
const STARTS_GUIDED = { params: { INITIAL_MODE: ardupilotmega.CopterMode.GUIDED } };

type Fault = { code: string; message: string; severity: string };

let rig: Rig | undefined;

afterEach(async () => {
  await stopRig(rig);
  rig = undefined;
});

function faults(drone: MavlinkDrone): Fault[] {
  return (drone.telemetry() as { faults: Fault[] }).faults;
}

function commandCounters(drone: MavlinkDrone): Record<string, number> {
  return drone.counters().commands as Record<string, number>;
}

/** Every COMMAND_LONG the vehicle receives from now on, dropped ones included. */
function recordCommands(rig: Rig): { command: number; params: number[]; info: CommandInfo }[] {
  const seen: { command: number; params: number[]; info: CommandInfo }[] = [];
  rig.vehicle.on("command", (command, params, info) => seen.push({ command, params, info }));
  return seen;
}

async function readyInGuided(rig: Rig): Promise<void> {
  await until(() => rig.drone.available() && rig.drone.mode() === "GUIDED", 3000, "available in GUIDED");
}

describe("command retries", () => {
  it("sends ARM_DISARM again when its first copy gets no ack, and the vehicle ends up armed", TEST, async () => {
    rig = await startRig({ vehicle: STARTS_GUIDED });
    const { drone, vehicle } = rig;
    await readyInGuided(rig);
    const seen = recordCommands(rig);

    vehicle.dropCommands(1);
    drone.perform("arm", 0);
    await vehicle.waitFor((s) => s.armed, 3000, "armed");
    // commandCounts is keyed by MAV_CMD number
    expect(vehicle.commandCounts).toEqual({ [MavCmd.COMPONENT_ARM_DISARM]: 2 });
    expect(seen.map(({ command, params, info }) => ({ command, arm: params[0], confirmation: info.confirmation, dropped: info.dropped })))
      .toEqual([
        { command: MavCmd.COMPONENT_ARM_DISARM, arm: 1, confirmation: 0, dropped: true },
        { command: MavCmd.COMPONENT_ARM_DISARM, arm: 1, confirmation: 1, dropped: false },
      ]);
    await until(() => commandCounters(drone).accepted === 1, 2000, "the ack taken in");
    expect(commandCounters(drone)).toEqual({ sent: 2, retries: 1, accepted: 1, refused: 0, unanswered: 0 });
    expect(drone.vehicle.vehicleState.armed).toBe(true);
    expect(faults(drone).map((fault) => fault.code)).not.toContain("COMMAND_FAILED");

    drone.perform("disarm", 0);
    await vehicle.waitFor((s) => !s.armed, 3000, "disarmed");
  });

  it("gives up after commandRetries: 3 sends, no arming, and a COMMAND_FAILED fault saying NO_ACK", TEST, async () => {
    rig = await startRig({ vehicle: STARTS_GUIDED, drone: { commandRetries: 2 } });
    const { drone, vehicle } = rig;
    await readyInGuided(rig);

    vehicle.dropCommands(10);
    const sentAt = performance.now();
    drone.perform("arm", 0);
    const failed = await until(() => faults(drone).find((fault) => fault.code === "COMMAND_FAILED"), 3 * ACK_TIMEOUT_MS + 1000, "COMMAND_FAILED");
    // three waits of ackTimeoutMs each
    expect(performance.now() - sentAt).toBeGreaterThanOrEqual(3 * ACK_TIMEOUT_MS - 20);
    expect(failed).toMatchObject({ severity: "warning", message: expect.stringMatching(/COMPONENT_ARM_DISARM.*NO_ACK/) });
    expect(vehicle.commandCounts).toEqual({ [MavCmd.COMPONENT_ARM_DISARM]: 3 });
    expect(commandCounters(drone)).toEqual({ sent: 3, retries: 2, accepted: 0, refused: 0, unanswered: 1 });

    // nothing more goes after the last retry, and the vehicle never armed
    await holds(() => vehicle.commandCounts[MavCmd.COMPONENT_ARM_DISARM] === 3 && !vehicle.state.armed, 2 * ACK_TIMEOUT_MS, "no fourth send");
    expect(drone.vehicle.vehicleState.armed).toBe(false);
  });
});

describe("emergencyStop()", () => {
  it("disarms a vehicle armed on the ground", TEST, async () => {
    rig = await startRig();
    const { drone, vehicle } = rig;
    await until(() => drone.available(), 3000, "available");
    drone.perform("arm", 0);
    await vehicle.waitFor((s) => s.armed && s.mode === "GUIDED", 3000, "armed in GUIDED");
    await until(() => drone.vehicle.vehicleState.armed, 2000, "the driver sees it armed");

    drone.emergencyStop();
    await vehicle.waitFor((s) => !s.armed, 2000, "disarmed by the e-stop");
    expect(vehicle.state).toMatchObject({ mode: "GUIDED", terminated: false, landed: true });
    expect(vehicle.commandCounts[MavCmd.DO_FLIGHTTERMINATION]).toBeUndefined();
  });

  it("does nothing to a disarmed vehicle", TEST, async () => {
    rig = await startRig();
    const { drone, vehicle } = rig;
    await until(() => drone.available(), 3000, "available");
    drone.emergencyStop();
    await holds(() => Object.keys(vehicle.commandCounts).length === 0, 3 * ACK_TIMEOUT_MS, "no command sent");
    expect(vehicle.state).toMatchObject({ armed: false, mode: "STABILIZE" });
  });

  it("lands a vehicle in the air with estopAction \"land\"", TEST, async () => {
    rig = await startRig({ drone: { estopAction: "land" } });
    const { drone, vehicle } = rig;
    await takeOff(rig, 3);

    drone.emergencyStop();
    await vehicle.waitFor((s) => s.mode === "LAND", 2000, "LAND on the e-stop");
    expect(vehicle.state.terminated).toBe(false);
    await vehicle.waitFor((s) => s.landed && !s.armed, 10_000, "landed and disarmed");
    expect(vehicle.commandCounts[MavCmd.DO_FLIGHTTERMINATION]).toBeUndefined();
  });

  it("terminates the flight of a vehicle in the air with estopAction \"terminate\"", TEST, async () => {
    rig = await startRig({ drone: { estopAction: "terminate" } });
    const { drone, vehicle } = rig;
    await takeOff(rig, 3);

    drone.emergencyStop();
    await vehicle.waitFor((s) => s.terminated && !s.armed, 2000, "flight terminated");
    expect(vehicle.commandCounts[MavCmd.DO_FLIGHTTERMINATION]).toBe(1);
    // motors off: it falls, and does not land in LAND mode
    await vehicle.waitFor((s) => s.landed, 5000, "on the ground");
    expect(vehicle.state.mode).toBe("GUIDED");
  });
});
