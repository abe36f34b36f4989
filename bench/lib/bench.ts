import type { z } from "zod";

/**
 * A benchmark runnable as `npm run bench -- <name> [--flag value ...]`. Every key of
 * `options` is a `--key <value>` flag; the schema validates, coerces and defaults them.
 */
export interface BenchDefinition<Options extends z.ZodObject = z.ZodObject> {
  description: string;
  options: Options;
  /** How long the whole run may take before it is aborted as hung. */
  timeoutSeconds(options: z.output<Options>): number;
  /** Runs the bench; resolves with the figures printed as its one JSON line. */
  run(options: z.output<Options>): Promise<object>;
}

/** Identity, for type inference of `run`'s options from the schema. */
export function defineBench<Options extends z.ZodObject>(definition: BenchDefinition<Options>): BenchDefinition<Options> {
  return definition;
}
