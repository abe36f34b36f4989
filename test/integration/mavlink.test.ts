/**
 * A real drone's path end to end: an operator in a teleop room drives the MAVLink test
 * vehicle (test/fixtures/mavlink-vehicle, an ArduCopter-style autopilot on UDP loopback)
 * through a real node and a real adapter process running the mavlink driver. What the
 * vehicle does is read from the vehicle itself; what the room shows, from its telemetry.
 *
 * Failsafes: the operator dropped (the adapter holds, then lands), the adapter killed
 * (the vehicle's own GCS failsafe lands it), an e-stop (land, or flight termination by
 * the profile), and the vehicle gone silent (the device goes offline in the room).
 */
import "../../server/polyfills.ts";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { randomUUID } from "node:crypto";
import { OperatorControls } from "../../client-sdk/OperatorControls.ts";
import type { RoomSession } from "../../client-sdk/RoomSession.ts";
import { tsunagi } from "../../proto/index.ts";
import { startNode, waitFor, type NodeProcess } from "../fixtures/processes.ts";
import { EnvelopeLog, dropConnection, enrollDevices, joinTeleop, startAdapter, telemetryOf, type AdapterProcess } from "../fixtures/teleop.ts";
import { deleteKeys, testRedisUrl } from "../fixtures/redis.ts";
import { MavlinkTestVehicle } from "../fixtures/mavlink-vehicle/index.ts";

const Status = tsunagi.v1.CommandAck.Status;
/** Database 0: keys of this file's own cluster only, deleted afterwards (no flush). */
const redisUrl = testRedisUrl();
const clusterName = `mavlink-${randomUUID().slice(0, 8)}`;
const ROOM = "airfield";
const DRONE = "mav-1";
const TERMINATOR = "mav-2";
/** The adapter's watchdog window for these drones (the driver config's watchdogMs). */
const WATCHDOG_MS = 300;
const configDir = mkdtempSync(path.join(tmpdir(), "tsunagi-mavlink-"));

let node: NodeProcess;
let secrets: Record<string, string>;
let supervisor: RoomSession;
let supervisorLog: EnvelopeLog;
const vehicles = new Map<string, MavlinkTestVehicle>();
const adapters = new Map<string, AdapterProcess>();
const sessions: RoomSession[] = [];

function configFile(deviceId: string, vehicle: MavlinkTestVehicle, extra: Record<string, unknown> = {}): string {
  const file = path.join(configDir, `${deviceId}.json`);
  writeFileSync(file, JSON.stringify({
    endpoint: `udpout:127.0.0.1:${vehicle.port}`, watchdogMs: WATCHDOG_MS, latencyBudgetMs: 1000, linkLossHoldMs: 1500, heartbeatTimeoutMs: 1500, ...extra,
  }));
  return file;
}

async function startDroneAdapter(deviceId: string, extra: Record<string, unknown> = {}): Promise<AdapterProcess> {
  const adapter = await startAdapter({
    deviceId, driver: "mavlink", nodes: [node.httpUrl], secret: secrets[deviceId], telemetryHz: 20,
    extraArgs: ["--driver-config", configFile(deviceId, vehicles.get(deviceId)!, extra)],
  });
  adapters.set(deviceId, adapter);
  await adapter.waitForStatus((s) => s.state === "online", 20_000, `${deviceId} online`);
  return adapter;
}

/** An operator session with the lease on `deviceId`, once the room shows it online. */
async function operator(deviceId: string): Promise<{ session: RoomSession; controls: OperatorControls; log: EnvelopeLog }> {
  const session = await joinTeleop(node, ROOM, "operator");
  sessions.push(session);
  const controls = new OperatorControls(session, { deviceId, rateHz: 20 });
  await waitFor(() => controls.profile && controls.lease?.online, 10_000, `${deviceId} online in the room`);
  await controls.acquire();
  return { session, controls, log: new EnvelopeLog(session) };
}

/** The newest telemetry of `deviceId` in a log that matches, waiting for one. */
async function telemetry(log: EnvelopeLog, deviceId: string, predicate: (t: tsunagi.v1.Telemetry) => boolean, what: string, timeoutMs = 15_000) {
  const envelope = await log.next((e) => { const t = telemetryOf(e, deviceId); return t !== undefined && predicate(t); }, timeoutMs, what);
  return telemetryOf(envelope, deviceId)!;
}

/** Arms and takes off to `altitudeM`, through the room. */
async function takeOff(controls: OperatorControls, vehicle: MavlinkTestVehicle, altitudeM = 5): Promise<void> {
  expect(await controls.perform("arm")).toMatchObject({ status: Status.APPLIED });
  await vehicle.waitFor((s) => s.armed && s.mode === "GUIDED", 10_000, "armed in GUIDED");
  expect(await controls.perform("takeoff", altitudeM)).toMatchObject({ status: Status.APPLIED });
  await vehicle.waitFor((s) => s.altitude > altitudeM - 0.2, 20_000, `climbed to ${altitudeM} m`);
}

