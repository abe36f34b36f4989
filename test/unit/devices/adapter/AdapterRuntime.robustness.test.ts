/**
 * AdapterRuntime's robustness: garbage from the gateway is counted and survived, stop()
 * is prompt and idempotent whatever the cycle is doing, and bad options are refused with
 * a message naming the option.
 */
import { afterEach, describe, it, expect } from "vitest";
import { AdapterRuntime } from "../../../../devices/adapter/AdapterRuntime.ts";
import { SimExcavator } from "../../../../devices/drivers/index.ts";
import { ErrorCode } from "../../../../proto/index.ts";
import { ScriptedGateway } from "../../../fixtures/fakes/ScriptedGateway.ts";
import { cleanups, command, DEVICE, joint, lease, online, run, runCleanups, SECRET, setup, statusName, waitUntil } from "./runtime-harness.ts";

afterEach(runCleanups);

describe("robustness", () => {
  it("logs and counts malformed and unexpected frames, and carries on", { timeout: 15_000 }, async () => {
    const s = await setup();
    await online(s);
    await lease(s, "L1");
    s.gateway.sendSealed(new Uint8Array([0xff, 0xff, 0xff, 0xff])); // not protobuf (sealed: the gateway sent it)
    s.gateway.sendRaw("hello"); // a text frame
    s.gateway.sendSealed(new Uint8Array([0xa2, 0x01, 0x00])); // field 20: a body from a newer contract
    s.gateway.send({ correlationId: 424242, clockSyncPong: { t0Ms: 1, t1Ms: 2, t2Ms: 3 } }); // unsolicited
    s.gateway.send({ correlationId: 0, deviceChallenge: { nonce: "00", serverTimeMs: 1 } }); // wrong phase
    s.gateway.send({ correlationId: 0, error: { code: ErrorCode.RATE_LIMITED, message: "slow down" } });
    expect(statusName(await command(s, { leaseId: "L1", seq: 1, axes: [{ name: "boom", value: 0.1 }] }))).toBe("APPLIED");
    expect(s.runtime.counters).toMatchObject({ malformed: 3, unexpected: 2, errorsReceived: 1, errors: { RATE_LIMITED: 1 } });
    expect(s.runtime.lastError).toMatchObject({ codeName: "RATE_LIMITED", phase: "online" });
    expect(s.runtime.state).toBe("online");
  });


  it("stop() closes the connection, zeroes motion and is idempotent", { timeout: 15_000 }, async () => {
    const s = await setup();
    await online(s);
    await lease(s, "L1");
    expect(statusName(await command(s, { leaseId: "L1", seq: 1, axes: [{ name: "boom", value: 0.3 }] }))).toBe("APPLIED");
    const first = s.runtime.stop();
    expect(s.runtime.stop()).toBe(first);
    await first;
    expect(s.runtime.state).toBe("stopped");
    run(s.driver, 10);
    expect(joint(s.driver, "boom").velocity).toBe(0);
    await waitUntil(() => s.gateway.socket === undefined, "the gateway to see the close");
    expect(() => s.runtime.start()).toThrow(/already called/);
  });

  it("stops cleanly while backing off", { timeout: 15_000 }, async () => {
    const s = await setup({ runtime: { nodes: ["http://127.0.0.1:9"], backoff: { initialMs: 60_000, maxMs: 60_000 }, random: () => 0.99 } });
    s.runtime.start();
    await waitUntil(() => s.runtime.state === "backoff", "backoff");
    await s.runtime.stop();
    expect(s.runtime.state).toBe("stopped");
  });

  it("stop() does not wait out a probe of a node that never answers", { timeout: 10_000 }, async () => {
    const silent = await ScriptedGateway.start({ deviceId: DEVICE, secret: SECRET, pingDelayMs: 600_000 });
    cleanups.push(() => silent.close());
    const s = await setup({ runtime: { nodes: [silent.httpUrl], httpTimeoutMs: 60_000 } });
    s.runtime.start();
    await waitUntil(() => s.runtime.state === "probing", "probing");
    await s.runtime.stop();
    expect(s.runtime.state).toBe("stopped");
  });

  it("rejects bad options with a message naming the option", () => {
    const driver = new SimExcavator();
    const base = { deviceId: DEVICE, driver, credential: { secret: SECRET }, nodes: ["http://127.0.0.1:1"], adapterVersion: "1.0.0", devMode: true };
    expect(() => new AdapterRuntime({ ...base, deviceId: "bad id" })).toThrow(/deviceId/);
    expect(() => new AdapterRuntime({ ...base, credential: { secret: "abc" } })).toThrow(/64 hex/);
    expect(() => new AdapterRuntime({ ...base, credential: { token: "" } })).toThrow(/token/);
    expect(() => new AdapterRuntime({ ...base, nodes: [] })).toThrow(/at least one node/);
    expect(() => new AdapterRuntime({ ...base, nodes: ["ws://x:1"] })).toThrow(/http/);
    // Outside dev mode every hop is TLS: a plain http:// node is refused before anything connects.
    expect(() => new AdapterRuntime({ ...base, devMode: false })).toThrow(/plain http:\/\/.*https:\/\/ only/);
    expect(() => new AdapterRuntime({ ...base, devMode: undefined })).toThrow(/plain http:\/\//);
    expect(() => new AdapterRuntime({ ...base, devMode: undefined, nodes: ["https://127.0.0.1:1"] })).not.toThrow();
    expect(() => new AdapterRuntime({ ...base, nodes: ["http://a:1", "http://a:1/"] })).toThrow(/given twice/);
    expect(() => new AdapterRuntime({ ...base, adapterVersion: "dev" })).toThrow(/semver/);
    expect(() => new AdapterRuntime({ ...base, telemetryHz: 0 })).toThrow(/telemetryHz/);
    expect(() => new AdapterRuntime({ ...base, telemetryBufferSize: 0 })).toThrow(/telemetryBufferSize/);
    expect(() => new AdapterRuntime({ ...base, backoff: { initialMs: 100, maxMs: 50 } })).toThrow(/backoff/);
  });
});
