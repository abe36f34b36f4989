/**
 * DeviceCameras against a fake room and a fake camera service (the real one is tested
 * against Janus in test/integration/janus-cameras.test.ts, and end to end in Chromium in
 * camera-browser.test.ts): an attached device's adapter is told its target, and told again
 * after Janus restarted; refusals (a device, an unknown device, no media server,
 * too many grants); a participant leaving ends its grants; the room's close stops the
 * adapters linked here and closes the mountpoints.
 */
import { describe, expect, it } from "vitest";
import { ErrorCode, tsunagi } from "../../../../proto/index.ts";
import { DeviceCameras } from "../../../../rooms/teleop/DeviceCameras.ts";
import { VOICE_GRANT_BURST } from "../../../../rooms/shared/RoomVoice.ts";
import { FakeClient } from "../../../fixtures/fakes/FakeClient.ts";
import { FakeDeviceLink } from "../../../fixtures/fakes/FakeDeviceLink.ts";

function setUp(options: { media?: boolean } = {}) {
  const calls: string[] = [];
  const backend = {
    up: true,
    async open(deviceId: string) { calls.push(`open ${deviceId}`); return { mountpointId: `m-${deviceId}`, rtpHost: "127.0.0.1", rtpPort: 20000 + calls.length, payloadType: 96, srtpKey: "key" }; },
    async grant(deviceId: string, sessionId: string) { calls.push(`grant ${deviceId} ${sessionId}`); return { url: "ws://127.0.0.1:1", token: "t", mountpointId: `m-${deviceId}`, pin: "p", expiresAt: 1 }; },
    async revoke(deviceId: string, sessionId: string) { calls.push(`revoke ${deviceId} ${sessionId}`); },
    async close(deviceId: string) { calls.push(`close ${deviceId}`); },
    health() { return { up: this.up, mountpoints: 0, grants: 0 }; },
  };
  const node = { backend: backend as any, generation: 0 };
  const links = new Map([["ex-1", new FakeDeviceLink("ex-1")]]);
  const sent: tsunagi.v1.IEnvelope[] = [];
  const refusals: Array<{ code: number; correlationId: unknown }> = [];
  const cameras = new DeviceCameras({
    roomId: "teleop__site", devices: ["ex-1", "drone-1"], cameras: () => (options.media === false ? undefined : node), link: (id) => links.get(id) as any,
    send: (_client, envelope) => sent.push(envelope), reject: (_client, code, _message, correlationId) => refusals.push({ code, correlationId }),
    logger: { info() {}, warn() {} },
  });
  let handler!: (client: any, envelope: tsunagi.v1.Envelope) => void;
  cameras.register((_kind, registered) => { handler = registered; });
  const watch = (role: string, deviceId: string, sessionId = "op") =>
    handler(new FakeClient(sessionId, { role }).asClient(), tsunagi.v1.Envelope.decode(tsunagi.v1.Envelope.encode({ correlationId: 3, cameraWatch: { deviceId } }).finish()));
  const settle = () => new Promise((resolve) => setTimeout(resolve, 0));
  return { cameras, node, backend, calls, link: links.get("ex-1")!, sent, refusals, watch, settle };
}

describe("DeviceCameras", () => {
  it("tells an attached device's adapter its target, and its new one after Janus restarted", async () => {
    const { cameras, node, link, settle } = setUp();
    cameras.attached("ex-1");
    await settle();
    expect(link.cameraTargets).toEqual([{ host: "127.0.0.1", port: 20001, payloadType: 96, codec: "h264", srtpKey: "key" }]);
    cameras.check();
    await settle();
    expect(link.cameraTargets).toHaveLength(1); // nothing changed
    node.generation++;
    cameras.check();
    await settle();
    expect(link.cameraTargets).toHaveLength(2);
  });

  it("grants a participant the camera; refuses a device, an unknown device, no media server and too many grants", async () => {
    const room = setUp();
    room.watch("operator", "ex-1");
    await room.settle();
    expect(room.sent[0]).toMatchObject({ correlationId: 3, cameraGrant: { deviceId: "ex-1", mountpointId: "m-ex-1", pin: "p", codec: "h264" } });
    room.watch("device", "ex-1", "dev");
    room.watch("operator", "bulldozer", "op2");
    for (let i = 0; i <= VOICE_GRANT_BURST; i++) room.watch("visitor", "ex-1", "greedy");
    await room.settle();
    room.backend.up = false;
    room.watch("operator", "ex-1", "op3");
    const none = setUp({ media: false });
    none.watch("operator", "ex-1");
    await none.settle();
    expect(room.refusals.map((r) => r.code)).toEqual([ErrorCode.FORBIDDEN, ErrorCode.DEVICE_UNKNOWN, ErrorCode.RATE_LIMITED, ErrorCode.VOICE_UNAVAILABLE]);
    expect(none.refusals.map((r) => r.code)).toEqual([ErrorCode.VOICE_UNAVAILABLE]);
  });

  it("ends a leaving participant's grants; the room's close stops the adapters linked here and closes the mountpoints", async () => {
    const { cameras, calls, link, watch, settle } = setUp();
    cameras.attached("ex-1");
    watch("operator", "ex-1");
    await settle();
    cameras.left("op");
    cameras.close();
    await settle();
    expect(calls).toEqual(["open ex-1", "grant ex-1 op", "revoke ex-1 op", "close ex-1"]);
    expect(link.cameraTargets.at(-1)).toEqual({ port: 0 });
  });
});