beforeAll(async () => {
  secrets = await enrollDevices(redisUrl, clusterName, [[DRONE, "drone"], [TERMINATOR, "drone"]]);
  node = await startNode({ regionId: "jp-tokyo", redisUrl, clusterName });
  // Faster than ArduCopter's defaults (LAND_SPEED 50 cm/s, a 4 s pause before a failsafe
  // landing) so that the file's six flights take seconds each; the behaviour is the same.
  const flight = { params: { FS_GCS_TIMEOUT: 2, LAND_SPEED: 150, WPNAV_SPEED_UP: 250 }, heartbeatHz: 5, landPauseMs: 500 };
  vehicles.set(DRONE, await MavlinkTestVehicle.start(flight));
  vehicles.set(TERMINATOR, await MavlinkTestVehicle.start({ ...flight, systemId: 2 }));
  await Promise.all([startDroneAdapter(DRONE), startDroneAdapter(TERMINATOR, { vehicle: { systemId: 2 }, estopAction: "terminate" })]);
  supervisor = await joinTeleop(node, ROOM, "supervisor", { devices: [DRONE, TERMINATOR], sub: "airfield-supervisor" });
  supervisorLog = new EnvelopeLog(supervisor);
  await waitFor(() => supervisor.deviceSnapshot(DRONE).lease?.online && supervisor.deviceSnapshot(TERMINATOR).lease?.online, 15_000, "both drones online in the room");
}, 90_000);

afterEach(async () => {
  await Promise.allSettled(sessions.splice(0).map((session) => session.leave()));
  for (const deviceId of [DRONE, TERMINATOR]) {
    if (supervisor.deviceSnapshot(deviceId).lease?.estopped) await supervisor.request({ reset: { deviceId, reason: "test cleanup" } }).catch(() => {});
  }
});

afterAll(async () => {
  await supervisor?.leave().catch(() => {});
  await Promise.allSettled([...adapters.values()].map((adapter) => adapter.stop(2000)));
  await Promise.allSettled([...vehicles.values()].map((vehicle) => vehicle.stop()));
  await node?.stop();
  rmSync(configDir, { recursive: true, force: true });
  await deleteKeys(redisUrl, [`${clusterName}:*`]);
}, 30_000);

