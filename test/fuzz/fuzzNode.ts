/**
 * The node the fuzzer runs against: what `npm start` runs (the demo rooms, hall and
 * simulated devices, so there is something behind every door), in its own process on
 * 127.0.0.1, with the per-client rate limits raised so the cases reach the decoders
 * instead of the flood limiter, and a short hello timeout for the gateway cases.
 */
import { startNode, waitFor } from "../fixtures/processes.ts";
import type { LiveNode } from "./FuzzRun.ts";

export interface FuzzNodeProcess extends LiveNode { stop(): Promise<unknown> }

export async function startFuzzNode(): Promise<FuzzNodeProcess> {
  const node = await startNode({
    demo: true,
    regionId: "jp-tokyo",
    extraArgs: ["--limits-max-messages-per-second", "100000", "--limits-max-matchmake-per-second", "100000", "--gateway-hello-timeout-ms", "2000"],
    env: { TSUNAGI_LOG_LEVEL: process.env.TSUNAGI_LOG_LEVEL ?? "fatal" },
    startTimeoutMs: 60_000,
  });
  const tokens = new Map<string, Promise<string>>();
  const token = (role: string, sub?: string) => {
    const fetchToken = async () => {
      const query = new URLSearchParams({ role, ...(sub ? { sub } : {}) });
      const response = await fetch(`${node.httpUrl}/dev/token?${query}`);
      if (!response.ok) throw new Error(`dev token for ${role}: ${response.status} ${await response.text()}`);
      return response.text();
    };
    if (sub) return fetchToken();
    let cached = tokens.get(role);
    if (!cached) tokens.set(role, cached = fetchToken());
    return cached;
  };
  // The demo's rooms exist once its teleop room answers a join.
  await waitFor(async () => (await fetch(`${node.httpUrl}/healthz`)).ok, 30_000, "the fuzz node to be healthy");
  return { httpUrl: node.httpUrl, gatewayUrl: node.gatewayUrl, token, exited: node.exited, output: node.output, stop: () => node.stop() };
}
