/**
 * An expo hall of 200 visitors moves from jp-tokyo to jp-osaka, through the delay
 * proxies, while every visitor keeps walking: the same room id, visitor ids and session
 * ids; not one numbered input lost (no gap in any session's sequence, on either node) or
 * applied twice; every visitor's own last move applied; and every visitor's view, once
 * the walking stops, equal to where everyone really is.
 */
import "../../server/polyfills.ts";
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { startRegions, type RegionsHarness } from "../fixtures/regions.ts";
import { waitFor, type NodeProcess } from "../fixtures/processes.ts";
import { testToken } from "../fixtures/tokens.ts";
import { openHall } from "../fixtures/expo.ts";
import { ExpoSession } from "../../client-sdk/ExpoSession.ts";
import type { HandoffEvent } from "../../client-sdk/index.ts";

const VISITORS = 200;
const MOVES = 15;
const MOVE_MS = 200;
const hallId = "moving-hall";
let harness: RegionsHarness;

beforeAll(async () => {
  harness = await startRegions({ regions: ["jp-tokyo", "jp-osaka"], nodeArgs: ["--limits-max-matchmake-per-second", "1000"] });
}, 90_000);
afterAll(async () => { await harness?.stop(); });

async function metric(node: NodeProcess, name: string): Promise<number> {
  const text = await (await fetch(`${node.httpUrl}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(" ")[1]) : 0;
}

/** Where visitor `i` stands after its `k`-th move: its own cell of a grid, a little further each move. */
function spot(i: number, k: number) {
  return { x: 5 + (i % 20) * 4.5 + k * 0.05, y: 5 + Math.floor(i / 20) * 5 + k * 0.05 };
}

describe("an expo hall moves between regions while its visitors walk", () => {
  it("loses and repeats no input, keeps every id, and leaves every view true", async () => {
    const tokyo = harness.region("jp-tokyo").nodes[0];
    const osaka = harness.region("jp-osaka").nodes[0];
    const opened = await openHall(tokyo, {
      hallId, name: "Moving hall", width: 100, height: 60, spawn: { x: 50, y: 2 },
      booths: [{ id: "acme", name: "ACME", exhibitor: "ACME Inc.", area: { x: 10, y: 40, w: 10, h: 10 } }],
      areas: [],
    });
    expect(opened.status, JSON.stringify(opened.body)).toBe(201);

    const city = await harness.locate("jp-tokyo");
    const visitors: ExpoSession[] = [];
    for (let batch = 0; batch < VISITORS; batch += 25) {
      visitors.push(...await Promise.all(Array.from({ length: Math.min(25, VISITORS - batch) }, async (_, j) => {
        const client = city.client(await testToken(harness.clusterName, "visitor", `walker-${batch + j}`));
        return ExpoSession.join(client, hallId, { name: `walker ${batch + j}` });
      })));
    }
    const ids = visitors.map((v) => ({ visitorId: v.visitorId, roomId: v.roomId }));
    const gapsBefore = (await metric(tokyo, "tsunagi_room_input_gaps_total")) + (await metric(osaka, "tsunagi_room_input_gaps_total"));
    const moved = visitors.map((v) => new Promise<HandoffEvent>((resolve) => v.on("moved", resolve)));

    // Everyone walks MOVES steps; the hall moves a third of the way in.
    const walking = visitors.map(async (visitor, i) => {
      for (let k = 1; k <= MOVES; k++) {
        const { x, y } = spot(i, k);
        visitor.move(x, y);
        await new Promise((resolve) => setTimeout(resolve, MOVE_MS));
      }
    });
    await new Promise((resolve) => setTimeout(resolve, (MOVES / 3) * MOVE_MS));
    const response = await fetch(`${tokyo.httpUrl}/rooms/${hallId}/handoff?to=jp-osaka`, {
      method: "POST", headers: { authorization: `Bearer ${await testToken(harness.clusterName, "admin")}` },
    });
    const record = await response.json();
    expect(response.status, JSON.stringify(record)).toBe(200);
    expect(record).toMatchObject({ outcome: "complete", sessions: VISITORS, to: { regionId: "jp-osaka" } });
    await Promise.all(walking);
    const events = await Promise.all(moved);
    expect(events.filter((e) => e.toRegionId !== "jp-osaka" || e.fromRegionId !== "jp-tokyo")).toEqual([]);

    // Same ids; every visitor's last move applied (its own ack), none lost on the way.
    expect(visitors.map((v) => ({ visitorId: v.visitorId, roomId: v.roomId }))).toEqual(ids);
    await waitFor(() => visitors.every((v) => v.ackSeq === MOVES), 15_000, "every visitor's last move acknowledged");
    const gaps = (await metric(tokyo, "tsunagi_room_input_gaps_total")) + (await metric(osaka, "tsunagi_room_input_gaps_total")) - gapsBefore;
    expect(gaps).toBe(0);

    // Every view true: each neighbour where that visitor really ended, and seen both ways.
    const finalOf = new Map(visitors.map((v, i) => [v.visitorId, spot(i, MOVES)]));
    // (A visitor's last move reaches its neighbours a tick or two after its own frame: wait for both sides.)
    const byId = new Map(visitors.map((v) => [v.visitorId, v]));
    await waitFor(() => visitors.every((v) => [...v.neighbours.values()].every((n) => n.seq === MOVES && byId.get(n.visitorId)?.neighbours.has(v.visitorId))), 15_000, "every neighbour at its last move, seen both ways");
    for (const visitor of visitors) {
      expect(visitor.neighbours.size).toBeGreaterThan(0);
      for (const neighbour of visitor.neighbours.values()) {
        const truth = finalOf.get(neighbour.visitorId)!;
        expect(neighbour.x).toBeCloseTo(truth.x, 1);
        expect(neighbour.y).toBeCloseTo(truth.y, 1);
        const other = visitors.find((v) => v.visitorId === neighbour.visitorId)!;
        expect(other.neighbours.has(visitor.visitorId)).toBe(true);
      }
    }
    const duplicates = await metric(osaka, "tsunagi_room_duplicate_inputs_total");
    console.log(JSON.stringify({ target: record.target, transitions: record.transitions.map((t: { state: string; ms: number }) => `${t.state}@${t.ms}`).join(" "), handoffMs: record.transitions.at(-1).ms, carriedInputs: record.carriedInputs, duplicatesDropped: duplicates, resent: events.reduce((n, e) => n + e.resent, 0), pauseMsMax: Math.max(...events.map((e) => e.pauseMs)) }));
    await Promise.all(visitors.map((v) => v.leave().catch(() => {})));
  }, 120_000);
});
