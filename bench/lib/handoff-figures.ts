/**
 * The handoff bench's figures from what the visitors stamped and what the admin route
 * answered: the pause per visitor per move (its old home's last frame to its new home's
 * first), where that pause went, and the server's own phases.
 *
 * Where the pause goes, per visitor and move, from the visitor's stamps and the source
 * node's transition stamps (`at`, the node's Date.now(): whole milliseconds, on the same
 * machine's clock as the visitors' wallClockMs(), so comparable to about a millisecond):
 *   preconnect           the RoomHandoff at the client → its seat in the new home taken (a WebSocket and a
 *                        Colyseus join through the city's proxy), made during Init, before the Freeze: not
 *                        part of the pause unless it ends after the Switch
 *   joinedBeforeFreeze   the seat taken → Freeze (negative: the client joined after the Freeze)
 *   lastFrameToFreeze    the old home's last frame → Freeze (it sends each visitor its news as it freezes)
 *   freezeToSwitched     Freeze → the Switch done on the server (Transfer: the room as it is now; Switch)
 *   switchedToResumed    → SessionResumed at the client (the new home resumes its waiting clients one by one)
 *   resumedToFirstFrame  → the new home's first frame (the whole view, sent with SessionResumed: about 0)
 */
import type { HandoffRecord } from "../../server/handoff/types.ts";
import type { HandoffLoadResults, HandoffMarks } from "./handoff-protocol.ts";
import { mergedPercentiles, percentile, round } from "./measure.ts";

/**
 * min, p50, p99 and max of some samples, ms (NaN when there are none). The min of a step
 * is its cost with no queueing: the first visitor served, on a machine with a core free.
 */
export interface Spread { min: number; p50: number; p99: number; max: number; n: number }

export function spread(values: number[]): Spread {
  const sorted = Float64Array.from(values.filter(Number.isFinite)).sort();
  const at = (i: number) => round(sorted.length ? sorted[i]! : Number.NaN);
  return { min: at(0), p50: round(percentile(sorted, 50)), p99: round(percentile(sorted, 99)), max: at(sorted.length - 1), n: sorted.length };
}

const stepNames = ["preconnect", "joinedBeforeFreeze", "lastFrameToFreeze", "freezeToSwitched", "switchedToResumed", "resumedToFirstFrame"] as const;
export type PauseBreakdown = Record<(typeof stepNames)[number], Spread>;

export interface PerHandoff {
  from: string;
  to: string;
  /** Init → Complete, ms (the admin record). */
  ms: number;
  /** Each server phase, ms: Freeze → Transfer, Transfer → Switch, Switch → Redirect, Redirect → Complete. */
  phasesMs: { freeze: number; transfer: number; switch: number; redirect: number };
  sessions: number;
  carriedInputs: number;
  pauseP50Ms: number;
  pauseP99Ms: number;
  pauseMaxMs: number;
  /** Visitors with both ends of the pause stamped for this move. */
  samples: number;
}

export interface PauseFigures {
  pause: Spread;
  /** The SDK's own figure: RoomHandoff → SessionResumed (HandoffEvent.pauseMs). */
  sdkPause: Spread;
  breakdown: PauseBreakdown;
  perHandoff: PerHandoff[];
  /** Gaps between consecutive frames from one home, outside the moves. */
  frameGapP50Ms: number;
  frameGapP99Ms: number;
  resent: number;
}

function stampOf(record: HandoffRecord, state: string): { at: number; ms: number } {
  const transition = record.transitions.find((t) => t.state === state);
  if (!transition) throw new Error(`handoff ${record.id} has no ${state} transition: ${JSON.stringify(record.transitions)}`);
  return transition;
}

/** Init → Complete of a record, ms. */
export function handoffMs(record: HandoffRecord): number {
  return record.transitions.at(-1)!.ms;
}

export function pauseFigures(records: HandoffRecord[], load: HandoffLoadResults): PauseFigures {
  const all: number[] = [];
  const sdk: number[] = [];
  const steps: Record<(typeof stepNames)[number], number[]> = Object.fromEntries(stepNames.map((name) => [name, []])) as never;
  let resent = 0;
  const perHandoff = records.map((record, k) => {
    const freeze = stampOf(record, "freeze");
    const transfer = stampOf(record, "transfer");
    const switched = stampOf(record, "switch");
    const redirect = stampOf(record, "redirect");
    const complete = stampOf(record, "complete");
    const pauses: number[] = [];
    for (const visitorMarks of load.marks) {
      const marks: HandoffMarks | undefined = visitorMarks[k];
      if (!marks) continue;
      resent += marks.resent ?? 0;
      if (marks.sdkPauseMs !== undefined) sdk.push(marks.sdkPauseMs);
      if (marks.lastSource === undefined || marks.firstTarget === undefined) continue;
      pauses.push(marks.firstTarget - marks.lastSource);
      if (marks.received !== undefined && marks.joined !== undefined) steps.preconnect.push(marks.joined - marks.received);
      if (marks.joined !== undefined) steps.joinedBeforeFreeze.push(freeze.at - marks.joined);
      steps.lastFrameToFreeze.push(freeze.at - marks.lastSource);
      steps.freezeToSwitched.push(redirect.ms - freeze.ms);
      if (marks.resumed !== undefined) steps.switchedToResumed.push(marks.resumed - redirect.at);
      if (marks.resumed !== undefined) steps.resumedToFirstFrame.push(marks.firstTarget - marks.resumed);
    }
    all.push(...pauses);
    const own = spread(pauses);
    return {
      from: record.from.regionId, to: record.to.regionId, ms: handoffMs(record),
      phasesMs: {
        freeze: round(transfer.ms - freeze.ms, 1), transfer: round(switched.ms - transfer.ms, 1),
        switch: round(redirect.ms - switched.ms, 1), redirect: round(complete.ms - redirect.ms, 1),
      },
      sessions: record.sessions, carriedInputs: record.carriedInputs,
      pauseP50Ms: own.p50, pauseP99Ms: own.p99, pauseMaxMs: own.max, samples: own.n,
    };
  });
  const [gapP50, gapP99] = mergedPercentiles([load.frameGaps], [50, 99]) as [number, number];
  return {
    pause: spread(all), sdkPause: spread(sdk),
    breakdown: Object.fromEntries(stepNames.map((name) => [name, spread(steps[name])])) as PauseBreakdown,
    perHandoff, frameGapP50Ms: round(gapP50), frameGapP99Ms: round(gapP99), resent,
  };
}
