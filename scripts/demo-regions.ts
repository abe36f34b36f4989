/**
 * `npm run demo:regions [-- --regions jp-tokyo,jp-osaka,jp-sendai] [--nodes N] [--delay-scale X]`
 *
 * Several regions on this machine (test/fixtures/regions.ts), each node behind delay
 * proxies with the reference RTTs of deploy/regions.json, and the demo rooms of `npm start`
 * in the first region. It prints where everything is and how a client in each city gets
 * in, then runs until Ctrl-C or SIGTERM, which stop every process it started.
 *
 * It lives in scripts/, not demo/: it runs the test harness (real node processes, Redis
 * servers, delay proxies), and the architecture map lets only bench/, test/ and scripts/
 * import test/. The demo rooms run in one region only: their room and device ids are
 * fixed (`teleop-demo`, `expo-demo`, `excavator-1`), and the cluster allows each once.
 *
 * @example
 *   npm run demo:regions
 *   npm run demo:regions -- --regions jp-tokyo,jp-fukuoka --delay-scale 5
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { startRegions, type RegionsHarness } from "../test/fixtures/regions.ts";
import type { LocatedClient } from "../test/fixtures/regions/located.ts";
import { testIssuer } from "../test/fixtures/tokens.ts";
import { DEMO_BOTS, DEMO_HALL_FILE, DEMO_TELEOP_ROOM, demoDevices } from "../demo/Demo.ts";

const USAGE = "usage: npm run demo:regions [-- --regions ID,ID,... (default jp-tokyo,jp-osaka,jp-sendai)] [--nodes N per region (1)] [--delay-scale X (1)]";
const CLUSTER_NAME = "regions-demo";

function options() {
  const { values } = parseArgs({
    options: {
      regions: { type: "string", default: "jp-tokyo,jp-osaka,jp-sendai" },
      nodes: { type: "string", default: "1" },
      "delay-scale": { type: "string", default: "1" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) { console.log(USAGE); process.exit(0); }
  return { regions: values.regions.split(",").map((id) => id.trim()).filter(Boolean), nodes: Number(values.nodes), delayScale: Number(values["delay-scale"]) };
}

/** Signed tokens for each role, one file each (not in the process list), for an hour less than the node's longest. */
async function writeTokens(dir: string): Promise<Record<string, string>> {
  const issuer = testIssuer(CLUSTER_NAME);
  const files: Record<string, string> = {};
  for (const role of ["visitor", "host", "operator", "supervisor"] as const) {
    files[role] = path.join(dir, `${role}.token`);
    writeFileSync(files[role], await issuer.issue({ sub: `demo-${role}`, role }, issuer.maxAgeSeconds - 3600), { mode: 0o600 });
  }
  return files;
}

