/**
 * DeviceClaims: one room per machine, on this node and in the cluster's directory (a
 * FakeRoomDirectory), all or none; released on dispose; missing devices asked for.
 */
import { describe, expect, it } from "vitest";
import { ErrorCode } from "../../../../proto/index.ts";
import { DeviceClaims, MAX_DEVICES, parseDeviceList } from "../../../../rooms/teleop/DeviceClaims.ts";
import type { DeviceWanted } from "../../../../server/gateway/DeviceRequests.ts";
import { FakeRoomDirectory } from "../../../fixtures/fakes/FakeRoomDirectory.ts";

const warnings: unknown[] = [];

function claimsOf(roomId: string, directory = new FakeRoomDirectory(), request = (_wanted: DeviceWanted) => {}) {
  const owner = { roomId, regionId: "jp-tokyo", nodeId: "tokyo-1", gatewayUrl: "ws://127.0.0.1:1/device" };
  return new DeviceClaims({ owner, directory, request, releaseFailed: (error) => { warnings.push(error); } });
}

describe("DeviceClaims", () => {
  it("binds every device to the room, and refuses another room any of them (ROOM_CONFLICT), on this node and in the directory", async () => {
    const directory = new FakeRoomDirectory();
    const first = claimsOf("site-a", directory);
    await first.claim(["cl-1", "cl-2"]);
    expect([...directory.owners].map(([deviceId, owner]) => [deviceId, owner.roomId])).toEqual([["cl-1", "site-a"], ["cl-2", "site-a"]]);
    await expect(claimsOf("site-b", directory).claim(["cl-3", "cl-2"])).rejects.toMatchObject({ code: ErrorCode.ROOM_CONFLICT, message: expect.stringMatching(/on this node/) });
    // Another node's room: this node does not know it, the directory does.
    const elsewhere = new FakeRoomDirectory();
    elsewhere.owners.set("cl-9", { roomId: "site-z", regionId: "jp-osaka", nodeId: "osaka-1", gatewayUrl: "ws://osaka/device" });
    await expect(claimsOf("site-c", elsewhere).claim(["cl-8", "cl-9"])).rejects.toMatchObject({ code: ErrorCode.ROOM_CONFLICT, message: expect.stringMatching(/room "site-z" on node osaka-1/) });
    // All or none: the device claimed before the conflict is let go again.
    expect(elsewhere.owners.has("cl-8")).toBe(false);
    await claimsOf("site-d", directory).claim(["cl-8"]); // and this node forgot it too
    await first.release();
  });

  it("wraps a directory failure as INTERNAL, keeping the original error as its cause", async () => {
    const directory = new FakeRoomDirectory();
    const failure = new Error("etcd unreachable");
    directory.failing = { deviceId: "cl-12", error: failure };
    const claims = claimsOf("site-e", directory);
    const refused = await claims.claim(["cl-11", "cl-12"]).catch((error: unknown) => error);
    expect(refused).toMatchObject({ code: ErrorCode.INTERNAL, message: expect.stringMatching(/etcd unreachable/) });
    expect((refused as Error).cause).toBe(failure);
    expect(directory.releases).toEqual([["cl-11", "site-e"]]);
    directory.failing = undefined;
    await claimsOf("site-f", directory).claim(["cl-11", "cl-12"]); // nothing left held on this node
  });

  it("releases on dispose exactly what it claimed, and a release that fails is logged, not thrown", async () => {
    const directory = new FakeRoomDirectory();
    const claims = claimsOf("site-g", directory);
    await claims.claim(["cl-21", "cl-22"]);
    directory.releaseDevice = async () => { throw new Error("redis gone"); };
    const before = warnings.length;
    await claims.release();
    expect(warnings.length - before).toBe(2);
    await claims.release(); // twice is harmless: nothing is held any more
    expect(warnings.length - before).toBe(2);
    await claimsOf("site-h", new FakeRoomDirectory()).claim(["cl-21"]); // free on this node again
  });

  it("asks the region's other nodes for the devices not connected here", () => {
    const wanted: DeviceWanted[] = [];
    claimsOf("site-i", new FakeRoomDirectory(), (request) => wanted.push(request)).requestMissing(["cl-31", "cl-32"]);
    expect(wanted).toEqual([{ deviceId: "cl-31", roomId: "site-i", nodeId: "tokyo-1" }, { deviceId: "cl-32", roomId: "site-i", nodeId: "tokyo-1" }]);
  });

  it("accepts 1 to MAX_DEVICES distinct device ids, and refuses anything else WRONG_TYPE", () => {
    expect(parseDeviceList(["ex-1", "dr-1"])).toEqual(["ex-1", "dr-1"]);
    for (const bad of [undefined, "ex-1", [], ["ex 1"], ["ex-1", "ex-1"], Array.from({ length: MAX_DEVICES + 1 }, (_, i) => `d-${i}`)]) {
      expect(() => parseDeviceList(bad), JSON.stringify(bad)).toThrow(expect.objectContaining({ code: ErrorCode.WRONG_TYPE }));
    }
  });
});
