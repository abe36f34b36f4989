import { describe, it, expect } from "vitest";
import { authorizeCreate, authorizeRole, authorizeScope, accessOf, type RoomAccess } from "../../../../server/auth/roomAccess.ts";
import { ErrorCode } from "../../../../proto/index.ts";
import type { TokenClaims } from "../../../../server/auth/tokens.ts";

const teleop: RoomAccess = { join: ["operator", "supervisor"], create: ["supervisor"], name: ["supervisor"] };
const session: RoomAccess = { join: ["visitor", "host"], create: ["visitor", "host"], name: ["host"] };
const who = (role: TokenClaims["role"], rooms?: string[]): TokenClaims => ({ sub: role, role, rooms });
const forbidden = (call: () => void, message: RegExp) => expect(call).toThrow(expect.objectContaining({ code: ErrorCode.FORBIDDEN, message: expect.stringMatching(message) }));

describe("room access", () => {
  it("checks roles; admin passes every role check", () => {
    forbidden(() => authorizeRole(who("visitor"), teleop.join, "join"), /may not join/);
    expect(() => authorizeRole(who("admin"), [], "create")).not.toThrow();
  });

  it("a scope admits only the rooms it names, whatever the role", () => {
    forbidden(() => authorizeScope(who("operator", ["site-2"]), ["site-1"], "room site-1"), /scoped to site-2/);
    expect(() => authorizeScope(who("operator", ["site-1"]), ["hall", "site-1"], "room site-1")).not.toThrow();
    expect(() => authorizeScope(who("operator"), ["site-1"], "room site-1")).not.toThrow();
    forbidden(() => authorizeScope(who("admin", ["site-2"]), ["site-1"], "room site-1"), /scoped/);
  });

  it("a scoped token creates only rooms it names, over devices it names", () => {
    const scoped = who("supervisor", ["site-a", "device:ex-a"]);
    forbidden(() => authorizeCreate(scoped, teleop, { roomType: "teleop", devices: ["ex-a"] }), /creates only the rooms it names/);
    forbidden(() => authorizeCreate(scoped, teleop, { roomType: "teleop", name: "site-b", devices: ["ex-a"] }), /not teleop room "site-b"/);
    forbidden(() => authorizeCreate(scoped, teleop, { roomType: "teleop", name: "site-a", devices: ["ex-a", "ex-b"] }), /device "ex-b"/);
    expect(() => authorizeCreate(scoped, teleop, { roomType: "teleop", name: "site-a", devices: ["ex-a"] })).not.toThrow();
    // A device id in the scope does not pass for a room of that name.
    forbidden(() => authorizeCreate(who("supervisor", ["ex-a"]), teleop, { roomType: "teleop", name: "site-a", devices: ["ex-a"] }), /not teleop room/);
  });

  it("unscoped, only the rule's naming roles choose a new room's id; a scope's name is a grant", () => {
    forbidden(() => authorizeCreate(who("visitor"), session, { roomType: "session", name: "standup" }), /may not name a new session room/);
    expect(() => authorizeCreate(who("visitor"), session, { roomType: "session" })).not.toThrow();
    expect(() => authorizeCreate(who("host"), session, { roomType: "session", name: "standup" })).not.toThrow();
    expect(() => authorizeCreate(who("visitor", ["standup"]), session, { roomType: "session", name: "standup" })).not.toThrow();
    forbidden(() => authorizeCreate(who("operator"), teleop, { roomType: "teleop", name: "site-a", devices: ["ex-a"] }), /may not create a teleop room/);
  });

  it("reads a room class's declared rule, and nothing else", () => {
    expect(accessOf(class { static access = teleop; })).toBe(teleop);
    expect(accessOf(class {})).toBeUndefined();
    expect(accessOf(class { static access = { join: [] }; })).toBeUndefined();
  });
});
