import { describe, it, expect } from "vitest";
import { SignJWT } from "jose";
import { TokenService, AuthError } from "../../../../server/auth/tokens.ts";
import { ErrorCode } from "../../../../proto/index.ts";

const secret = "unit-test-secret-0123456789abcdef0123";
const tokens = new TokenService({ secret });

async function codeOf(promise: Promise<unknown>): Promise<number | undefined> {
  try { await promise; return undefined; } catch (e) { return (e as AuthError).code; }
}

describe("TokenService", () => {
  it("round-trips role, subject and room scope", async () => {
    const jwt = await tokens.issue({ sub: "alice", role: "operator", rooms: ["site-42"] });
    expect(await tokens.verify(jwt)).toMatchObject({ sub: "alice", role: "operator", rooms: ["site-42"] });
  });

  it("codes missing, forged, expired and malformed tokens", async () => {
    expect(await codeOf(tokens.verify(undefined))).toBe(ErrorCode.TOKEN_MISSING);
    const forged = await new TokenService({ secret: "another-secret-0123456789abcdef0123" }).issue({ sub: "mallory", role: "admin" });
    expect(await codeOf(tokens.verify(forged))).toBe(ErrorCode.TOKEN_INVALID);
    const expired = await new SignJWT({ role: "visitor" }).setProtectedHeader({ alg: "HS256" }).setSubject("bob")
      .setIssuer("tsunagi").setExpirationTime(Math.floor(Date.now() / 1000) - 10).sign(new TextEncoder().encode(secret));
    expect(await codeOf(tokens.verify(expired))).toBe(ErrorCode.TOKEN_EXPIRED);
    expect(await codeOf(tokens.verify("not.a.jwt"))).toBe(ErrorCode.TOKEN_INVALID);
    const badRole = await new SignJWT({ role: "emperor" }).setProtectedHeader({ alg: "HS256" }).setSubject("x")
      .setIssuer("tsunagi").setExpirationTime("1h").sign(new TextEncoder().encode(secret));
    expect(await codeOf(tokens.verify(badRole))).toBe(ErrorCode.TOKEN_INVALID);
  });

  it("refuses to issue an unknown role", async () => {
    await expect(tokens.issue({ sub: "x", role: "emperor" as any })).rejects.toThrow(/unknown role/);
  });
});
