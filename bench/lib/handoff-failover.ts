/**
 * The handoff bench's kill phase (failover, DESIGN.md "Performance targets": a lost node
 * detected in ≤ 1 s; after `kill -9` of a region's nodes, rooms back in ≤ 3 s, losing
 * ≤ 250 ms of state). It kills the hall's node, not a whole region: the region-loss path
 * (the replica region restores) is test/integration/failover.test.ts's.
 *
 * Run after the handoffs, on the same harness (two nodes a region, so a node of the
 * hall's region is left to restore it) and the same walking visitors. Each of `kills`
 * rounds: the visitors walk `intervalMs`; the node hosting the hall is SIGKILLed
 * (`node(id).kill()`; its region's Redis stays); the cluster restores the hall from its
 * newest snapshot on another node (docs/regions.md, "Failover"), and every visitor's
 * session finds it there by itself (its `moved` event says "failover"); once every
 * visitor is back the walk stops until its last moves are acknowledged; the killed node
 * is started again (`harness.restart`, on fresh ports the visitors' load is told of),
 * where the next round's restore may go.
 *
 * Figures per round (`kills`), on one clock (the nodes' Date.now() stamps beside the
 * bench's wallClockMs(), as in handoff-figures.ts):
 * - detectMs: SIGKILL → the restoring node saw the loss (its failover record's detectedAt);
 * - rtoMs: SIGKILL → each visitor's first frame from the hall's new home (worst visitor),
 *   the client's view (clientMs: its steps, median and worst); rtoServerMs: SIGKILL → the
 *   restored hall live (the record's complete), the server's;
 * - rpoMs: SIGKILL − when the snapshot the hall came back from was taken: what the room
 *   did in that window is lost, but for the moves the visitors send again;
 * - lost: moves still unacknowledged once the walk stopped after the round, plus
 *   numbered inputs the surviving nodes never received (tsunagi_room_input_gaps_total):
 *   the SDK sends again what the restored hall lacks, so 0; resent: how many it sent.
 * The bench's detectMs, rtoMs, rtoServerMs and rpoMs are the worst round's; its
 * failoverLost is every round's lost.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { LocatedClient, RegionsHarness } from "../../test/fixtures/regions.ts";
import type { NodeProcess } from "../../test/fixtures/processes.ts";
import type { HandoffRecord } from "../../server/handoff/types.ts";
import type { BenchChild } from "./child-process.ts";
import { spread } from "./handoff-figures.ts";
import { followTimeoutMs, loadLagWarnMs, mergeResults, updateRoutes, waitUntilFollowed } from "./handoff-loads.ts";
import type { HandoffLoadResults, HandoffLoadSettled, HandoffMarks } from "./handoff-protocol.ts";
import { handoffHistory } from "./handoff-setup.ts";
import { inputCounters } from "../../test/fixtures/handoffs.ts";
import { log, round, wallClockMs } from "./measure.ts";

/** The design's failover targets, ms (printed beside the figures, never asserted). */
export const failoverTargets = { detectMs: 1000, rtoMs: 3000, rpoMs: 250 } as const;

export interface KillFigures {
  /** The node SIGKILLed (the hall's home), and the node and region the hall came back on. */
  killed: string;
  restoredOn: string | null;
  restoredIn: string | null;
  detectMs: number | null;
  rtoMs: number | null;
  rtoServerMs: number | null;
  rpoMs: number | null;
  /** Visitors whose session found the restored hall and got its first frame. */
  visitorsBack: number;
  lost: number;
  resent: number;
  /**
   * The visitors' way back, SIGKILL → each step, ms (median and worst visitor): `seat`, its
   * seat in the restored hall answered (POST /sessions/resume; the session takes it);
   * `handoffEvent`, the SDK's `handoff` event (resumed there, inputs sent again);
   * `firstFrame`, the restored hall's first frame (its max is rtoMs).
   */
  clientMs: Record<"seat" | "handoffEvent" | "firstFrame", { p50: number; max: number }>;
  /** The visitor load's event-loop delay p99 over the round, ms: part of every step it stamps (its clients' requests wait for it too). */
  loadEventLoopDelayP99Ms: number;
}

