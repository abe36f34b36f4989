/**
 * The topic layout: routes parsed from topics under the prefix, anything else refused,
 * and prefixes checked so none holds a wildcard or an empty level.
 */
import { describe, expect, it } from "vitest";
import { beaconsTopic, checkPrefix, parseTopic, readingTopic, sitePrefix, statusTopic, subscriptions } from "../../../../../devices/drivers/mqtt-sensors/topics.ts";

const prefix = "tsunagi/site-7";

describe("topics", () => {
  it("route readings, statuses and sightings", () => {
    expect(parseTopic(prefix, readingTopic(prefix, "co2-a"))).toEqual({ type: "reading", sensorId: "co2-a" });
    expect(parseTopic(prefix, statusTopic(prefix, "co2-a"))).toEqual({ type: "status", sensorId: "co2-a" });
    expect(parseTopic(prefix, beaconsTopic(prefix, "rx:1.2_3"))).toEqual({ type: "beacons", receiverId: "rx:1.2_3" });
  });

  it.each([
    "tsunagi/site-7",
    "tsunagi/site-7/",
    "tsunagi/site-70/sensors/a/reading",
    "tsunagi/site-7/sensors/a",
    "tsunagi/site-7/sensors/a/reading/extra",
    "tsunagi/site-7/sensors/a/other",
    "tsunagi/site-7/sensors//reading",
    `tsunagi/site-7/sensors/${"a".repeat(65)}/reading`,
    "tsunagi/site-7/sensors/a b/reading",
    "tsunagi/site-7/beacons",
    "tsunagi/site-7/beacons/rx-1/more",
    "tsunagi/site-7/cameras/c1",
    "other/site-7/sensors/a/reading",
  ])("refuse %s", (topic) => {
    expect(parseTopic(prefix, topic)).toBeUndefined();
  });

  it("subscribe to the three kinds of topic, readings and statuses at QoS 1, sightings at 0", () => {
    expect(subscriptions(prefix)).toEqual([
      { filter: "tsunagi/site-7/sensors/+/reading", qos: 1 },
      { filter: "tsunagi/site-7/sensors/+/status", qos: 1 },
      { filter: "tsunagi/site-7/beacons/+", qos: 0 },
    ]);
  });
});

describe("prefixes", () => {
  it("default to tsunagi/<site>", () => {
    expect(sitePrefix("site-7")).toBe("tsunagi/site-7");
    expect(() => sitePrefix("site/7")).toThrow(/site must match/);
  });

  it("are levels of ids, without wildcards or empty levels", () => {
    expect(() => checkPrefix("factory/hall-3")).not.toThrow();
    for (const bad of ["", "a/+/b", "a/#", "/a", "a/", "a//b", "a b", "$SYS/x", "x".repeat(129), 12]) {
      expect(() => checkPrefix(bad), String(bad)).toThrow(TypeError);
    }
  });
});
