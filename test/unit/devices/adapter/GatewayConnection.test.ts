/**
 * GatewayConnection on its own, against a scripted gateway and a fake host: what it tells
 * its host and in which order (the link up before "online", lost before "offline", every
 * attempt's close), what it keeps for itself and what it hands over, and a failing host
 * handler making it fail safe. The waits between attempts are in backoff.test.ts.
 */
import { afterEach, describe, expect, it } from "vitest";
import { pino } from "pino";
import { ClockSync } from "../../../../common/ClockSync.ts";
import { GatewayConnection, type GatewayConnectionOptions } from "../../../../devices/adapter/GatewayConnection.ts";
import { ErrorCode } from "../../../../proto/index.ts";
import { waitFor } from "../../../fixtures/processes.ts";
import { FakeConnectionHost } from "../../../fixtures/fakes/FakeConnectionHost.ts";
import { ScriptedGateway } from "../../../fixtures/fakes/ScriptedGateway.ts";

const DEVICE = "ex-1";
const SECRET = "a1".repeat(32);

/** What each test started, stopped whatever happened. */
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function setup(options: Partial<GatewayConnectionOptions> = {}) {
  const gateway = await ScriptedGateway.start({ deviceId: DEVICE, secret: SECRET });
  cleanups.push(() => gateway.close());
  const host = new FakeConnectionHost();
  const connection = new GatewayConnection({
    deviceId: DEVICE, adapterVersion: "1.2.3", driverName: "sim-excavator", credential: { secret: SECRET }, nodes: [gateway.httpUrl],
    profile: { deviceId: DEVICE }, backoff: { initialMs: 20, maxMs: 100 }, conflictBackoffMs: 60_000, handshakeTimeoutMs: 5000, httpTimeoutMs: 2000,
    clockSyncIntervalMs: 60_000, random: Math.random, clock: new ClockSync(), logger: pino({ level: "silent" }), ca: undefined, devMode: true, ...options,
  }, host);
  cleanups.push(() => connection.stop());
  return { gateway, host, connection };
}

