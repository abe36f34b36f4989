/**
 * HallPlaces: the areas (booths included) a visitor stands in and the booths within the
 * booth radius, updated after each move, and the booth visits that start and end.
 */
import { describe, expect, it } from "vitest";
import { parseHallLayout } from "../../../../rooms/expo/HallLayout.ts";
import { HallPlaces } from "../../../../rooms/expo/HallPlaces.ts";
import { FakeBoothVisits } from "../../../fixtures/fakes/FakeBoothVisits.ts";
import { fakeEntity, fakeVisitor } from "../../../fixtures/fakes/FakeVisitor.ts";

const layout = parseHallLayout({
  hallId: "h", name: "Hall", width: 100, height: 60,
  booths: [{ id: "acme", name: "ACME", exhibitor: "ACME Inc.", area: { x: 10, y: 10, w: 10, h: 10 } }],
  areas: [{ id: "aisle", name: "Aisle", rect: { x: 0, y: 0, w: 100, h: 25 } }],
});

function setUp() {
  const visits = new FakeBoothVisits();
  const places = new HallPlaces(layout, 6, visits);
  const visitor = fakeVisitor(fakeEntity(1, 50, 50));
  const at = (x: number, y: number, now: number) => { visitor.entity.x = x; visitor.entity.y = y; places.update(visitor, now); };
  return { visits, places, visitor, at };
}

describe("HallPlaces", () => {
  it("knows the booth ids, and the area ids with the booths among them", () => {
    const { places } = setUp();
    expect([...places.boothIds]).toEqual(["acme"]);
    expect([...places.areaIds].sort()).toEqual(["acme", "aisle"]);
  });

  it("puts a visitor in the areas it stands in and near the booths within the radius; a booth visit starts and ends", () => {
    const { visits, visitor, at } = setUp();
    at(50, 50, 1);
    expect([[...visitor.areas], [...visitor.booths]]).toEqual([[], []]);
    at(24, 15, 2); // 4 m east of the booth, in the aisle
    expect([[...visitor.areas], [...visitor.booths]]).toEqual([["aisle"], ["acme"]]);
    at(15, 15, 3);
    expect([...visitor.areas].sort()).toEqual(["acme", "aisle"]);
    at(27, 15, 4); // 7 m away: no longer near
    expect([[...visitor.areas], [...visitor.booths]]).toEqual([["aisle"], []]);
    expect(visits.log).toEqual(["enter subject-1 acme @3", "leave subject-1 acme @4"]);
  });

  it("a visitor handed in goes on with the booth visit its places carry", () => {
    const { visits, places } = setUp();
    const arrived = fakeVisitor(fakeEntity(2, 15, 15), { areas: ["acme", "aisle"] });
    places.arrived(arrived, 9);
    expect(visits.log).toEqual(["enter subject-2 acme @9"]);
  });
});
