/**
 * The session's input log, as a room's new home is sent it again: every kept envelope
 * above the number the new home applied, in order; never one the old home refused (its
 * Error reply told the application, which may send it again itself); and after a
 * failover, never a lease request (no lease survives one: its request fails instead).
 */
import { describe, expect, it } from "vitest";
import type { Room } from "@colyseus/sdk";
import { InputLog } from "../../../client-sdk/RoomFollower.ts";

function fakeRoom() {
  const sent: number[] = [];
  return { sent, room: { sendBytes: (_type: string, bytes: Uint8Array) => { sent.push(bytes[0]!); } } as unknown as Room };
}

describe("InputLog", () => {
  it("sends again what is above the new home's number, but not what the old home refused", () => {
    const log = new InputLog(2000);
    for (let seq = 1; seq <= 5; seq++) log.keep(seq, Uint8Array.of(seq), seq * 10);
    log.refused(40);
    const { sent, room } = fakeRoom();
    expect(log.resendAbove(room, 2)).toBe(2);
    expect(sent).toEqual([3, 5]);
  });

  it("after a failover, withholds lease requests and names their correlation ids", () => {
    const log = new InputLog(2000);
    log.keep(1, Uint8Array.of(1), 11);
    log.keep(2, Uint8Array.of(2), 12, false); // a lease request
    log.keep(3, Uint8Array.of(3), 0);
    const { sent, room } = fakeRoom();
    const withheld: number[] = [];
    expect(log.resendAbove(room, 0, true, (id) => withheld.push(id))).toBe(2);
    expect(sent).toEqual([1, 3]);
    expect(withheld).toEqual([12]);
  });
});
