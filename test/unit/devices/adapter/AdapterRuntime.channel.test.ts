/**
 * The adapter's side of the device channel's proof and seal (device.proto, "Channel proof
 * and MAC"): it obeys only a gateway that proves it knows the device secret, and only
 * frames that open under this connection's keys with a fresh sequence number. Everything
 * else (a frame injected, altered or replayed on the path; a welcome from a stranger) is
 * dropped unread and counted, and moves nothing.
 */
import { afterEach, describe, expect, it } from "vitest";
import { encodeEnvelope } from "../../../../proto/index.ts";
import { SEAL_BYTES } from "../../../../proto/deviceAuth.ts";
import { command, DEVICE, joint, lease, online, run, runCleanups, setup, statusName, waitUntil } from "./runtime-harness.ts";

afterEach(runCleanups);

/** A command that would move the boom, issued now on the adapter's server clock. */
function boomCommand(s: Awaited<ReturnType<typeof setup>>, seq: number, value = 0.5) {
  const now = s.runtime.clock.serverNow();
  return { correlationId: 77_000 + seq, controlCommand: { deviceId: DEVICE, leaseId: "L1", seq, issuedAtMs: now, deadlineMs: now + 5000, axes: [{ name: "boom", value }] } };
}

describe("device channel seal, adapter side", () => {
  it("drops a command injected without the seal: counted, never acked, nothing moves", { timeout: 15_000 }, async () => {
    const s = await setup();
    await online(s);
    await lease(s, "L1");
    const since = s.gateway.mark();
    s.gateway.sendRaw(encodeEnvelope(boomCommand(s, 1)));
    await waitUntil(() => s.runtime.counters.refusedFrames === 1, "the forged frame to be counted");
    run(s.driver, 200);
    expect(joint(s.driver, "boom").velocity).toBe(0);
    expect(s.runtime.safety.lastApplied).toBeUndefined();
    // The forgery used up nothing: the gateway's own seq 1 is still taken, and nothing answered the forgery.
    expect(statusName(await command(s, { leaseId: "L1", seq: 1, axes: [{ name: "boom", value: 0 }] }))).toBe("APPLIED");
    expect(s.gateway.received.slice(since).some((f) => Number(f.envelope.correlationId) === 77_001)).toBe(false);
  });

  it("drops a sealed command altered on the path", { timeout: 15_000 }, async () => {
    const s = await setup();
    await online(s);
    await lease(s, "L1");
    // The gateway sealed a creeping command; on the path its value becomes 0.5 (a double: the
    // same length), the seal left as it was.
    const sealed = s.gateway.seal!.seal(encodeEnvelope(boomCommand(s, 1, 0.001)));
    const rewritten = encodeEnvelope(boomCommand(s, 1, 0.5));
    const altered = Buffer.concat([rewritten, sealed.subarray(sealed.length - SEAL_BYTES)]);
    expect(altered.length).toBe(sealed.length);
    s.gateway.sendRaw(altered);
    await waitUntil(() => s.runtime.counters.refusedFrames === 1, "the altered frame to be counted");
    run(s.driver, 200);
    expect(joint(s.driver, "boom").velocity).toBe(0);
    expect(s.runtime.safety.lastApplied).toBeUndefined();
  });

  it("drops a replayed lease announcement: an ended lease cannot be brought back", { timeout: 15_000 }, async () => {
    const s = await setup();
    await online(s);
    const granted = s.gateway.send({ correlationId: 0, leaseState: { deviceId: DEVICE, leaseId: "L1", holderSessionId: "op-1", holderRole: "operator" } });
    await waitUntil(() => s.runtime.safety.lease === "L1", "lease L1");
    await lease(s, "");
    s.gateway.sendRaw(granted);
    await waitUntil(() => s.runtime.counters.refusedFrames === 1, "the replayed frame to be counted");
    expect(s.runtime.safety.lease).toBeUndefined();
    expect(statusName(await command(s, { leaseId: "L1", seq: 1, axes: [{ name: "boom", value: 0.5 }] }))).toBe("NO_LEASE");
  });

  it("obeys nothing from a gateway that cannot prove the device secret, and says so in its status", { timeout: 15_000 }, async () => {
    const s = await setup({ gateway: { proofSecret: "b2".repeat(32) } });
    const states: string[] = [];
    s.runtime.on("state", (state) => states.push(state));
    s.runtime.start();
    await waitUntil(() => s.runtime.counters.gatewayProofFailures >= 2, "two refused welcomes (it retries with backoff)");
    expect(states).not.toContain("online");
    expect(s.runtime.lastError).toMatchObject({ codeName: "GATEWAY_PROOF_FAILED", phase: "handshake" });
    expect(s.runtime.safety.lease).toBeUndefined();
    // Nothing after the hello: no profile, no telemetry, no ack went to the stranger.
    expect(s.gateway.received.map((f) => f.envelope.body).filter((body) => body !== "deviceHello")).toEqual([]);
  });

  it("takes the real gateway's sealed frames (a control: the fixture's proof and seal agree with the adapter's)", { timeout: 15_000 }, async () => {
    const s = await setup();
    await online(s);
    await lease(s, "L1");
    expect(statusName(await command(s, { leaseId: "L1", seq: 1, axes: [{ name: "boom", value: 0.3 }] }))).toBe("APPLIED");
    expect(s.runtime.counters).toMatchObject({ refusedFrames: 0, gatewayProofFailures: 0 });
    expect(s.gateway.refused).toBe(0);
  });
});
