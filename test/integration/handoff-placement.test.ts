/**
 * A room follows its participants: clients whose SDKs measure another region clearly
 * nearer (RegionRtts) take their room there once that has held for the placement
 * window, and it then stays (no flapping). Each client's probe is told its round trips
 * here, as a client in Osaka would measure them.
 */
import "../../server/polyfills.ts";
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { startRegions, type RegionsHarness } from "../fixtures/regions.ts";
import { waitFor } from "../fixtures/processes.ts";
import { testToken } from "../fixtures/tokens.ts";
import { RegionProbe, type HandoffEvent, type RoomSession } from "../../client-sdk/index.ts";

let harness: RegionsHarness;

beforeAll(async () => {
  harness = await startRegions({
    regions: ["jp-tokyo", "jp-osaka"],
    nodeArgs: ["--handoff-placement-check-ms", "200", "--handoff-placement-window-ms", "800", "--handoff-cooldown-ms", "60000"],
  });
}, 90_000);
afterAll(async () => { await harness?.stop(); });

describe("placement by the participants' round trips", () => {
  it("moves a room to the region its participants are clearly nearer, after the window, and keeps it there", async () => {
    const city = await harness.locate("jp-osaka");
    const measured: Record<string, number> = { "jp-tokyo": 20, "jp-osaka": 3 };
    const sessions: RoomSession[] = [];
    for (let i = 0; i < 3; i++) {
      const probe = new RegionProbe({ regions: city.regions, measure: async (region) => measured[region.id] });
      const client = city.client(await testToken(harness.clusterName, "host", `placed-${i}`), { probe });
      // Opened in Tokyo on purpose (its creator's hints), then joined by people near Osaka.
      sessions.push(await client.joinOrCreate("session", { roomId: "wandering-1", rttHints: { "jp-tokyo": 1, "jp-osaka": 10 } }));
    }
    const moves: HandoffEvent[] = [];
    for (const session of sessions) session.on("handoff", (event) => moves.push(event));
    await waitFor(() => moves.length === sessions.length, 20_000, "every session following the room to Osaka");
    expect(moves.every((event) => event.reason === "participants" && event.fromRegionId === "jp-tokyo" && event.toRegionId === "jp-osaka")).toBe(true);
    // It stays: the participants are where it is now.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect(moves).toHaveLength(sessions.length);
    const osaka = harness.region("jp-osaka").nodes[0];
    const history = await (await fetch(`${osaka.httpUrl}/rooms/${sessions[0].roomId}/handoffs`, { headers: { authorization: `Bearer ${await testToken(harness.clusterName, "admin")}` } })).json();
    expect(history.handoffs.map((record: { reason: string; outcome: string }) => [record.reason, record.outcome])).toEqual([["participants", "complete"]]);
    await Promise.all(sessions.map((session) => session.leave()));
  });

  it("refuses a malformed RegionRtts with a coded error, and the room goes on", async () => {
    const city = await harness.locate("jp-tokyo");
    const session = await city.client(await testToken(harness.clusterName, "host", "bad-rtts")).joinOrCreate("session", { roomId: "bad-rtts-1" });
    const errors: number[] = [];
    session.on("error", (error) => errors.push(error.code));
    session.sendEnvelope({ regionRtts: { rttMs: { "no spaces allowed": 3 } } });
    session.sendEnvelope({ regionRtts: { rttMs: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`r${i}`, 1])) } });
    await waitFor(() => errors.length > 0, 5000, "the refusal");
    expect(errors[0]).toBe(4402);
    expect((await session.request({ ping: { clientTimeMs: 1 } })).body).toBe("pong");
    await session.leave();
  });
});
