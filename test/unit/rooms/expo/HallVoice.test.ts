/**
 * HallVoice, proximity in a real interest grid: audible within the hearing radius, on
 * standby out to STANDBY_REACH radii, let go only past the hysteresis; the nearest
 * MAX_AUDIBLE audible; hosts heard everywhere (stage voice); only live speakers; the
 * members a move affects are those near where the mover stands.
 */
import { describe, expect, it } from "vitest";
import { HallVoice, HEARING_HYSTERESIS, MAX_AUDIBLE, STANDBY_REACH } from "../../../../rooms/expo/HallVoice.ts";
import { InterestGrid } from "../../../../rooms/expo/InterestGrid.ts";
import type { Entity, Visitor } from "../../../../rooms/expo/model.ts";
import type { Heard, VoiceMember } from "../../../../rooms/shared/RoomVoice.ts";
import { fakeEntity, fakeVisitor } from "../../../fixtures/fakes/FakeVisitor.ts";

const RADIUS = 10;

function setUp() {
  const grid = new InterestGrid<Entity>(200, 200, 20);
  const visitors = new Map<string, Visitor>();
  const members = new Map<string, VoiceMember>();
  const voice = new HallVoice({ grid, radius: RADIUS, visitorOf: (id) => visitors.get(id), memberOf: (id) => members.get(id),
    stage: () => [...members.values()].filter((member) => member.stage && member.live) });
  let next = 1;
  const add = (x: number, y: number, fields: Partial<VoiceMember> = {}) => {
    const visitor = fakeVisitor(fakeEntity(next++, x, y));
    grid.insert(visitor.entity);
    visitors.set(visitor.sessionId, visitor);
    const member: VoiceMember = {
      sessionId: visitor.sessionId, client: visitor.client, display: visitor.entity.name, visitorId: visitor.entity.id, stage: false, speak: true,
      feedId: `feed-${visitor.entity.id}`, live: true, muted: false, hears: new Map(), heardBy: new Set(), version: 0, ...fields,
    };
    members.set(member.sessionId, member);
    return { member, move: (toX: number, toY: number) => grid.move(visitor.entity, toX, toY) };
  };
  /** What `listener` hears now, as "feed:audible|standby", remembered as its last set (as RoomVoice does). */
  const hear = (listener: VoiceMember) => {
    const heard = [...voice.audience(listener)];
    listener.hears = new Map(heard.map((h: Heard) => [h.speaker.feedId, h]));
    return heard.map((h) => `${h.speaker.feedId}:${h.standby ? "standby" : "audible"}`).sort();
  };
  return { voice, members, add, hear };
}

describe("HallVoice", () => {
  it("hears within the radius, has on standby out to its reach, and nothing further", () => {
    const { add, hear } = setUp();
    const me = add(100, 100).member;
    add(100 + RADIUS - 1, 100);
    add(100, 100 + RADIUS * STANDBY_REACH - 1);
    add(100 + RADIUS * STANDBY_REACH * HEARING_HYSTERESIS + 1, 100);
    add(101, 101, { live: false }); // granted, not publishing yet
    expect(hear(me)).toEqual(["feed-2:audible", "feed-3:standby"]);
  });

  it("lets a voice go only past the hysteresis, and takes one in only within the radius", () => {
    const { add, hear } = setUp();
    const me = add(100, 100).member;
    const other = add(105, 100);
    expect(hear(me)).toEqual(["feed-2:audible"]);
    other.move(100 + RADIUS * 1.2, 100); // beyond the radius, within the hysteresis: still audible
    expect(hear(me)).toEqual(["feed-2:audible"]);
    other.move(100 + RADIUS * HEARING_HYSTERESIS + 0.5, 100);
    expect(hear(me)).toEqual(["feed-2:standby"]);
    other.move(100 + RADIUS * 1.2, 100); // back within the hysteresis, not the radius: stays on standby
    expect(hear(me)).toEqual(["feed-2:standby"]);
    other.move(100 + RADIUS * STANDBY_REACH * 1.2, 100); // within standby's hysteresis: kept
    expect(hear(me)).toEqual(["feed-2:standby"]);
    other.move(100 + RADIUS * STANDBY_REACH * HEARING_HYSTERESIS + 1, 100);
    expect(hear(me)).toEqual([]);
  });

  it("hears the nearest MAX_AUDIBLE, the rest on standby; hosts wherever they stand", () => {
    const { add, hear } = setUp();
    const me = add(100, 100).member;
    for (let i = 0; i < MAX_AUDIBLE + 3; i++) add(100 + (i + 1) * 0.3, 100);
    const host = add(190, 190, { stage: true }).member;
    const heard = hear(me);
    expect(heard.filter((h) => h.endsWith(":audible"))).toHaveLength(MAX_AUDIBLE + 1);
    expect(heard).toContain(`${host.feedId}:audible`);
    // The farthest three are the ones on standby.
    expect(heard.filter((h) => h.endsWith(":standby")).sort()).toEqual([`feed-${MAX_AUDIBLE + 2}:standby`, `feed-${MAX_AUDIBLE + 3}:standby`, `feed-${MAX_AUDIBLE + 4}:standby`].sort());
  });

  it("a speaker's move affects those near where it stands; a host's, everyone; a listener's, no one else", () => {
    const { voice, members, add } = setUp();
    const mover = add(100, 100).member;
    const near = add(100 + RADIUS * STANDBY_REACH, 100).member;
    add(10, 10);
    const host = add(150, 150, { stage: true }).member;
    const listener = add(101, 101, { live: false }).member;
    expect(new Set(voice.affected(mover, members))).toEqual(new Set([mover, near, listener]));
    expect(new Set(voice.affected(host, members))).toEqual(new Set(members.values()));
    expect([...voice.affected(listener, members)]).toEqual([]);
  });
});
