/**
 * RateLimitedLog: one line per key per 10 s, the held-back count told with the next
 * line, keys apart, and a logger that throws does not.
 */
import { describe, expect, it } from "vitest";
import { RateLimitedLog } from "../../../../../devices/drivers/mqtt-sensors/RateLimitedLog.ts";

describe("RateLimitedLog", () => {
  it("writes one line per key per interval and tells what it held back", () => {
    let now = 0;
    const lines: [object, string][] = [];
    const log = new RateLimitedLog({ info: () => {}, warn: (fields, message) => lines.push([fields, message]) }, () => now);
    for (let i = 0; i < 50; i++) log.warn("json", { i }, "bad json");
    log.warn("kind", { i: 0 }, "bad kind");
    now = 9_999;
    log.warn("json", { i: 50 }, "bad json");
    expect(lines).toEqual([[{ i: 0 }, "bad json"], [{ i: 0 }, "bad kind"]]);
    now = 10_000;
    log.warn("json", { i: 51 }, "bad json");
    expect(lines[2]).toEqual([{ i: 51, suppressed: 50 }, "bad json"]);
    now = 20_000;
    log.warn("json", { i: 52 }, "bad json");
    expect(lines[3]).toEqual([{ i: 52 }, "bad json"]);
  });

  it("survives a logger that throws", () => {
    const log = new RateLimitedLog({ info: () => {}, warn: () => { throw new Error("disk full"); } });
    expect(() => log.warn("json", {}, "bad json")).not.toThrow();
  });
});
