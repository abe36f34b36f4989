import { describe, it, expect } from "vitest";
import { NodeAuth, NODE_CREDENTIAL_LIFETIME_MS } from "../../../../server/auth/nodeAuth.ts";
import { clusterKeys } from "../../../../server/auth/keys.ts";
import { ErrorCode } from "../../../../proto/index.ts";

const keys = clusterKeys("unit-test-secret-0123456789abcdef0123");
const other = clusterKeys("another-secret-0123456789abcdef0123456");

describe("NodeAuth", () => {
  it("names the calling node for a credential of this cluster, and refuses anything else with its code", () => {
    let now = 1_000_000;
    const tokyo = new NodeAuth(keys.node, "tokyo-1", () => now);
    const osaka = new NodeAuth(keys.node, "osaka-1", () => now);
    expect(osaka.verify(tokyo.header())).toBe("tokyo-1");
    const code = (header: string | null) => { try { osaka.verify(header); return 0; } catch (error) { return (error as { code: number }).code; } };
    expect(code(null)).toBe(ErrorCode.TOKEN_MISSING);
    expect(code("Bearer abc")).toBe(ErrorCode.TOKEN_MISSING);
    expect(code(new NodeAuth(other.node, "tokyo-1", () => now).header())).toBe(ErrorCode.TOKEN_INVALID);
    // Not a token key, not the room-options key: only the node key signs node credentials.
    expect(code(new NodeAuth(keys.token, "tokyo-1", () => now).header())).toBe(ErrorCode.TOKEN_INVALID);
    const forged = tokyo.credential().replace("tokyo-1", "admin-1");
    expect(code(`Node ${forged}`)).toBe(ErrorCode.TOKEN_INVALID);
    expect(code("Node v1.tokyo-1.notanumber.abc")).toBe(ErrorCode.TOKEN_INVALID);
    const header = tokyo.header();
    now += NODE_CREDENTIAL_LIFETIME_MS + 60_000;
    expect(code(header)).toBe(ErrorCode.TOKEN_EXPIRED);
    // A fresh one is made when the cached one runs low.
    expect(osaka.verify(tokyo.header())).toBe("tokyo-1");
    // One valid for longer than the cluster allows is refused (a stolen key cannot mint long-lived ones unnoticed).
    const far = new NodeAuth(keys.node, "tokyo-1", () => now + 10 * NODE_CREDENTIAL_LIFETIME_MS);
    expect(code(far.header())).toBe(ErrorCode.TOKEN_INVALID);
  });
});
