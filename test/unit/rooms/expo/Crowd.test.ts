/**
 * Crowd: one entity per visitor id, by id and in the interest grid; a removal never
 * takes out a newer entity that has the id by now.
 */
import { describe, expect, it } from "vitest";
import { Crowd } from "../../../../rooms/expo/Crowd.ts";
import type { Entity } from "../../../../rooms/expo/model.ts";
import { fakeVisitor } from "../../../fixtures/fakes/FakeVisitor.ts";

function near(crowd: Crowd, x: number, y: number, r: number): number[] {
  const found: number[] = [];
  crowd.grid.queryRadius(x, y, r, (entity: Entity) => found.push(entity.id));
  return found.sort((a, b) => a - b);
}

describe("Crowd", () => {
  it("creates an entity that is nowhere until added; added, it is found by id and by position, and moves", () => {
    const crowd = new Crowd(100, 60, 20);
    const entity = crowd.create(7, 10, 10, 1234);
    expect(entity).toMatchObject({ id: 7, x: 10, y: 10, seq: 0, heardAt: 1234, encodedTick: -1, gridCell: -1 });
    expect(crowd.get(7)).toBeUndefined();
    crowd.add(entity);
    crowd.add(entity); // twice: still once in the grid
    expect(crowd.get(7)).toBe(entity);
    expect(near(crowd, 12, 12, 5)).toEqual([7]);
    crowd.move(entity, 80, 50);
    expect([near(crowd, 12, 12, 5), near(crowd, 80, 50, 1)]).toEqual([[], [7]]);
    expect([...crowd.values()]).toEqual([entity]);
  });

  it("localById names this room's visitor only", () => {
    const crowd = new Crowd(100, 60, 20);
    const ghost = crowd.create(1, 5, 5, 0);
    const local = crowd.create(2, 6, 6, 0);
    const visitor = fakeVisitor(local);
    crowd.add(ghost);
    crowd.add(local);
    expect([crowd.localById(1), crowd.localById(2), crowd.localById(3)]).toEqual([undefined, visitor, undefined]);
  });

  it("removes an entity from the grid and the id map, but not a newer entity with the same id", () => {
    const crowd = new Crowd(100, 60, 20);
    const old = crowd.create(7, 10, 10, 0);
    crowd.add(old);
    const newer = crowd.create(7, 11, 11, 0);
    crowd.add(newer);
    crowd.remove(old);
    expect(crowd.get(7)).toBe(newer);
    expect(near(crowd, 10, 10, 5)).toEqual([7]); // the newer one
    crowd.remove(newer);
    expect(crowd.get(7)).toBeUndefined();
    expect(near(crowd, 10, 10, 5)).toEqual([]);
  });
});
