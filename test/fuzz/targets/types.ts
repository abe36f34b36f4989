/**
 * The shape of a fuzz target: what it generates, and lanes (one connection or session
 * each) that send one input and judge what came back.
 */
import type fc from "fast-check";
import type { Verdict } from "../verdict.ts";

/** The live node under fuzz, as targets see it. */
export interface FuzzNode {
  httpUrl: string;
  /** `ws://…/device`: the device gateway. */
  gatewayUrl: string;
  /** A token for `role`, naming `sub`. */
  token(role: string, sub?: string): Promise<string>;
}

export interface TargetLane<Input> {
  /** Sends one input and judges the answer; throws only when the fuzzer itself failed. */
  run(input: Input): Promise<Verdict>;
  close(): Promise<void>;
}

export interface FuzzTarget<Input = any> {
  name: string;
  arbitrary: fc.Arbitrary<Input>;
  /** The input, short enough for a report line. */
  describe(input: Input): string;
  /** How many lanes make sense (distinct seats); the runner opens up to this many. */
  lanes: number;
  open(node: FuzzNode, lane: number): Promise<TargetLane<Input>>;
}
