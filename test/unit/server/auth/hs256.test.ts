/**
 * The node's own HS256 check (server/auth/hs256.ts): what jose signs, it accepts; every
 * way a token can be forged, mangled, or out of date, it refuses, and says which.
 */
import { describe, expect, it } from "vitest";
import { createHmac } from "node:crypto";
import { SignJWT } from "jose";
import { Hs256Error, MAX_TOKEN_LENGTH, verifyHs256 } from "../../../../server/auth/hs256.ts";

const key = new Uint8Array(32).fill(7);
const otherKey = new Uint8Array(32).fill(8);
const expected = { issuer: "tsunagi", audience: "cluster-a" };
const nowS = () => Math.floor(Date.now() / 1000);

function jose(claims: Record<string, unknown> = {}, signingKey = key, header: Record<string, unknown> = { alg: "HS256", typ: "JWT" }) {
  const jwt = new SignJWT({ role: "visitor", ...claims }).setProtectedHeader(header as { alg: string }).setSubject("v-1");
  if (!("iss" in claims)) jwt.setIssuer("tsunagi");
  if (!("aud" in claims)) jwt.setAudience("cluster-a");
  if (!("iat" in claims)) jwt.setIssuedAt();
  if (!("exp" in claims)) jwt.setExpirationTime(nowS() + 600);
  return jwt.sign(signingKey);
}

/** A token built by hand: any header and payload, signed with `signingKey` (HS256 over the two parts). */
function handMade(header: unknown, payload: unknown, signingKey = key) {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const input = `${part(header)}.${part(payload)}`;
  return `${input}.${createHmac("sha256", signingKey).update(input).digest("base64url")}`;
}
const goodPayload = () => ({ sub: "v-1", role: "visitor", iss: "tsunagi", aud: "cluster-a", iat: nowS(), exp: nowS() + 600 });

function refusal(token: string): { reason: string; message: string } {
  try {
    verifyHs256(token, key, expected);
  } catch (error) {
    expect(error).toBeInstanceOf(Hs256Error);
    return { reason: (error as Hs256Error).reason, message: (error as Error).message };
  }
  throw new Error("accepted");
}

describe("verifyHs256", () => {
  it("accepts what jose signs with the key, and an audience list naming the cluster", async () => {
    expect(verifyHs256(await jose(), key, expected)).toMatchObject({ sub: "v-1", role: "visitor", iss: "tsunagi", aud: "cluster-a" });
    expect(verifyHs256(await jose({ aud: ["other", "cluster-a"] }), key, expected).sub).toBe("v-1");
  });

  it("refuses another key, an altered payload or signature, and alg none or another algorithm", async () => {
    expect(refusal(await jose({}, otherKey)).message).toMatch(/signature/);
    const token = await jose();
    const [h, p, s] = token.split(".");
    const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, "base64url").toString()), role: "admin" })).toString("base64url");
    expect(refusal(`${h}.${forged}.${s}`).message).toMatch(/signature/);
    expect(refusal(`${h}.${p}.${s.slice(0, -2)}`).message).toMatch(/signature/);
    expect(refusal(`${Buffer.from('{"alg":"none"}').toString("base64url")}.${p}.`).message).toMatch(/compact JWS/);
    expect(refusal(handMade({ alg: "none" }, goodPayload())).message).toMatch(/not HS256/);
    expect(refusal(handMade({ alg: "HS512" }, goodPayload())).message).toMatch(/not HS256/);
    expect(refusal(handMade({ alg: "HS256", crit: ["b64"], b64: false }, goodPayload())).message).toMatch(/crit/);
  });

  it("refuses another issuer or audience, missing or mistyped times, a future nbf; an expiry is `expired`", async () => {
    expect(refusal(handMade({ alg: "HS256" }, { ...goodPayload(), iss: "someone" })).message).toMatch(/iss/);
    expect(refusal(handMade({ alg: "HS256" }, { ...goodPayload(), aud: "cluster-b" })).message).toMatch(/aud/);
    const { exp: _exp, ...noExp } = goodPayload();
    expect(refusal(handMade({ alg: "HS256" }, noExp)).message).toMatch(/"exp"/);
    const { iat: _iat, ...noIat } = goodPayload();
    expect(refusal(handMade({ alg: "HS256" }, noIat)).message).toMatch(/"iat"/);
    expect(refusal(handMade({ alg: "HS256" }, { ...goodPayload(), exp: String(nowS() + 600) })).message).toMatch(/must be a number/);
    expect(refusal(handMade({ alg: "HS256" }, { ...goodPayload(), nbf: nowS() + 600 })).message).toMatch(/nbf/);
    expect(refusal(handMade({ alg: "HS256" }, { ...goodPayload(), exp: nowS() }))).toMatchObject({ reason: "expired" });
    expect(refusal(handMade({ alg: "HS256" }, { ...goodPayload(), exp: nowS() - 1 }))).toMatchObject({ reason: "expired" });
  });

  it("refuses what is not a token: garbage, JSON that is no object, and anything past its length bound", () => {
    for (const token of ["", "a.b", "a.b.c.d", "###.###.###", "x".repeat(MAX_TOKEN_LENGTH + 1)]) {
      expect(refusal(token).reason, token.slice(0, 20)).toBe("invalid");
    }
    expect(refusal(handMade({ alg: "HS256" }, [1, 2])).message).toMatch(/payload is not a JSON object/);
    expect(refusal(handMade("HS256", goodPayload())).message).toMatch(/header is not a JSON object/);
  });
});
