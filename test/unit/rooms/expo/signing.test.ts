/** Room-option signatures: made with the cluster's room-option key, and nothing else verifies. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHmac } from "node:crypto";
import { sign, verify } from "../../../../rooms/expo/signing.ts";
import { setNodeContext, type NodeContext } from "../../../../server/context.ts";
import { clusterKeys } from "../../../../server/auth/keys.ts";

const secret = "signing-test-secret-0123456789abcdef0123";
const keys = clusterKeys(secret);

/** A blob as signing.ts shapes it, MACed with `key`. */
function forged(key: Uint8Array | string, purpose: string, value: unknown) {
  const payload = JSON.stringify({ v: value, exp: Date.now() + 60_000 });
  return { payload, mac: createHmac("sha256", key).update(purpose).update("\0").update(payload).digest("base64url") };
}

beforeAll(() => setNodeContext({ roomOptionsKey: keys.roomOptions } as unknown as NodeContext));
afterAll(() => setNodeContext(undefined));

describe("room-option signing", () => {
  it("verifies what it signed, for the same purpose only", () => {
    const signed = sign("zone-handoff", { visitor: "v-1" }, 60_000);
    expect(verify("zone-handoff", signed)).toEqual({ visitor: "v-1" });
    expect(verify("hall-open", signed)).toBeUndefined();
  });

  it("refuses a blob signed with the token key or the cluster secret itself", () => {
    expect(verify("zone-handoff", forged(keys.token, "zone-handoff", { visitor: "v-1" }))).toBeUndefined();
    expect(verify("zone-handoff", forged(secret, "zone-handoff", { visitor: "v-1" }))).toBeUndefined();
    expect(verify("zone-handoff", forged(keys.roomOptions, "zone-handoff", { visitor: "v-1" }))).toEqual({ visitor: "v-1" });
  });
});
