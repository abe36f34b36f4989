import { describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const probe = fileURLToPath(new URL("../../../fixtures/probes/bindCost.ts", import.meta.url));

describe("InputGuard's message handler", () => {
  it("costs a joined client no more than Colyseus' own, under the runtime the node runs on (tsx)", () => {
    const output = execFileSync(process.execPath, ["--import", "tsx", probe], { encoding: "utf8", timeout: 60_000 });
    const { stock, guarded } = JSON.parse(output) as { stock: number; guarded: number };
    // A bound function is about 40 bytes; V8's slow bind path (the target's `name` redefined,
    // as esbuild's keepNames does to a named function expression) adds about 290 per client.
    expect(guarded).toBeLessThan(stock + 100);
  });
});
