/**
 * Runs fuzz cases against a live node: the cases are shared among the targets by
 * weight, each target's among its lanes (one connection or session each), and the lanes
 * run side by side. A crash (the node process exits) ends the run; a case no answer
 * came to within the bound is a hang; a refusal without a specific code is an uncoded
 * error. Every failure keeps its input, so it can be replayed.
 *
 * @example
 *   const figures = await runFuzz(node, { cases: 2000, seed: 42 });
 *   // { cases: 2000, crashes: 0, hangs: 0, uncodedErrors: 0, ... }
 */
import fc from "fast-check";
import type { FuzzNode, FuzzTarget, TargetLane } from "./targets/types.ts";
import { roomEnvelope, roomMessage, roomRaw } from "./targets/rooms.ts";
import { httpRequest, matchmakeOptions } from "./targets/http.ts";
import { deviceHandshake } from "./targets/gateway.ts";
import { deviceChannel } from "./targets/deviceChannel.ts";
import { ANSWER_TIMEOUT_MS, type Verdict } from "./verdict.ts";

/** Every target, with its share of the cases. */
export const TARGETS: ReadonlyArray<{ target: FuzzTarget; weight: number }> = [
  { target: roomEnvelope, weight: 4 },
  { target: roomMessage, weight: 2 },
  { target: roomRaw, weight: 1 },
  { target: httpRequest, weight: 2 },
  { target: matchmakeOptions, weight: 1 },
  { target: deviceHandshake, weight: 1 },
  { target: deviceChannel, weight: 2 },
];

export interface FuzzOptions {
  cases: number;
  seed: number;
  /** Only these targets (names); default all. */
  only?: readonly string[];
  /** Failures kept with their inputs in the figures. */
  maxExamples?: number;
  progress?: (line: string) => void;
}

export interface FuzzFigures {
  cases: number;
  crashes: number;
  hangs: number;
  uncodedErrors: number;
  /** Cases that never reached the server (see Verdict "skipped"): a large share means a target lost its seat. */
  skipped: number;
  seed: number;
  durationS: number;
  byTarget: Record<string, { cases: number; hangs: number; uncodedErrors: number; skipped: number }>;
  examples: Array<{ target: string; kind: string; detail: string; input: string }>;
}

/** The node under fuzz: what targets see, and how the runner notices it died. */
export interface LiveNode extends FuzzNode {
  /** Resolves when the node process exits. */
  exited: Promise<unknown>;
  /** The node's recent output, for a crash report. */
  output(): string;
}

/** Inputs are drawn in batches, so a 100,000-case run never holds them all. */
const BATCH = 100;
/** Every this many cases per lane, the node must answer /ping too. */
const PING_EVERY = 250;

export async function runFuzz(node: LiveNode, options: FuzzOptions): Promise<FuzzFigures> {
  const chosen = TARGETS.filter(({ target }) => !options.only?.length || options.only.includes(target.name));
  if (!chosen.length) throw new Error(`no fuzz target named ${options.only?.join(", ")}; known: ${TARGETS.map((t) => t.target.name).join(", ")}`);
  const figures: FuzzFigures = { cases: 0, crashes: 0, hangs: 0, uncodedErrors: 0, skipped: 0, seed: options.seed, durationS: 0, byTarget: {}, examples: [] };
  const started = Date.now();
  let crashed = false;
  void node.exited.then(() => { crashed = true; });

  const totalWeight = chosen.reduce((sum, t) => sum + t.weight, 0);
  const plans = chosen.map(({ target, weight }, index) => {
    const cases = index === chosen.length - 1
      ? options.cases - chosen.slice(0, -1).reduce((sum, t) => sum + Math.floor(options.cases * t.weight / totalWeight), 0)
      : Math.floor(options.cases * weight / totalWeight);
    figures.byTarget[target.name] = { cases: 0, hangs: 0, uncodedErrors: 0, skipped: 0 };
    return { target, cases, lanes: Math.max(1, Math.min(target.lanes, cases)) };
  });

  const record = (target: FuzzTarget, verdict: Verdict, input: unknown, isCase = true) => {
    const tally = figures.byTarget[target.name];
    if (isCase) { figures.cases++; tally.cases++; }
    if (verdict.kind === "ok") return;
    if (verdict.kind === "skipped") { figures.skipped++; tally.skipped++; return; }
    if (verdict.kind === "hang") { figures.hangs++; tally.hangs++; } else { figures.uncodedErrors++; tally.uncodedErrors++; }
    if (figures.examples.length < (options.maxExamples ?? 10)) {
      figures.examples.push({ target: target.name, kind: verdict.kind, detail: verdict.detail, input: target.describe(input) });
    }
  };

  const progress = setInterval(() => options.progress?.(
    `fuzz: ${figures.cases}/${options.cases} cases, ${figures.hangs} hangs, ${figures.uncodedErrors} uncoded errors, ${((Date.now() - started) / 1000).toFixed(0)} s`), 5000);
  progress.unref();

  const runLane = async (target: FuzzTarget, laneIndex: number, cases: number, laneSeed: number) => {
    const lane: TargetLane<unknown> = await target.open(node, laneIndex);
    try {
      for (let done = 0, batch = 0; done < cases && !crashed; batch++) {
        const inputs = fc.sample(target.arbitrary, { numRuns: Math.min(BATCH, cases - done), seed: laneSeed + batch * 7919 });
        for (const input of inputs) {
          if (crashed) break;
          record(target, await lane.run(input), input);
          if (++done % PING_EVERY === 0) await checkAlive(node, target, record);
        }
      }
    } finally {
      await lane.close();
    }
  };

  try {
    await Promise.all(plans.flatMap(({ target, cases, lanes }, t) => Array.from({ length: lanes }, (_, lane) => {
      const share = Math.floor(cases / lanes) + (lane < cases % lanes ? 1 : 0);
      return runLane(target, lane, share, options.seed + t * 1_000_003 + lane * 10_007);
    })));
  } finally {
    clearInterval(progress);
  }
  if (crashed) {
    figures.crashes = 1;
    figures.examples.push({ target: "node", kind: "crash", detail: node.output().slice(-2000), input: "see the examples before it" });
  }
  figures.durationS = Math.round((Date.now() - started) / 100) / 10;
  return figures;
}

/** The node still answers /ping in time; if not, that is a hang (of the cases just before). */
async function checkAlive(node: LiveNode, target: FuzzTarget, record: (target: FuzzTarget, verdict: Verdict, input: unknown, isCase: boolean) => void) {
  try {
    const response = await fetch(`${node.httpUrl}/ping`, { signal: AbortSignal.timeout(ANSWER_TIMEOUT_MS) });
    await response.text();
  } catch (error) {
    record(target, { kind: "hang", detail: `/ping unanswered: ${(error as Error).message}` }, "(liveness check)", false);
  }
}
