import { describe, it, expect } from "vitest";
import { SignJWT, jwtVerify } from "jose";
import { TokenService, AuthError } from "../../../../server/auth/tokens.ts";
import { ErrorCode } from "../../../../proto/index.ts";
import { clusterKeys } from "../../../../server/auth/keys.ts";

const keys = clusterKeys("unit-test-secret-0123456789abcdef0123");
const tokens = new TokenService({ key: keys.token, audience: "cluster-a", maxAgeSeconds: 3600 });
const now = () => Math.floor(Date.now() / 1000);

/** A token signed with the cluster's token key, with exactly the claims given. */
function signed(claims: { aud?: string; iat?: number; exp?: number }, key: Uint8Array = keys.token) {
  const jwt = new SignJWT({ role: "visitor" }).setProtectedHeader({ alg: "HS256" }).setSubject("bob").setIssuer("tsunagi");
  if (claims.aud !== undefined) jwt.setAudience(claims.aud);
  if (claims.iat !== undefined) jwt.setIssuedAt(claims.iat);
  if (claims.exp !== undefined) jwt.setExpirationTime(claims.exp);
  return jwt.sign(key);
}

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
    const forged = await new TokenService({ key: clusterKeys("another-secret-0123456789abcdef0123").token, audience: "cluster-a" }).issue({ sub: "mallory", role: "admin" });
    expect(await codeOf(tokens.verify(forged))).toBe(ErrorCode.TOKEN_INVALID);
    const expired = await signed({ aud: "cluster-a", iat: now() - 100, exp: now() - 10 });
    expect(await codeOf(tokens.verify(expired))).toBe(ErrorCode.TOKEN_EXPIRED);
    expect(await codeOf(tokens.verify("not.a.jwt"))).toBe(ErrorCode.TOKEN_INVALID);
    const badRole = await new SignJWT({ role: "emperor" }).setProtectedHeader({ alg: "HS256" }).setSubject("x")
      .setIssuer("tsunagi").setAudience("cluster-a").setIssuedAt().setExpirationTime("1h").sign(keys.token);
    expect(await codeOf(tokens.verify(badRole))).toBe(ErrorCode.TOKEN_INVALID);
  });

  it("refuses to issue an unknown role", async () => {
    await expect(tokens.issue({ sub: "x", role: "emperor" as any })).rejects.toThrow(/unknown role/);
  });

  it("issues tokens with the cluster as audience, an issue time and an expiry within the maximum age", async () => {
    const { payload } = await jwtVerify(await tokens.issue({ sub: "alice", role: "operator" }, 600), keys.token);
    expect(payload.aud).toBe("cluster-a");
    expect(payload.exp! - payload.iat!).toBe(600);
    await expect(tokens.issue({ sub: "alice", role: "operator" }, 3601)).rejects.toThrow(/maximum token age/);
  });

  it("refuses a token without an expiry, for another audience, without one, or older than the maximum age", async () => {
    expect(await codeOf(tokens.verify(await signed({ aud: "cluster-a", iat: now() })))).toBe(ErrorCode.TOKEN_INVALID);
    expect(await codeOf(tokens.verify(await signed({ aud: "cluster-b", iat: now(), exp: now() + 60 })))).toBe(ErrorCode.TOKEN_INVALID);
    expect(await codeOf(tokens.verify(await signed({ iat: now(), exp: now() + 60 })))).toBe(ErrorCode.TOKEN_INVALID);
    expect(await codeOf(tokens.verify(await signed({ aud: "cluster-a", exp: now() + 60 })))).toBe(ErrorCode.TOKEN_INVALID);
    // Issued two hours ago with a week's expiry: past the one-hour maximum age.
    expect(await codeOf(tokens.verify(await signed({ aud: "cluster-a", iat: now() - 7200, exp: now() + 7 * 86_400 })))).toBe(ErrorCode.TOKEN_EXPIRED);
    await tokens.verify(await signed({ aud: "cluster-a", iat: now() - 60, exp: now() + 60 }));
    expect(await codeOf(tokens.verify(await signed({ aud: "cluster-a", iat: now() + 600, exp: now() + 900 })))).toBe(ErrorCode.TOKEN_INVALID);
  });

  it("signs with the token key, not the cluster secret itself", async () => {
    const withSecret = await signed({ aud: "cluster-a", iat: now(), exp: now() + 60 }, new TextEncoder().encode("unit-test-secret-0123456789abcdef0123"));
    expect(await codeOf(tokens.verify(withSecret))).toBe(ErrorCode.TOKEN_INVALID);
  });
});
