import { describe, it, expect } from "vitest";
import { MAX_RTT_MS, MAX_RTT_REGIONS, regionRttsOf, regionRttsProblem } from "../../../proto/regionRtts.ts";

describe("RegionRtts", () => {
  it("the SDK sends what the room accepts: whole ms, capped, valid region ids, at most the limit", () => {
    const measured = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`r${i}`, i + 0.6]));
    const sent = regionRttsOf({ ...measured, "Not A Region": 3, "jp-far": 1e9, "jp-nan": Number.NaN })!;
    expect(Object.keys(sent)).toHaveLength(MAX_RTT_REGIONS);
    expect(sent.r0).toBe(1);
    expect(regionRttsProblem(sent)).toBeUndefined();
    expect(regionRttsOf({ "jp-far": 1e9 })).toEqual({ "jp-far": MAX_RTT_MS });
    expect(regionRttsOf({})).toBeUndefined();
  });

  it("the room names what is wrong", () => {
    expect(regionRttsProblem({})).toMatch(/1 to 16 regions/);
    expect(regionRttsProblem({ "no spaces": 1 })).toMatch(/region id/);
    expect(regionRttsProblem({ "jp-tokyo": MAX_RTT_MS + 1 })).toMatch(/0\.\.60000/);
  });
});