export interface FailoverFigures {
  /** The worst round's. */
  detectMs: number | null;
  rtoMs: number | null;
  rtoServerMs: number | null;
  rpoMs: number | null;
  /** Every round's lost moves. */
  failoverLost: number;
  /** "not run" with --kills 0; "failed" when a round's hall did not come back (the rounds after it are not run). */
  failover: "measured" | "not run" | "failed";
  kills: KillFigures[];
}

export interface FailoverSetup {
  harness: RegionsHarness;
  /** The visitors' city (its proxies front every node, a restarted one too). */
  city: LocatedClient;
  loads: BenchChild[];
  roomId: string;
  /** The node hosting the hall now. */
  owner: string;
  /** Moves of the hall every visitor has followed so far (the handoffs). */
  moves: number;
  kills: number;
  /** How long the visitors walk before each kill, ms. */
  intervalMs: number;
  warn: (message: string) => void;
}

/** How long a restored hall's failover record may take to show in its history. */
const recordTimeoutMs = 20_000;

/** The kill phase: `kills` rounds, each SIGKILLing the hall's node (see the file's comment). */
export async function measureFailover(setup: FailoverSetup): Promise<FailoverFigures> {
  const kills: KillFigures[] = [];
  if (setup.kills === 0) return { detectMs: null, rtoMs: null, rtoServerMs: null, rpoMs: null, failoverLost: 0, failover: "not run", kills };
  let { owner, moves } = setup;
  for (let k = 0; k < setup.kills; k++) {
    const figures = await killOnce(setup, owner, moves, `kill ${k + 1}/${setup.kills}`);
    kills.push(figures);
    if (!figures.restoredOn) break;
    owner = figures.restoredOn;
    moves++;
    if (k + 1 < setup.kills) {
      const startedAt = performance.now();
      await setup.harness.restart(figures.killed);
      await updateRoutes(setup.loads, setup.harness, setup.city);
      log(`restarted ${figures.killed} in ${((performance.now() - startedAt) / 1000).toFixed(1)} s`);
    }
  }
  const worst = (key: "detectMs" | "rtoMs" | "rtoServerMs" | "rpoMs") => {
    const values = kills.map((figures) => figures[key]);
    return values.every((value): value is number => value !== null) ? Math.max(...values) : null;
  };
  const failed = kills.length < setup.kills || kills.some((figures) => !figures.restoredOn);
  return {
    detectMs: worst("detectMs"), rtoMs: worst("rtoMs"), rtoServerMs: worst("rtoServerMs"), rpoMs: worst("rpoMs"),
    failoverLost: kills.reduce((sum, figures) => sum + figures.lost, 0), failover: failed ? "failed" : "measured", kills,
  };
}

/** Whether the failover figures meet failoverTargets (true when no kill was run). */
export function failoverMet(figures: FailoverFigures): boolean {
  if (figures.failover === "not run") return true;
  return figures.failover === "measured" && figures.failoverLost === 0
    && (Object.keys(failoverTargets) as Array<keyof typeof failoverTargets>).every((key) => figures[key] !== null && figures[key] <= failoverTargets[key]);
}

