import { describe, expect, it } from "vitest";
import { RouteTable, type HttpRoute } from "../../../../server/http/RouteTable.ts";

const handle = async () => new Response("");
const row = (path: string, extra: Partial<HttpRoute> = {}): HttpRoute => ({ path, methods: ["GET"], bodyLimit: 0, access: "public", cors: false, handle, ...extra });

describe("RouteTable", () => {
  it("finds an exact row before a prefix, the longest prefix first, and by method", () => {
    const table = new RouteTable([row("/expo/"), row("/expo/halls/"), row("/expo/halls", { methods: ["POST"] })]);
    expect(table.find("POST", "/expo/halls")?.path).toBe("/expo/halls");
    expect(table.find("GET", "/expo/halls/h1/analytics")?.path).toBe("/expo/halls/");
    expect(table.find("GET", "/expo/other")?.path).toBe("/expo/");
    expect(table.find("DELETE", "/expo/halls/h1")).toBeUndefined();
    expect(table.find("GET", "/nowhere")).toBeUndefined();
  });

  it("refuses a rule written twice", () => {
    expect(() => new RouteTable([row("/ping"), row("/ping")])).toThrow(/twice/);
    expect(() => new RouteTable([row("/m/"), row("/m/", { methods: ["GET", "POST"] })])).toThrow(/twice/);
    expect(() => new RouteTable([row("/ping"), row("/ping", { methods: ["POST"] })])).not.toThrow();
  });

  it("refuses CORS on admin, dev and metrics rows", () => {
    expect(() => new RouteTable([row("/dev/token", { access: "loopback", cors: true })])).toThrow(/CORS/);
    expect(() => new RouteTable([row("/metrics", { access: "metrics", cors: true })])).toThrow(/CORS/);
    expect(() => new RouteTable([row("/expo/halls", { tokenRoles: ["host"], cors: true })])).toThrow(/CORS/);
  });
});
