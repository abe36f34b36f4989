/**
 * What the MAVLink driver's unit tests share: the MAVLink test vehicle on 127.0.0.1 with
 * short timings, a MavlinkDrone opened, initialised and started against it, a teardown
 * that closes every socket and timer of both, and a poll-until helper with a deadline.
 *
 * @example
 *   const rig = await startRig({ drone: { linkLossHoldMs: 500 } });
 *   await until(() => rig.drone.available(), 5000, "the vehicle available");
 *   await stopRig(rig);
 */
import { expect } from "vitest";
import { HalError } from "../../../../../devices/hal/errors.ts";
import { MavlinkDrone, type MavlinkDroneOptions } from "../../../../../devices/drivers/mavlink/index.ts";
import { MavlinkTestVehicle, type MavlinkTestVehicleOptions } from "../../../../fixtures/mavlink-vehicle/index.ts";

/** Every test's bound. */
export const TEST = { timeout: 20_000 };

/** The driver's timings for these tests (the vehicle's are in startRig). */
export const HEARTBEAT_TIMEOUT_MS = 1000;
export const ACK_TIMEOUT_MS = 200;

export interface Rig {
  vehicle: MavlinkTestVehicle;
  drone: MavlinkDrone;
}

export interface RigOptions {
  /** Over the vehicle's short timings; `params` are merged. */
  vehicle?: MavlinkTestVehicleOptions;
  /** Over the driver's short timings (endpoint is the vehicle's). */
  drone?: Partial<MavlinkDroneOptions>;
  /** Leave the drone opened but not init()ed nor start()ed. */
  idle?: boolean;
}

/** Resolves with the first truthy value of `probe`, polled every 10 ms; rejects after `timeoutMs` naming `what`. */
export async function until<T>(probe: () => T, timeoutMs: number, what: string): Promise<NonNullable<T>> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value) return value as NonNullable<T>;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Holds `predicate` true for `ms` (polled every 10 ms); throws naming `what` the first time it is false. */
export async function holds(predicate: () => boolean, ms: number, what: string): Promise<void> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    if (!predicate()) throw new Error(`${what} stopped holding`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export async function startRig(options: RigOptions = {}): Promise<Rig> {
  const vehicle = await MavlinkTestVehicle.start({
    heartbeatHz: 10,
    ...options.vehicle,
    params: { LAND_SPEED: 300, WPNAV_SPEED_UP: 300, ...options.vehicle?.params },
  });
  let drone: MavlinkDrone | undefined;
  try {
    drone = new MavlinkDrone({
      endpoint: `udpout:127.0.0.1:${vehicle.port}`,
      heartbeatTimeoutMs: HEARTBEAT_TIMEOUT_MS,
      ackTimeoutMs: ACK_TIMEOUT_MS,
      ...options.drone,
    });
    await drone.open();
    if (!options.idle) {
      drone.init();
      drone.start();
    }
    return { vehicle, drone };
  } catch (error) {
    if (drone) await drone.vehicle.close();
    await vehicle.stop();
    throw error;
  }
}

/**
 * Shuts both down. finalize() refuses while the driver believes the vehicle airborne; then
 * the loop is stopped, the link closed and the HAL finalized directly (the simulated vehicle
 * is stopped right after, so nothing is left flying).
 */
export async function stopRig(rig: Rig | undefined): Promise<void> {
  if (!rig) return;
  const { drone, vehicle } = rig;
  try {
    if (drone.vehicle.airborne) {
      drone.stop();
      drone.hal.finalizeAll();
    } else {
      drone.finalize();
    }
  } finally {
    drone.stop();
    await drone.vehicle.close();
    await vehicle.stop();
  }
}

/** Arms (GUIDED), waits until both the vehicle and the driver know, then takes off to `altitudeM` and waits for the climb to end. */
export async function takeOff(rig: Rig, altitudeM = 3): Promise<void> {
  const { drone, vehicle } = rig;
  await until(() => drone.available(), 5000, "the vehicle available");
  drone.perform("arm", 0);
  await vehicle.waitFor((s) => s.armed && s.mode === "GUIDED", 5000, "armed in GUIDED");
  await until(() => drone.vehicle.vehicleState.armed && drone.vehicle.vehicleState.modeName === "GUIDED", 5000, "the driver sees it armed in GUIDED");
  drone.perform("takeoff", altitudeM);
  await vehicle.waitFor((s) => s.altitude > altitudeM - 0.2 && Math.abs(s.velocity.vz) < 0.05, 10_000, `hovering at ${altitudeM} m`);
  await until(() => drone.vehicle.airborne, 5000, "the driver sees it airborne");
}

/** The HalError that `run` throws; fails the test when it throws nothing or something else. */
export function refusal(run: () => void): HalError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(HalError);
    return error as HalError;
  }
  throw new Error("expected a refusal");
}
