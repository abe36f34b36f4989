import { describe, expect, it } from "vitest";
import { CorsPolicy } from "../../../../server/http/cors.ts";

describe("CorsPolicy", () => {
  it("answers a listed origin with itself and credentials, any other with nothing", () => {
    const cors = new CorsPolicy(["https://app.example"], false);
    expect(cors.headers("https://app.example", ["GET"])).toMatchObject({ "access-control-allow-origin": "https://app.example", "access-control-allow-credentials": "true", vary: "Origin" });
    expect(cors.headers("https://evil.example", ["GET"])).toEqual({});
    expect(cors.headers(null, ["GET"])).toEqual({});
    expect(cors.headers("http://localhost:5173", ["GET"])).toEqual({});
  });

  it("answers * to unlisted origins without credentials when the list has *", () => {
    const cors = new CorsPolicy(["*", "https://app.example"], false);
    expect(cors.headers("https://elsewhere.example", ["GET"])).toEqual({ "access-control-allow-origin": "*" });
    expect(cors.headers("https://app.example", ["GET"])["access-control-allow-credentials"]).toBe("true");
  });

  it("allows loopback origins in dev mode with an empty list only", () => {
    const dev = new CorsPolicy([], true);
    for (const origin of ["http://localhost:5173", "http://127.0.0.1:8080", "http://[::1]:3000", "https://localhost"]) {
      expect(dev.headers(origin, ["GET"])["access-control-allow-origin"], origin).toBe(origin);
    }
    for (const origin of ["http://localhost.evil.example", "http://127.0.0.1.evil.example", "https://app.example"]) {
      expect(dev.headers(origin, ["GET"]), origin).toEqual({});
    }
    expect(new CorsPolicy(["https://app.example"], true).headers("http://localhost:5173", ["GET"])).toEqual({});
  });

  it("names the row's methods in a preflight answer", () => {
    const headers = new CorsPolicy(["https://app.example"], false).headers("https://app.example", ["POST"], true);
    expect(headers["access-control-allow-methods"]).toBe("POST");
    expect(headers["access-control-allow-headers"]).toContain("Authorization");
  });
});