describe("a MAVLink drone driven from a teleop room", () => {
  it("arms, takes off, flies by velocity setpoints and lands, with telemetry following each step", async () => {
    const vehicle = vehicles.get(DRONE)!;
    const { controls, log } = await operator(DRONE);
    expect(controls.profile?.driver).toBe("mavlink");
    expect(controls.actions.map((a) => a.name)).toEqual(["arm", "takeoff", "hold", "land", "rtl", "disarm"]);

    expect(await controls.perform("arm")).toMatchObject({ status: Status.APPLIED });
    await vehicle.waitFor((s) => s.armed && s.mode === "GUIDED", 10_000, "armed in GUIDED");
    const armed = await telemetry(log, DRONE, (t) => t.mode === "GUIDED" && t.statusTexts.some((s) => /Arming motors/.test(s.text ?? "")), "telemetry: GUIDED and 'Arming motors'");
    expect(armed.geo?.lat).toBeCloseTo(35.6812, 3);

    expect(await controls.perform("takeoff", 5)).toMatchObject({ status: Status.APPLIED });
    await vehicle.waitFor((s) => s.altitude > 4.8, 20_000, "climbed to 5 m");
    await telemetry(log, DRONE, (t) => (t.pose?.z ?? 0) > 4.5 && (t.geo?.altRelativeM ?? 0) > 4.5, "telemetry: 5 m up");

    // forward (body x) with the vehicle facing north: the site frame's +y
    controls.start();
    controls.setAxes({ vx: 2 });
    await vehicle.waitFor((s) => s.velocity.vx > 1.5 && s.position.x > 1, 15_000, "flying north at 2 m/s");
    const moving = await telemetry(log, DRONE, (t) => (t.pose?.y ?? 0) > 1, "telemetry: north of home");
    expect(moving.joints.find((j) => j.name === "vx")?.velocity).toBeGreaterThan(1);
    controls.setAxes({ vx: 0 });
    await vehicle.waitFor((s) => Math.hypot(s.velocity.vx, s.velocity.vy) < 0.1, 10_000, "hovering");
    controls.stop();

    expect(await controls.perform("land")).toMatchObject({ status: Status.APPLIED });
    await vehicle.waitFor((s) => s.mode === "LAND" && !s.armed && s.altitude < 0.1, 30_000, "landed and disarmed");
    await telemetry(log, DRONE, (t) => t.mode === "LAND" && (t.pose?.z ?? 1) < 0.2, "telemetry: landed");
  }, 120_000);

  it("holds when the operator's link drops, within the watchdog window, then lands", async () => {
    const vehicle = vehicles.get(DRONE)!;
    const { session, controls } = await operator(DRONE);
    await takeOff(controls, vehicle);
    controls.start();
    controls.setAxes({ vx: 2 });
    await vehicle.waitFor((s) => s.velocityTarget.vx > 1.5, 10_000, "commanded north");

    const droppedAt = performance.now();
    dropConnection(session);
    await vehicle.waitFor((s) => s.velocityTarget.vx === 0 || s.mode === "BRAKE", 5000, "told to stop");
    const stopMs = performance.now() - droppedAt;
    // the adapter's watchdog trips at WATCHDOG_MS; what is left is the loopback and a busy machine's timers
    expect(stopMs).toBeLessThan(WATCHDOG_MS + 1500);
    await vehicle.waitFor((s) => s.mode === "BRAKE", 5000, "holding (BRAKE)");
    await vehicle.waitFor((s) => s.mode === "LAND", 10_000, "landing after the hold");
    await vehicle.waitFor((s) => !s.armed && s.altitude < 0.1, 30_000, "landed");
    controls.dispose();
    console.log(`[mavlink] operator dropped -> vehicle told to stop in ${stopMs.toFixed(0)} ms (watchdog ${WATCHDOG_MS} ms)`);
  }, 120_000);

  it("lands by its own GCS failsafe when the adapter is killed", async () => {
    const vehicle = vehicles.get(DRONE)!;
    const { controls } = await operator(DRONE);
    await takeOff(controls, vehicle);
    await adapters.get(DRONE)!.kill();
    const killedAt = performance.now();
    const failsafe = await vehicle.waitFor((s) => s.failsafe === "gcs", 10_000, "GCS failsafe");
    const failsafeMs = performance.now() - killedAt;
    // FS_GCS_TIMEOUT is 2 s after the adapter's last GCS heartbeat (it sends one a second): not before
    expect(performance.now() - failsafe.lastGcsHeartbeatAt!).toBeGreaterThanOrEqual(1900);
    await vehicle.waitFor((s) => s.mode === "LAND", 5000, "landing by FS_GCS_ENABLE 5");
    await vehicle.waitFor((s) => !s.armed && s.altitude < 0.1, 30_000, "landed");
    controls.dispose();
    console.log(`[mavlink] adapter killed -> vehicle failsafe after ${failsafeMs.toFixed(0)} ms (FS_GCS_TIMEOUT 2 s)`);
    await startDroneAdapter(DRONE);
    await waitFor(() => supervisor.deviceSnapshot(DRONE).lease?.online, 15_000, "back online in the room");
  }, 120_000);

  it("lands on an e-stop (profile: land)", async () => {
    const vehicle = vehicles.get(DRONE)!;
    const { controls } = await operator(DRONE);
    await takeOff(controls, vehicle);
    await controls.estop("test e-stop");
    await vehicle.waitFor((s) => s.mode === "LAND", 5000, "landing on the e-stop");
    await vehicle.waitFor((s) => !s.armed && s.altitude < 0.1, 30_000, "landed");
    expect(vehicle.state.terminated).toBe(false);
  }, 120_000);

  it("terminates the flight on an e-stop (profile: terminate)", async () => {
    const vehicle = vehicles.get(TERMINATOR)!;
    const { controls } = await operator(TERMINATOR);
    expect(controls.profile?.parameters?.estopTerminates).toBe(1);
    await takeOff(controls, vehicle, 3);
    await controls.estop("test e-stop");
    await vehicle.waitFor((s) => s.terminated && !s.armed, 5000, "flight terminated");
  }, 120_000);

  it("goes offline in the room when the vehicle falls silent, and back when it answers", async () => {
    const vehicle = vehicles.get(DRONE)!;
    const from = supervisorLog.length;
    vehicle.silence(true);
    try {
      await supervisorLog.next((e) => leaseOffline(e, DRONE), 15_000, "the room says the drone is offline", from);
      await adapters.get(DRONE)!.waitForStatus((s) => s.state === "device-unavailable", 10_000, "adapter: device unavailable");
    } finally {
      vehicle.silence(false);
    }
    await waitFor(() => supervisor.deviceSnapshot(DRONE).lease?.online, 15_000, "online again in the room");
  }, 60_000);
});

function leaseOffline(envelope: Parameters<typeof telemetryOf>[0], deviceId: string): boolean {
  return envelope.body === "leaseState" && envelope.leaseState?.deviceId === deviceId && envelope.leaseState.online === false;
}
