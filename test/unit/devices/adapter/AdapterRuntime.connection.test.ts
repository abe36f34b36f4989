/**
 * AdapterRuntime's link against a scripted gateway (ws WebSocketServer + node:http on
 * loopback, ephemeral ports): the signed-challenge and token handshakes, the profile and
 * clock sync after the welcome, refusals retried with backoff, region choice, redirects,
 * and a silent link cut and reconnected.
 */
import { afterEach, describe, it, expect } from "vitest";
import { AdapterRuntime } from "../../../../devices/adapter/AdapterRuntime.ts";
import { ErrorCode, tsunagi } from "../../../../proto/index.ts";
import { proveChallenge } from "../../../../proto/deviceAuth.ts";
import { ScriptedGateway } from "../../../fixtures/fakes/ScriptedGateway.ts";
import { cleanups, command, DEVICE, joint, lease, nextEvent, online, runCleanups, SECRET, setup, Status, telemetry, waitUntil, WATCHDOG_MS } from "./runtime-harness.ts";

afterEach(runCleanups);

describe("handshake", () => {
  it("answers the challenge with a signed hello, then sends the profile, quick clock-sync rounds and telemetry", { timeout: 15_000 }, async () => {
    const s = await setup();
    const states: string[] = [];
    s.runtime.on("state", (state) => states.push(state));
    const onlineEvent = nextEvent(s.runtime, "online");
    s.runtime.start();
    expect(await onlineEvent).toEqual({ node: s.gateway.httpUrl, url: s.gateway.wsUrl, regionId: "jp-test", nodeId: "node-a" });
    expect(s.runtime.state).toBe("online");
    expect(states).toEqual(["probing", "connecting", "authenticating", "online"]);
    expect(s.runtime.connection).toMatchObject({ regionId: "jp-test", nodeId: "node-a" });

    const hello = s.gateway.received[0].envelope;
    expect(hello.body).toBe("deviceHello");
    expect(Number(hello.correlationId)).toBeGreaterThan(0);
    expect(hello.deviceHello).toMatchObject({ deviceId: DEVICE, adapterVersion: "1.2.3", driver: "sim-excavator", credential: "signedChallenge" });
    const [challenge] = s.gateway.challenges;
    expect(hello.deviceHello!.signedChallenge).toMatchObject({ nonce: challenge.nonce, signature: proveChallenge(SECRET, DEVICE, challenge) });

    await s.gateway.waitFor((e) => e.body === "telemetry");
    // profile first, then the first clock ping, then telemetry (the samples buffered while connecting)
    const frames = s.gateway.received.map((f) => f.envelope);
    expect(frames.slice(1, 3).map((e) => e.body)).toEqual(["deviceProfile", "clockSyncPing"]);
    // eight quick rounds after the welcome, though the steady interval is a minute here
    await waitUntil(() => s.runtime.clock.sampleCount >= 8, "the quick clock-sync rounds"); // the challenge's coarse sample + 7 of them, ClockSync keeps 8
    const pingIds = s.gateway.received.filter((f) => f.envelope.body === "clockSyncPing").map((f) => Number(f.envelope.correlationId));
    expect(new Set(pingIds).size).toBe(pingIds.length);
    expect(pingIds.every((id) => id > 0)).toBe(true);
    expect(Number.isFinite(s.runtime.clock.uncertaintyMs)).toBe(true);
    // Same machine: the estimate lands on the gateway's clock, at an instant one of the samples
    // saw (the adapter's clock here is frozen by the test, so the estimate does not move on).
    const estimate = s.runtime.clock.serverNow();
    expect(estimate).toBeGreaterThanOrEqual(challenge.serverTimeMs);
    expect(estimate).toBeLessThanOrEqual(Date.now());
  });

  it("sends clock pings one at a time: none while the last is unanswered", { timeout: 15_000 }, async () => {
    const s = await setup();
    s.gateway.answerClockPings = false;
    await online(s);
    await s.gateway.waitFor((e) => e.body === "clockSyncPing");
    // A ping the gateway sends is answered after anything the adapter wrote before it: a barrier.
    s.gateway.send({ correlationId: 4242, ping: { clientTimeMs: 1 } });
    await s.gateway.waitFor((e) => e.body === "pong" && Number(e.correlationId) === 4242);
    expect(s.gateway.received.filter((f) => f.envelope.body === "clockSyncPing")).toHaveLength(1);
  });

  it("publishes the driver's profile, mapped to the contract", { timeout: 15_000 }, async () => {
    const s = await setup();
    await online(s);
    const envelope = await s.gateway.waitFor((e) => e.body === "deviceProfile");
    const profile = envelope.deviceProfile as tsunagi.v1.DeviceProfile;
    expect(profile).toMatchObject({
      deviceId: DEVICE, deviceClass: tsunagi.v1.DeviceClass.DEVICE_CLASS_EXCAVATOR, driver: "sim-excavator", vendor: "Tsunagi", model: "sim-excavator",
      watchdogWindowMs: WATCHDOG_MS, latencyBudgetMs: 10_000, telemetryRateHz: 20, controlRateHz: 100,
    });
    expect(profile.parameters).toEqual({ trackGaugeM: 2.4 });
    expect(profile.axes.map((a) => a.name)).toEqual(["swing", "boom", "arm", "bucket", "left-track", "right-track"]);
    const boom = profile.axes[1];
    expect(boom).toMatchObject({ mode: tsunagi.v1.AxisMode.AXIS_MODE_VELOCITY, unit: "rad", rateUnit: "rad/s", maxRate: 0.4, min: -0.6, max: 1.0 });
    // an unbounded axis carries no min/max at all (proto3 optional), not 0
    const swing = tsunagi.v1.AxisProfile.toObject(profile.axes[0] as tsunagi.v1.AxisProfile);
    expect(swing).not.toHaveProperty("min");
    expect(swing).not.toHaveProperty("max");
  });

  it("speaks token mode when given a token", { timeout: 15_000 }, async () => {
    const s = await setup({ runtime: { credential: { token: "device-token" } } });
    await online(s);
    const hello = s.gateway.received[0].envelope.deviceHello!;
    expect(hello.credential).toBe("token");
    expect(hello.token).toBe("device-token");
  });

  it("logs a refusal, keeps it as lastError and retries with backoff until the credentials are fixed", { timeout: 15_000 }, async () => {
    const s = await setup();
    s.gateway.secret = "b2".repeat(32); // the device was re-enrolled: our secret is stale
    const errors: string[] = [];
    s.runtime.on("error", (error) => errors.push(error.codeName));
    s.runtime.start();
    await waitUntil(() => s.gateway.connections >= 3, "three attempts");
    expect(s.runtime.state).not.toBe("online");
    expect(s.runtime.lastError).toMatchObject({ code: ErrorCode.AUTH_FAILED, codeName: "AUTH_FAILED", phase: "handshake", message: "bad proof" });
    expect(errors).toContain("AUTH_FAILED");
    expect(s.runtime.counters.connectAttempts).toBeGreaterThanOrEqual(3);

    s.gateway.refuseWith = { code: ErrorCode.FORBIDDEN, message: "device revoked" };
    await waitUntil(() => s.runtime.lastError?.codeName === "FORBIDDEN", "the FORBIDDEN refusal");

    const onlineEvent = nextEvent(s.runtime, "online");
    s.gateway.refuseWith = undefined;
    s.gateway.secret = SECRET; // fixed on the server side
    await onlineEvent;
    expect(s.runtime.counters.reconnects).toBe(0); // the first welcome is not a reconnect
  });
});

