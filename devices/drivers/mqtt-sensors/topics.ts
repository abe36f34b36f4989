/**
 * The MQTT topic layout of site and hall sensors, under a prefix (default `tsunagi/<site>`):
 *
 * | topic                                   | payload                                   | subscribed at |
 * |-----------------------------------------|-------------------------------------------|---------------|
 * | `<prefix>/sensors/<sensorId>/reading`   | JSON reading (payloads.ts)                | QoS 1         |
 * | `<prefix>/sensors/<sensorId>/status`    | `online` or `offline` (the sensor's will) | QoS 1         |
 * | `<prefix>/beacons/<receiverId>`         | beacon sighting, JSON or binary           | QoS 0         |
 *
 * Ids match ID_PATTERN. The prefix is one or more `/`-separated segments, each matching
 * ID_PATTERN, so it holds no wildcard and no empty level.
 *
 * Why those QoS (the delivery is the lower of the publisher's and the subscription's):
 * readings feed alerts and statuses say a sensor died, and both are rare, so they may
 * take QoS 1 (a duplicate is harmless: the same reading again); sightings are frequent
 * and only their freshness counts, so a lost one is better than a late redelivery.
 *
 * @example
 *   const prefix = sitePrefix("site-7");                  // "tsunagi/site-7"
 *   parseTopic(prefix, "tsunagi/site-7/sensors/co2-a/reading");   // { type: "reading", sensorId: "co2-a" }
 *   parseTopic(prefix, "tsunagi/site-7/beacons/rx-1");            // { type: "beacons", receiverId: "rx-1" }
 *   parseTopic(prefix, "tsunagi/site-7/sensors/co2-a/other");     // undefined: malformed "topic"
 */
import { ID_PATTERN, ID_TEXT, MAX_PREFIX_LENGTH } from "./limits.ts";

/** What a message is about, from its topic. */
export type Route =
  | { type: "reading"; sensorId: string }
  | { type: "status"; sensorId: string }
  | { type: "beacons"; receiverId: string };

export interface Subscription {
  filter: string;
  qos: 0 | 1;
}

/** The default prefix of a site's topics. */
export function sitePrefix(site: string): string {
  if (typeof site !== "string" || !ID_PATTERN.test(site)) {
    throw new TypeError(`site must match ${ID_TEXT}, got ${JSON.stringify(site)}`);
  }
  return `tsunagi/${site}`;
}

/** Throws a TypeError, saying what to change, unless `prefix` is a usable topic prefix. */
export function checkPrefix(prefix: unknown): asserts prefix is string {
  if (typeof prefix !== "string" || prefix.length === 0 || prefix.length > MAX_PREFIX_LENGTH) {
    throw new TypeError(`prefix must be a string of 1-${MAX_PREFIX_LENGTH} characters, got ${JSON.stringify(prefix)?.slice(0, 160)}`);
  }
  for (const segment of prefix.split("/")) {
    if (!ID_PATTERN.test(segment)) {
      throw new TypeError(`prefix ${JSON.stringify(prefix)}: every "/"-separated level must match ${ID_TEXT} (no wildcards, no empty levels), got ${JSON.stringify(segment)}`);
    }
  }
}

/** The subscriptions the driver makes on every connection. */
export function subscriptions(prefix: string): Subscription[] {
  return [
    { filter: `${prefix}/sensors/+/reading`, qos: 1 },
    { filter: `${prefix}/sensors/+/status`, qos: 1 },
    { filter: `${prefix}/beacons/+`, qos: 0 },
  ];
}

export function readingTopic(prefix: string, sensorId: string): string {
  return `${prefix}/sensors/${sensorId}/reading`;
}

export function statusTopic(prefix: string, sensorId: string): string {
  return `${prefix}/sensors/${sensorId}/status`;
}

export function beaconsTopic(prefix: string, receiverId: string): string {
  return `${prefix}/beacons/${receiverId}`;
}

/** The route of a topic under `prefix`, or undefined when it does not fit the layout or names a bad id. */
export function parseTopic(prefix: string, topic: string): Route | undefined {
  if (typeof topic !== "string" || topic.length <= prefix.length + 1 || !topic.startsWith(prefix) || topic[prefix.length] !== "/") return undefined;
  const levels = topic.slice(prefix.length + 1).split("/");
  if (levels[0] === "sensors" && levels.length === 3 && ID_PATTERN.test(levels[1]!)) {
    if (levels[2] === "reading") return { type: "reading", sensorId: levels[1]! };
    if (levels[2] === "status") return { type: "status", sensorId: levels[1]! };
    return undefined;
  }
  if (levels[0] === "beacons" && levels.length === 2 && ID_PATTERN.test(levels[1]!)) {
    return { type: "beacons", receiverId: levels[1]! };
  }
  return undefined;
}
