/** Geofence: a step ends on the boundary it would cross, each boundary announced when clamping starts. */
import { describe, it, expect } from "vitest";
import { Geofence } from "../../../../../devices/drivers/sim-drone/Geofence.ts";
import { FakeFlightEventEmitter } from "../../../../fixtures/fakes/FakeFlightEventEmitter.ts";

const config = { geofence: { maxRadiusM: 10, maxAltitudeM: 20 }, home: { x: 100, y: 0 }, minFlightAltitudeM: 2 };
const flyingLevel = { flying: true, descending: false };

describe("Geofence", () => {
  it("projects a step through the radius onto it, keeping the motion along it", () => {
    const events = new FakeFlightEventEmitter();
    const fence = new Geofence(config, events.emit);
    const next = { x: 112, y: 0, z: 5 };
    fence.clamp({ x: 109, y: 0, z: 5 }, next, flyingLevel);
    expect(next).toEqual({ x: 110, y: 0, z: 5 });
    const along = { x: 112, y: 3, z: 5 };
    fence.clamp(next, along, flyingLevel);
    expect(Math.hypot(along.x - 100, along.y)).toBeCloseTo(10, 9);
    expect(along.y).toBeGreaterThan(0);
    expect(events.events).toEqual([{ type: "geofence", boundary: "radius", limitM: 10, position: { x: 110, y: 0, z: 5 } }]);
    fence.clamp(along, { x: 101, y: 0, z: 5 }, flyingLevel); // back inside
    fence.clamp({ x: 101, y: 0, z: 5 }, { x: 115, y: 0, z: 5 }, flyingLevel); // and out again: a new clamp
    expect(events.types()).toEqual(["geofence", "geofence"]);
  });

  it("stops at the ceiling", () => {
    const events = new FakeFlightEventEmitter();
    const next = { x: 100, y: 0, z: 25 };
    new Geofence(config, events.emit).clamp({ x: 100, y: 0, z: 19 }, next, { flying: false, descending: false });
    expect(next.z).toBe(20);
    expect(events.events).toEqual([{ type: "geofence", boundary: "altitude", limitM: 20, position: { x: 100, y: 0, z: 20 } }]);
  });

  it("keeps a flying, descending vehicle at the minimum flight altitude, but lets a landing through", () => {
    const events = new FakeFlightEventEmitter();
    const fence = new Geofence(config, events.emit);
    const flying = { x: 100, y: 0, z: 1 };
    fence.clamp({ x: 100, y: 0, z: 3 }, flying, { flying: true, descending: true });
    expect(flying.z).toBe(2);
    expect(events.events).toEqual([{ type: "limit-reached", axis: "vz", limit: "min", requested: 1, applied: 2 }]);
    const landing = { x: 100, y: 0, z: 1 };
    fence.clamp({ x: 100, y: 0, z: 3 }, landing, { flying: false, descending: true });
    expect(landing.z).toBe(1);
    const low = { x: 100, y: 0, z: 0.5 };
    fence.clamp({ x: 100, y: 0, z: 1 }, low, { flying: true, descending: true }); // already below: no lower than where it was
    expect(low.z).toBe(1);
  });
});