describe("GatewayConnection", () => {
  it("says the link is up before the 'online' event, and lost (welcomed) before 'backoff' and 'offline'", { timeout: 15_000 }, async () => {
    const { gateway, host, connection } = await setup();
    connection.start();
    await host.waitFor("event:online");
    // (the scripted gateway's LeaseState after the welcome may follow)
    expect(host.log.slice(0, 6)).toEqual(["event:state:probing", "event:state:connecting", "event:state:authenticating", "event:state:online", "linkUp", "event:online"]);
    expect(connection.connection).toMatchObject({ regionId: "jp-test", nodeId: "node-a", url: gateway.wsUrl });
    expect(connection.canSend).toBe(true);

    host.log.length = 0;
    gateway.dropConnection();
    await host.waitFor("event:offline");
    expect(host.log.slice(0, 3)).toEqual(["linkClosed:welcomed", "event:state:backoff", "event:offline"]);
    expect(host.losses[0]).toMatchObject({ welcomed: true, code: 1006 });
    expect(connection.connection).toBeUndefined();
    expect(connection.canSend).toBe(false);
    expect(connection.send({ correlationId: 0, telemetry: { deviceId: DEVICE } })).toBe(false);
  });

  it("tells the host of an attempt that closed before the welcome, with no 'offline' event", { timeout: 15_000 }, async () => {
    const { gateway, host, connection } = await setup();
    gateway.secret = "b2".repeat(32); // the hello's proof no longer holds
    connection.start();
    await host.waitFor("linkClosed:unwelcomed");
    expect(host.log).not.toContain("event:offline");
    expect(host.log).not.toContain("linkUp");
    expect(connection.lastError).toMatchObject({ codeName: "AUTH_FAILED", phase: "handshake" });
    expect(connection.counters).toMatchObject({ errorsReceived: 1, errors: { AUTH_FAILED: 1 } });
  });

  it("keeps clock pongs, pings and redirects for itself and hands the rest to the host, counting what nobody wanted", { timeout: 15_000 }, async () => {
    const { gateway, host, connection } = await setup();
    connection.start();
    await host.waitFor("event:online");
    host.onReceived = (envelope) => envelope.body === "leaseState";
    gateway.send({ correlationId: 0, leaseState: { deviceId: DEVICE, leaseId: "L1" } });
    gateway.send({ correlationId: 7, ping: { clientTimeMs: 1 } });
    gateway.send({ correlationId: 0, gatewayRedirect: { url: "http://not-a-ws-url" } });
    gateway.send({ correlationId: 0, heartbeat: { deviceId: DEVICE, leaseId: "L1", seq: 1 } });
    await gateway.waitFor((e) => e.body === "pong" && Number(e.correlationId) === 7);
    await host.waitFor("received:heartbeat");
    // the gateway's LeaseState after the welcome, then the test's two
    expect(host.envelopes.map((e) => e.body)).toEqual(["leaseState", "leaseState", "heartbeat"]);
    expect(connection.counters.unexpected).toBe(2); // the bad redirect, the unwanted heartbeat
  });

  it("outside dev mode, refuses a ws:// device endpoint (INSECURE_URL) and never opens it", { timeout: 15_000 }, async () => {
    const { gateway, host, connection } = await setup({ devMode: false });
    connection.start();
    await host.waitFor("event:error");
    expect(connection.lastError).toMatchObject({ codeName: "INSECURE_URL", phase: "gateway" });
    expect(connection.lastError!.message).toContain(gateway.wsUrl);
    expect(gateway.connections).toBe(0);
    expect(host.log).not.toContain("event:state:connecting");
  });

  it("outside dev mode, stays where it is when redirected to a ws:// gateway", { timeout: 15_000 }, async () => {
    const { gateway, host, connection } = await setup({ devMode: true });
    connection.start();
    await host.waitFor("event:online");
    (connection as unknown as { options: { devMode: boolean } }).options.devMode = false; // as if it had connected over wss://
    gateway.send({ correlationId: 0, gatewayRedirect: { url: "ws://127.0.0.1:9/device", regionId: "x", nodeId: "stranger" } });
    await waitFor(() => connection.counters.unexpected === 1, 10_000, "the redirect to be refused");
    expect(connection.counters.redirects).toBe(0);
    expect(connection.state).toBe("online");
  });

  it("fails safe when the host's handling of a frame throws, and stays online", { timeout: 15_000 }, async () => {
    const { gateway, host, connection } = await setup();
    connection.start();
    await host.waitFor("event:online");
    host.onReceived = () => { throw new Error("a bug"); };
    gateway.send({ correlationId: 0, leaseState: { deviceId: DEVICE, leaseId: "L1" } });
    await host.waitFor("failSafe:a frame handler failed");
    expect(connection.state).toBe("online");
  });
});

describe("GatewayConnection: another adapter runs as this device", () => {
  it("refused DEVICE_CONFLICT: notes the conflict for the technician and waits the conflict backoff, not the short one", { timeout: 15_000 }, async () => {
    // The usual backoff is a minute here and the conflict backoff nothing: a second attempt
    // comes at once only if the conflict's wait is the one taken.
    const { gateway, host, connection } = await setup({ backoff: { initialMs: 60_000, maxMs: 60_000 }, conflictBackoffMs: 1, random: () => 0.99 });
    gateway.refuseWith = { code: ErrorCode.DEVICE_CONFLICT, message: "another adapter is connected as device ex-1 and answers" };
    connection.start();
    await host.waitFor("linkClosed:unwelcomed");
    await waitFor(() => gateway.connections >= 2 || undefined, 10_000, "a second attempt after the conflict backoff");
    expect(connection.conflict).toMatchObject({ count: expect.any(Number), message: expect.stringContaining("another adapter") });
    expect(connection.lastError).toMatchObject({ codeName: "DEVICE_CONFLICT", phase: "handshake" });
    expect(host.log).not.toContain("linkUp");
  });

  it("replaced by another adapter (close 4409): stops, notes the conflict, and backs off; the next welcome clears it", { timeout: 15_000 }, async () => {
    const { gateway, host, connection } = await setup({ random: () => 0.99 });
    connection.start();
    await host.waitFor("event:online");
    host.log.length = 0;
    gateway.socket!.close(4409, "replaced by a newer connection of the same device");
    await host.waitFor("event:offline");
    expect(host.log[0]).toBe("linkClosed:welcomed"); // the machine stops first
    expect(connection.state).toBe("backoff");
    expect(connection.conflict).toMatchObject({ count: 1, message: expect.stringContaining("took over") });
    expect(connection.lastError).toMatchObject({ codeName: "DEVICE_CONFLICT", phase: "online" });
  });
});
