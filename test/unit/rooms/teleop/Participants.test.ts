/**
 * Participants: who is in the room, and delivery to them: a send to a closing socket
 * is traced, not thrown; telemetry goes out encoded once per sample, once to each, and
 * skips a backed-up participant, who gets a newer sample later.
 */
import { describe, expect, it } from "vitest";
import { tsunagi } from "../../../../proto/index.ts";
import { Participants, TELEMETRY_BACKPRESSURE_BYTES } from "../../../../rooms/teleop/Participants.ts";
import { FakeClient } from "../../../fixtures/fakes/FakeClient.ts";
import { deviceWithHolder } from "./deviceSetup.ts";

function setup() {
  const failures: Array<{ error: unknown; sessionId: string }> = [];
  let dropped = 0;
  const participants = new Participants({
    // The room's sendEnvelope frames and enqueues; an empty frame stands for it here.
    send: (client) => (client as unknown as FakeClient).enqueueRaw(new Uint8Array(0)),
    sendFailed: (error, sessionId) => failures.push({ error, sessionId }),
    telemetryDropped: () => { dropped++; },
  });
  const alice = new FakeClient("alice-1");
  const bob = new FakeClient("bob-1");
  participants.joined(alice.asClient(), "operator", "alice");
  participants.joined(bob.asClient(), "visitor", "bob");
  return { participants, failures, alice, bob, dropped: () => dropped };
}

describe("Participants", () => {
  it("knows each session's role and identity, and follows a reconnected session to its new socket", () => {
    const { participants, alice } = setup();
    expect(participants.get("alice-1")).toMatchObject({ role: "operator", subject: "alice" });
    const again = new FakeClient("alice-1");
    participants.reconnected(again.asClient());
    expect(participants.get("alice-1")?.client).toBe(again.asClient());
    expect(participants.get("alice-1")?.client).not.toBe(alice.asClient());
    participants.left("alice-1");
    expect(participants.has("alice-1")).toBe(false);
  });

  it("traces a send to a closing socket instead of throwing", () => {
    const { participants, failures, alice } = setup();
    alice.closing = new Error("socket closing");
    expect(() => participants.send(alice.asClient(), { correlationId: 0 })).not.toThrow();
    expect(failures).toEqual([{ error: alice.closing, sessionId: "alice-1" }]);
  });

  it("sends each device's newest telemetry once to each participant, encoded once per sample", () => {
    const { participants, alice, bob } = setup();
    const { slot } = deviceWithHolder();
    let encodings = 0;
    const encode = () => new Uint8Array([++encodings]);
    participants.fanOutTelemetry([slot], encode);
    expect(encodings).toBe(0); // nothing sampled yet
    slot.newTelemetry(tsunagi.v1.Telemetry.create({ deviceId: "ex-1", sampledAtMs: 1 }));
    participants.fanOutTelemetry([slot], encode);
    participants.fanOutTelemetry([slot], encode); // nothing new: nothing sent
    expect(encodings).toBe(1);
    expect([alice.frames, bob.frames]).toEqual([[new Uint8Array([1])], [new Uint8Array([1])]]);
  });

  it("skips a backed-up participant, counted, and sends it the newest sample once it drains", () => {
    const { participants, alice, bob, dropped } = setup();
    const { slot } = deviceWithHolder();
    const encode = (telemetry: tsunagi.v1.Telemetry) => new Uint8Array([telemetry.sampledAtMs]);
    bob.ref.bufferedAmount = TELEMETRY_BACKPRESSURE_BYTES + 1;
    slot.newTelemetry(tsunagi.v1.Telemetry.create({ deviceId: "ex-1", sampledAtMs: 1 }));
    participants.fanOutTelemetry([slot], encode);
    slot.newTelemetry(tsunagi.v1.Telemetry.create({ deviceId: "ex-1", sampledAtMs: 2 }));
    participants.fanOutTelemetry([slot], encode);
    expect(dropped()).toBe(2);
    bob.ref.bufferedAmount = TELEMETRY_BACKPRESSURE_BYTES;
    participants.fanOutTelemetry([slot], encode);
    expect(alice.frames).toEqual([new Uint8Array([1]), new Uint8Array([2])]);
    expect(bob.frames).toEqual([new Uint8Array([2])]);
  });
});
