/**
 * The device gateway caps sockets that have not completed their hello, per address and
 * in all: a stranger opening connections by the hundred without a device secret gets a
 * coded refusal (Error RATE_LIMITED, close 4429), counted in the metrics, and the
 * gateway keeps serving. A closed pending socket frees its place.
 */
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { decodeEnvelope, DeviceCloseCode, ErrorCode, type Envelope } from "../../proto/index.ts";
import { startNode, type NodeProcess } from "../fixtures/processes.ts";

const nodes: NodeProcess[] = [];
const sockets: WebSocket[] = [];
afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.terminate();
  await Promise.all(nodes.splice(0).map((node) => node.stop()));
});

/** A socket to the gateway, and the first thing that happens on it: its first frame, or its close. */
function connect(url: string): Promise<{ ws: WebSocket; first: Envelope | undefined; close?: { code: number } }> {
  const ws = new WebSocket(url);
  sockets.push(ws);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no frame and no close within 10 s")), 10_000);
    let first: Envelope | undefined;
    ws.on("message", (data) => {
      first ??= decodeEnvelope(new Uint8Array(data as Buffer));
      if (first.body === "deviceChallenge") { clearTimeout(timer); resolve({ ws, first }); }
    });
    ws.on("close", (code) => { clearTimeout(timer); resolve({ ws, first, close: { code } }); });
    ws.on("error", () => {}); // the close follows
  });
}

async function refusals(node: NodeProcess): Promise<number> {
  const text = await (await fetch(`${node.httpUrl}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith("tsunagi_errors_total{") && l.includes('code="RATE_LIMITED"') && l.includes('source="gateway-pending"'));
  return line ? Number(line.split(" ").pop()) : 0;
}

async function start(perAddress: number, total: number): Promise<NodeProcess> {
  const node = await startNode({ extraArgs: ["--gateway-max-pending-per-address", String(perAddress), "--gateway-max-pending", String(total), "--gateway-hello-timeout-ms", "30000"] });
  nodes.push(node);
  return node;
}

describe("device gateway: sockets without a completed hello", () => {
  it("refuses one address past its cap with RATE_LIMITED and close 4429, counted; a closed one frees its place", { timeout: 60_000 }, async () => {
    const node = await start(3, 100);
    const admitted: Array<Awaited<ReturnType<typeof connect>>> = [];
    for (let i = 0; i < 3; i++) admitted.push(await connect(node.gatewayUrl));
    expect(admitted.every((socket) => socket.first?.body === "deviceChallenge")).toBe(true);

    const refused = await connect(node.gatewayUrl);
    expect(refused.first).toMatchObject({ body: "error", error: { code: ErrorCode.RATE_LIMITED } });
    expect(refused.first!.error!.message).toMatch(/more than 3 connections from .* have not completed their hello/);
    expect(refused.close?.code).toBe(DeviceCloseCode.TOO_MANY_PENDING);
    expect(await refusals(node)).toBe(1);

    const closed = new Promise((resolve) => admitted[0].ws.once("close", resolve));
    admitted[0].ws.close();
    await closed;
    // the node notices the close a moment after the client does: retry until a place is free
    let next = await connect(node.gatewayUrl);
    for (let tries = 0; next.close && tries < 50; tries++) next = await connect(node.gatewayUrl);
    expect(next.first?.body).toBe("deviceChallenge");
    expect((await fetch(`${node.httpUrl}/healthz`)).status).toBe(200);
  });

  it("refuses everyone past the total cap", { timeout: 60_000 }, async () => {
    const node = await start(10, 2);
    await connect(node.gatewayUrl);
    await connect(node.gatewayUrl);
    const refused = await connect(node.gatewayUrl);
    expect(refused.first!.error!.message).toMatch(/more than 2 connections have not completed their hello/);
    expect(refused.close?.code).toBe(DeviceCloseCode.TOO_MANY_PENDING);
  });
});
