import { describe, it, expect } from "vitest";
import { clusterKeys, clusterSecret, deriveKey, keyFromHex } from "../../../../server/auth/keys.ts";

const secret = "keys-test-secret-0123456789abcdef0123";

describe("cluster keys", () => {
  it("derives a distinct key per purpose, the same on every node, none equal to the secret", () => {
    const keys = clusterKeys(secret);
    const hex = [keys.token, keys.device, keys.roomOptions].map((key) => key.toString("hex"));
    expect(new Set(hex).size).toBe(3);
    expect(hex).not.toContain(Buffer.from(secret).toString("hex"));
    expect(clusterKeys(secret).token.equals(keys.token)).toBe(true);
    expect(clusterKeys(`${secret}x`).token.equals(keys.token)).toBe(false);
    expect(deriveKey(secret, "device").equals(keys.device)).toBe(true);
    expect(() => deriveKey("short", "token")).toThrow(/at least 32/);
  });

  it("reads a key from its hex text", () => {
    const key = clusterKeys(secret).device;
    expect(keyFromHex(`${key.toString("hex")}\n`, "the device key").equals(key)).toBe(true);
    expect(() => keyFromHex("abc", "the device key")).toThrow(/the device key must hold a derived key/);
  });

  it("never falls back to the dev secret outside dev mode", () => {
    expect(() => clusterSecret({ devMode: false })).toThrow(/no authSecret outside dev mode/);
    expect(clusterSecret({ devMode: false, authSecret: secret })).toBe(secret);
    expect(clusterSecret({ devMode: true, authSecret: secret })).toBe(secret);
    expect(clusterSecret({ devMode: true })).toMatch(/dev/);
  });
});