function banner(harness: RegionsHarness, located: LocatedClient[], tokens: Record<string, string>): string {
  const described = harness.describe();
  const demoRegion = harness.regionIds[0]!;
  const demoNode = harness.region(demoRegion).nodes[0]!;
  const hallId = (JSON.parse(readFileSync(DEMO_HALL_FILE, "utf8")) as { hallId: string }).hallId;
  const pad = (text: string, width: number) => text.padEnd(width);
  const lines = [
    `Tsunagi: ${harness.regionIds.length} regions on this machine, cluster "${harness.clusterName}", delays ${harness.delayScale === 1 ? "as in" : `×${harness.delayScale} of`} deploy/regions.json`,
    "",
    `  ${pad("region", 12)}${pad("node", 12)}${pad("HTTP", 26)}${pad("device gateway", 33)}region Redis`,
  ];
  for (const region of described.regions) {
    for (const node of region.nodes) {
      lines.push(`  ${pad(region.id, 12)}${pad(node.nodeId, 12)}${pad(node.httpUrl, 26)}${pad(node.gatewayUrl, 33)}${region.redisUrl}`);
    }
  }
  lines.push(`  cluster store (registry, directory): ${described.clusterStore.kind} ${described.clusterStore.members.map((m) => `${m.url} in ${m.regionId}`).join(", ")}`);
  lines.push("", "Between regions every node-to-node and store call crosses a delay proxy (half the RTT each way):");
  for (const route of described.routes) {
    lines.push(`  ${pad(`${route.from} → ${route.fronts}`, 34)}127.0.0.1:${route.port}   RTT ${route.oneWayMs * 2} ms`);
  }
  lines.push("", `A client in each city reaches every region through proxies of its own (${harness.topology.clientRttMs(demoRegion, demoRegion)} ms access + the RTT between regions):`);
  for (const city of located) {
    lines.push(`  in ${pad(city.city, 12)}${city.regions.map((r) => `${r.id} ${r.url} (${city.rttMs[r.id]} ms)`).join("   ")}`);
  }
  lines.push(
    "",
    `Demo rooms in ${demoRegion} (${demoNode.nodeId}): teleop "${DEMO_TELEOP_ROOM}" with ${demoDevices.map((d) => d.deviceId).join(" and ")}, expo hall "${hallId}" with ${DEMO_BOTS} bots.`,
    `Tokens for cluster "${harness.clusterName}" (signed with the test secret), one file per role: ${Object.values(tokens).join(" ")}`,
  );
  const away = located.find((city) => city.city !== demoRegion) ?? located[0]!;
  const entry = away.regions.find((r) => r.id === away.city)!;
  lines.push(
    "",
    `Drive the excavator from ${away.city}: matchmaking goes to ${away.city} (${away.rttMs[away.city]} ms) and is forwarded to ${demoRegion};`,
    "the CLI's WebSocket then goes straight to the room's node (only a located client below rewrites node addresses):",
    `  TSUNAGI_TOKEN_FILE=${tokens.operator} npm run operator -- --node ${entry.url} --room ${DEMO_TELEOP_ROOM} --device excavator-1`,
    "",
    `Join as a client in ${away.city}, every socket through its proxies (TypeScript, from the repository root):`,
    `  import { readFileSync } from "node:fs";`,
    `  import { TsunagiClient } from "./client-sdk/index.ts";`,
    `  const via: Record<string, string> = ${JSON.stringify(Object.fromEntries(harness.nodes.map((node) => [new URL(node.httpUrl).host, away.rewrite(new URL(node.httpUrl).host)])))};`,
    "  const client = new TsunagiClient({",
    `    regions: ${JSON.stringify(away.regions)},`,
    `    token: readFileSync(${JSON.stringify(tokens.visitor)}, "utf8"),`,
    "    clientOptions: { urlBuilder: (url: URL) => { url.host = via[url.host] ?? url.host; return url.toString(); } },",
    "  });",
    `  const lobby = await client.joinOrCreate("lobby");   // rooms of every region, with their region`,
    "",
    "Ctrl-C stops everything.",
  );
  return lines.join("\n");
}

async function main() {
  const { regions, nodes, delayScale } = options();
  const tokenDir = mkdtempSync(path.join(tmpdir(), "tsunagi-demo-regions-"));
  // Also on a forced exit; the children are SIGKILLed then by test/fixtures/processes.ts.
  process.once("exit", () => rmSync(tokenDir, { recursive: true, force: true }));
  let harness: RegionsHarness | undefined;
  let stoppingSince: number | undefined;
  const stop = async (code: number) => {
    if (stoppingSince !== undefined) {
      // One Ctrl-C arrives up to three times (the terminal's process group, then relayed
      // by npm and by tsx); only a later signal means "now".
      if (performance.now() - stoppingSince < 2000) return;
      process.stderr.write("demo:regions: another signal, exiting now\n");
      process.exit(1);
    }
    stoppingSince = performance.now();
    process.stderr.write("demo:regions: stopping every node, Redis server and proxy…\n");
    await harness?.stop();
    process.exit(code);
  };
  process.on("SIGINT", () => void stop(0));
  process.on("SIGTERM", () => void stop(0));

  process.stderr.write(`demo:regions: starting ${regions.join(", ")}…\n`);
  try {
    harness = await startRegions({ regions, nodesPerRegion: nodes, delayScale, clusterName: CLUSTER_NAME, demoRegion: regions[0] });
  } catch (error) {
    process.stderr.write(`demo:regions: could not start: ${(error as Error).message}\n`);
    await stop(1);
    return;
  }
  const located = await Promise.all(harness.regionIds.map((city) => harness!.locate(city)));
  const tokens = await writeTokens(tokenDir);
  process.stdout.write(`\n${banner(harness, located, tokens)}\n\n`);

  // A node that dies on its own is worth a line (its last output says why); the rest keep running.
  for (const node of harness.nodes) {
    void node.exited.then((code) => {
      if (stoppingSince === undefined) process.stderr.write(`demo:regions: ${node.nodeId} exited (${code ?? node.child.signalCode}); its last output:\n${node.output().split("\n").slice(-15).join("\n")}\n`);
    });
  }
}

main().catch((error) => {
  process.stderr.write(`demo:regions: ${(error as Error).stack ?? error}\n`);
  process.exit(1);
});
