/**
 * SIGTERM drains a node: each client is told NODE_DRAINING before its socket
 * closes, and the process exits by itself within its drain bound.
 */
import "../../server/polyfills.ts";
import { describe, it, expect } from "vitest";
import { Client } from "@colyseus/sdk";
import { startNode, waitFor } from "../fixtures/processes.ts";
import { ErrorCode } from "../../proto/index.ts";

describe.each(["uws", "ws"] as const)("SIGTERM drain (%s transport)", (transport) => {
  it("tells each client NODE_DRAINING before closing its socket, and exits cleanly within the bound", async () => {
    const node = await startNode({ transport, extraArgs: ["--drain-timeout-ms", "5000"] });
    try {
      const client = new Client(node.httpUrl);
      client.auth.token = await (await fetch(`${node.httpUrl}/dev/token?role=host`)).text();
      const room = await client.joinOrCreate("session", { roomId: "draining" });
      const errors: number[] = [];
      let closeCode: number | undefined;
      room.onError((code) => errors.push(code));
      room.onLeave((code) => { closeCode = code; });
      room.reconnection.enabled = false;

      const startedAt = Date.now();
      node.child.kill("SIGTERM");
      await waitFor(() => closeCode !== undefined, 5000, "the room to close");
      expect(errors).toContain(ErrorCode.NODE_DRAINING);
      expect(closeCode).toBe(4001); // Colyseus SERVER_SHUTDOWN

      expect(await node.exited).toBe(0);
      expect(Date.now() - startedAt).toBeLessThan(5000 + 2000);
      expect(node.output()).toContain('"outcome":"drained"');
      // A lone node has no one to hand its room to: said as such, not as a failed handoff.
      expect(node.output()).toMatch(/"failed":0,"unmovable":0,"stranded":1.*with no other node to take them/);
    } finally {
      await node.kill();
    }
  });
});
