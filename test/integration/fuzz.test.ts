/**
 * A few thousand fuzz cases against a live node with the demo rooms (test/fuzz/): every
 * decoder a stranger can reach answers with a specific code, nothing hangs, nothing
 * crashes. `npm run fuzz -- --cases 100000` is the release run of the same harness.
 */
import "../../server/polyfills.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runFuzz, TARGETS } from "../fuzz/FuzzRun.ts";
import { startFuzzNode, type FuzzNodeProcess } from "../fuzz/fuzzNode.ts";

/** Fixed, so a failure here replays with `npm run fuzz -- --cases 3000 --seed 20261202`. */
const SEED = 20261202;

describe("fuzz: what a stranger can send", () => {
  let node: FuzzNodeProcess;
  beforeAll(async () => { node = await startFuzzNode(); }, 90_000);
  afterAll(async () => { await node?.stop(); });

  it("3,000 cases over every target: no crash, no hang, every refusal coded", async () => {
    const figures = await runFuzz(node, { cases: 3000, seed: SEED });
    expect(figures.examples).toEqual([]);
    expect({ crashes: figures.crashes, hangs: figures.hangs, uncodedErrors: figures.uncodedErrors }).toEqual({ crashes: 0, hangs: 0, uncodedErrors: 0 });
    expect(figures.cases).toBe(3000);
    for (const { target } of TARGETS) {
      const tally = figures.byTarget[target.name];
      // A target that lost its seat would pass without testing anything.
      expect(tally.cases, target.name).toBeGreaterThan(0);
      expect(tally.skipped / tally.cases, `${target.name} skipped`).toBeLessThan(0.1);
    }
  }, 300_000);
});
