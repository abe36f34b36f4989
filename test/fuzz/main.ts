/**
 * `npm run fuzz -- --cases N [--seed S] [--only target,...]`: fuzzes every decoder a
 * stranger can reach on a live node (room envelopes and messages, raw frames, the
 * device handshake and channel, HTTP routes and matchmaking options) and prints one JSON line:
 * `{cases, crashes, hangs, uncodedErrors, seed, durationS, byTarget, examples}`.
 * Progress goes to stderr. Exit 0 when there was no crash, hang or uncoded error, 1 otherwise, 2 on bad usage.
 */
import "../../server/polyfills.ts";
import { parseArgs } from "node:util";
import { runFuzz, TARGETS } from "./FuzzRun.ts";
import { startFuzzNode } from "./fuzzNode.ts";

function usage(problem: string): never {
  process.stderr.write(`${problem}\nusage: npm run fuzz -- --cases N [--seed S] [--only ${TARGETS.map((t) => t.target.name).join(",")}]\n`);
  process.exit(2);
}

let values: Record<string, string | undefined>;
try {
  ({ values } = parseArgs({ args: process.argv.slice(2), options: { cases: { type: "string" }, seed: { type: "string" }, only: { type: "string" } }, strict: true }) as { values: Record<string, string | undefined> });
} catch (error) {
  usage((error as Error).message);
}
const cases = Number(values.cases ?? 1000);
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
if (!Number.isInteger(cases) || cases < 1) usage(`--cases must be a positive integer, got "${values.cases}"`);
if (!Number.isInteger(seed)) usage(`--seed must be an integer, got "${values.seed}"`);
const only = values.only?.split(",").map((name) => name.trim()).filter(Boolean);

process.stderr.write(`fuzz: starting a node with the demo rooms; ${cases} cases, seed ${seed}\n`);
const node = await startFuzzNode();
let exitCode = 1;
try {
  const figures = await runFuzz(node, { cases, seed, only, progress: (line) => process.stderr.write(`${line}\n`) });
  process.stdout.write(`${JSON.stringify(figures)}\n`);
  exitCode = figures.crashes || figures.hangs || figures.uncodedErrors ? 1 : 0;
} catch (error) {
  process.stderr.write(`fuzz failed: ${(error as Error).stack ?? error}\n`);
} finally {
  await node.stop();
}
process.exit(exitCode);
