/**
 * resolveMavlinkConfig: the defaults a bare endpoint gets, and one TypeError naming every
 * field that is wrong.
 */
import { describe, expect, it } from "vitest";
import { resolveMavlinkConfig } from "../../../../../devices/drivers/mavlink/config.ts";

describe("resolveMavlinkConfig", () => {
  it("fills in the defaults around an endpoint", () => {
    expect(resolveMavlinkConfig({ endpoint: "udpout:127.0.0.1:14555" })).toEqual({
      endpoint: "udpout:127.0.0.1:14555",
      vehicle: { systemId: 1, componentId: 1 },
      gcs: { systemId: 255, componentId: 190 },
      heartbeatTimeoutMs: 3000,
      estopAction: "land",
      linkLossHoldMs: 5000,
      maxGcsTimeoutS: 5,
      maxGuidedTimeoutS: 3,
      setpointHz: 20,
      maxHorizontalSpeed: 5,
      maxVerticalSpeed: 2.5,
      maxYawRate: 1.5,
      maxAltitudeM: 120,
      ackTimeoutMs: 500,
      commandRetries: 3,
      watchdogMs: 300,
      latencyBudgetMs: 150,
    });
  });

  it("keeps given ids and fills the rest of a partial ids object", () => {
    const config = resolveMavlinkConfig({ endpoint: "udpin:0.0.0.0:14550", vehicle: { systemId: 7 }, gcs: { componentId: 191 } });
    expect(config.vehicle).toEqual({ systemId: 7, componentId: 1 });
    expect(config.gcs).toEqual({ systemId: 255, componentId: 191 });
  });

  it("throws one TypeError naming an unknown key and a bad endpoint", () => {
    let error: unknown;
    try {
      resolveMavlinkConfig({ endpoint: "tcp:127.0.0.1:5760", heartbeatTimeout: 1000 });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(TypeError);
    const message = (error as TypeError).message;
    expect(message).toMatch(/^mavlink driver config: /);
    expect(message).toMatch(/endpoint: must be udpin:HOST:PORT/);
    expect(message).toMatch(/"heartbeatTimeout"/);
    expect(message.split("; ")).toHaveLength(2);
  });

  it("names nested and enumerated fields", () => {
    expect(() => resolveMavlinkConfig({ endpoint: "udpout:127.0.0.1:14555", vehicle: { systemId: 0 }, estopAction: "explode" }))
      .toThrow(/vehicle\.systemId: .*; estopAction: /);
  });
});
