/**
 * PeerProbe against real HTTP servers on loopback: a peer that answers /healthz as itself
 * is heard; one that stops answering, or answers as another node, grows silent and is
 * reported lost once at the bound; a stalled prober (no probes sent) finds nobody silent;
 * a loss is remembered after the registry stops listing the peer, for Failover to read.
 */
import { afterAll, describe, expect, it } from "vitest";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { PeerProbe } from "../../../../server/cluster/PeerProbe.ts";
import { NodeRpc } from "../../../../server/cluster/NodeRpc.ts";
import { nodeInfo } from "../../../fixtures/directoryEntries.ts";
import { waitFor } from "../../../fixtures/processes.ts";

const INTERVAL_MS = 50;
const BOUND_MS = 300;

/** An HTTP server on 127.0.0.1:0 answering /healthz as `nodeId`; counts the probes. */
async function peer(nodeId: string) {
  let probes = 0;
  let answerAs = nodeId;
  const server = http.createServer((request, response) => {
    probes++;
    response.writeHead(request.url === "/healthz" ? 200 : 404, { "content-type": "application/json" });
    response.end(JSON.stringify({ status: "ok", nodeId: answerAs }));
  });
  server.listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    info: { ...nodeInfo(nodeId), publicAddress: `127.0.0.1:${port}` },
    probes: () => probes,
    answerAs(id: string) { answerAs = id; },
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

const stops: Array<() => unknown> = [];
afterAll(async () => { for (const stop of stops) await stop(); });

describe("PeerProbe", () => {
  it("hears a peer that answers, reports one that stops answering once at the bound, and remembers the loss after the peer leaves the list", { timeout: 30_000 }, async () => {
    const b = await peer("b");
    const c = await peer("c");
    stops.push(b.close, c.close);
    const lost: Array<{ nodeId: string; silentMs: number }> = [];
    const probe = new PeerProbe(new NodeRpc("a", 1000), "a", INTERVAL_MS, BOUND_MS, (nodeId, silentMs) => lost.push({ nodeId, silentMs }));
    probe.know([nodeInfo("a"), b.info, c.info]);
    const stop = probe.start();
    stops.push(stop);
    await waitFor(() => b.probes() >= 3 && c.probes() >= 3, 10_000, "three probes of each peer");
    expect([probe.silentFor("b"), probe.silentFor("c"), probe.silentFor("a")]).toEqual([0, 0, 0]);

    const closedAt = Date.now();
    await b.close();
    await waitFor(() => lost.length > 0, 10_000, "b reported lost");
    expect(lost).toEqual([{ nodeId: "b", silentMs: expect.any(Number) }]);
    expect(lost[0]!.silentMs).toBeGreaterThanOrEqual(BOUND_MS);
    expect(probe.silentFor("b")).toBeGreaterThanOrEqual(BOUND_MS);
    expect(probe.lostAt("b")).toBeGreaterThanOrEqual(closedAt);
    expect(probe.silentFor("c")).toBe(0);
    // Reported once while the silence lasts.
    const probesOfC = c.probes();
    await waitFor(() => c.probes() >= probesOfC + 3, 10_000, "more probes");
    expect(lost).toHaveLength(1);

    // The registry drops b: no more probes of it, but its loss is remembered.
    probe.know([nodeInfo("a"), c.info]);
    expect(probe.silentFor("b")).toBe(0);
    expect(probe.lostAt("b")).toBeDefined();
    stop();
  });

  it("takes an answer as another node for silence, and counts none while it sends no probes (a stall)", { timeout: 30_000 }, async () => {
    const b = await peer("b");
    stops.push(b.close);
    const lost: string[] = [];
    const probe = new PeerProbe(new NodeRpc("a", 1000), "a", INTERVAL_MS, BOUND_MS, (nodeId) => lost.push(nodeId));
    probe.know([b.info]);
    let stop = probe.start();
    await waitFor(() => b.probes() >= 2, 10_000, "two probes");
    // Someone else at b's address: not b.
    b.answerAs("impostor");
    await waitFor(() => lost.length > 0, 10_000, "b reported lost");
    expect(lost).toEqual(["b"]);
    // It answers as itself again: heard, and its loss forgotten.
    b.answerAs("b");
    await waitFor(() => probe.silentFor("b") === 0, 10_000, "b heard again");
    expect(probe.lostAt("b")).toBeUndefined();

    // This process stalls (no probes) while b is gone: b is not silent for the bound (a probe
    // in flight as it stopped may have failed: one interval at most).
    stop();
    await b.close();
    await new Promise((resolve) => setTimeout(resolve, 2 * BOUND_MS));
    expect(probe.silentFor("b")).toBeLessThanOrEqual(INTERVAL_MS);
    expect(lost).toEqual(["b"]);
    // Probing again finds it silent from its last answer on.
    stop = probe.start();
    stops.push(stop);
    await waitFor(() => probe.silentFor("b") >= BOUND_MS, 10_000, "b silent once probed");
    expect(lost).toEqual(["b", "b"]);
    stop();
  });
});
