/**
 * Region topology: the known regions and the round-trip times between them
 * (the `regions.json` format). Used to pick a fallback region when a client sent no RTT
 * hints, or its nearest region has no capacity.
 */
import { readFileSync } from "node:fs";
import { z } from "zod";

const topologySchema = z.object({
  regions: z.array(z.object({ id: z.string().min(1), name: z.string().optional(), lat: z.number().optional(), lon: z.number().optional() })).min(1),
  rttMs: z.record(z.string(), z.record(z.string(), z.number().nonnegative())).default({}),
  clientAccessRttMs: z.object({ sameCity: z.number().nonnegative() }).partial().passthrough().optional(),
});

export class RegionTopology {
  /** Symmetric RTT table, filled from the file's upper-triangle entries. */
  private readonly rtt = new Map<string, number>();

  constructor(readonly regionIds: string[], rttMs: Record<string, Record<string, number>> = {}) {
    for (const [a, row] of Object.entries(rttMs)) {
      for (const [b, ms] of Object.entries(row)) {
        this.rtt.set(`${a}|${b}`, ms);
        this.rtt.set(`${b}|${a}`, ms);
      }
    }
  }

  static fromFile(path: string): RegionTopology {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(path, "utf8"));
    } catch (error) {
      throw new Error(`region topology ${path}: ${(error as Error).message}`);
    }
    const parsed = topologySchema.safeParse(raw);
    if (!parsed.success) {
      throw new Error(`region topology ${path}: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
    }
    return new RegionTopology(parsed.data.regions.map((r) => r.id), parsed.data.rttMs);
  }

  /** RTT between two regions; 0 for the same region, Infinity when unknown. */
  rttBetween(a: string, b: string): number {
    if (a === b) return 0;
    return this.rtt.get(`${a}|${b}`) ?? Number.POSITIVE_INFINITY;
  }
}