describe("regions", () => {
  it("picks the node with the lowest /ping round trip", { timeout: 15_000 }, async () => {
    const far = await ScriptedGateway.start({ deviceId: DEVICE, secret: SECRET, nodeId: "far", pingDelayMs: 150 });
    cleanups.push(() => far.close());
    const s = await setup({ gateway: { nodeId: "near" } });
    const runtime = new AdapterRuntime({
      deviceId: DEVICE, driver: s.driver, credential: { secret: SECRET }, nodes: [far.httpUrl, s.gateway.httpUrl], adapterVersion: "1.2.3", devMode: true,
    });
    cleanups.push(() => runtime.stop());
    const onlineEvent = nextEvent(runtime, "online");
    runtime.start();
    expect((await onlineEvent).nodeId).toBe("near");
    expect(far.connections).toBe(0);
  });

  it("falls back to the next node when the nearest cannot name a gateway (draining)", { timeout: 15_000 }, async () => {
    const other = await ScriptedGateway.start({ deviceId: DEVICE, secret: SECRET, nodeId: "other", pingDelayMs: 50 });
    cleanups.push(() => other.close());
    const s = await setup();
    s.gateway.gatewayStatus = 503;
    const runtime = new AdapterRuntime({
      deviceId: DEVICE, driver: s.driver, credential: { secret: SECRET }, nodes: [s.gateway.httpUrl, other.httpUrl], adapterVersion: "1.2.3", devMode: true,
    });
    cleanups.push(() => runtime.stop());
    const onlineEvent = nextEvent(runtime, "online");
    runtime.start();
    expect((await onlineEvent).nodeId).toBe("other");
  });

  it("follows a GatewayRedirect at once, stopping first: no backoff (a minute here) before it", { timeout: 15_000 }, async () => {
    const roomNode = await ScriptedGateway.start({ deviceId: DEVICE, secret: SECRET, nodeId: "room-node" });
    cleanups.push(() => roomNode.close());
    const s = await setup({ gateway: { nodeId: "near" }, runtime: { backoff: { initialMs: 60_000, maxMs: 60_000 } } });
    await online(s);
    await lease(s, "lease-r");
    expect((await command(s, { leaseId: "lease-r", seq: 1, axes: [{ name: "swing", value: 0.4 }] })).status).toBe(Status.APPLIED);

    const movedOnline = nextEvent(s.runtime, "online");
    const offline = nextEvent(s.runtime, "offline");
    s.gateway.send({ correlationId: 0, gatewayRedirect: { url: roomNode.wsUrl, regionId: "test", nodeId: "room-node", reason: "room site-1 on node room-node owns this device" } });
    // The gateway closes once the redirect is out (an abrupt drop could overtake it on a busy machine).
    await waitUntil(() => s.runtime.counters.redirects === 1, "the redirect received", 5000);
    s.gateway.dropConnection();
    await offline;
    expect(joint(s.driver, "swing").velocity).toBe(0);
    expect(s.runtime.safety.lease).toBeUndefined();
    // Within nextEvent's 5 s: a backoff would have been a minute.
    expect((await movedOnline).nodeId).toBe("room-node");
    expect(s.runtime.counters.redirects).toBe(1);
  });

  it("after a redirect, goes back to that gateway first when the link there drops", { timeout: 15_000 }, async () => {
    const roomNode = await ScriptedGateway.start({ deviceId: DEVICE, secret: SECRET, nodeId: "room-node" });
    cleanups.push(() => roomNode.close());
    const s = await setup({ gateway: { nodeId: "near" } });
    await online(s);
    const moved = nextEvent(s.runtime, "online");
    s.gateway.send({ correlationId: 0, gatewayRedirect: { url: roomNode.wsUrl, regionId: "test", nodeId: "room-node" } });
    await waitUntil(() => s.runtime.counters.redirects === 1, "the redirect received", 5000);
    s.gateway.dropConnection();
    expect((await moved).nodeId).toBe("room-node");

    const again = nextEvent(s.runtime, "online", 8000);
    roomNode.dropConnection();
    expect((await again).nodeId).toBe("room-node");
    expect(roomNode.connections).toBe(2);
    expect(s.gateway.connections).toBe(1);
  });

  it("ignores a redirect to anything but ws:// or wss://, and probes again when the named gateway does not take it", { timeout: 15_000 }, async () => {
    const s = await setup({ gateway: { nodeId: "near" } });
    await online(s);
    s.gateway.send({ correlationId: 0, gatewayRedirect: { url: "http://127.0.0.1:9/device", nodeId: "elsewhere" } });
    await waitUntil(() => s.runtime.counters.unexpected === 1, "the refused redirect counted");
    expect(s.runtime.state).toBe("online");
    expect(s.runtime.counters.redirects).toBe(0);

    s.gateway.send({ correlationId: 0, gatewayRedirect: { url: "ws://127.0.0.1:9/device", nodeId: "gone" } });
    s.gateway.dropConnection();
    await waitUntil(() => s.runtime.lastError?.message.includes("127.0.0.1:9") === true, "the failed connection to the named gateway");
    const back = await nextEvent(s.runtime, "online", 8000);
    expect(back.nodeId).toBe("near");
  });

  it("reports REGION_UNAVAILABLE while no node answers, and keeps trying", { timeout: 15_000 }, async () => {
    const s = await setup({ runtime: { nodes: ["http://127.0.0.1:9"], httpTimeoutMs: 500 } });
    s.runtime.start();
    await waitUntil(() => s.runtime.counters.connectAttempts >= 2, "two attempts");
    expect(s.runtime.lastError).toMatchObject({ code: ErrorCode.REGION_UNAVAILABLE, phase: "probe" });
  });
});

describe("dead links", () => {
  it("cuts a link that answers no clock ping for three rounds (silent, never closed), stopping, and reconnects", { timeout: 15_000 }, async () => {
    const s = await setup({ runtime: { clockSyncIntervalMs: 100 } });
    await online(s);
    const offline = nextEvent(s.runtime, "offline");
    s.gateway.answerClockPings = false;
    await offline;
    expect(s.runtime.state).not.toBe("online");
    s.gateway.answerClockPings = true;
    await nextEvent(s.runtime, "online", 8000);
    expect(s.gateway.connections).toBe(2);
  });

});