/** One round: walk, SIGKILL the hall's node, wait for every visitor back, stop the walk and count what was lost. */
async function killOnce(setup: FailoverSetup, owner: string, moves: number, what: string): Promise<KillFigures> {
  const { harness, loads, warn } = setup;
  await Promise.all(loads.map((load) => load.call("go")));
  await sleep(setup.intervalMs);
  const survivors = harness.nodes.filter((node) => node.nodeId !== owner && running(node));
  const before = await inputCounters(survivors);

  const killedAt = wallClockMs();
  await harness.node(owner).kill();
  const followedMs = await waitUntilFollowed(loads, moves + 1, followTimeoutMs);
  if (followedMs === undefined) warn(`${what}: not every visitor found the hall again within ${followTimeoutMs} ms of ${owner}'s SIGKILL`);
  const record = await failoverRecord(harness, survivors, setup.roomId, owner);
  if (!record) warn(`${what}: no failover record of the hall from ${owner} within ${recordTimeoutMs} ms`);

  const settled = await Promise.all(loads.map((load) => load.call<HandoffLoadSettled>("settle")));
  const after = await inputCounters(survivors);
  const results = mergeResults(await Promise.all(loads.map((load) => load.call<HandoffLoadResults>("results"))));

  // Each visitor's move of this round: the failover after this SIGKILL (earlier rounds' came before it).
  const back = results.marks.map((marks) => marks.find((m) => m.reason === "failover" && (m.resumed ?? 0) >= killedAt))
    .filter((marks): marks is HandoffMarks => marks?.firstTarget !== undefined);
  const sinceKill = (key: "received" | "resumed" | "firstTarget") => {
    const { p50, max } = spread(back.map((marks) => (marks[key] ?? Number.NaN) - killedAt));
    return { p50, max };
  };
  const clientMs = { seat: sinceKill("received"), handoffEvent: sinceKill("resumed"), firstFrame: sinceKill("firstTarget") };
  const unackedMoves = settled.reduce((sum, s) => sum + s.unackedMoves, 0);
  const gaps = after.gaps - before.gaps;
  const stamp = (state: string) => record?.transitions.find((t) => t.state === state)?.at;
  const complete = stamp("complete");
  const figures: KillFigures = {
    killed: owner, restoredOn: record?.to.nodeId ?? null, restoredIn: record?.to.regionId ?? null,
    detectMs: record?.failover ? round(record.failover.detectedAt - killedAt) : null,
    rtoMs: back.length ? clientMs.firstFrame.max : null,
    rtoServerMs: complete !== undefined ? round(complete - killedAt) : null,
    rpoMs: record?.failover ? round(killedAt - record.failover.snapshotTakenAt) : null,
    visitorsBack: back.length, lost: unackedMoves + gaps,
    resent: back.reduce((sum, marks) => sum + (marks.resent ?? 0), 0), clientMs,
    loadEventLoopDelayP99Ms: round(results.eventLoopDelayP99Ms),
  };
  const alive = results.moved.length - results.sessionsLost;
  if (back.length < alive) warn(`${what}: ${alive - back.length} of ${alive} live visitors got no frame from the restored hall`);
  if (unackedMoves) warn(`${what}: ${unackedMoves} moves still unacknowledged once the walk stopped`);
  if (gaps) warn(`${what}: the surviving nodes counted ${gaps} numbered inputs never received`);
  if (results.eventLoopDelayP99Ms > loadLagWarnMs) warn(`${what}: the visitor load's event loop lagged ${figures.loadEventLoopDelayP99Ms} ms (p99): part of every step it stamps, and of its sessions' way back`);
  log(`${what}: ${owner} SIGKILLed; the hall back on ${figures.restoredOn ?? "NO node"} (${figures.restoredIn ?? "-"}): `
    + `loss seen +${figures.detectMs} ms, live +${figures.rtoServerMs} ms; visitors' seats answered by +${clientMs.seat.max} ms (p50 +${clientMs.seat.p50}), `
    + `their first frame by +${figures.rtoMs} ms (p50 +${clientMs.firstFrame.p50}); `
    + `snapshot ${figures.rpoMs} ms older than the kill; ${figures.visitorsBack} visitors back, ${figures.resent} moves sent again, ${figures.lost} lost`);
  return figures;
}

function running(node: NodeProcess): boolean {
  return node.child.exitCode === null && node.child.signalCode === null;
}

/**
 * The failover record of the hall restored after `killed` was lost: the last of its
 * history (asked of the survivors; one that does not host it forwards the question),
 * polled for up to recordTimeoutMs.
 */
async function failoverRecord(harness: RegionsHarness, survivors: NodeProcess[], roomId: string, killed: string): Promise<HandoffRecord | undefined> {
  const deadline = performance.now() + recordTimeoutMs;
  for (let i = 0; performance.now() < deadline; i++) {
    const asked = survivors[i % survivors.length]!;
    const last = (await handoffHistory(asked, roomId).catch((): HandoffRecord[] => [])).at(-1);
    if (last?.reason === "failover" && last.from.nodeId === killed && last.outcome === "complete") return last;
    await sleep(100);
  }
  return undefined;
}
