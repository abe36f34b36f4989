import { describe, it, expect } from "vitest";
import { PlacementPolicy } from "../../../../server/handoff/PlacementPolicy.ts";

const options = { windowMs: 1000, minGainMs: 5, minGainRatio: 0.2, cooldownMs: 10_000 };

describe("PlacementPolicy", () => {
  it("prefers a region only by a clear margin, over the participants that measured both", () => {
    const policy = new PlacementPolicy(options);
    const nearOsaka = { "jp-tokyo": 11, "jp-osaka": 3 };
    expect(policy.preferred([nearOsaka, nearOsaka], "jp-tokyo")).toBe("jp-osaka");
    // 2 ms better is no reason to move; nor 4 ms out of 100.
    expect(policy.preferred([{ "jp-tokyo": 5, "jp-osaka": 3 }], "jp-tokyo")).toBeUndefined();
    expect(policy.preferred([{ "jp-tokyo": 100, "jp-osaka": 96 }], "jp-tokyo")).toBeUndefined();
    // Split participants: the mean decides.
    expect(policy.preferred([nearOsaka, { "jp-tokyo": 3, "jp-osaka": 11 }], "jp-tokyo")).toBeUndefined();
    // A participant that did not measure the room's region says nothing.
    expect(policy.preferred([{ "jp-osaka": 3 }], "jp-tokyo")).toBeUndefined();
    // The best of several.
    expect(policy.preferred([{ "jp-tokyo": 30, "jp-osaka": 20, "jp-sendai": 5 }], "jp-tokyo")).toBe("jp-sendai");
  });

  it("moves only after the better region stayed better for the window, and not again within the cooldown", () => {
    let now = 1_000_000;
    const policy = new PlacementPolicy(options, () => now);
    const reports = [{ "jp-tokyo": 11, "jp-osaka": 3 }];
    expect(policy.decide("r", "jp-tokyo", reports)).toBeUndefined(); // candidate from now
    now += 600;
    expect(policy.decide("r", "jp-tokyo", reports)).toBeUndefined();
    now += 500;
    expect(policy.decide("r", "jp-tokyo", reports)).toBe("jp-osaka");
    // A flicker starts the window over.
    expect(policy.decide("q", "jp-tokyo", reports)).toBeUndefined();
    now += 600;
    expect(policy.decide("q", "jp-tokyo", [{ "jp-tokyo": 3, "jp-osaka": 3 }])).toBeUndefined();
    now += 600;
    expect(policy.decide("q", "jp-tokyo", reports)).toBeUndefined();
    now += 1100;
    // Moved for its participants 1.2 s ago (its history says): the cooldown holds it.
    expect(policy.decide("q", "jp-tokyo", reports, now - 1200)).toBeUndefined();
    expect(policy.decide("q", "jp-tokyo", reports, now - 20_000)).toBe("jp-osaka");
  });
});
